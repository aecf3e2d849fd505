"""Scheme and challenge learning against real registries: no ping for anonymous clients, one
learner for concurrent first requests, a ping first for clients with credentials.

Request counts come from the registry's access log and the token service's records.
"""

from __future__ import annotations

import anyio
import pytest

from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.registry.manifests import get_manifest, head_manifest
from tests.conftest import RegistryFactory
from tests.helpers.client_options import options_for
from tests.helpers.images import make_image, push_image_sync
from tests.helpers.registry import RegistryServer


def _push(server: RegistryServer, repo: str, tag: str = "v1", seed: str = "client") -> str:
    return push_image_sync(server, repo, tag, make_image(f"{seed}/{repo}", layers=1, layer_size=256))


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
