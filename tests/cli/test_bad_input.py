"""Bad input end to end (real subprocesses): one-line errors, right exit codes, no tracebacks, no secrets.

The oversized-manifest and garbage-JSON cases use :class:`~tests.helpers.fake_registry.FakeRegistry`, a
tiny aiohttp server, because a real distribution registry refuses to store a manifest over 4 MiB and
never answers malformed JSON.
"""

from __future__ import annotations

import base64
import json
import secrets

import pytest

from tests.conftest import RegistryFactory
from tests.helpers.asyncsync_cli import CliResult, run_cli
from tests.helpers.fake_registry import Canned, FakeRegistry
from tests.helpers.images import digest_of, make_image, push_image_sync
from tests.helpers.registry import Flavour, RegistryServer

V2S2 = "application/vnd.docker.distribution.manifest.v2+json"


def _one_line_error(result: CliResult, code: int) -> str:
    assert result.returncode == code, result.all_output
    assert result.stdout == b""
    assert result.stderr.startswith("Error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("docker://h.example/Repo:v1", "must be lowercase"),
        ("docker://h.example/repo:bad tag", "invalid tag 'bad tag'"),
        ("docker://h.example/repo@sha256:1234", "invalid digest 'sha256:1234'"),
        ("docker://h.example:70000/repo", "invalid port '70000'"),
        ("docker://", "empty image reference"),
        ("docker:h.example/repo", "must start with docker://"),
        ("h.example/repo:v1", "unknown transport 'h.example/repo'"),
        ("nosuch://h.example/repo", "unknown transport 'nosuch'"),
        ("no-colon-at-all", "expected TRANSPORT:NAME"),
    ],
)
def test_malformed_names_exit_2(name: str, message: str) -> None:
    assert message in _one_line_error(run_cli("inspect", name), 2)


def test_not_found_exit_1(registry_anon: RegistryServer) -> None:
    push_image_sync(registry_anon, "bad/exists", "v1", make_image("bad-exists", layers=1))
    missing_tag = f"docker://{registry_anon.host}/bad/exists:nope"
    missing_repo = f"docker://{registry_anon.host}/bad/never:v1"
    assert _one_line_error(run_cli("inspect", "--tls-verify=false", missing_tag), 1) == (
        f"Error: image {missing_tag} not found: manifest unknown: manifest unknown (HTTP 404)\n"
    )
    assert "not found" in _one_line_error(run_cli("inspect", "--tls-verify=false", missing_repo), 1)
    listing = run_cli("list-tags", "--tls-verify=false", f"docker://{registry_anon.host}/bad/never")
    assert (
        "repository" in _one_line_error(listing, 1)
        and "not found: name unknown: repository name not known to registry (HTTP 404)" in listing.stderr
    )


def test_wrong_password_basic_is_refused_without_retries(registry_basic: RegistryServer) -> None:
    push_image_sync(registry_basic, "bad/basic", "v1", make_image("bad-basic", layers=1))
    registry_basic.reset_log()
    result = run_cli(
        "inspect",
        "--tls-verify=false",
        "--creds",
        "alice:wrong",
        f"docker://{registry_basic.host}/bad/basic:v1",
    )
    assert "unauthorized" in _one_line_error(result, 1).lower()
    assert [(r.method, r.status) for r in registry_basic.requests()] == [("GET", 401), ("GET", 401)]


def test_wrong_password_token_is_refused_without_retries(registry_token: RegistryServer) -> None:
    service = registry_token.token_service
    assert service is not None
    push_image_sync(registry_token, "bad/token", "v1", make_image("bad-token", layers=1))
    registry_token.reset_log()
    service.reset()
    result = run_cli(
        "inspect",
        "--tls-verify=false",
        "--creds",
        "alice:wrong",
        f"docker://{registry_token.host}/bad/token:v1",
    )
    assert "unauthorized" in _one_line_error(result, 1).lower()
    assert [r.status for r in service.requests] == [401]
    assert registry_token.count(None, r".*") == 1  # the ping


def test_tls_failure_says_how_to_skip_verification(registry_tls: RegistryServer) -> None:
    result = run_cli("list-tags", f"docker://{registry_tls.host}/bad/tls")
    message = _one_line_error(result, 1)
    assert "certificate verify failed" in message
    assert "--tls-verify=false" in message


def test_oversized_manifest_is_refused() -> None:
    with FakeRegistry() as fake:
        big = b'{"schemaVersion": 2, "pad": "' + b"x" * (4 * 1024 * 1024) + b'"}'
        fake.route("GET", "/v2/bad/big/manifests/v1", Canned(200, big, {"Content-Type": V2S2}))
        result = run_cli("inspect", "--tls-verify=false", f"docker://{fake.host}/bad/big:v1")
    assert "manifest is larger than 4194304 bytes" in _one_line_error(result, 1)


