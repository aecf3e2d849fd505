"""The registry client against real registries: every auth flavour end to end, clients per options.

Learning the challenge is tested in test_endpoint.py, authorization in test_authorizer.py and the
token service in test_tokens.py.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from urllib.parse import urljoin

import pytest

from asyncsync.registry.auth import may_send_basic_to
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.registry.manifests import get_manifest, head_manifest
from asyncsync.registry.tags import list_tags
from asyncsync.retry import RetryPolicy
from tests.helpers.client_options import options_for
from tests.helpers.fault_proxy import Fault, FaultProxy
from tests.helpers.images import make_image, push_image_sync
from tests.helpers.registry import RegistryServer


def _push(server: RegistryServer, repo: str, tag: str = "v1", seed: str = "client") -> str:
    return push_image_sync(server, repo, tag, make_image(f"{seed}/{repo}", layers=1, layer_size=256))


@pytest.mark.anyio
async def test_every_flavour_serves_manifests_and_tags(any_registry: RegistryServer) -> None:
    repo = f"client/every-{any_registry.flavour}"
    digest = _push(any_registry, repo)
    async with RegistrySession() as session:
        client = session.client(any_registry.host, options_for(any_registry))
        fetched = await get_manifest(client, repo, "v1")
        head = await head_manifest(client, repo, "v1")
        assert await head_manifest(client, repo, "absent") is None
        assert await list_tags(client, repo) == ["v1"]
    assert str(fetched.digest) == digest
    assert head is not None and str(head.digest) == digest and head.size == len(fetched.raw)
    assert await client.base_url() == any_registry.url


@pytest.mark.anyio
async def test_clients_are_shared_per_registry_and_options(registry_anon: RegistryServer) -> None:
    async with RegistrySession() as session:
        options = RegistryOptions(tls_verify=False)
        assert session.client(registry_anon.host, options) is session.client(registry_anon.host, options)
        assert session.client(registry_anon.host, options) is not session.client(registry_anon.host)


@pytest.mark.anyio
async def test_request_urls_are_the_registry_base_joined_with_the_path(registry_anon: RegistryServer) -> None:
    # Paths are appended to the base without urljoin's parsing when that gives the same URL;
    # dot segments, a network-path reference and absolute URLs still go through urljoin.
    async with RegistrySession() as session:
        client = session.client(registry_anon.host, options_for(registry_anon))
        base = await client.base_url()
        for path in (
            "/v2/",
            "/v2/proj/app/manifests/v1",
            "/v2/proj/app/blobs/uploads/?mount=sha256:ab&from=proj/base",
            "/v2/proj/../other/tags/list?n=10",
            "/v2/proj/./app/manifests/v1",
            "//elsewhere:5000/v2/",
            "http://elsewhere:5000/v2/x?_state=y",
        ):
            assert await client.url(path) == urljoin(base, path), path
        assert await client.url("/v2/proj/../other/tags/list") == f"{base}/v2/other/tags/list"


@pytest.mark.anyio
async def test_credential_helper_credentials_reach_the_registry(
    registry_basic: RegistryServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: auth file -> credHelpers -> docker-credential-<name> (server on stdin) -> Basic auth."""
    repo = "client/helper"
    digest = _push(registry_basic, repo)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-fixture"
    helper.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"assert sys.argv[1:] == ['get'] and sys.stdin.read() == {registry_basic.host!r}\n"
        f"print(json.dumps({{'Username': {registry_basic.username!r}, "
        f"'Secret': {registry_basic.password!r}}}))\n"
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    authfile = tmp_path / "auth.json"
    authfile.write_text(json.dumps({"credHelpers": {registry_basic.host: "fixture"}}))
    async with RegistrySession() as session:
        options = RegistryOptions(tls_verify=False, authfile=str(authfile))
        fetched = await get_manifest(session.client(registry_basic.host, options), repo, "v1")
    assert str(fetched.digest) == digest


@pytest.mark.anyio
@pytest.mark.parametrize(
    "key", ["docker.io", "https://index.docker.io/v1/", "registry-1.docker.io", "index.docker.io"]
)
async def test_docker_hub_credentials_go_to_registry_1_and_its_token_service(
    tmp_path: Path, key: str
) -> None:
    """Authenticated pulls raise Docker Hub's quota: whichever key the auth file uses for the Hub,
    the client for ``docker.io`` talks to ``registry-1.docker.io`` with those credentials, and
    they may go to its token service (``https://auth.docker.io``)."""
    authfile = tmp_path / "auth.json"
    secret = base64.b64encode(b"hubuser:hubpass").decode()
    authfile.write_text(json.dumps({"auths": {key: {"auth": secret}}}))
    async with RegistrySession() as session:
        client = session.client("docker.io", RegistryOptions(authfile=str(authfile)))
        assert client.host == "registry-1.docker.io"
        creds = await client.credentials("library/alpine")
    assert creds is not None and (creds.username, creds.password) == ("hubuser", "hubpass")
    assert may_send_basic_to("https://auth.docker.io/token", "https://registry-1.docker.io")


@pytest.mark.anyio
async def test_a_short_429_on_a_manifest_is_retried_not_taken_for_a_spent_quota(
    registry_anon: RegistryServer,
) -> None:
    """A 429 with a 1 s Retry-After and no ratelimit headers (a registry's rate limiter, from the
    fault proxy) is an ordinary temporary error: retried, and the host's pulls go on."""
    digest = _push(registry_anon, "client/short-429")
    with FaultProxy(registry_anon.host) as proxy:
        proxy.add_rule(Fault.too_many_requests("seconds", delay=1), method="GET", path=r"/v2/.+/manifests/.+")
        async with RegistrySession(retry=RetryPolicy(attempts=3, base_delay=0.01)) as session:
            client = session.client(proxy.address, RegistryOptions(tls_verify=False))
            fetched = await get_manifest(client, "client/short-429", "v1")
            assert str(fetched.digest) == digest
            assert session.quotas.deferred_hosts() == {}
        assert proxy.count("GET", r"/v2/.+/manifests/.+", status=429) == 1
