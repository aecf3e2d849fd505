"""``docker-daemon:`` through the Engine API, against real podman's (``podman system service``).

The Engine API server is the ``podman_service`` fixture (a private store; no Docker engine runs on
these machines). The scripted server in tests.helpers.fake_docker_daemon is kept for one thing
podman cannot be made to do on demand: fail a load mid-stream with an error line
(``{"errorDetail": ...}``, what an engine sends when its disk fills up).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asyncsync.errors import DigestMismatchError, LocalStorageError, TransportError, UsageError
from asyncsync.transports import parse_image_name
from tests.helpers.asyncsync_cli import invoke
from tests.helpers.fake_docker_daemon import FakeDockerDaemon
from tests.helpers.images import make_image, push_image_sync
from tests.helpers.podman import PodmanService, start_podman_service
from tests.helpers.registry import RegistryServer
from tests.helpers.skopeo import skopeo
from tests.transports.roundtrip import MemorySource, copy_through, read_back, transport_context


@pytest.fixture
async def fake_daemon(tmp_path: Path) -> AsyncIterator[FakeDockerDaemon]:
    async with FakeDockerDaemon(str(tmp_path / "docker.sock")) as fake:
        yield fake


def _name() -> str:
    return f"proj/daemon-{secrets.token_hex(4)}"


@pytest.mark.anyio
async def test_load_then_save_round_trip(podman_service: PodmanService, rng_seed: int) -> None:
    image = make_image(rng_seed)
    name = _name()
    async with transport_context(daemon_host=podman_service.host, additional_tags=(f"{name}:extra",)) as ctx:
        destination = await parse_image_name(f"docker-daemon:{name}:v1").new_destination(ctx)
        await copy_through(MemorySource(image), destination)
        await destination.close()
        stored = podman_service.storage.inspect(f"docker.io/{name}:v1")
        assert stored is not None and f"sha256:{stored['Id']}" == image.config_digest
        assert sorted(stored["RepoTags"]) == [f"docker.io/{name}:extra", f"docker.io/{name}:v1"]
        for reference in (f"{name}:v1", f"docker.io/{name}:extra", image.config_digest):
            source = await parse_image_name(f"docker-daemon:{reference}").new_source(ctx)
            found = await read_back(source)
            await source.close()
            assert str(found.configs[0]) == image.config_digest
            assert found.diff_ids == [image.diff_ids]


def test_both_directions_as_skopeo(
    podman_service: PodmanService, registry_anon: RegistryServer, rng_seed: int
) -> None:
    """asyncsync and skopeo load the same image ID into podman, and read each other's images back."""
    image = make_image(rng_seed, fmt="oci")
    repo = f"daemon-{secrets.token_hex(4)}/app"
    push_image_sync(registry_anon, repo, "v1", image)
    source = f"docker://{registry_anon.host}/{repo}:v1"
    host = podman_service.host
    ours, theirs = _name(), _name()
    done = invoke(
        "copy", "--src-tls-verify=false", "--dest-daemon-host", host, source, f"docker-daemon:{ours}:v1"
    )
    assert done.returncode == 0, done.stderr
    skopeo("copy", "--src-tls-verify=false", "--dest-daemon-host", host, source, f"docker-daemon:{theirs}:v1")
    by_us = podman_service.storage.inspect(f"docker.io/{ours}:v1")
    by_skopeo = podman_service.storage.inspect(f"docker.io/{theirs}:v1")
    assert by_us is not None and by_skopeo is not None
    assert by_us["Id"] == by_skopeo["Id"] == image.config_digest.removeprefix("sha256:")
    # Each reads what the other wrote and pushes it with the same config digest.
    skopeo(
        "copy", "--src-daemon-host", host, "--dest-tls-verify=false",
        f"docker-daemon:{ours}:v1", f"docker://{registry_anon.host}/{repo}:via-skopeo",
    )  # fmt: skip
    done = invoke(
        "copy", "--src-daemon-host", host, "--dest-tls-verify=false",
        f"docker-daemon:{theirs}:v1", f"docker://{registry_anon.host}/{repo}:via-asyncsync",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for tag in ("via-skopeo", "via-asyncsync"):
        config = json.loads(
            skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{registry_anon.host}/{repo}:{tag}")
        )
        assert config["config"]["digest"] == image.config_digest


@pytest.mark.anyio
async def test_a_failed_copy_loads_nothing(podman_service: PodmanService, rng_seed: int) -> None:
    image = make_image(rng_seed)
    broken = MemorySource(image)
    broken.blobs[image.layer_digests[0]] = b"corrupt"
    name = _name()
    async with transport_context(daemon_host=podman_service.host) as ctx:
        destination = await parse_image_name(f"docker-daemon:{name}:v1").new_destination(ctx)
        with pytest.raises(DigestMismatchError):
            await copy_through(broken, destination)
        await destination.close()
    assert podman_service.storage.inspect(f"docker.io/{name}:v1") is None
    assert podman_service.storage.inspect(image.config_digest) is None


@pytest.mark.anyio
async def test_daemon_errors_are_one_line_errors(podman_service: PodmanService, tmp_path: Path) -> None:
    async with transport_context(daemon_host=podman_service.host) as ctx:
        with pytest.raises(LocalStorageError, match=r"refused to export missing:1: .*HTTP 404") as missing:
            await parse_image_name("docker-daemon:missing:1").new_source(ctx)
        assert "\n" not in str(missing.value)
        for bad in ("docker-daemon:sha256:" + "a" * 64, "docker-daemon:a@sha256:" + "a" * 64):
            with pytest.raises(UsageError, match="must be NAME:TAG"):
                await parse_image_name(bad).new_destination(ctx)
    async with transport_context(daemon_host=f"unix://{tmp_path}/nothing.sock") as ctx:
        with pytest.raises(TransportError, match="cannot talk to the Docker daemon at unix://") as caught:
            await parse_image_name("docker-daemon:a:b").new_source(ctx)
        assert not caught.value.temporary
    async with transport_context(daemon_host="ssh://host") as ctx:
        with pytest.raises(UsageError, match="invalid daemon host"):
            await parse_image_name("docker-daemon:a:b").new_source(ctx)


@pytest.mark.anyio
async def test_a_load_error_line_is_one_line(fake_daemon: FakeDockerDaemon, rng_seed: int) -> None:
    """Scripted: podman cannot be made to fail mid-load (disk full) on demand; the fake sends the
    engine's error line for it."""
    fake_daemon.load_error = "no space left on device"
    async with transport_context(daemon_host=fake_daemon.host) as ctx:
        destination = await parse_image_name("docker-daemon:proj/app:v1").new_destination(ctx)
        with pytest.raises(LocalStorageError, match="failed to load the image: no space left on device"):
            await copy_through(MemorySource(make_image(rng_seed)), destination)
        await destination.close()


@pytest.mark.anyio
async def test_tcp_daemon_host(tmp_path_factory: pytest.TempPathFactory, rng_seed: int) -> None:
    image = make_image(rng_seed)
    service = start_podman_service(tmp_path_factory.mktemp("pt"), tcp=True)
    try:
        async with transport_context(daemon_host=service.host) as ctx:
            assert service.host.startswith("tcp://127.0.0.1:")
            await copy_through(
                MemorySource(image), await parse_image_name("docker-daemon:x:1").new_destination(ctx)
            )
            source = await parse_image_name("docker-daemon:x:1").new_source(ctx)
            assert str((await read_back(source)).configs[0]) == image.config_digest
            assert json.loads((await source.get_manifest())[0])["config"]["digest"] == image.config_digest
            await source.close()
    finally:
        service.stop()
