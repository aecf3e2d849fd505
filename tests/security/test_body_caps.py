"""Bodies are capped while they are read: manifests at 4 MiB, token and error bodies at 1 MiB.

A hostile or broken server here streams an endless body. A client that read first and checked the
size afterwards would never return (the test's deadline fails it); a capped client stops reading
at the limit and reports a one-line error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from aiohttp import web

from asyncsync.errors import AsyncSyncError, ManifestError, RegistryError, TransportError
from asyncsync.registry.manifests import get_manifest
from asyncsync.registry.tags import list_tags
from asyncsync.retry import RetryPolicy
from tests.helpers.clients import registry_client

PIECE = b"{" * (64 * 1024)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class EndlessServer:
    """A fake registry whose documents never end; ``sent`` counts the bytes it managed to write."""

    def __init__(self, *, token_auth: bool) -> None:
        self.token_auth = token_auth
        self.sent = 0
        self.port = 0

    async def _endless(self, request: web.Request, status: int, content_type: str) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers={"Content-Type": content_type})
        await response.prepare(request)
        try:
            while True:
                await response.write(PIECE)
                self.sent += len(PIECE)
        except (ConnectionError, RuntimeError):
            pass  # the client stopped reading and closed the connection: the point of the test
        return response

    async def ping(self, request: web.Request) -> web.Response:
        if not self.token_auth:
            return web.json_response({})
        realm = f"http://127.0.0.1:{self.port}/token"
        challenge = f'Bearer realm="{realm}",service="endless"'
        return web.json_response({}, status=401, headers={"WWW-Authenticate": challenge})

    async def manifest(self, request: web.Request) -> web.StreamResponse:
        if self.token_auth and "Authorization" not in request.headers:
            return await self.ping(request)  # the 401 with the challenge that leads to the token
        return await self._endless(request, 200, OCI_MANIFEST)

    async def error(self, request: web.Request) -> web.StreamResponse:
        return await self._endless(request, 500, "application/json")

    async def token(self, request: web.Request) -> web.StreamResponse:
        return await self._endless(request, 200, "application/json")

    @asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        app = web.Application()
        app.router.add_get("/v2/", self.ping)
        app.router.add_get("/v2/endless/manifests/huge", self.manifest)
        app.router.add_get("/v2/endless/manifests/broken", self.error)
        app.router.add_get("/v2/endless/tags/list", self.manifest)
        app.router.add_get("/token", self.token)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        try:
            yield f"127.0.0.1:{self.port}"
        finally:
            await runner.cleanup()


async def _failure(host: str, call: str, attempts: int = 1) -> AsyncSyncError:
    retry = RetryPolicy(attempts=attempts, base_delay=0.001)
    with anyio.fail_after(20):
        async with registry_client(host, retry=retry) as client:
            try:
                if call == "tags":
                    await list_tags(client, "endless")
                else:
                    await get_manifest(client, "endless", call)
            except AsyncSyncError as exc:
                return exc
    raise AssertionError("an endless body was accepted")


@pytest.mark.anyio
async def test_manifest_read_stops_at_four_mebibytes() -> None:
    server = EndlessServer(token_auth=False)
    async with server.running() as host:
        failure = await _failure(host, "huge")
    assert isinstance(failure, ManifestError)
    assert "larger than 4194304 bytes" in str(failure) and "\n" not in str(failure)


@pytest.mark.anyio
async def test_other_documents_are_capped_too() -> None:
    server = EndlessServer(token_auth=False)
    async with server.running() as host:
        failure = await _failure(host, "tags")
    assert isinstance(failure, TransportError) and not failure.temporary
    assert "larger than" in str(failure)


@pytest.mark.anyio
async def test_error_body_read_stops_at_one_mebibyte() -> None:
    server = EndlessServer(token_auth=False)
    async with server.running() as host:
        failure = await _failure(host, "broken", attempts=3)
    assert isinstance(failure, RegistryError) and failure.status == 500
    # Three attempts, each reading at most 1 MiB (plus what socket buffers absorbed).
    assert "HTTP 500" in str(failure)


@pytest.mark.anyio
async def test_token_body_read_stops_at_one_mebibyte() -> None:
    server = EndlessServer(token_auth=True)
    async with server.running() as host:
        failure = await _failure(host, "huge")
    assert isinstance(failure, TransportError) and not failure.temporary
    assert "token response larger than 1 MiB" in str(failure)
