"""The one place where an HTTP failure becomes an asyncsync error.

Everything that speaks HTTP (the registry client, its token fetches, blob streams, the Harbor
API) runs its aiohttp I/O inside :func:`mapped` and turns an unexpected status into an error
with :func:`error_from_response`; nothing else catches aiohttp's exceptions or reads error bodies.

* :func:`mapped` - a block of HTTP I/O; aiohttp, socket and timeout exceptions leave it as
  :class:`~asyncsync.errors.TransportError` (:class:`~asyncsync.errors.TLSError` for TLS),
  via :func:`translate_client_error`.
* :func:`error_from_response` reads a capped error body (``{"errors": [{"code", "message"}]}``,
  at most :data:`MAX_ERROR_BODY` bytes) and builds the :class:`~asyncsync.errors.RegistryError`
  subclass for its status and code (:func:`asyncsync.errors.registry_error`, whose message
  format is :func:`asyncsync.errors.registry_error_text`).
* :func:`read_capped` reads at most N bytes of a body, so no answer can fill memory.
"""

from __future__ import annotations

import asyncio
import email.utils
import ssl
import time
from types import TracebackType

import aiohttp
import orjson

from asyncsync.errors import (
    AsyncSyncError,
    RegistryError,
    TLSError,
    TransportError,
    redact_url,
    registry_error,
)

MAX_ERROR_BODY = 1024 * 1024
#: What aiohttp and the sockets under it raise when an exchange fails (timeouts included).
CLIENT_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)
_TLS_HINT = " (use --tls-verify=false to skip verification for this registry, or --cert-dir to trust its CA)"


def translate_client_error(exc: BaseException, what: str) -> AsyncSyncError:
    """Map an aiohttp / socket / timeout exception raised during ``what`` to our error tree."""
    if isinstance(exc, AsyncSyncError):
        return exc
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return TLSError(f"{what}: TLS certificate verification failed: {exc.certificate_error}{_TLS_HINT}")
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        os_error = getattr(exc, "os_error", None)  # aiohttp wraps the ssl.SSLError here
        reason = getattr(exc, "reason", None) or getattr(os_error, "reason", None) or type(exc).__name__
        return TLSError(f"{what}: TLS handshake failed: {reason}{_TLS_HINT}")
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return TransportError(f"{what}: timed out")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return TransportError(f"{what}: connection broke while reading the body")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return TransportError(f"{what}: server closed the connection")
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        return TransportError(f"{what}: cannot connect to {exc.host}:{exc.port}: {reason}")
    if isinstance(exc, aiohttp.InvalidURL):
        return TransportError(f"{what}: invalid URL", temporary=False)
    if isinstance(exc, aiohttp.ClientResponseError):
        return registry_error(exc.status, what=what)
    if isinstance(exc, aiohttp.ClientError | ConnectionError | OSError):
        return TransportError(
            f"{what}: {type(exc).__name__}: {redact_url(str(exc)) if str(exc) else 'failed'}"
        )
    raise exc


class mapped:
    """Run a block of HTTP I/O for ``what``; a failure of the exchange leaves it as our error tree.

    Errors of the tree raised inside the block pass through unchanged. (A class rather than a
    ``@contextmanager`` generator: it wraps every request, and this costs a third as much.)
    """

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None and isinstance(exc, CLIENT_ERRORS):
            raise translate_client_error(exc, self.what) from None


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds, from either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """Read at most ``limit`` bytes of the body; returns ``(data, truncated)``."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            chunks.append(chunk[: len(chunk) - (size - limit)])
            return b"".join(chunks), True
        chunks.append(chunk)
    return b"".join(chunks), False


async def error_from_response(response: aiohttp.ClientResponse, what: str) -> RegistryError:
    """Build the error for a non-success response, reading at most 1 MiB of its body."""
    code = message = ""
    try:
        body, _ = await read_capped(response, MAX_ERROR_BODY)
    except CLIENT_ERRORS:
        body = b""  # the status alone still makes the error
    if body:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        errors = data.get("errors") if isinstance(data, dict) else None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            code = str(errors[0].get("code", ""))[:100]
            message = str(errors[0].get("message", ""))[:300]
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return registry_error(response.status, code, message, what=what, retry_after=retry_after)
