"""Credential lookup in skopeo's order, credential helpers, and writing auth files.

The ``isolated_home`` fixture points HOME, XDG_RUNTIME_DIR, XDG_CONFIG_HOME and DOCKER_CONFIG at a
fresh directory, so every file below is the test's own.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import stat
import time
from dataclasses import replace
from pathlib import Path

import anyio
import pytest

from asyncsync.errors import CredentialsError
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.registry.credentials import (
    Credentials,
    auth_file_paths,
    default_write_path,
    lookup_credentials,
    parse_creds_flag,
    remove_credentials,
    store_credentials,
)
from asyncsync.registry.manifests import get_manifest
from tests.helpers.images import make_image, push_image_sync
from tests.helpers.registry import RegistryServer

REG = "reg.example:5000"


def _auth(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def _write(path: Path, document: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


@pytest.fixture
def locations(isolated_home: Path) -> dict[str, Path]:
    """Every auth file location of the lookup order, in order."""
    return {
        "runtime": Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json",
        "config": Path(os.environ["XDG_CONFIG_HOME"]) / "containers" / "auth.json",
        "docker": Path(os.environ["DOCKER_CONFIG"]) / "config.json",
        "legacy": isolated_home / ".dockercfg",
    }


@pytest.mark.anyio
async def test_lookup_order(
    locations: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(locations["legacy"], {REG: _auth("legacy", "p")})
    assert await lookup_credentials(REG) == Credentials("legacy", "p")
    _write(locations["docker"], {"auths": {REG: _auth("docker", "p")}})
    assert await lookup_credentials(REG) == Credentials("docker", "p")
    _write(locations["config"], {"auths": {REG: _auth("config", "p")}})
    assert await lookup_credentials(REG) == Credentials("config", "p")
    _write(locations["runtime"], {"auths": {REG: _auth("runtime", "p")}})
    assert await lookup_credentials(REG) == Credentials("runtime", "p")
    env_file = _write(tmp_path / "env.json", {"auths": {REG: _auth("env", "p")}})
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(env_file))
    assert await lookup_credentials(REG) == Credentials("env", "p")
    flag_file = _write(tmp_path / "flag.json", {"auths": {REG: _auth("flag", "p")}})
    assert await lookup_credentials(REG, authfile=flag_file) == Credentials("flag", "p")
    # A file that has nothing for this registry does not stop the search.
    assert await lookup_credentials("other.example", authfile=flag_file) is None


@pytest.mark.anyio
async def test_docker_config_defaults_to_home(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_CONFIG")
    _write(isolated_home / ".docker" / "config.json", {"auths": {REG: _auth("home", "p")}})
    assert await lookup_credentials(REG) == Credentials("home", "p")
    assert (isolated_home / ".docker" / "config.json", False) in auth_file_paths()


@pytest.mark.anyio
async def test_namespace_keys_most_specific_first_and_url_keys(locations: dict[str, Path]) -> None:
    _write(
        locations["runtime"],
        {
            "auths": {
                REG: _auth("host", "p"),
                f"{REG}/team": _auth("team", "p"),
                f"{REG}/team/app": _auth("app", "p"),
                "https://index.docker.io/v1/": _auth("hub", "p"),
            }
        },
    )
    assert await lookup_credentials(REG, "team/app/x") == Credentials("app", "p")
    assert await lookup_credentials(REG, "team/other") == Credentials("team", "p")
    assert await lookup_credentials(REG, "elsewhere") == Credentials("host", "p")
    assert await lookup_credentials("docker.io", "library/alpine") == Credentials("hub", "p")


@pytest.mark.anyio
async def test_identity_token_entry(locations: dict[str, Path]) -> None:
    _write(locations["runtime"], {"auths": {REG: {"identitytoken": "refresh-me"}}})
    creds = await lookup_credentials(REG)
    assert creds is not None and creds.identity_token == "refresh-me" and not creds.username
    assert "refresh-me" not in repr(creds)


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "is not valid JSON"), ("[]", "is not a JSON object")],
)
@pytest.mark.anyio
async def test_broken_auth_file(locations: dict[str, Path], content: str, message: str) -> None:
    locations["runtime"].parent.mkdir(parents=True)
    locations["runtime"].write_text(content)
    with pytest.raises(CredentialsError, match=message):
        await lookup_credentials(REG)


def _helper(bin_dir: Path, name: str, body: str) -> Path:
    """Install ``docker-credential-<name>`` (a Python script) into ``bin_dir``."""
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / f"docker-credential-{name}"
    script.write_text(f"#!/usr/bin/env python3\nimport sys, json, os\n{body}\n")
    script.chmod(0o755)
    return script


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    monkeypatch.setenv("PATH", f"{path}{os.pathsep}{os.environ['PATH']}")
    return path


_RECORDING_HELPER = """
log = os.path.join(os.path.dirname(sys.argv[0]), "calls.log")
server = sys.stdin.read()
with open(log, "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "stdin": server}) + "\\n")
if sys.argv[1:] != ["get"]:
    sys.exit(3)
if server == "missing.example":
    print("credentials not found in native keychain")
    sys.exit(1)
if server == "token.example":
    print(json.dumps({"ServerURL": server, "Username": "<token>", "Secret": "id-token"}))
else:
    print(json.dumps({"ServerURL": server, "Username": "helper-user", "Secret": "helper-pass"}))
"""


def _calls(bin_dir: Path) -> list[dict[str, object]]:
    log = bin_dir / "calls.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.anyio
async def test_cred_helper_gets_the_server_on_stdin(locations: dict[str, Path], bin_dir: Path) -> None:
    _helper(bin_dir, "rec", _RECORDING_HELPER)
    _write(locations["runtime"], {"auths": {REG: _auth("file", "p")}, "credHelpers": {REG: "rec"}})
    # credHelpers for the host wins over an auths entry in the same file.
    assert await lookup_credentials(REG) == Credentials("helper-user", "helper-pass")
    assert _calls(bin_dir) == [{"argv": ["get"], "stdin": REG}]


@pytest.mark.anyio
async def test_creds_store_fallback_identity_token_and_not_found(
    locations: dict[str, Path], bin_dir: Path
) -> None:
    _helper(bin_dir, "rec", _RECORDING_HELPER)
    _write(locations["runtime"], {"auths": {REG: _auth("file", "p")}, "credsStore": "rec"})
    assert await lookup_credentials(REG) == Credentials("file", "p")  # auths entry before credsStore
    assert _calls(bin_dir) == []
    assert await lookup_credentials("other.example") == Credentials("helper-user", "helper-pass")
    assert await lookup_credentials("token.example") == Credentials(identity_token="id-token")
    assert await lookup_credentials("missing.example") is None
    assert [c["stdin"] for c in _calls(bin_dir)] == ["other.example", "token.example", "missing.example"]


@pytest.mark.anyio
async def test_failing_helper_never_echoes_its_output(locations: dict[str, Path], bin_dir: Path) -> None:
    _helper(bin_dir, "leaky", 'print("SECRET-MARKER-123"); sys.exit(2)')
    _write(locations["runtime"], {"credHelpers": {REG: "leaky"}})
    with pytest.raises(CredentialsError) as info:
        await lookup_credentials(REG)
    assert "exit status 2" in str(info.value)
    assert "SECRET-MARKER-123" not in str(info.value)


@pytest.mark.anyio
async def test_missing_helper(locations: dict[str, Path], bin_dir: Path) -> None:
    _write(locations["runtime"], {"credHelpers": {REG: "absent-helper"}})
    with pytest.raises(CredentialsError, match="docker-credential-absent-helper is not installed"):
        await lookup_credentials(REG)


@pytest.mark.anyio
async def test_store_and_remove_are_atomic_and_private(locations: dict[str, Path]) -> None:
    path = default_write_path()
    assert path == locations["runtime"]
    _write(path, {"auths": {"keep.example": _auth("k", "p")}, "credHelpers": {"x.example": "h"}})
    assert store_credentials(REG, Credentials("u", "secret")) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert document["auths"][REG] == _auth("u", "secret")
    assert document["auths"]["keep.example"] == _auth("k", "p")
    assert document["credHelpers"] == {"x.example": "h"}
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".auth-")]  # no temp files left
    assert await lookup_credentials(REG) == Credentials("u", "secret")
    assert remove_credentials(REG) is True
    assert remove_credentials(REG) is False
    assert REG not in json.loads(path.read_text())["auths"]
    assert remove_credentials(None) is True
    assert json.loads(path.read_text())["auths"] == {}


def test_store_respects_authfile(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "auth.json"
    store_credentials(REG, Credentials(identity_token="tok"), authfile=target)
    assert json.loads(target.read_text()) == {"auths": {REG: {"identitytoken": "tok"}}}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_parse_creds_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("asyncsync.registry.credentials.os.isatty", lambda fd: False)
    assert parse_creds_flag("u:p:with:colons") == Credentials("u", "p:with:colons")
    assert parse_creds_flag("u:") == Credentials("u", "")
    with pytest.raises(CredentialsError, match="stdin is not a terminal"):
        parse_creds_flag("u")  # no terminal: no prompt, a clear error
    with pytest.raises(CredentialsError, match="missing username"):
        parse_creds_flag(":p")
    with pytest.raises(CredentialsError, match="empty value"):
        parse_creds_flag("")


_SLOW_COUNTING_HELPER = """
import time
server = sys.stdin.read()
with open(os.path.join(os.path.dirname(sys.argv[0]), "calls.log"), "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "stdin": server}) + "\\n")
time.sleep(1.0)
secret = os.environ["HELPER_PASS"]
print(json.dumps({"ServerURL": server, "Username": os.environ["HELPER_USER"], "Secret": secret}))
"""


@pytest.mark.anyio
async def test_a_credential_helper_runs_once_per_run_without_blocking_the_loop(
    registry_basic: RegistryServer, tmp_path: Path, bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many repositories, two clients, concurrent requests: the helper runs once for the run, and
    the event loop keeps ticking while it runs (a blocking call would stall it for a second)."""
    assert registry_basic.username and registry_basic.password
    _helper(bin_dir, "counting", _SLOW_COUNTING_HELPER)
    monkeypatch.setenv("HELPER_USER", registry_basic.username)
    monkeypatch.setenv("HELPER_PASS", registry_basic.password)
    repos = [f"helper-once/app{i}" for i in range(3)]
    image = make_image("helper-once", layers=1, layer_size=128)
    for repo in repos:
        push_image_sync(registry_basic, repo, "v1", image)
    authfile = _write(tmp_path / "auth.json", {"credHelpers": {registry_basic.host: "counting"}})
    ticks: list[float] = []

    async def tick(stop: anyio.Event) -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            await anyio.sleep(0.02)

    async with RegistrySession() as session:
        options = RegistryOptions(tls_verify=False, authfile=str(authfile))
        # Two clients of one registry (options differ in an unused cert dir), sharing the run's lookup.
        clients = [session.client(registry_basic.host, o) for o in (options, replace(options, cert_dir="/x"))]
        stop = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(tick, stop)
            async with anyio.create_task_group() as fetches:
                for client in clients:
                    for repo in repos:
                        fetches.start_soon(get_manifest, client, repo, "v1")
            stop.set()
    longest_stall = max(b - a for a, b in itertools.pairwise(ticks))
    assert longest_stall < 0.5, f"the event loop stalled for {longest_stall:.2f} s"
    assert _calls(bin_dir) == [{"argv": ["get"], "stdin": registry_basic.host}]
