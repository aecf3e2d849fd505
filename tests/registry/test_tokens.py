"""Token service requests: the OAuth2 refresh-token grant for identity tokens, and its refusal."""

from __future__ import annotations

import base64
import json
import urllib.request
from typing import Any

import pytest

from asyncsync.errors import AuthenticationError
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.registry.credentials import Credentials
from asyncsync.registry.manifests import get_manifest
from tests.conftest import RegistryFactory
from tests.helpers.images import make_image, push_image_sync
from tests.helpers.registry import RegistryServer


def _push(server: RegistryServer, repo: str, tag: str = "v1", seed: str = "client") -> str:
    return push_image_sync(server, repo, tag, make_image(f"{seed}/{repo}", layers=1, layer_size=256))


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
