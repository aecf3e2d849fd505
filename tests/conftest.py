"""Shared fixtures: real registries in every auth flavour, seeds, and an isolated home directory.

Fixtures:

* ``anyio_backend`` (session): ``"asyncio"``; async tests use ``@pytest.mark.anyio``.
* ``registry_anon``, ``registry_basic``, ``registry_token``, ``registry_tls`` (session): one running
  :class:`~tests.helpers.registry.RegistryServer` each, shared by every test. Treat them as read-only
  configuration: use a unique repository name per test, ``reset_log()`` before counting requests, and
  ``make_registry`` for anything that changes settings (token lifetime, policy, read-only mode ...).
* ``any_registry``: parametrised over the four session registries (one test run per flavour).
* ``make_registry`` (function): ``make_registry(flavour="anon", **options) -> RegistryServer`` starts a
  fresh registry (options as :func:`~tests.helpers.registry.start_registry`), stopped at teardown.
* ``rng_seed``: a stable integer derived from the test's node id.
* ``podman_service`` (session): a real ``podman system service`` (Docker Engine API and libpod API on
  one unix socket) on a private store (:mod:`tests.helpers.podman`); use unique image names per test.
* ``private_storage``: a fresh private containers-storage store, made the default for podman, skopeo
  and asyncsync in this test (``CONTAINERS_STORAGE_CONF``; ``CONTAINER_HOST`` unset and the system
  podman socket hidden, so asyncsync drives the ``podman`` binary on it).
* ``isolated_home`` (autouse): HOME, XDG_* and DOCKER_CONFIG point into a fresh directory and
  REGISTRY_AUTH_FILE is unset, so neither tests nor the skopeo they run read the real user's auth files.

A missing ``docker-registry`` binary fails the tests that need it with a clear message; nothing is skipped.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from tests.helpers.gpg_keys import GpgKeys, make_gpg_home, stop_agent  # noqa: E402
from tests.helpers.podman import PodmanService, PrivateStorage, start_podman_service  # noqa: E402
from tests.helpers.registry import (  # noqa: E402
    FLAVOURS,
    Flavour,
    RegistryFactory,
    RegistryServer,
    RegistryStartError,
    start_registry,
)


def _start(flavour: Flavour, base_dir: Path, **options: Any) -> RegistryServer:
    try:
        return start_registry(flavour, base_dir=base_dir, **options)
    except RegistryStartError as exc:
        pytest.fail(f"cannot start a {flavour} registry: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Run anyio tests on asyncio only."""
    return "asyncio"


@pytest.fixture(scope="session")
def registry_anon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """Session-wide anonymous HTTP registry."""
    server = _start("anon", tmp_path_factory.mktemp("registry-anon"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def registry_basic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """Session-wide HTTP registry with htpasswd auth (``username`` alice, random ``password``)."""
    server = _start("basic", tmp_path_factory.mktemp("registry-basic"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def registry_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """Session-wide HTTP registry with token auth; ``token_service`` records requests (``reset()`` it)."""
    server = _start("token", tmp_path_factory.mktemp("registry-token"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def registry_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """Session-wide anonymous HTTPS registry; trust ``ca_cert`` or ``cert_dir``."""
    server = _start("tls", tmp_path_factory.mktemp("registry-tls"))
    yield server
    server.stop()


@pytest.fixture(params=FLAVOURS)
def any_registry(request: pytest.FixtureRequest) -> RegistryServer:
    """Each session registry in turn (the test runs once per flavour)."""
    server: RegistryServer = request.getfixturevalue(f"registry_{request.param}")
    return server


@pytest.fixture
def make_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryFactory]:
    """Factory for fresh registries, all stopped (even if one stop fails) when the test ends."""
    with ExitStack() as stack:

        def factory(flavour: Flavour = "anon", **options: Any) -> RegistryServer:
            base_dir = options.pop("base_dir", None) or tmp_path_factory.mktemp(f"registry-{flavour}")
            server = _start(flavour, base_dir, **options)
            stack.callback(server.stop)
            return server

        yield factory


@pytest.fixture(scope="session")
def podman_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodmanService]:
    try:
        service = start_podman_service(tmp_path_factory.mktemp("ps"))
    except RuntimeError as exc:
        pytest.fail(f"cannot start podman system service: {exc}", pytrace=False)
    yield service
    service.stop()


@pytest.fixture
def private_storage(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> PrivateStorage:
    storage = PrivateStorage.create(tmp_path_factory.mktemp("st"))
    for key, value in storage.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CONTAINER_HOST", raising=False)
    monkeypatch.setattr(
        "asyncsync.transports.containers_storage.engine.SYSTEM_SOCKET", str(storage.base / "no-system.sock")
    )
    return storage


@pytest.fixture
def rng_seed(request: pytest.FixtureRequest) -> int:
    """A 63-bit seed derived from the test's node id: stable across runs, distinct between tests."""
    digest = hashlib.sha256(request.node.nodeid.encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point HOME and friends at a fresh directory (returned) and unset REGISTRY_AUTH_FILE."""
    home = tmp_path_factory.mktemp("home")
    runtime = home / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("DOCKER_CONFIG", str(home / ".docker"))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    return home


@pytest.fixture(scope="session")
def gpg_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GpgKeys]:
    """A GNUPGHOME with alice's (passphrase) and bob's signing keys (tests/helpers/gpg_keys.py)."""
    keys = make_gpg_home(tmp_path_factory.mktemp("gpg"))
    yield keys
    stop_agent(keys.home)


@pytest.fixture
def gnupg_home(gpg_keys: GpgKeys, monkeypatch: pytest.MonkeyPatch) -> GpgKeys:
    """``gpg_keys`` as the caller's keyring (GNUPGHOME) for this test."""
    monkeypatch.setenv("GNUPGHOME", str(gpg_keys.home))
    return gpg_keys
