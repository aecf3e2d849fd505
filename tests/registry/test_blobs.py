"""Blob requests: HEAD, ranged GET, mounts, monolithic and chunked uploads, cancel."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from asyncsync.digest import Digest, verified_chunks
from asyncsync.errors import AsyncSyncError, DigestMismatchError, RegistryError
from asyncsync.registry.blobs import READ_CHUNK, head_blob, mount_blob, open_blob, pumped, start_upload
from asyncsync.registry.client import RegistryClient, RegistryOptions, RegistrySession
from asyncsync.retry import RetryPolicy
from tests.copy.support import registry_options
from tests.helpers.fault_proxy import Fault, FaultProxy
from tests.helpers.images import blob_exists, make_layer, push_blob
from tests.helpers.registry import RegistryServer

pytestmark = pytest.mark.anyio


async def _chunks(data: bytes, size: int = 10_000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@asynccontextmanager
async def _client(server: RegistryServer | str) -> AsyncIterator[RegistryClient]:
    async with RegistrySession(retry=RetryPolicy(attempts=2, base_delay=0.01)) as session:
        if isinstance(server, str):
            yield session.client(server, RegistryOptions(tls_verify=False))
        else:
            yield session.client(server.host, registry_options(server))


async def test_head_blob_size_or_none(registry_basic: RegistryServer) -> None:
    data = make_layer("head", 3000)
    await push_blob(registry_basic, "blobs/head", data)
    async with _client(registry_basic) as client:
        assert await head_blob(client, "blobs/head", Digest.of(data)) == len(data)
        assert await head_blob(client, "blobs/head", Digest.of(b"absent")) is None


async def test_open_blob_with_offset_is_ranged(registry_anon: RegistryServer) -> None:
    data = make_layer("range", 50_000)
    await push_blob(registry_anon, "blobs/range", data)
    async with _client(registry_anon) as client:
        async with open_blob(client, "blobs/range", Digest.of(data), 1234) as stream:
            body = b"".join([chunk async for chunk in stream.chunks])
        assert stream.ranged and stream.offset == 1234
        assert body == data[1234:]
        async with open_blob(client, "blobs/range", Digest.of(data)) as stream:
            body = b"".join([chunk async for chunk in stream.chunks])
        assert not stream.ranged and body == data


async def test_a_blob_in_chunked_transfer_encoding_arrives_whole_in_non_empty_pieces() -> None:
    """Scripted (a raw server): distribution always answers a blob GET with a ``Content-Length``,
    but a proxy in front of a registry may re-encode it in HTTP chunks. When a chunk's closing
    CRLF arrives after its data has been read, aiohttp reports the chunk's end as an empty
    piece: it must neither end the body early nor reach the copy as an empty chunk."""
    data = make_layer("chunked-encoding", 300_000)
    digest = Digest.of(data)
    parts = (data[:1], data[1:70_000], data[70_000:])

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if await reader.read(4) != b"GET ":  # the client tries TLS first: refuse it at once
            writer.close()
            return
        while not (await reader.readuntil(b"\r\n\r\n")).startswith(b"/v2/r/blobs/"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            await reader.readexactly(4)  # the next request's "GET "
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for part in parts:
            writer.write(b"%x\r\n" % len(part) + part)
            await writer.drain()
            await asyncio.sleep(0.05)  # the client reads the data before the chunk's CRLF
            writer.write(b"\r\n")
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with _client(f"127.0.0.1:{port}") as client, open_blob(client, "r", digest) as stream:
            pieces = [piece async for piece in stream.chunks]
    finally:
        server.close()
    assert b"".join(pieces) == data
    assert all(0 < len(piece) <= READ_CHUNK for piece in pieces)


async def test_mount_201_and_refused_202_with_usable_session(registry_anon: RegistryServer) -> None:
    data = make_layer("mount", 2000)
    digest = Digest.of(data)
    await push_blob(registry_anon, "blobs/mount-src", data)
    async with _client(registry_anon) as client:
        mounted = await mount_blob(client, "blobs/mount-dst", digest, "blobs/mount-src")
        assert mounted.mounted and mounted.session is None
        refused = await mount_blob(client, "blobs/mount-other", digest, "blobs/does-not-have-it")
        assert not refused.mounted and refused.session is not None
        # The refused mount's session carries an upload.
        async with pumped(verified_chunks(_chunks(data), digest, len(data))) as body:
            await refused.session.put_monolithic(digest, len(data), body)
    assert await blob_exists(registry_anon, "blobs/mount-dst", str(digest))
    assert await blob_exists(registry_anon, "blobs/mount-other", str(digest))
    assert "_state" not in repr(refused.session)


async def test_chunked_upload_sends_each_range_and_cancel_deletes(registry_anon: RegistryServer) -> None:
    data = make_layer("chunks", 100_000)
    digest = Digest.of(data)
    registry_anon.reset_log()
    async with _client(registry_anon) as client:
        session = await start_upload(client, "blobs/chunked")
        async with pumped(verified_chunks(_chunks(data, 7000), digest, len(data))) as body:
            await session.put_chunked(digest, len(data), body, 40_000)
        abandoned = await start_upload(client, "blobs/chunked")
        await abandoned.cancel()
    assert registry_anon.count("PATCH", r"/v2/blobs/chunked/blobs/uploads/.*", status=202) == 3
    assert registry_anon.count("PUT", r"/v2/blobs/chunked/blobs/uploads/.*", status=201) == 1
    assert registry_anon.count("DELETE", r"/v2/blobs/chunked/blobs/uploads/.*", status=204) == 1
    assert await blob_exists(registry_anon, "blobs/chunked", str(digest))


@pytest.mark.parametrize("body", ["bytes", "stream"])
async def test_an_upload_put_whose_connection_resets_is_not_resent_into_its_session(
    registry_anon: RegistryServer, body: str
) -> None:
    # aiohttp on its own resends a PUT whose connection broke; the registry has kept what arrived,
    # so the resend meets a session at another offset (404 BLOB_UPLOAD_INVALID). The failure must
    # reach the caller as a temporary error instead, to restart the blob in a new session.
    data = make_layer(f"reset-put-{body}", 48_000)
    digest = Digest.of(data)
    with FaultProxy(registry_anon.host, seed=3) as proxy:
        proxy.add_rule(Fault.reset_request(), method="PUT", path=r"/v2/.+/blobs/uploads/.*")
        async with _client(proxy.address) as client:
            session = await start_upload(client, "blobs/reset-put")
            with pytest.raises(AsyncSyncError) as caught:
                if body == "bytes":
                    await session.put_bytes(digest, data)
                else:
                    async with pumped(verified_chunks(_chunks(data), digest, len(data))) as stream:
                        await session.put_monolithic(digest, len(data), stream)
            assert caught.value.temporary, caught.value
        assert proxy.count("PUT", r"/v2/.+/blobs/uploads/.*") == 1


async def test_stream_error_is_reported_not_the_broken_request(registry_anon: RegistryServer) -> None:
    data = make_layer("mismatch", 60_000)
    wrong = Digest.of(b"something else")
    async with _client(registry_anon) as client:
        session = await start_upload(client, "blobs/mismatch")
        with pytest.raises(DigestMismatchError):
            async with pumped(verified_chunks(_chunks(data), wrong, len(data))) as body:
                await session.put_monolithic(wrong, len(data), body)
        await session.cancel()
    assert not await blob_exists(registry_anon, "blobs/mismatch", str(wrong))


@dataclass
class _ScriptedUploads:
    """A scripted upload endpoint: relative ``Location`` values with a changing ``_state``, a
    minimum chunk length, and a check that every request goes to the latest Location. A real
    distribution 2.8 never sends ``OCI-Chunk-Min-Length`` and always answers absolute URLs."""

    min_chunk: int
    state: int = 0
    patches: list[tuple[str, int]] = field(default_factory=list)
    received: bytearray = field(default_factory=bytearray)
    final_digest: str | None = None
    stale: int = 0

    def _location(self) -> str:
        self.state += 1
        return f"/v2/up/blobs/uploads/abc?_state=s{self.state}"

    def _current(self, request: web.Request) -> bool:
        ok = request.query.get("_state") == f"s{self.state}"
        self.stale += 0 if ok else 1
        return ok

    async def post(self, _request: web.Request) -> web.Response:
        return web.Response(
            status=202, headers={"Location": self._location(), "OCI-Chunk-Min-Length": str(self.min_chunk)}
        )

    async def patch(self, request: web.Request) -> web.Response:
        if not self._current(request):
            return web.Response(status=404)
        body = await request.read()
        self.patches.append((request.headers["Content-Range"], len(body)))
        self.received.extend(body)
        return web.Response(status=202, headers={"Location": self._location()})

    async def put(self, request: web.Request) -> web.Response:
        if not self._current(request):
            return web.Response(status=404)
        self.received.extend(await request.read())
        self.final_digest = request.query.get("digest")
        return web.Response(status=201)


async def test_chunked_upload_follows_relative_locations_and_minimum_chunk() -> None:
    script = _ScriptedUploads(min_chunk=50_000)
    app = web.Application(client_max_size=1024 * 1024)

    async def ping(_request: web.Request) -> web.Response:
        return web.json_response({})

    app.router.add_get("/v2/", ping)
    app.router.add_post("/v2/up/blobs/uploads/", script.post)
    app.router.add_patch("/v2/up/blobs/uploads/abc", script.patch)
    app.router.add_put("/v2/up/blobs/uploads/abc", script.put)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    data = bytes(range(256)) * 500  # 128000 bytes
    digest = Digest("sha256", hashlib.sha256(data).hexdigest())
    try:
        async with _client(f"127.0.0.1:{sock.getsockname()[1]}") as client:
            session = await start_upload(client, "up")
            async with pumped(verified_chunks(_chunks(data), digest, len(data))) as body:
                # Asked for 10 kB chunks; the registry's minimum of 50 kB wins.
                await session.put_chunked(digest, len(data), body, 10_000)
    finally:
        await runner.cleanup()
    assert script.patches == [("0-49999", 50_000), ("50000-99999", 50_000), ("100000-127999", 28_000)]
    assert script.stale == 0
    assert bytes(script.received) == data
    assert script.final_digest == str(digest)


@pytest.mark.parametrize(("chunk_size", "patches"), [(None, 1), (40_000, 3)])
async def test_streamed_upload_learns_the_digest_at_the_end(
    registry_anon: RegistryServer, chunk_size: int | None, patches: int
) -> None:
    data = make_layer(f"streamed-{chunk_size}", 100_000)
    digest = Digest.of(data)
    asked: list[int] = []

    async def finished() -> Digest:
        asked.append(len(data))
        return digest

    registry_anon.reset_log()
    async with _client(registry_anon) as client:
        session = await start_upload(client, "blobs/streamed")
        async with pumped(_chunks(data, 7000)) as body:
            sent = await session.put_streamed(body, chunk_size, finished)
    assert sent == len(data) and asked == [len(data)]
    assert registry_anon.count("PATCH", r"/v2/blobs/streamed/blobs/uploads/.*", status=202) == patches
    assert registry_anon.count("PUT", r"/v2/blobs/streamed/blobs/uploads/.*", status=201) == 1
    assert await blob_exists(registry_anon, "blobs/streamed", str(digest))


async def test_a_streamed_upload_under_a_wrong_digest_is_refused_and_not_committed(
    registry_anon: RegistryServer,
) -> None:
    data = make_layer("streamed-wrong", 30_000)
    wrong = Digest.of(b"not these bytes")

    async def finished() -> Digest:
        return wrong

    async with _client(registry_anon) as client:
        session = await start_upload(client, "blobs/streamed-wrong")
        with pytest.raises(RegistryError) as caught:
            async with pumped(_chunks(data)) as body:
                await session.put_streamed(body, None, finished)
        await session.cancel()
    assert caught.value.status == 400
    assert not await blob_exists(registry_anon, "blobs/streamed-wrong", str(wrong))
    assert not await blob_exists(registry_anon, "blobs/streamed-wrong", str(Digest.of(data)))
