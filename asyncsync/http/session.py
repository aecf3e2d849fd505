"""The run's HTTP session: one aiohttp session under every registry and Harbor API request.

:class:`HttpSession` is created once per command run and used as ``async with``. It owns

* the aiohttp ``ClientSession``: one connection pool, our ``User-Agent``, no automatic
  decompression (blobs are verified as sent), a connect and a per-read timeout;
* the environment's proxies, resolved once per origin (:mod:`asyncsync.http.proxies`);
* the run's request slots per host (:class:`~asyncsync.limits.HostLimiters`), its pull quotas
  per host (:class:`~asyncsync.quota.PullQuotas`) and its retry policy (:meth:`HttpSession.retrying`).

:meth:`HttpSession.send` is the one way a request leaves the process. It follows redirects
when asked and sends ``Authorization`` only to the origin the credential belongs to: a
redirect to another host (a CDN, a storage backend) goes without it. TLS settings per host
come from :mod:`asyncsync.http.tls`; failures become the error tree in
:mod:`asyncsync.http.errors` (the callers' :func:`~asyncsync.http.errors.mapped` blocks).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.client import _RequestContextManager

from asyncsync import __version__
from asyncsync.errors import TransportError, UsageError, redact_url
from asyncsync.http.errors import read_capped
from asyncsync.http.proxies import ProxyResolver
from asyncsync.limits import HostLimiters
from asyncsync.quota import PullQuotas
from asyncsync.retry import RetryPolicy, with_retries

log = logging.getLogger("asyncsync.http")

T = TypeVar("T")

USER_AGENT = f"asyncsync/{__version__}"
MAX_REDIRECTS = 10
#: What is read (and dropped) of a body nobody needs, before the connection is reused.
DRAIN_LIMIT = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

#: A request body: bytes are replayable, an async iterable is sent once.
Body = bytes | AsyncIterable[bytes] | None


def origin_of(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)``: what "the same host" means for credentials."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


@dataclass(slots=True)
class Response:
    """A fully read response: status, headers and body (for small documents).

    ``next_link`` is the ``rel="next"`` target of its ``Link`` header (absolute), if any.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str
    next_link: str | None = None


def next_link(response: aiohttp.ClientResponse) -> str | None:
    """The absolute ``rel="next"`` URL of ``response``'s ``Link`` header (aiohttp's parser)."""
    link = response.links.get("next")
    url = link.get("url") if link is not None else None
    return str(url) if url is not None else None


async def read_response(response: aiohttp.ClientResponse, max_body: int) -> Response | None:
    """Read ``response`` whole into a :class:`Response`; ``None`` when the body passes ``max_body``.

    A ``HEAD`` answer has no body to read."""
    body = b""
    if response.method != "HEAD":
        body, truncated = await read_capped(response, max_body)
        if truncated:
            return None
    return Response(response.status, response.headers, body, str(response.url), next_link(response))


async def drain(response: aiohttp.ClientResponse) -> None:
    """Read (at most :data:`DRAIN_LIMIT` bytes of) and release a response nobody will use."""
    try:
        await read_capped(response, DRAIN_LIMIT)
    finally:
        response.release()


def _no_hidden_retries(http: aiohttp.ClientSession) -> None:
    """Turn off aiohttp's silent resend of an "idempotent" request whose connection broke.

    aiohttp resends a ``PUT`` once, with the same body, when its connection resets. To an upload
    session that is not idempotent: distribution has kept the part that arrived, so the resend finds
    the session at another offset (``404 BLOB_UPLOAD_INVALID``) or gone. Retries belong to this
    package alone (counted against one budget, an upload restarted in a new session). aiohttp has
    no public switch; ``_retry_connection`` is the one its own test client turns off.
    tests/registry/test_blobs.py fails if a later aiohttp stops honouring it.
    """
    if hasattr(http, "_retry_connection"):
        http._retry_connection = False


class HttpSession:
    """One per run: the aiohttp session, proxies, host limiters and retry policy. ``async with``."""

    def __init__(
        self,
        *,
        limiters: HostLimiters | None = None,
        retry: RetryPolicy | None = None,
        quotas: PullQuotas | None = None,
        connect_timeout: float = 30.0,
        read_timeout: float = 300.0,
    ) -> None:
        self.limiters = limiters or HostLimiters()
        self.retry = retry or RetryPolicy()
        self.quotas = quotas or PullQuotas()
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._http: aiohttp.ClientSession | None = None
        self._proxies = ProxyResolver()

    async def __aenter__(self) -> HttpSession:
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300)
        self._http = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            headers={"User-Agent": USER_AGENT},
            auto_decompress=False,
            trust_env=False,  # proxies come from ProxyResolver, once per origin (see proxies.py)
        )
        _no_hidden_retries(self._http)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise RuntimeError(f"{type(self).__name__} used outside 'async with'")
        return self._http

    def request(self, method: str, url: str, **kwargs: Any) -> _RequestContextManager:
        """``aiohttp.ClientSession.request`` with the environment's proxy for ``url`` (if any).

        Every request of the run goes through here; use it as ``async with`` or await it.
        """
        proxy, proxy_headers = self._proxies.for_url(url)
        return self.http.request(method, url, proxy=proxy, proxy_headers=proxy_headers, **kwargs)

    async def send(
        self,
        method: str,
        url: str,
        *,
        ssl: ssl.SSLContext | bool,
        what: str,
        headers: Mapping[str, str] | None = None,
        data: Body = None,
        authorization: str | None = None,
        auth_origin: str | None = None,
        follow: bool = False,
    ) -> aiohttp.ClientResponse:
        """Send one request and return its response (body unread: the caller releases it).

        ``authorization`` goes only to the origin of ``auth_origin`` (default: ``url``'s). With
        ``follow``, redirects are followed (at most :data:`MAX_REDIRECTS`) and a redirect to
        another origin goes without ``Authorization``. aiohttp's exceptions are left to the
        caller's :func:`~asyncsync.http.errors.mapped` block.
        """
        origin = origin_of(auth_origin or url) if authorization else None
        for _ in range(MAX_REDIRECTS + 1):
            send_headers = dict(headers or {})
            if authorization and origin_of(url) == origin:
                send_headers["Authorization"] = authorization
            response = await self.request(
                method, url, headers=send_headers, data=data, ssl=ssl, allow_redirects=False
            )
            if log.isEnabledFor(logging.DEBUG):  # redact_url costs more than the rest of this loop
                log.debug("%s %s -> %s", method, redact_url(url), response.status)
            location = response.headers.get("Location")
            if not (follow and response.status in _REDIRECTS and location):
                return response
            await drain(response)
            url = urljoin(url, location)
            if urlsplit(url).scheme not in ("http", "https"):
                raise UsageError(f"{what}: redirect to an unsupported URL scheme")
        raise TransportError(f"{what}: too many redirects", temporary=False)

    def retrying(
        self, operation: Callable[[], Awaitable[T]], what: str, policy: RetryPolicy | None = None
    ) -> Awaitable[T]:
        """Run ``operation`` with the run's retry policy (or ``policy``), logging each retry.

        Await the result (a plain function, so a request costs no extra coroutine frame)."""

        def on_retry(attempt: int, exc: BaseException, wait: float) -> None:
            log.info("retrying %s in %.1fs after attempt %d failed: %s", what, wait, attempt, exc)

        return with_retries(policy or self.retry, operation, on_retry=on_retry)
