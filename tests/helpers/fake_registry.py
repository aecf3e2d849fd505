"""A tiny scripted HTTP server for the failure cases a real registry cannot be made to produce.

CNCF distribution refuses manifests over 4 MiB at upload and always answers well-formed JSON, so
the tests of "a manifest over 4 MiB is refused", "the server answers garbage JSON" and "the bytes
do not match the digest" need a server that misbehaves on purpose. This is it: an aiohttp
application on ``127.0.0.1`` running in a background thread with its own event loop (like
:class:`~tests.helpers.token_service.TokenService`), so it serves sync tests, anyio tests and
subprocesses alike. It never imports ``asyncsync``.

Contract: :meth:`FakeRegistry.route` sets the canned answer for ``(method, path)`` (path without
query); ``GET /v2/`` answers ``200 {}`` unless replaced; anything unrouted answers 404 with a
registry-style ``NAME_UNKNOWN`` body. Every request is recorded in :attr:`FakeRegistry.requests`
(method, path with query, headers) before it is answered.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from aiohttp import web

__all__ = ["Canned", "FakeRegistry", "RecordedRequest"]


@dataclass(frozen=True, slots=True)
class Canned:
    """One scripted answer."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """What the server saw: method, path with query string, and headers."""

    method: str
    path: str
    headers: Mapping[str, str]


Handler = Canned | Callable[[web.Request], Canned]


class FakeRegistry:
    """A scripted server; use as ``with FakeRegistry() as fake:`` (see the module docstring)."""

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], Handler] = {
            ("GET", "/v2/"): Canned(200, b"{}", {"Content-Type": "application/json"})
        }
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    def route(self, method: str, path: str, answer: Handler) -> None:
        """Answer ``method path`` with ``answer`` (a :class:`Canned` or a function of the request)."""
        with self._lock:
            self._routes[(method.upper(), path)] = answer

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``."""
        if self._port is None:
            raise RuntimeError("fake registry not started")
        return f"127.0.0.1:{self._port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self._requests.append(RecordedRequest(request.method, request.path_qs, dict(request.headers)))
            answer = self._routes.get((request.method, request.path))
        if answer is None:
            body = b'{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}'
            answer = Canned(404, body, {"Content-Type": "application/json"})
        elif not isinstance(answer, Canned):
            answer = answer(request)
        headers = {"Docker-Distribution-Api-Version": "registry/2.0", **answer.headers}
        # aiohttp sends no body for HEAD but keeps the Content-Length of the one given.
        return web.Response(status=answer.status, body=answer.body, headers=headers)

    async def _serve(self) -> int:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return int(runner.addresses[0][1])

    def start(self, timeout: float = 10.0) -> Self:
        """Start serving on a free loopback port; returns self."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="fake-registry", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            self._port = asyncio.run_coroutine_threadsafe(self._serve(), loop).result(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and join the thread. Idempotent."""
        loop, thread, runner = self._loop, self._thread, self._runner
        self._loop = self._thread = self._runner = None
        if loop is None or thread is None:
            return
        try:
            if runner is not None:
                asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
