"""The one place an HTTP failure becomes an asyncsync error: exceptions via mapped(), answers via
error_from_response().

Failures come from real sockets: a closed port, a server that drops the connection mid-body, one
that never answers in time, one that answers garbage or an oversized error body (a scripted server,
since a real registry does none of these on purpose).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from asyncsync.errors import NotFoundError, RegistryError, TransportError
from asyncsync.http.errors import MAX_ERROR_BODY, error_from_response, mapped, parse_retry_after, read_capped
from asyncsync.http.session import HttpSession

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def _server(path: str, handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}{path}"
    finally:
        await runner.cleanup()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.anyio
async def test_a_refused_connection_is_a_temporary_transport_error() -> None:
    port = _closed_port()
    async with HttpSession() as session:
        refused = f"pinging x: cannot connect to 127.0.0.1:{port}"
        with pytest.raises(TransportError, match=refused) as info, mapped("pinging x"):
            await session.send("GET", f"http://127.0.0.1:{port}/v2/", ssl=False, what="pinging x")
    assert info.value.temporary


@pytest.mark.anyio
async def test_a_body_cut_short_is_a_transport_error() -> None:
    async def truncated(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "1000"})
        await response.prepare(request)
        await response.write(b"x" * 10)
        assert request.transport is not None
        request.transport.close()
        return response

    async with _server("/blob", truncated) as url, HttpSession() as session:
        response = await session.send("GET", url, ssl=False, what="t")
        broke = "reading blob: connection broke while reading the body"
        with pytest.raises(TransportError, match=broke), mapped("reading blob"):
            await response.read()
        response.release()


@pytest.mark.anyio
async def test_a_silent_server_times_out() -> None:
    async def silent(_request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response()

    async with _server("/slow", silent) as url, HttpSession(read_timeout=0.2) as session:
        with pytest.raises(TransportError, match="waiting: timed out") as info, mapped("waiting"):
            await session.send("GET", url, ssl=False, what="waiting")
    assert info.value.temporary


@pytest.mark.anyio
async def test_errors_of_the_tree_pass_through_unchanged() -> None:
    original = NotFoundError(404, "MANIFEST_UNKNOWN", "manifest unknown", what="reading m")
    with pytest.raises(NotFoundError) as info, mapped("something else"):
        raise original
    assert info.value is original


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (
            404,
            json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}),
            {},
            "reading m: manifest unknown: manifest unknown (HTTP 404)",
        ),
        (503, "<html>busy</html>", {"Retry-After": "7"}, "reading m: service unavailable (HTTP 503)"),
        (500, "x" * (MAX_ERROR_BODY + 10), {}, "reading m: internal server error (HTTP 500)"),
    ],
)
async def test_error_answers_become_registry_errors(
    status: int, body: str, headers: dict[str, str], expected: str
) -> None:
    async def answer(_request: web.Request) -> web.Response:
        return web.Response(status=status, text=body, headers=headers)

    async with _server("/m", answer) as url, HttpSession() as session:
        response = await session.send("GET", url, ssl=False, what="reading m")
        err = await error_from_response(response, "reading m")
        response.release()
    assert isinstance(err, RegistryError) and str(err) == expected
    assert err.temporary == (status >= 500)
    assert err.retry_after == (7.0 if "Retry-After" in headers else None)


def test_retry_after_takes_seconds_or_a_date() -> None:
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@pytest.mark.anyio
async def test_read_capped_stops_at_the_limit() -> None:
    async def big(_request: web.Request) -> web.Response:
        return web.Response(body=b"y" * 300_000)

    async with _server("/big", big) as url, aiohttp.ClientSession() as client, client.get(url) as response:
        data, truncated = await read_capped(response, 100_000)
    assert (len(data), truncated) == (100_000, True)
