"""The registry client against real registries: learning the challenge, Basic, bearer tokens, refresh.

Request counts come from the registry's access log and the token service's records, so "no retry
loop" and "one token for many requests" are measured, not assumed.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.request
from pathlib import Path
from typing import Any

import anyio
import pytest

from asyncsync.errors import AuthenticationError
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.registry.credentials import Credentials
from asyncsync.registry.manifests import get_manifest, head_manifest
from asyncsync.registry.tags import list_tags
from tests.conftest import RegistryFactory
from tests.helpers.client_options import options_for
from tests.helpers.images import make_image, push_image_sync
from tests.helpers.registry import RegistryServer
from tests.helpers.token_service import Scope


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
async def test_basic_wrong_password_is_refused_once(registry_basic: RegistryServer) -> None:
    repo = "client/basic-wrong"
    _push(registry_basic, repo)
    registry_basic.reset_log()
    async with RegistrySession() as session:
        client = session.client(registry_basic.host, options_for(registry_basic, password="wrong"))
        with pytest.raises(AuthenticationError) as info:
            await get_manifest(client, repo, "v1")
    assert "UNAUTHORIZED" in str(info.value)
    # The ping and one GET: neither a replay of the refused request nor retries.
    assert [(r.method, r.status) for r in registry_basic.requests()] == [("GET", 401), ("GET", 401)]


@pytest.mark.anyio
async def test_token_wrong_password_is_refused_once(registry_token: RegistryServer) -> None:
    assert registry_token.token_service is not None
    registry_token.reset_log()
    registry_token.token_service.reset()
    async with RegistrySession() as session:
        client = session.client(registry_token.host, options_for(registry_token, password="wrong"))
        with pytest.raises(AuthenticationError) as info:
            await get_manifest(client, "client/token-wrong", "v1")
    assert "authentication failed (check username and password)" in str(info.value)
    assert "UNAUTHORIZED" in str(info.value)
    assert [r.status for r in registry_token.token_service.requests] == [401]
    assert registry_token.count(None, r".*") == 1  # the ping only


@pytest.mark.anyio
async def test_token_is_cached_per_scope(registry_token: RegistryServer) -> None:
    assert registry_token.token_service is not None
    repo = "client/token-cache"
    _push(registry_token, repo)
    registry_token.token_service.reset()
    async with RegistrySession() as session:
        client = session.client(registry_token.host, options_for(registry_token))
        await get_manifest(client, repo, "v1")
        await head_manifest(client, repo, "v1")
        await list_tags(client, repo)
    requests = registry_token.token_service.requests
    assert len(requests) == 1
    assert requests[0].user == registry_token.username
    assert requests[0].scopes == (f"repository:{repo}:pull",)


@pytest.mark.anyio
async def test_token_refreshed_before_it_expires(make_registry: RegistryFactory) -> None:
    server = make_registry("token", expires_in=2)
    assert server.token_service is not None
    repo = "client/short-lived"
    _push(server, repo)
    server.reset_log()
    async with RegistrySession() as session:
        client = session.client(server.host, options_for(server))
        await get_manifest(client, repo, "v1")
        await anyio.sleep(2.0)  # past 90% of the advertised 2 s lifetime
        await get_manifest(client, repo, "v1")
    assert len(server.token_service.requests) == 2
    # Renewed proactively: the registry never refused a token (the one 401 is the ping).
    assert server.count(None, r".*", status=401) == 1


@pytest.mark.anyio
async def test_token_refreshed_on_invalid_token(make_registry: RegistryFactory) -> None:
    server = make_registry("token")
    service = server.token_service
    assert service is not None
    repo = "client/invalid-token"
    _push(server, repo)
    calls: list[str | None] = []

    def policy(user: str | None, scope: Scope) -> tuple[str, ...]:
        # The first token is signed already expired (past the registry's 60 s leeway); later ones are good.
        calls.append(user)
        service.jwt_lifetime = -61 if len(calls) == 1 else None
        return scope.actions if user else ("pull",)

    service.policy = policy
    server.reset_log()
    async with RegistrySession() as session:
        client = session.client(server.host, options_for(server))
        fetched = await get_manifest(client, repo, "v1")
    assert fetched.raw
    assert len(service.requests) == 2
    manifest_requests = [(r.method, r.status) for r in server.requests() if "/manifests/" in r.path]
    assert manifest_requests == [("GET", 401), ("GET", 200)]


def _refresh_token(server: RegistryServer) -> str:
    assert server.token_service is not None and server.username and server.password
    basic = base64.b64encode(f"{server.username}:{server.password}".encode()).decode()
    request = urllib.request.Request(
        f"{server.token_service.realm}?service={server.token_service.service}&offline_token=true&client_id=t",
        headers={"Authorization": f"Basic {basic}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
    return str(body["refresh_token"])


@pytest.mark.anyio
async def test_identity_token_uses_the_refresh_token_grant(make_registry: RegistryFactory) -> None:
    server = make_registry("token", anonymous_actions=())
    service = server.token_service
    assert service is not None
    repo = "client/identity"
    _push(server, repo)
    refresh = _refresh_token(server)
    service.reset()
    async with RegistrySession() as session:
        options = RegistryOptions(tls_verify=False, credentials=Credentials(identity_token=refresh))
        fetched = await get_manifest(session.client(server.host, options), repo, "v1")
        assert fetched.raw
        anonymous = session.client(server.host, RegistryOptions(tls_verify=False, no_creds=True))
        with pytest.raises(AuthenticationError):
            await get_manifest(anonymous, repo, "v1")
    grant = service.requests[0]
    assert (grant.method, grant.grant_type, grant.user, grant.status) == (
        "POST",
        "refresh_token",
        server.username,
        200,
    )
    service.revoke_refresh_tokens()
    async with RegistrySession() as session:
        options = RegistryOptions(tls_verify=False, credentials=Credentials(identity_token=refresh))
        with pytest.raises(AuthenticationError, match="authentication failed"):
            await get_manifest(session.client(server.host, options), repo, "v1")


@pytest.mark.anyio
async def test_registry_token_is_sent_as_is(registry_token: RegistryServer) -> None:
    service = registry_token.token_service
    assert service is not None
    repo = "client/given-token"
    digest = _push(registry_token, repo)
    token = service.issue_token(registry_token.username, [f"repository:{repo}:pull"])
    service.reset()
    async with RegistrySession() as session:
        options = RegistryOptions(tls_verify=False, registry_token=token)
        fetched = await get_manifest(session.client(registry_token.host, options), repo, "v1")
    assert str(fetched.digest) == digest
    assert service.requests == []


@pytest.mark.anyio
async def test_no_creds_sends_nothing(registry_basic: RegistryServer) -> None:
    repo = "client/no-creds"
    _push(registry_basic, repo)
    async with RegistrySession() as session:
        options = RegistryOptions(tls_verify=False, no_creds=True, credentials=Credentials("x", "y"))
        with pytest.raises(AuthenticationError):
            await get_manifest(session.client(registry_basic.host, options), repo, "v1")


@pytest.mark.anyio
async def test_clients_are_shared_per_registry_and_options(registry_anon: RegistryServer) -> None:
    async with RegistrySession() as session:
        options = RegistryOptions(tls_verify=False)
        assert session.client(registry_anon.host, options) is session.client(registry_anon.host, options)
        assert session.client(registry_anon.host, options) is not session.client(registry_anon.host)


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
async def test_anonymous_client_sends_no_ping(registry_anon: RegistryServer) -> None:
    repo = "client/no-ping"
    _push(registry_anon, repo)
    registry_anon.reset_log()
    async with RegistrySession() as session:
        client = session.client(registry_anon.host, RegistryOptions(tls_verify=False, no_creds=True))
        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(head_manifest, client, repo, "v1")
    assert registry_anon.count(None, r"/v2/") == 0
    assert registry_anon.count("HEAD", rf"/v2/{repo}/manifests/v1", status=200) == 8
    assert len(registry_anon.requests()) == 8


@pytest.mark.anyio
async def test_concurrent_anonymous_requests_learn_the_challenge_once(make_registry: RegistryFactory) -> None:
    server = make_registry("token")  # anonymous pull allowed, with a token
    service = server.token_service
    assert service is not None
    repo = "client/learn-once"
    _push(server, repo)
    server.reset_log()
    tokens_before = len(service.requests)
    async with RegistrySession() as session:
        client = session.client(server.host, RegistryOptions(tls_verify=False, no_creds=True))
        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(get_manifest, client, repo, "v1")
    # The first request goes alone and learns the challenge from its 401; the other nine wait for
    # it and then carry the token it fetched: one 401, one token, no ping.
    statuses = [r.status for r in server.requests() if "/manifests/" in r.path]
    assert sorted(statuses) == [200] * 10 + [401]
    assert len(service.requests) - tokens_before == 1
    assert server.count(None, r"/v2/") == 0


@pytest.mark.anyio
async def test_client_with_credentials_learns_the_challenge_from_a_ping(
    registry_basic: RegistryServer,
) -> None:
    repo = "client/creds-ping"
    _push(registry_basic, repo)
    registry_basic.reset_log()
    async with RegistrySession() as session:
        client = session.client(registry_basic.host, options_for(registry_basic))
        await get_manifest(client, repo, "v1")
    # A registry may hide private repositories from anonymous requests (404): with credentials the
    # challenge is learned first, at the price the request's own 401 would have cost.
    assert [(r.method, r.path, r.status) for r in registry_basic.requests()] == [
        ("GET", "/v2/", 401),
        ("GET", f"/v2/{repo}/manifests/v1", 200),
    ]
