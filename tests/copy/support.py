"""Helpers for copy-engine tests: references, contexts and one-call copies against test registries.

These use the public engine API only (``copy_image`` with ``docker://`` references), so the
tests exercise the same path as the CLI.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from asyncsync.copy import BlobCoordinator, CopyEnvironment, CopyOptions, CopyResult, NullProgress, copy_image
from asyncsync.copy.progress import CopyProgress
from asyncsync.limits import BlobLimiter
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.registry.credentials import Credentials
from asyncsync.retry import RetryPolicy
from asyncsync.transports.base import SideOptions, TransportContext
from asyncsync.transports.docker.reference import DockerReference, parse_docker_reference
from tests.helpers.registry import RegistryServer

FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)


def registry_options(server: RegistryServer, *, anonymous: bool = False) -> RegistryOptions:
    """Options that reach ``server``: its CA for TLS, plain http otherwise, and its credentials."""
    creds = None
    if not anonymous and server.username is not None and server.password is not None:
        creds = Credentials(server.username, server.password)
    if server.cert_dir is not None:
        return RegistryOptions(tls_verify=True, cert_dir=str(server.cert_dir), credentials=creds)
    return RegistryOptions(tls_verify=False, credentials=creds)


def ref(server: RegistryServer | str, name: str) -> DockerReference:
    """``docker://HOST/name`` for a server (or a host string)."""
    host = server if isinstance(server, str) else server.host
    return parse_docker_reference(f"//{host}/{name}")


@dataclass
class Run:
    """One registry session and copy environment shared by the copies of a test."""

    session: RegistrySession
    env: CopyEnvironment
    retry: RetryPolicy = FAST_RETRY
    side: dict[str, SideOptions] = field(default_factory=dict)

    def context(self, options: RegistryOptions, **side: object) -> TransportContext:
        return TransportContext(
            session=self.session,
            options=SideOptions(registry=options, **side),  # type: ignore[arg-type]
            retry=self.retry,
            blob_limiter=self.env.blob_limiter,
        )

    async def copy(
        self,
        source: DockerReference,
        source_options: RegistryOptions,
        destination: DockerReference,
        destination_options: RegistryOptions,
        options: CopyOptions | None = None,
        **destination_side: object,
    ) -> CopyResult:
        src = await source.new_source(self.context(source_options))
        dst = await destination.new_destination(self.context(destination_options, **destination_side))
        try:
            return await copy_image(src, dst, options or CopyOptions(), self.env)
        finally:
            await dst.close()
            await src.close()


@asynccontextmanager
async def copy_run(
    *,
    blobs: int = 4,
    retry: RetryPolicy = FAST_RETRY,
    progress: CopyProgress | None = None,
    coordinator: BlobCoordinator | None = None,
) -> AsyncIterator[Run]:
    """A :class:`Run` with a fresh session, ``blobs`` in flight and a fast retry policy."""
    async with RegistrySession(retry=retry) as session:
        env = CopyEnvironment(
            blob_limiter=BlobLimiter(blobs),
            retry=retry,
            coordinator=coordinator or BlobCoordinator(),
            progress=progress or NullProgress(),
        )
        yield Run(session, env, retry)


@dataclass
class ScriptedSource:
    """An in-process, read-only registry serving fixed manifests and blobs, for faults a real
    registry cannot produce (it verifies and content-addresses what it stores):

    * ``lies`` maps a blob digest to the wrong bytes served for it;
    * ``break_after`` cuts the first GET of every blob after that many body bytes (the
      response promised the full ``Content-Length``);
    * ``Range`` is ignored: every blob GET answers 200 with the whole blob.

    ``gets`` records ``(digest, range header)`` for every blob GET.
    """

    manifests: dict[str, tuple[str, bytes]]
    blobs: dict[str, bytes]
    lies: dict[str, bytes] = field(default_factory=dict)
    break_after: int | None = None
    gets: list[tuple[str, str | None]] = field(default_factory=list)
    host: str = ""

    async def _manifest(self, request: web.Request) -> web.StreamResponse:
        entry = self.manifests.get(request.match_info["reference"])
        if entry is None:
            return web.json_response(
                {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}, status=404
            )
        media_type, raw = entry
        return web.Response(body=raw, headers={"Content-Type": media_type})

    async def _blob(self, request: web.Request) -> web.StreamResponse:
        digest = request.match_info["digest"]
        self.gets.append((digest, request.headers.get("Range")))
        data = self.lies.get(digest, self.blobs.get(digest))
        if data is None:
            return web.json_response(
                {"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown"}]}, status=404
            )
        response = web.StreamResponse(headers={"Content-Length": str(len(data))})
        await response.prepare(request)
        first = sum(1 for d, _ in self.gets if d == digest) == 1
        if self.break_after is not None and first:
            await response.write(data[: self.break_after])
            assert request.transport is not None
            request.transport.abort()
            return response
        await response.write(data)
        await response.write_eof()
        return response


@asynccontextmanager
async def serve_scripted(source: ScriptedSource) -> AsyncIterator[ScriptedSource]:
    """Run ``source`` on a free loopback port in the current event loop; sets ``source.host``."""
    app = web.Application()
    app.router.add_get("/v2/", _ok)
    app.router.add_route("*", "/v2/{repo:.+}/manifests/{reference}", source._manifest)
    app.router.add_route("*", "/v2/{repo:.+}/blobs/{digest}", source._blob)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    source.host = f"127.0.0.1:{sock.getsockname()[1]}"
    try:
        yield source
    finally:
        await runner.cleanup()


async def _ok(_request: web.Request) -> web.Response:
    return web.json_response({})
