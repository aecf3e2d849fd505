"""A scripted pull-quota proxy in front of a real registry (Docker Hub's ``ratelimit-*`` behaviour).

Why scripted: a real registry (distribution, Harbor, Quay) has no pull quota; only Docker Hub
counts pulls, and the tests cannot use Docker Hub. Everything else is the real registry behind
this proxy: the proxy forwards every request unchanged (keeping the ``Host`` header, so upload
locations point back at it) and only adds what Docker Hub adds.

Docker Hub's rules as played here: a GET of a manifest spends one pull; a HEAD spends none.
Every manifest answer carries ``ratelimit-limit: LIMIT;w=WINDOW`` and
``ratelimit-remaining: LEFT;w=WINDOW``. A GET when nothing is left is answered 429 with
``{"errors": [{"code": "TOOMANYREQUESTS", ...}]}`` and ``Retry-After`` (the window, unless
``retry_after`` says otherwise), without reaching the registry. :meth:`QuotaProxy.new_window`
starts a new window (the quota is full again).

``malformed`` replaces both headers with nonsense, for the "ignored, never a crash" check;
``advertise=False`` sends them on the 429 only (a registry that warns no one in advance).

The proxy runs its own event loop in a background thread, so it serves while a test blocks on
a subprocess. Every request is recorded as ``(method, path, status)``.
"""

from __future__ import annotations

import asyncio
import re
import threading
from types import TracebackType
from typing import Self

import aiohttp
from aiohttp import web

from tests.helpers.registry import free_port

_MANIFEST = re.compile(r"^/v2/.+/manifests/[^/]+$")
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}
)


class QuotaProxy:
    """``with QuotaProxy("127.0.0.1:5000", limit=5) as proxy:``; clients use ``proxy.host``."""

    def __init__(
        self,
        upstream: str,
        *,
        limit: int,
        window: int = 21600,
        retry_after: int | None = None,
        malformed: bool = False,
        advertise: bool = True,
    ) -> None:
        self.upstream = upstream
        self.limit = limit
        self.remaining = limit
        self.window = window
        self.retry_after = retry_after if retry_after is not None else window
        self.malformed = malformed
        self.advertise = advertise
        self.records: list[tuple[str, str, int]] = []
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None

    # -- what the tests read ---------------------------------------------------------------

    def count(self, method: str, path_regex: str = r".*", status: int | None = None) -> int:
        pattern = re.compile(path_regex)
        with self._lock:
            return sum(
                1
                for m, path, s in self.records
                if m == method and pattern.search(path) and (status is None or s == status)
            )

    def manifest_gets(self, status: int | None = None) -> int:
        return self.count("GET", r"/manifests/", status)

    def new_window(self) -> None:
        with self._lock:
            self.remaining = self.limit

    # -- the server -----------------------------------------------------------------------

    def _quota_headers(self) -> dict[str, str]:
        if self.malformed:
            return {"ratelimit-limit": "lots;w=soon", "ratelimit-remaining": ";;=-"}
        return {
            "ratelimit-limit": f"{self.limit};w={self.window}",
            "ratelimit-remaining": f"{self.remaining};w={self.window}",
        }

    async def _handle(self, request: web.Request, session: aiohttp.ClientSession) -> web.StreamResponse:
        manifest = bool(_MANIFEST.match(request.path))
        if manifest and request.method == "GET":
            with self._lock:
                spent = self.remaining <= 0
                if not spent:
                    self.remaining -= 1
            if spent:
                body = (
                    b'{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate '
                    b'limit. You may increase the limit by authenticating and upgrading"}]}'
                )
                headers = {**self._quota_headers(), "Retry-After": str(self.retry_after)}
                with self._lock:
                    self.records.append((request.method, request.path, 429))
                return web.Response(status=429, body=body, headers=headers, content_type="application/json")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        data = await request.read() if request.body_exists else None
        url = f"http://{self.upstream}{request.rel_url}"
        async with session.request(
            request.method, url, headers=headers, data=data, allow_redirects=False
        ) as upstream:
            body = await upstream.read()
            out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
            if manifest:
                out_headers.update(self._quota_headers())
            with self._lock:
                self.records.append((request.method, request.path, upstream.status))
            if manifest and not self.advertise:
                out_headers.pop("ratelimit-limit", None)
                out_headers.pop("ratelimit-remaining", None)
            return web.Response(status=upstream.status, headers=out_headers, body=body or None)

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with aiohttp.ClientSession(auto_decompress=False) as session:

            async def handler(request: web.Request) -> web.StreamResponse:
                return await self._handle(request, session)

            server = web.Server(handler)
            runner = web.ServerRunner(server)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", self.port)
            await site.start()
            self._ready.set()
            await self._stop.wait()
            await runner.cleanup()

    def __enter__(self) -> Self:
        def main() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._serve())
            self._loop.close()

        self._thread = threading.Thread(target=main, name="quota-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("quota proxy did not start")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
