"""Where one registry answers: its scheme and its auth challenge, learned once per client.

A client does not know at first whether its registry speaks https or (with TLS verification
off) plain http, nor which challenge it sends. The client's first replayable request to a
``/v2/`` path goes alone (:meth:`Endpoint.claim`; the other requests wait until it has
answered) and finds both out on the way:

* an anonymous client sends that request itself (:meth:`Endpoint.discover`: https first, then
  plain http when TLS verification is off and https fails to connect) and learns the challenge
  from its 401 - an anonymous registry costs no extra request;
* a client with credentials pings ``/v2/`` first (:meth:`Endpoint.ping`): the ping's 401 is the
  one the request would have cost, and a registry that answers anonymous requests for private
  repositories with 404 cannot mislead it.

Callers that need the base URL before any request (:meth:`Endpoint.base_url`) ping for it.
The challenge may change later (a 401 naming another realm): the authorizer replaces it.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from asyncsync.errors import AsyncSyncError, RegistryError
from asyncsync.http.errors import CLIENT_ERRORS, error_from_response, mapped, read_capped
from asyncsync.http.session import DRAIN_LIMIT, HttpSession
from asyncsync.registry.auth import Challenge, preferred_challenge

T = TypeVar("T")


class Endpoint:
    """Scheme and challenge of one registry host, as one client learns them."""

    def __init__(
        self, session: HttpSession, registry: str, host: str, ssl: ssl.SSLContext | bool, *, tls_verify: bool
    ) -> None:
        self.session = session
        self.registry = registry
        self.host = host
        self.ssl = ssl
        #: Schemes to try, in order: plain http only when TLS verification is off.
        self.schemes: tuple[str, ...] = ("https",) if tls_verify else ("https", "http")
        #: ``scheme://host`` once known.
        self.known_base_url: str | None = None
        #: The challenge we answer (Bearer with a realm, else Basic), once one was seen.
        self.challenge: Challenge | None = None
        # Held by the one request that discovers scheme and challenge; ``learned`` once it has.
        self._lock = anyio.Lock()
        self.learned = False

    async def claim(self) -> bool:
        """Whether the calling task makes the first request. When ``True`` it holds the learning
        lock and must call :meth:`finish` (learned) or :meth:`abandon` (failed); when ``False``
        the first request has answered already (this call waited for it if needed)."""
        if self.learned:
            return False
        await self._lock.acquire()
        if self.learned:
            self._lock.release()
            return False
        return True

    def finish(self) -> None:
        """The first request answered: everyone may go."""
        self.learned = True
        self._lock.release()

    def abandon(self) -> None:
        """The first request failed: the next request tries again."""
        self._lock.release()

    async def base_url(self) -> str:
        """``scheme://host`` of the registry: known after the first request, else found by
        pinging ``/v2/`` (for callers that need it before any request)."""
        if self.known_base_url is None:
            async with self._lock:
                if self.known_base_url is None:
                    await self.ping()
        assert self.known_base_url is not None
        return self.known_base_url

    async def ping(self, *, slot_held: bool = False) -> None:
        """``GET /v2/``: the scheme that answers and, from a 401, the challenge. ``slot_held``
        when the calling task already holds a request slot of the host (it must not take two)."""
        what = f"pinging {self.registry}"
        last_error: AsyncSyncError | None = None
        for scheme in self.schemes:
            url = f"{scheme}://{self.host}/v2/"
            slot = contextlib.nullcontext() if slot_held else self.session.limiters.hold(self.host)
            failed: RegistryError | None = None
            try:
                with mapped(what):
                    async with (
                        slot,
                        self.session.request("GET", url, ssl=self.ssl, allow_redirects=False) as response,
                    ):
                        await read_capped(response, DRAIN_LIMIT)
                        if response.status == 401:
                            self.challenge = preferred_challenge(
                                response.headers.getall("WWW-Authenticate", [])
                            )
                        elif response.status >= 500:
                            failed = await error_from_response(response, what)
            except AsyncSyncError as exc:  # this scheme did not answer: try the next one
                last_error = exc
                continue
            if failed is not None:
                raise failed
            self.known_base_url = f"{scheme}://{self.host}"
            self.learned = True
            return
        assert last_error is not None
        raise last_error

    async def discover(self, send: Callable[[str], Awaitable[T]]) -> T:
        """Send the client's first request with ``send(base_url)`` over https, and when TLS
        verification is off and https fails to connect, over plain http. The scheme that
        answered becomes the client's base URL. aiohttp's errors of the last scheme propagate."""
        for index, scheme in enumerate(self.schemes):
            base = f"{scheme}://{self.host}"
            try:
                answer = await send(base)
            except CLIENT_ERRORS:
                if index + 1 == len(self.schemes):
                    raise
                continue
            self.known_base_url = base
            return answer
        raise AssertionError("unreachable: the last scheme's failure is raised")
