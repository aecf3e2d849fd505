"""A minimal Docker Engine API client: ``GET /images/{name}/get`` (save) and ``POST /images/load``.

The daemon is reached at ``unix:///var/run/docker.sock`` by default (like containers/image, the
``DOCKER_HOST`` variable is not read) or at ``--src-daemon-host`` / ``--dest-daemon-host``:
``unix:///path``, ``tcp://host:port`` (plain HTTP) or an ``http://`` / ``https://`` URL. Each
client owns one aiohttp session, closed on exit. Unversioned API paths are used, so the daemon
answers with its current API version.

Errors: an unreachable daemon is a :class:`~asyncsync.errors.TransportError` (not temporary);
an error answer (``{"message": ...}``) or an error line in the load stream is a
:class:`~asyncsync.errors.LocalStorageError` quoting the daemon's message (capped).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from types import TracebackType
from urllib.parse import quote, urlsplit

import aiohttp
import anyio
import orjson

from asyncsync.errors import LocalStorageError, TransportError, UsageError
from asyncsync.transports.local_files import open_chunks, write_chunks_atomic

DEFAULT_HOST = "unix:///var/run/docker.sock"
#: Largest error or load-progress body read from the daemon.
MAX_RESPONSE = 1024 * 1024
_CHUNK = 1024 * 1024


def _endpoint(host: str) -> tuple[str, aiohttp.BaseConnector]:
    parts = urlsplit(host)
    if parts.scheme == "unix":
        if not parts.path:
            raise UsageError(f"invalid daemon host {host!r}: expected unix:///path/to/docker.sock")
        return "http://docker", aiohttp.UnixConnector(path=parts.path)
    if parts.scheme in ("tcp", "http", "https") and parts.netloc:
        scheme = "https" if parts.scheme == "https" else "http"
        return f"{scheme}://{parts.netloc}", aiohttp.TCPConnector()
    raise UsageError(f"invalid daemon host {host!r}: expected unix://PATH, tcp://HOST:PORT or an http(s) URL")


def api_message(body: bytes) -> str:
    """The message of an engine API error answer (Docker's ``message``, podman's ``message`` or
    ``cause``), capped; the start of the body when it is not JSON."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace").strip() or "no message"
    if isinstance(data, dict):
        for key in ("message", "cause"):
            if isinstance(data.get(key), str):
                return str(data[key])[:500]
    return body[:200].decode("utf-8", "replace").strip()


async def export_image(
    session: aiohttp.ClientSession,
    url: str,
    path: str,
    refused: Callable[[aiohttp.ClientResponse], Awaitable[LocalStorageError]],
    failed: Callable[[aiohttp.ClientError], TransportError],
) -> int:
    """Stream an engine API's image export (``GET .../images/NAME/get``) into ``path``
    (atomically); returns its size. A non-200 answer raises ``refused(response)``, a connection
    failure ``failed(exc)``: Docker and podman word them differently."""
    try:
        async with session.get(url) as response:
            if response.status != 200:
                raise await refused(response)
            result = await write_chunks_atomic(path, response.content.iter_chunked(_CHUNK))
    except aiohttp.ClientError as exc:
        raise failed(exc) from None
    return result.size


class EngineClient:
    """One connection setup to a Docker engine; use as ``async with EngineClient(host, where)``."""

    def __init__(self, host: str | None, where: str) -> None:
        self.host = host or DEFAULT_HOST
        self.where = where
        self._base, connector = _endpoint(self.host)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None, sock_connect=30)
        )

    async def __aenter__(self) -> EngineClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._session.close()

    def _failed(self, exc: aiohttp.ClientError) -> TransportError:
        return TransportError(
            f"{self.where}: cannot talk to the Docker daemon at {self.host}: {exc}", temporary=False
        )

    async def _error(self, response: aiohttp.ClientResponse, action: str) -> LocalStorageError:
        body = await response.content.read(MAX_RESPONSE)
        message = api_message(body)
        return LocalStorageError(
            f"{self.where}: the Docker daemon refused to {action}: {message} (HTTP {response.status})"
        )

    async def save(self, name: str, path: str) -> int:
        """Write ``docker save NAME`` to ``path`` (atomically); returns its size."""
        url = f"{self._base}/images/{quote(name, safe='/:@')}/get"
        return await export_image(
            self._session, url, path, lambda response: self._error(response, f"export {name}"), self._failed
        )

    async def load(self, path: str) -> str:
        """``docker load`` the archive at ``path``; returns the daemon's last progress message."""
        size = (await anyio.to_thread.run_sync(os.stat, path)).st_size

        url = f"{self._base}/images/load?quiet=1"
        headers = {"Content-Type": "application/x-tar", "Content-Length": str(size)}
        try:
            # The file stays open (and is closed) here, whatever aiohttp does with the body.
            async with (
                open_chunks(path, what=self.where) as body,
                self._session.post(url, data=body, headers=headers) as response,
            ):
                if response.status != 200:
                    raise await self._error(response, "load the image")
                text = await response.content.read(MAX_RESPONSE)
        except aiohttp.ClientError as exc:
            raise self._failed(exc) from None
        last = ""
        for line in text.splitlines():
            try:
                message = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(message, dict):
                continue
            if message.get("error") or message.get("errorDetail"):
                detail = message.get("errorDetail")
                reason = detail.get("message") if isinstance(detail, dict) else None
                reason = reason or message.get("error")
                raise LocalStorageError(f"{self.where}: the Docker daemon failed to load the image: {reason}")
            if isinstance(message.get("stream"), str):
                last = message["stream"].strip()
        return last
