"""Proof that the test bed works: real registries, token service, seeded images, pushes, skopeo agreement."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.helpers.images import (
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Format,
    digest_of,
    get_manifest,
    list_tags_sync,
    make_image,
    make_index,
    make_layer,
    make_multiarch,
    push_image,
    push_image_sync,
    push_index_sync,
)
from tests.helpers.registry import RegistryFactory, RegistryServer
from tests.helpers.skopeo import SkopeoError, inspect, inspect_raw, skopeo


def _http(
    server: RegistryServer, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """Blocking GET against ``server``; returns (status, headers, body) for every status."""
    request = urllib.request.Request(server.url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, context=server.ssl_context(), timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def _token_get(
    server: RegistryServer, scopes: list[str], *, auth: tuple[str, str] | None = None, **params: str
) -> tuple[int, dict[str, Any]]:
    """GET the token service's realm; returns (status, JSON body)."""
    assert server.token_service is not None
    query = urllib.parse.urlencode(
        [("service", server.token_service.service), *(("scope", s) for s in scopes), *params.items()]
    )
    headers = {}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    request = urllib.request.Request(f"{server.token_service.realm}?{query}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def _token_post(server: RegistryServer, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """POST a form to the token service's realm; returns (status, JSON body)."""
    assert server.token_service is not None
    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(server.token_service.realm, data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def _access(token: str) -> list[dict[str, Any]]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    access: list[dict[str, Any]] = claims["access"]
    return access


def _repo(name: str, seed: int) -> str:
    return f"selfcheck/{name}-{seed % 10**8}"


# ------------------------------------------------------------------------------------------- registries


def test_each_flavour_answers_v2(any_registry: RegistryServer) -> None:
    server = any_registry
    assert server.running
    assert server.host.startswith("127.0.0.1:")
    assert server.url == f"{'https' if server.flavour == 'tls' else 'http'}://{server.host}"
    status, headers, _ = _http(server, "/v2/")
    if server.flavour in ("anon", "tls"):
        assert status == 200
        assert server.username is None
    elif server.flavour == "basic":
        assert status == 401
        assert headers["Www-Authenticate"].startswith("Basic ")
        auth = server.basic_auth_header()
        assert auth is not None
        assert _http(server, "/v2/", {"Authorization": auth})[0] == 200
    else:
        assert server.token_service is not None
        assert status == 401
        challenge = headers["Www-Authenticate"]
        assert challenge.startswith("Bearer ")
        assert f'realm="{server.token_service.realm}"' in challenge
        assert server.username is not None and server.password is not None
        code, body = _token_get(server, [], auth=(server.username, server.password))
        assert code == 200
        assert _http(server, "/v2/", {"Authorization": f"Bearer {body['token']}"})[0] == 200
    if server.flavour == "tls":
        assert server.ca_cert is not None and server.cert_dir is not None
        assert (server.cert_dir / "ca.crt").read_bytes() == server.ca_cert.read_bytes()


def test_push_docker_image_agrees_with_skopeo(any_registry: RegistryServer, rng_seed: int) -> None:
    server = any_registry
    repo = _repo("docker", rng_seed)
    image = make_image(rng_seed, layers=2)
    server.reset_log()
    assert push_image_sync(server, repo, "v1", image) == image.digest
    info = inspect(server, f"{repo}:v1")
    assert info["Digest"] == image.digest
    assert info["Layers"] == image.layer_digests
    assert info["Architecture"] == "amd64" and info["Os"] == "linux"
    assert info["Labels"] == {"org.asyncsync.test.seed": str(rng_seed)}
    assert inspect_raw(server, f"{repo}:v1") == image.manifest
    assert server.count("PUT", rf"/v2/{repo}/manifests/v1", status=201) == 1
    assert server.count("POST", rf"/v2/{repo}/blobs/uploads/") == 3
    assert server.count("PUT", rf"/v2/{repo}/blobs/uploads/.*", status=201) == 3
    assert server.count("GET", rf"/v2/{repo}/manifests/v1") >= 2  # skopeo's two inspects
    # A second push finds every blob by HEAD and uploads nothing.
    server.reset_log()
    assert server.requests() == []
    push_image_sync(server, repo, "v2", image)
    assert server.count("HEAD", rf"/v2/{repo}/blobs/sha256:[0-9a-f]{{64}}", status=200) == 3
    assert server.count("POST", r".*") == 0
    assert list_tags_sync(server, repo) == ["v1", "v2"]


def test_push_oci_image_agrees_with_skopeo(registry_anon: RegistryServer, rng_seed: int) -> None:
    repo = _repo("oci", rng_seed)
    image = make_image(rng_seed, fmt="oci", arch="arm64", variant="v8", layers=1)
    assert image.media_type == OCI_MANIFEST
    push_image_sync(registry_anon, repo, "oci", image)
    info = inspect(registry_anon, f"{repo}:oci")
    assert info["Digest"] == image.digest
    assert info["Architecture"] == "arm64"  # skopeo 1.9 does not report Variant; the config has it
    assert inspect(registry_anon, f"{repo}:oci", "--config")["variant"] == "v8"
    assert inspect_raw(registry_anon, f"{repo}@{image.digest}") == image.manifest


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_push_multiarch_index_agrees_with_skopeo(
    registry_anon: RegistryServer, rng_seed: int, fmt: Format
) -> None:
    repo = _repo(f"index-{fmt}", rng_seed)
    index = make_multiarch(rng_seed, fmt=fmt, layers=1)
    assert index.media_type == (DOCKER_MANIFEST_LIST if fmt == "docker" else OCI_INDEX)
    assert push_index_sync(registry_anon, repo, "multi", index) == index.digest
    assert inspect(registry_anon, f"{repo}:multi")["Digest"] == index.digest  # the list's own digest
    raw = inspect_raw(registry_anon, f"{repo}:multi")
    assert raw == index.manifest and digest_of(raw) == index.digest
    platforms = [entry["platform"] for entry in json.loads(raw)["manifests"]]
    assert platforms == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
    ]
    arm = inspect(registry_anon, f"{repo}:multi", "--override-arch=arm64", "--override-variant=v8")
    assert arm["Layers"] == index.images[1].layer_digests


def test_basic_and_token_flavours_with_skopeo_credentials(
    registry_basic: RegistryServer, registry_token: RegistryServer, rng_seed: int
) -> None:
    image = make_image(rng_seed, layers=1)
    for server in (registry_basic, registry_token):
        repo = _repo(server.flavour, rng_seed)
        push_image_sync(server, repo, "latest", image)
        assert inspect(server, f"{repo}:latest")["Digest"] == image.digest
    # skopeo fetched its token with Basic credentials from the token service.
    service = registry_token.token_service
    assert service is not None
    seen = [r for r in service.requests if r.scopes == (f"repository:{_repo('token', rng_seed)}:pull",)]
    assert seen and all(r.authorization and r.user == "alice" and r.status == 200 for r in seen)
    # Without credentials (and with no auth file in the isolated home) the basic registry refuses skopeo.
    reference = f"docker://{registry_basic.host}/{_repo('basic', rng_seed)}:latest"
    with pytest.raises(SkopeoError, match=r"unauthorized|authentication required"):
        skopeo("inspect", "--tls-verify=false", reference)


def test_tls_registry_with_cert_dir(make_registry: RegistryFactory, rng_seed: int) -> None:
    server = make_registry("basic", tls=True, password="s3cret")
    assert server.url.startswith("https://") and server.password == "s3cret"
    assert server.skopeo_flags("dest-") == [f"--dest-cert-dir={server.cert_dir}", "--dest-creds=alice:s3cret"]
    image = make_image(rng_seed, layers=1)
    push_image_sync(server, "tls/app", "1.0", image)
    assert inspect(server, "tls/app:1.0")["Digest"] == image.digest


# ------------------------------------------------------------------------------------------- tokens


def test_token_for_one_repo_is_refused_on_another(registry_token: RegistryServer, rng_seed: int) -> None:
    service = registry_token.token_service
    assert service is not None
    repo, other = _repo("scoped", rng_seed), _repo("other", rng_seed)
    image = make_image(rng_seed, layers=1)
    push_image_sync(registry_token, repo, "t", image)
    push_image_sync(registry_token, other, "t", image)
    token = service.issue_token("alice", [f"repository:{repo}:pull"])
    bearer = {"Authorization": f"Bearer {token}"}
    status, _, body = _http(registry_token, f"/v2/{repo}/tags/list", bearer)
    assert (status, json.loads(body)["tags"]) == (200, ["t"])
    status, headers, _ = _http(registry_token, f"/v2/{other}/tags/list", bearer)
    assert status == 401
    assert f'scope="repository:{other}:pull"' in headers["Www-Authenticate"]
    # Expired tokens (past the registry's 60 s clock-skew leeway) are refused as invalid.
    expired = service.issue_token("alice", [f"repository:{repo}:pull"], lifetime=-61)
    status, headers, _ = _http(
        registry_token, f"/v2/{repo}/tags/list", {"Authorization": f"Bearer {expired}"}
    )
    assert status == 401 and 'error="invalid_token"' in headers["Www-Authenticate"]


def test_token_service_get_protocol(registry_token: RegistryServer) -> None:
    service = registry_token.token_service
    assert service is not None and registry_token.password is not None
    service.reset()
    scope = "repository:proto/get:pull,push"
    status, body = _token_get(registry_token, [scope])
    assert status == 200 and body["token"] == body["access_token"] and body["expires_in"] == 300
    assert "issued_at" in body and "refresh_token" not in body
    assert _access(body["token"]) == [{"type": "repository", "name": "proto/get", "actions": ["pull"]}]
    status, body = _token_get(
        registry_token,
        [scope, "repository:proto/two:pull"],
        auth=("alice", registry_token.password),
        offline_token="true",
    )
    assert status == 200 and body["refresh_token"]
    assert [entry["actions"] for entry in _access(body["token"])] == [["pull", "push"], ["pull"]]
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["aud"] == service.service and claims["iss"] == service.issuer and claims["sub"] == "alice"
    assert claims["exp"] - claims["iat"] == 300 and claims["jti"]
    header = jwt.get_unverified_header(body["token"])
    assert header["alg"] == "ES256" and len(header["x5c"]) == 1
    assert _token_get(registry_token, [scope], auth=("alice", "wrong"))[0] == 401
    assert _token_get(registry_token, [scope], auth=("mallory", "x"))[0] == 401
    records = service.requests
    assert [(r.method, r.authorization, r.user, r.status) for r in records] == [
        ("GET", False, None, 200),
        ("GET", True, "alice", 200),
        ("GET", True, None, 401),
        ("GET", True, None, 401),
    ]
    assert records[1].scopes == (scope, "repository:proto/two:pull") and records[1].offline


def test_token_service_oauth2_post_protocol(registry_token: RegistryServer) -> None:
    service = registry_token.token_service
    assert service is not None and registry_token.password is not None
    scope = "repository:proto/post:pull,push"
    base = {"service": service.service, "client_id": "selfcheck", "scope": scope}
    password = {**base, "grant_type": "password", "username": "alice"}
    status, body = _token_post(
        registry_token, {**password, "password": registry_token.password, "access_type": "offline"}
    )
    assert status == 200 and "token" not in body and body["scope"] == scope
    refresh = {**base, "grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    status, body = _token_post(registry_token, refresh)
    assert status == 200 and "refresh_token" not in body
    assert _access(body["access_token"])[0]["actions"] == ["pull", "push"]
    assert _token_post(registry_token, {**refresh, "refresh_token": "nope"})[0] == 401
    assert _token_post(registry_token, {**password, "password": "wrong"})[0] == 401
    no_client = {key: value for key, value in refresh.items() if key != "client_id"}
    assert _token_post(registry_token, no_client)[0] == 400
    assert [r.grant_type for r in service.requests[-5:]] == [
        "password",
        "refresh_token",
        "refresh_token",
        "password",
        "refresh_token",
    ]


def test_token_policy_and_lifetime_on_a_fresh_registry(make_registry: RegistryFactory, rng_seed: int) -> None:
    server = make_registry("token", anonymous_actions=(), expires_in=7)
    service = server.token_service
    assert service is not None
    push_image_sync(server, "fresh/app", "x", make_image(rng_seed, layers=1))
    status, body = _token_get(server, ["repository:fresh/app:pull"])
    assert status == 200 and body["expires_in"] == 7 and _access(body["token"]) == []
    assert _http(server, "/v2/fresh/app/tags/list", {"Authorization": f"Bearer {body['token']}"})[0] == 401
    service.jwt_lifetime = -61
    assert server.password is not None
    status, body = _token_get(server, ["repository:fresh/app:pull"], auth=("alice", server.password))
    assert status == 200 and body["expires_in"] == 7
    assert _http(server, "/v2/fresh/app/tags/list", {"Authorization": f"Bearer {body['token']}"})[0] == 401


# ------------------------------------------------------------------------------------------- images


def test_images_are_deterministic_real_tar_gzip(rng_seed: int) -> None:
    first = make_image(rng_seed, layers=2, layer_size=1000, env=["A=1"], labels={"l": "v"})
    again = make_image(rng_seed, layers=2, layer_size=1000, env=["A=1"], labels={"l": "v"})
    other = make_image(rng_seed + 1, layers=2, layer_size=1000)
    assert (first.manifest, first.config, first.layers) == (again.manifest, again.config, again.layers)
    assert first.digest == digest_of(first.manifest) != other.digest
    assert set(first.layer_digests).isdisjoint(other.layer_digests)
    config = json.loads(first.config)
    assert config["config"]["Env"] == ["A=1"] and config["config"]["Labels"] == {"l": "v"}
    assert config["rootfs"] == {"type": "layers", "diff_ids": first.diff_ids}
    for layer, diff_id in zip(first.layers, first.diff_ids, strict=True):
        raw = gzip.decompress(layer)
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == diff_id
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            files = [m for m in tar.getmembers() if m.isfile()]
            assert [m.size for m in files] == [1000]
    manifest = json.loads(first.manifest)
    assert manifest["config"]["digest"] == first.config_digest
    assert list(first.blobs()) == [first.config_digest, *first.layer_digests]
    base = make_layer("base")
    a = make_image("a", shared_layers=[base], layers=1)
    b = make_image("b", shared_layers=[base], layers=1)
    assert a.layers[0] == b.layers[0] == base and a.layers[1] != b.layers[1]
    index = make_index([a, b], "oci")
    assert [m["digest"] for m in json.loads(index.manifest)["manifests"]] == [a.digest, b.digest]
    assert len(index.blobs()) == 5  # two configs, the shared layer, one own layer each


@pytest.mark.anyio
async def test_async_and_sync_pushes_inside_an_event_loop(
    registry_token: RegistryServer, rng_seed: int
) -> None:
    repo = _repo("async", rng_seed)
    image = make_image(rng_seed, layers=1)
    assert await push_image(registry_token, repo, "a", image) == image.digest
    assert push_image_sync(registry_token, repo, "b", image) == image.digest
    media_type, raw = await get_manifest(registry_token, repo, "b")
    assert (media_type, raw) == (image.media_type, image.manifest)


def test_isolated_home(isolated_home: Path) -> None:
    assert os.environ["HOME"] == str(isolated_home)
    for variable in ("XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "DOCKER_CONFIG"):
        assert os.environ[variable].startswith(str(isolated_home))
    assert "REGISTRY_AUTH_FILE" not in os.environ