@pytest.mark.parametrize(
    ("command", "path", "message"),
    [
        ("inspect", "/v2/bad/garbage/manifests/v1", "manifest is not valid JSON"),
        ("list-tags", "/v2/bad/garbage/tags/list", "registry answered invalid JSON"),
    ],
)
def test_garbage_json(command: str, path: str, message: str) -> None:
    with FakeRegistry() as fake:
        fake.route("GET", path, Canned(200, b"<html>502 Bad Gateway</html>", {"Content-Type": V2S2}))
        name = "bad/garbage:v1" if command == "inspect" else "bad/garbage"
        result = run_cli(command, "--tls-verify=false", f"docker://{fake.host}/{name}")
    assert message in _one_line_error(result, 1)


def test_garbage_config_blob() -> None:
    image = make_image("bad-config", layers=1)
    garbage = b"{definitely not json"
    manifest = json.loads(image.manifest)
    manifest["config"].update(digest=digest_of(garbage), size=len(garbage))
    raw = json.dumps(manifest).encode()
    with FakeRegistry() as fake:
        fake.route("GET", "/v2/bad/config/manifests/v1", Canned(200, image.manifest, {"Content-Type": V2S2}))
        fake.route("GET", f"/v2/bad/config/blobs/{image.config_digest}", Canned(200, garbage))
        fake.route("GET", "/v2/bad/config/manifests/v2", Canned(200, raw, {"Content-Type": V2S2}))
        fake.route("GET", f"/v2/bad/config/blobs/{digest_of(garbage)}", Canned(200, garbage))
        wrong_bytes = run_cli("inspect", "--tls-verify=false", f"docker://{fake.host}/bad/config:v1")
        bad_json = run_cli("inspect", "--tls-verify=false", f"docker://{fake.host}/bad/config:v2")
    # Verified before it is parsed: bytes that are not the config's are refused as such.
    assert "does not match the expected" in _one_line_error(wrong_bytes, 1)
    assert (
        _one_line_error(bad_json, 1)
        == f"Error: docker://{fake.host}/bad/config:v2: image config is not valid JSON\n"
    )


def test_debug_shows_a_traceback(registry_anon: RegistryServer) -> None:
    result = run_cli(
        "--debug", "inspect", "--tls-verify=false", f"docker://{registry_anon.host}/bad/never:v1"
    )
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "NotFoundError" in result.stderr


def _secret_forms(password: str, user: str) -> list[str]:
    pair = f"{user}:{password}".encode()
    return [password, base64.b64encode(pair).decode(), base64.b64encode(password.encode()).decode()]


@pytest.mark.parametrize("flavour", ["basic", "token"])
def test_marker_password_never_printed(flavour: Flavour, make_registry: RegistryFactory) -> None:
    marker = f"MarkerPw-{secrets.token_hex(6)}"
    server = make_registry(flavour, password=marker)
    assert server.username
    push_image_sync(server, "bad/secret", "v1", make_image(f"secret-{flavour}", layers=1))
    push_image_sync(server, "bad/secret", "gone", make_image(f"secret-gone-{flavour}", layers=1))
    ref = f"docker://{server.host}/bad/secret"
    wrong = f"{marker}-wrong"
    runs = [
        run_cli("--debug", "inspect", "--tls-verify=false", "--creds", f"alice:{marker}", f"{ref}:v1"),
        run_cli("--debug", "inspect", "--tls-verify=false", "--creds", f"alice:{wrong}", f"{ref}:v1"),
        run_cli(
            "--debug",
            "inspect",
            "--tls-verify=false",
            "--username",
            "alice",
            "--password",
            wrong,
            f"{ref}:v1",
        ),
        run_cli("--debug", "list-tags", "--tls-verify=false", "--creds", f"alice:{marker}", ref),
        run_cli("--debug", "login", "--tls-verify=false", "-u", "alice", "-p", wrong, server.host),
        run_cli(
            "--debug",
            "login",
            "--tls-verify=false",
            "-u",
            "alice",
            "--password-stdin",
            server.host,
            stdin=marker.encode(),
        ),
        run_cli("--debug", "inspect", "--tls-verify=false", f"{ref}:v1"),  # from the auth file just written
        run_cli("--debug", "delete", "--tls-verify=false", f"{ref}:gone"),
        run_cli("--debug", "inspect", "--tls-verify=false", "--creds", f"alice:{marker}", f"{ref}:absent"),
    ]
    expected_codes = [0, 1, 1, 0, 1, 0, 0, 0, 1]
    assert [r.returncode for r in runs] == expected_codes, [r.stderr[-300:] for r in runs]
    assert any("Traceback" in r.stderr for r in runs)  # --debug really was verbose
    for result in runs:
        for form in _secret_forms(marker, "alice") + _secret_forms(wrong, "alice"):
            assert form not in result.all_output
