"""Authorization against real registries: Basic, bearer tokens per scope, renewal, 401 replays.

Request counts come from the registry's access log and the token service's records, so "no retry
loop" and "one token for many requests" are measured, not assumed.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

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
async def test_basic_wrong_password_is_refused_once(registry_basic: RegistryServer) -> None:
    repo = "client/basic-wrong"
    _push(registry_basic, repo)
    registry_basic.reset_log()
    async with RegistrySession() as session:
        client = session.client(registry_basic.host, options_for(registry_basic, password="wrong"))
        with pytest.raises(AuthenticationError) as info:
            await get_manifest(client, repo, "v1")
    assert "unauthorized: " in str(info.value)  # skopeo's words: the code, lower case
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
    assert "unauthorized: " in str(info.value)  # skopeo's words: the code, lower case
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


def _auth_entry(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.anyio
async def test_stored_credentials_are_chosen_per_repository(
    registry_basic: RegistryServer, tmp_path: Path
) -> None:
    """containers-auth.json(5): of ``host/ns/repo``, ``host/ns`` and ``host``, the most specific key
    matching the repository wins - for each repository, not once for the whole host."""
    user, password = registry_basic.username, registry_basic.password
    assert user and password
    right, wrong = "per-repo/team-a/app", "per-repo/team-b/app"
    _push(registry_basic, right)
    _push(registry_basic, wrong)
    authfile = tmp_path / "auth.json"
    auths = {
        f"{registry_basic.host}/per-repo/team-a": _auth_entry(user, password),
        registry_basic.host: _auth_entry(user, "wrong-password"),
    }
    authfile.write_text(json.dumps({"auths": auths}))
    options = RegistryOptions(tls_verify=False, authfile=str(authfile))
    for order in ((right, wrong), (wrong, right)):
        async with RegistrySession() as session:
            client = session.client(registry_basic.host, options)
            for repo in order:
                if repo == right:
                    assert (await get_manifest(client, repo, "v1")).raw
                else:
                    with pytest.raises(AuthenticationError):
                        await get_manifest(client, repo, "v1")


@pytest.mark.anyio
async def test_token_scopes_are_asked_with_each_repositorys_credentials(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    """Two accounts, each allowed one repository by the token service; auth.json names each account
    for its repository. Both repositories are readable through one client, each token asked for by
    the account stored for that repository."""
    server = make_registry("token", users={"bob": "bob-secret"}, anonymous_actions=())
    service = server.token_service
    assert service is not None and server.username and server.password
    repo_of = {server.username: "per-user/alice/app", "bob": "per-user/bob/app"}
    for repo in repo_of.values():
        _push(server, repo)

    def policy(user: str | None, scope: Scope) -> tuple[str, ...]:
        return scope.actions if user is not None and repo_of.get(user) == scope.name else ()

    service.policy = policy
    authfile = tmp_path / "auth.json"
    auths = {
        f"{server.host}/{repo_of[server.username]}": _auth_entry(server.username, server.password),
        f"{server.host}/{repo_of['bob']}": _auth_entry("bob", "bob-secret"),
    }
    authfile.write_text(json.dumps({"auths": auths}))
    service.reset()
    async with RegistrySession() as session:
        client = session.client(server.host, RegistryOptions(tls_verify=False, authfile=str(authfile)))
        for repo in repo_of.values():
            assert (await get_manifest(client, repo, "v1")).raw
    asked = sorted((r.user, r.scopes) for r in service.requests if r.status == 200)
    assert asked == sorted((user, (f"repository:{repo}:pull",)) for user, repo in repo_of.items())
