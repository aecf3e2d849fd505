"""HttpSession.send: redirects, Authorization bound to its origin, Link parsing, capped reads.

A scripted aiohttp server stands in for "another host" (a CDN behind a redirect) on 127.0.0.2: a
real registry does not redirect on its own, and the client cannot know both addresses are this
machine. Real registries cover the same rules end to end in tests/security/test_credential_origin.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from asyncsync.errors import TransportError, UsageError
from asyncsync.http.session import HttpSession, read_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def _server(host: str, routes: dict[str, Handler]) -> AsyncIterator[str]:
    """Serve ``routes`` (path -> handler) on ``host``; yields ``http://host:port``."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_route("*", path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    try:
        yield f"http://{host}:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.mark.anyio
async def test_authorization_follows_redirects_only_on_its_origin() -> None:
    seen: dict[str, str | None] = {}

    def record(name: str) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            seen[name] = request.headers.get("Authorization")
            return web.Response(text=name)

        return handle

    async with _server("127.0.0.2", {"/cdn": record("cdn")}) as cdn:

        async def to_cdn(_request: web.Request) -> web.Response:
            raise web.HTTPTemporaryRedirect(f"{cdn}/cdn")

        async def to_same(_request: web.Request) -> web.Response:
            raise web.HTTPFound("/same")

        routes = {"/to-cdn": to_cdn, "/to-same": to_same, "/same": record("same")}
        async with _server("127.0.0.1", routes) as origin, HttpSession() as session:
            for path in ("/to-cdn", "/to-same"):
                response = await session.send(
                    "GET", origin + path, ssl=False, what="t", authorization="Bearer secret", follow=True
                )
                assert response.status == 200
                response.release()
            unfollowed = await session.send("GET", origin + "/to-cdn", ssl=False, what="t", authorization="x")
            assert unfollowed.status == 307
            unfollowed.release()
    assert seen == {"same": "Bearer secret", "cdn": None}


@pytest.mark.anyio
async def test_redirect_loops_and_odd_schemes_end_with_one_error() -> None:
    async def loop(_request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def ftp(_request: web.Request) -> web.Response:
        raise web.HTTPFound("ftp://example.invalid/x")

    async with _server("127.0.0.1", {"/loop": loop, "/ftp": ftp}) as origin, HttpSession() as session:
        with pytest.raises(TransportError, match="reading x: too many redirects") as info:
            await session.send("GET", origin + "/loop", ssl=False, what="reading x", follow=True)
        assert not info.value.temporary
        with pytest.raises(UsageError, match="redirect to an unsupported URL scheme"):
            await session.send("GET", origin + "/ftp", ssl=False, what="reading x", follow=True)


@pytest.mark.anyio
async def test_read_response_caps_the_body_and_reads_links() -> None:
    async def page(request: web.Request) -> web.Response:
        return web.Response(
            body=b"x" * int(request.query["size"]),
            headers={"Link": '</v2/r/tags/list?last=b>; rel="next", <https://elsewhere.example/>; rel=prev'},
        )

    async with _server("127.0.0.1", {"/v2/r/tags/list": page}) as origin, HttpSession() as session:
        response = await session.send("GET", f"{origin}/v2/r/tags/list?size=10", ssl=False, what="t")
        answer = await read_response(response, 10)
        response.release()
        assert answer is not None and answer.body == b"x" * 10
        assert answer.next_link == f"{origin}/v2/r/tags/list?last=b"
        response = await session.send("GET", f"{origin}/v2/r/tags/list?size=11", ssl=False, what="t")
        assert await read_response(response, 10) is None
        response.release()
