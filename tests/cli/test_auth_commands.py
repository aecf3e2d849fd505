"""``login`` / ``logout``: verified before writing, 0600 auth files skopeo can read, clean refusals."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from tests.helpers.asyncsync_cli import invoke, run_cli
from tests.helpers.images import make_image, push_image_sync
from tests.helpers.registry import RegistryServer
from tests.helpers.skopeo import skopeo


def _tls_flags(server: RegistryServer) -> list[str]:
    return [f"--cert-dir={server.cert_dir}"] if server.cert_dir else ["--tls-verify=false"]


def _auth_path() -> Path:
    return Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"


@pytest.mark.parametrize("flavour", ["basic", "token"])
def test_login_writes_credentials_that_work_for_us_and_skopeo(
    flavour: str, request: pytest.FixtureRequest
) -> None:
    server: RegistryServer = request.getfixturevalue(f"registry_{flavour}")
    assert server.username and server.password
    repo = f"cli/login-{flavour}"
    push_image_sync(server, repo, "v1", make_image(f"login-{flavour}", layers=1))
    result = invoke(
        "login",
        *_tls_flags(server),
        "-u",
        server.username,
        "--password-stdin",
        server.host,
        stdin=server.password + "\n",
    )
    assert result.returncode == 0, result.stderr
    assert result.out == "Login Succeeded!\n"
    if server.token_service is not None:
        # Verified through the token service, with the user's credentials.
        assert server.username in [r.user for r in server.token_service.requests]
    path = _auth_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    entry = json.loads(path.read_text())["auths"][server.host]
    assert base64.b64decode(entry["auth"]).decode() == f"{server.username}:{server.password}"
    ref = f"docker://{server.host}/{repo}:v1"
    ours = invoke("inspect", "--tls-verify=false", "--no-tags", ref)  # credentials from the auth file
    assert ours.returncode == 0, ours.stderr
    assert skopeo("inspect", "--tls-verify=false", "--no-tags", "--authfile", str(path), ref)
    again = invoke("login", "--tls-verify=false", server.host)
    assert again.out == (
        f"Authenticating with existing credentials for {server.host}\n"
        f"Existing credentials are valid. Already logged in to {server.host}\n"
    )
    assert invoke("login", "--get-login", server.host).out == f"{server.username}\n"
    out = invoke("logout", server.host)
    assert (out.returncode, out.out) == (0, f"Removed login credentials for {server.host}\n")
    assert server.host not in json.loads(path.read_text())["auths"]
    missing = invoke("logout", server.host)
    assert (missing.returncode, missing.stderr) == (1, f"Error: not logged into {server.host}\n")


@pytest.mark.parametrize("flavour", ["basic", "token"])
def test_wrong_password_writes_nothing(flavour: str, request: pytest.FixtureRequest) -> None:
    server: RegistryServer = request.getfixturevalue(f"registry_{flavour}")
    assert server.username
    result = invoke(
        "login", "--tls-verify=false", "-u", server.username, "-p", "not-the-password", server.host
    )
    assert result.returncode == 1
    assert "unauthorized" in result.stderr.lower()
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert not _auth_path().exists()


@pytest.mark.parametrize("flavour", ["anon", "tls"])
def test_login_to_open_registries_succeeds(
    flavour: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    server: RegistryServer = request.getfixturevalue(f"registry_{flavour}")
    authfile = tmp_path / "auth.json"
    result = invoke(
        "login", *_tls_flags(server), "--authfile", str(authfile), "-u", "u", "-p", "p", server.host
    )
    assert (result.returncode, result.out) == (0, "Login Succeeded!\n")
    assert json.loads(authfile.read_text())["auths"][server.host]["auth"] == base64.b64encode(b"u:p").decode()


def test_login_tls_without_trust_fails_with_hint(registry_tls: RegistryServer) -> None:
    result = invoke("login", "-u", "u", "-p", "p", registry_tls.host)
    assert result.returncode == 1
    assert "--tls-verify=false" in result.stderr


def test_skopeo_login_file_is_read_and_logout_all(registry_basic: RegistryServer, tmp_path: Path) -> None:
    assert registry_basic.username and registry_basic.password
    authfile = tmp_path / "skopeo-auth.json"
    skopeo(
        "login", "--tls-verify=false", "--authfile", str(authfile),
        "-u", registry_basic.username, "-p", registry_basic.password, registry_basic.host,
    )  # fmt: skip
    push_image_sync(registry_basic, "cli/skopeo-login", "v1", make_image("skopeo-login", layers=1))
    ref = f"docker://{registry_basic.host}/cli/skopeo-login:v1"
    assert invoke("inspect", "--tls-verify=false", "--authfile", str(authfile), ref).returncode == 0
    result = invoke("logout", "--all", "--authfile", str(authfile))
    assert result.out == "Removed login credentials for all registries\n"
    assert json.loads(authfile.read_text())["auths"] == {}
    refused = invoke("inspect", "--tls-verify=false", "--authfile", str(authfile), ref)
    assert refused.returncode == 1 and "unauthorized" in refused.stderr.lower()


def test_logout_names_credentials_from_another_file(
    registry_basic: RegistryServer, isolated_home: Path
) -> None:
    docker_config = Path(os.environ["DOCKER_CONFIG"]) / "config.json"
    docker_config.parent.mkdir(parents=True)
    docker_config.write_text(json.dumps({"auths": {registry_basic.host: {"auth": "dTpw"}}}))
    result = invoke("logout", registry_basic.host)
    assert result.returncode == 1
    assert "come from another file" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-u", "u", "-p", "p", "--password-stdin", "h.example"], "mutually exclusive"),
        (["--password-stdin", "h.example"], "must provide --username with --password-stdin"),
        (["-p", "p", "h.example"], "no username given"),
        (["-u", "u", "h.example"], "no password given"),
        (["-u", "", "-p", "p", "h.example"], "username cannot be empty"),
        (["-u", "u", "-p", "p", "bad host"], "invalid registry 'bad host'"),
        (["-u", "u", "-p", "p", "h.example/Upper"], "invalid registry"),
    ],
)
def test_login_usage_errors(args: list[str], message: str) -> None:
    result = invoke("login", *args, stdin="")
    assert result.returncode == 2
    assert message in result.stderr
    assert not _auth_path().exists()


def test_logout_usage_errors() -> None:
    assert "give a REGISTRY" in invoke("logout").stderr
    assert "--all takes no REGISTRY" in invoke("logout", "--all", "h.example").stderr


def test_login_key_forms_subprocess(registry_anon: RegistryServer) -> None:
    """A URL and a namespace are accepted; the entry is stored under host[/namespace]."""
    for given, key in [
        (f"http://{registry_anon.host}/v2/", registry_anon.host),
        (f"{registry_anon.host}/team", f"{registry_anon.host}/team"),
    ]:
        result = run_cli("login", "--tls-verify=false", "-u", "u", "--password-stdin", given, stdin=b"pw\n")
        assert (result.returncode, result.out) == (0, "Login Succeeded!\n"), result.stderr
        assert key in json.loads(_auth_path().read_text())["auths"]
