"""The HTTP client for the Distribution API: one aiohttp session, auth, redirects, limits, retries.

:class:`RegistrySession` is created once per command run and owns the aiohttp session and
the run's :class:`~asyncsync.limits.HostLimiters`. It hands out one :class:`RegistryClient`
per (registry host, options). A client's first replayable request goes alone (the others
wait for it) and finds the scheme (https, then plain http when TLS verification is off) and
the auth challenge: a client with credentials pings ``/v2/`` first (that 401 is the one the
request would have cost), an anonymous client sends the request itself and learns from its 401
(an anonymous registry thus costs no extra request). Every request goes through
:meth:`RegistryClient.open`, which

* holds one request slot of the host for the whole exchange (body included);
* adds ``Authorization`` for the requested token scopes; a 401 is replayed (at most twice, and
  only with a replayable body) when replaying can change the answer: a challenge learned
  from it, a token another task renewed meanwhile, or a rejected token dropped and fetched
  anew. The same Basic challenge for the credentials just sent is final (a wrong password is
  refused once, not repeated against lockout policies);
* follows redirects of GET/HEAD itself, dropping ``Authorization`` when the origin changes;
* turns any non-expected status into a :class:`~asyncsync.errors.RegistryError` and any
  aiohttp failure into a :class:`~asyncsync.errors.TransportError`.

Retries of whole operations live in :meth:`RegistryClient.request` (replayable requests)
and in the copy engine (streamed blobs).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode, urljoin, urlsplit

import aiohttp
import anyio
import orjson
from aiohttp.client import _RequestContextManager

from asyncsync import __version__
from asyncsync.errors import (
    AsyncSyncError,
    AuthenticationError,
    RegistryError,
    TransportError,
    UsageError,
    redact_url,
)
from asyncsync.limits import HostLimiters
from asyncsync.registry.auth import (
    BearerToken,
    Challenge,
    TokenCache,
    basic_header,
    may_send_basic_to,
    origin_of,
    parse_challenges,
    token_expiry,
)
from asyncsync.registry.credentials import Credentials, lookup_credentials
from asyncsync.registry.errors import error_from_response, read_capped, translate_client_error
from asyncsync.registry.proxies import ProxyResolver
from asyncsync.registry.tls import ssl_context_for
from asyncsync.retry import RetryPolicy, with_retries

log = logging.getLogger("asyncsync.http")

DOCKER_HUB = "docker.io"
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
MAX_TOKEN_BODY = 1024 * 1024
MAX_REDIRECTS = 10
#: A 401 can need two replays: learn the challenge, then renew a token the registry rejected.
MAX_AUTH_REPLAYS = 2
USER_AGENT = f"asyncsync/{__version__}"

Body = bytes | AsyncIterable[bytes] | None


@dataclass(frozen=True, slots=True)
class RegistryOptions:
    """How to reach and authenticate to one registry (skopeo's per-side flags).

    ``tls_verify=False`` skips certificate checks and allows plain http (tried after https).
    ``credentials`` (``--creds``) or ``registry_token`` override the auth files;
    ``no_creds`` sends nothing at all.
    """

    tls_verify: bool = True
    cert_dir: str | None = None
    credentials: Credentials | None = None
    registry_token: str | None = field(default=None, repr=False)
    no_creds: bool = False
    authfile: str | None = None


@dataclass(slots=True)
class Response:
    """A fully read response: status, headers and body (for small documents)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str


class RegistrySession:
    """One per run: the aiohttp session, host limiters and clients. Use as ``async with``."""

    def __init__(
        self,
        *,
        limiters: HostLimiters | None = None,
        retry: RetryPolicy | None = None,
        connect_timeout: float = 30.0,
        read_timeout: float = 300.0,
    ) -> None:
        self.limiters = limiters or HostLimiters()
        self.retry = retry or RetryPolicy()
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._http: aiohttp.ClientSession | None = None
        self._clients: dict[tuple[str, RegistryOptions], RegistryClient] = {}
        self._proxies = ProxyResolver()

    async def __aenter__(self) -> RegistrySession:
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300)
        self._http = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            headers={"User-Agent": USER_AGENT},
            auto_decompress=False,
            trust_env=False,  # proxies come from ProxyResolver, once per origin (see proxies.py)
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise RuntimeError("RegistrySession used outside 'async with'")
        return self._http

    def request(self, method: str, url: str, **kwargs: Any) -> _RequestContextManager:
        """``aiohttp.ClientSession.request`` with the environment's proxy for ``url`` (if any).

        Every request of the run goes through here; use it as ``async with``.
        """
        proxy, proxy_headers = self._proxies.for_url(url)
        return self.http.request(method, url, proxy=proxy, proxy_headers=proxy_headers, **kwargs)

    def client(self, registry: str, options: RegistryOptions | None = None) -> RegistryClient:
        """The client for ``registry`` (a reference domain such as ``docker.io`` or ``host:5000``)."""
        options = options or RegistryOptions()
        key = (registry, options)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = RegistryClient(self, registry, options)
        return client


def _endpoint_host(registry: str) -> str:
    return DOCKER_HUB_ENDPOINT if registry == DOCKER_HUB else registry


def _preferred_challenge(headers: list[str]) -> Challenge | None:
    """The challenge we answer out of ``WWW-Authenticate`` values: Bearer (with a realm), else Basic."""
    challenges = [c for header in headers for c in parse_challenges(header)]
    bearer = [c for c in challenges if c.scheme == "bearer" and c.realm]
    basic = [c for c in challenges if c.scheme == "basic"]
    return bearer[0] if bearer else basic[0] if basic else None


def _challenge_identity(challenge: Challenge) -> tuple[str, str, str]:
    """What makes two challenges the same authority; ``error``/``scope`` parameters vary per 401."""
    return (challenge.scheme, challenge.realm, challenge.service)


@dataclass(frozen=True, slots=True)
class _Exchange:
    """One request as :meth:`RegistryClient.open` was asked for it (replays resend it as is)."""

    method: str
    path: str
    scopes: tuple[str, ...]
    repository: str | None
    headers: Mapping[str, str] | None
    data: Body
    follow: bool
    what: str


class RegistryClient:
    """Requests to one registry with one set of options. Obtain from :meth:`RegistrySession.client`."""

    def __init__(self, session: RegistrySession, registry: str, options: RegistryOptions) -> None:
        self.session = session
        self.registry = registry
        self.options = options
        self.host = _endpoint_host(registry)
        self._ssl = ssl_context_for(self.host, verify=options.tls_verify, cert_dir=options.cert_dir)
        self._base_url: str | None = None
        self._challenge: Challenge | None = None
        # Held by the one request that discovers scheme and challenge; ``_learned`` once it has.
        self._learn_lock = anyio.Lock()
        self._learned = False
        self._tokens = TokenCache()
        self._token_locks: dict[tuple[str, str, tuple[str, ...]], anyio.Lock] = {}
        self._credentials: Credentials | None = None
        self._credentials_loaded = False

    # -- credentials -------------------------------------------------------------------

    def credentials(self, repository: str | None = None) -> Credentials | None:
        """Explicit ``--creds``, else stored credentials; ``None`` with ``no_creds``."""
        if self.options.no_creds:
            return None
        if self.options.credentials is not None:
            return self.options.credentials
        if not self._credentials_loaded:
            self._credentials = lookup_credentials(self.registry, repository, authfile=self.options.authfile)
            self._credentials_loaded = True
        return self._credentials

    def _schemes(self) -> list[str]:
        """Schemes to try, in order: plain http only when TLS verification is off."""
        return ["https"] if self.options.tls_verify else ["https", "http"]

    def _has_credentials(self, repository: str | None) -> bool:
        """Whether requests would carry a username/password (a fixed ``--registry-token`` needs no
        challenge: it is sent as it is)."""
        if self.options.registry_token:
            return False
        creds = self.credentials(repository)
        return creds is not None and bool(creds.username or creds.identity_token)

    # -- ping --------------------------------------------------------------------------

    async def base_url(self) -> str:
        """``scheme://host`` of the registry: known after the first request, else found by
        pinging ``/v2/`` (for callers that need it before any request)."""
        if self._base_url is None:
            async with self._learn_lock:
                if self._base_url is None:
                    await self._ping()
        assert self._base_url is not None
        return self._base_url

    async def _ping(self, *, slot_held: bool = False) -> None:
        """``GET /v2/``: the scheme that answers and, from a 401, the challenge. ``slot_held``
        when the calling task already holds a request slot of the host (it must not take two)."""
        schemes = self._schemes()
        last_error: AsyncSyncError | None = None
        for scheme in schemes:
            url = f"{scheme}://{self.host}/v2/"
            slot = contextlib.nullcontext() if slot_held else self.session.limiters.hold(self.host)
            try:
                async with (
                    slot,
                    self.session.request("GET", url, ssl=self._ssl, allow_redirects=False) as response,
                ):
                    await read_capped(response, 64 * 1024)
                    if response.status == 401:
                        offered = response.headers.getall("WWW-Authenticate", [])
                        self._challenge = _preferred_challenge(offered)
                    elif response.status >= 500:
                        raise await error_from_response(response, f"pinging {self.registry}")
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                last_error = translate_client_error(exc, f"pinging {self.registry}")
                continue
            self._base_url = f"{scheme}://{self.host}"
            self._learned = True
            return
        assert last_error is not None
        raise last_error

    # -- authorization -------------------------------------------------------------------

    def _current_authorization(self, scopes: tuple[str, ...], repository: str | None) -> str | None:
        """The ``Authorization`` value a request would carry now, without fetching anything;
        ``None`` also when a bearer token for ``scopes`` is not cached yet."""
        if self.options.registry_token:
            return f"Bearer {self.options.registry_token}"
        challenge = self._challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            creds = self.credentials(repository)
            return basic_header(creds) if creds and creds.username else None
        token = self._tokens.get(challenge, scopes)
        return f"Bearer {token.token}" if token is not None else None

    async def _authorization(self, scopes: tuple[str, ...], repository: str | None) -> str | None:
        current = self._current_authorization(scopes, repository)
        challenge = self._challenge
        if current is not None or challenge is None or challenge.scheme != "bearer":
            return current
        key = TokenCache.key(challenge, scopes)
        lock = self._token_locks.setdefault(key, anyio.Lock())
        async with lock:
            token = self._tokens.get(challenge, scopes)
            if token is None:
                token = await self._fetch_token(challenge, scopes, self.credentials(repository))
                self._tokens.put(challenge, scopes, token)
        return f"Bearer {token.token}"

    async def _fetch_token(
        self, challenge: Challenge, scopes: tuple[str, ...], creds: Credentials | None
    ) -> BearerToken:
        realm = challenge.realm
        what = f"getting a token for {self.registry}"
        if urlsplit(realm).scheme not in ("http", "https"):
            raise AuthenticationError(
                401, "", f"unsupported token realm scheme in {redact_url(realm)}", what=what
            )
        base = await self.base_url()
        send_secret = creds is not None and may_send_basic_to(realm, base)
        headers: dict[str, str] = {}
        refresh = (creds.identity_token if creds else "") or self._tokens.refresh_token()
        if refresh and send_secret:
            form = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": "asyncsync"}
            if challenge.service:
                form["service"] = challenge.service
            if scopes:
                form["scope"] = " ".join(sorted(set(scopes)))
            method, url, data = "POST", realm, urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            query: list[tuple[str, str]] = []
            if challenge.service:
                query.append(("service", challenge.service))
            query.extend(("scope", scope) for scope in sorted(set(scopes)))
            if creds and creds.username and send_secret:
                query.append(("account", creds.username))
                headers["Authorization"] = basic_header(creds)
            query.append(("client_id", "asyncsync"))
            separator = "&" if "?" in realm else "?"
            method, url, data = "GET", realm + separator + urlencode(query), None
        realm_host = urlsplit(realm).netloc
        # The exchange that needs this token already holds a slot of the registry's host; a realm
        # on that same host (Harbor, Quay) must not take a second one from the same task.
        realm_slot = (
            contextlib.nullcontext() if realm_host == self.host else self.session.limiters.hold(realm_host)
        )
        try:
            async with (
                realm_slot,
                self.session.request(
                    method, url, headers=headers, data=data, ssl=self._ssl, allow_redirects=False
                ) as response,
            ):
                if response.status != 200:
                    err = await error_from_response(response, what)
                    if response.status in (401, 403):
                        raise AuthenticationError(
                            401,
                            err.code or "UNAUTHORIZED",
                            "authentication failed (check username and password)",
                            what=what,
                        )
                    raise err
                body, truncated = await read_capped(response, MAX_TOKEN_BODY)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise translate_client_error(exc, what) from None
        if truncated:
            raise TransportError(f"{what}: token response larger than 1 MiB", temporary=False)
        try:
            payload = orjson.loads(body)
            token = str(payload.get("token") or payload.get("access_token") or "")
        except (orjson.JSONDecodeError, AttributeError):
            raise RegistryError(502, "", "token service answered invalid JSON", what=what) from None
        if not token:
            raise RegistryError(502, "", "token service answered without a token", what=what)
        expires_in = payload.get("expires_in")
        return BearerToken(
            token=token,
            expires_at=token_expiry(float(expires_in) if isinstance(expires_in, int | float) else None),
            refresh_token=str(payload.get("refresh_token") or ""),
        )

    # -- requests ------------------------------------------------------------------------

    async def url(self, path: str) -> str:
        """Absolute URL for a registry path (``/v2/...``) or pass an absolute URL through."""
        if path.startswith(("http://", "https://")):
            return path
        return urljoin(await self.base_url(), path)

    @asynccontextmanager
    async def open(
        self,
        method: str,
        path: str,
        *,
        scopes: tuple[str, ...] = (),
        repository: str | None = None,
        headers: Mapping[str, str] | None = None,
        data: Body = None,
        ok: tuple[int, ...] = (200,),
        what: str = "",
        follow_redirects: bool | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One exchange; yields a response whose status is in ``ok`` (body not yet read).

        ``path`` is ``/v2/...`` or an absolute URL (an upload ``Location``). The host's request
        slot is held until the block exits. Errors inside the block that come from aiohttp are
        translated too. ``data`` as ``bytes`` is replayable (a 401 is replayed when that can
        help, see the module docstring); an async iterable is sent once.

        The client's first replayable request to a ``/v2/`` path runs alone and discovers the
        scheme and the challenge on the way; concurrent requests wait until it has answered.
        """
        what = what or f"{method} {self.registry}"
        follow = method in ("GET", "HEAD") if follow_redirects is None else follow_redirects
        replayable = data is None or isinstance(data, bytes)
        relative = not path.startswith(("http://", "https://"))
        async with self.session.limiters.hold(self.host):
            learner = False
            if not self._learned and relative and replayable:
                await self._learn_lock.acquire()
                learner = not self._learned
                if not learner:
                    self._learn_lock.release()
            try:
                try:
                    send = _Exchange(method, path, scopes, repository, headers, data, follow, what)
                    if learner and self._has_credentials(repository):
                        # Credentials to send: learn the challenge first, as the ping costs the same
                        # one 401 that the request would, and a registry that hides private
                        # repositories from anonymous requests (404) cannot mislead us.
                        await self._ping(slot_held=True)
                        response, sent = await self._send(send, await self.url(path), await self.base_url())
                    elif learner:
                        response, sent = await self._send_discovering_scheme(send)
                    else:
                        response, sent = await self._send(send, await self.url(path), await self.base_url())
                    response = await self._replay_unauthorized(send, response, sent, replayable)
                    if learner:
                        self._learned = True
                        self._learn_lock.release()
                        learner = False
                    if response.status not in ok:
                        try:
                            raise await error_from_response(response, what)
                        finally:
                            response.release()
                    try:
                        yield response
                    finally:
                        response.release()
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    raise translate_client_error(exc, what) from None
            finally:
                if learner:
                    self._learn_lock.release()

    async def _send_discovering_scheme(self, send: _Exchange) -> tuple[aiohttp.ClientResponse, str | None]:
        """Send the client's first request: over https, and when TLS verification is off and
        https fails to connect, over plain http (what the ``/v2/`` ping used to find out).
        The scheme that answered becomes the client's base URL."""
        schemes = self._schemes()
        for index, scheme in enumerate(schemes):
            base = f"{scheme}://{self.host}"
            try:
                answer = await self._send(send, urljoin(base, send.path), base)
            except (aiohttp.ClientError, OSError, TimeoutError):
                if index + 1 == len(schemes):
                    raise
                continue
            self._base_url = base
            return answer
        raise AssertionError("unreachable: the last scheme's failure is raised")

    async def _replay_unauthorized(
        self, send: _Exchange, response: aiohttp.ClientResponse, sent: str | None, replayable: bool
    ) -> aiohttp.ClientResponse:
        """Replay a 401 while replaying can change the answer (at most :data:`MAX_AUTH_REPLAYS`)."""
        dropped_token = False
        for _ in range(MAX_AUTH_REPLAYS):
            if response.status != 401:
                return response
            challenge_headers = response.headers.getall("WWW-Authenticate", [])
            verdict = self._after_unauthorized(challenge_headers, sent, send, may_drop=not dropped_token)
            if verdict == "final":
                return response
            dropped_token = dropped_token or verdict == "dropped"
            await self._drain(response)
            if not replayable:
                err = AuthenticationError(401, "", "authorization expired during the request", what=send.what)
                err.temporary = bool(self._challenge and self._challenge.scheme == "bearer")
                raise err
            response, sent = await self._send(send, await self.url(send.path), await self.base_url())
        return response

    def _after_unauthorized(
        self, challenge_headers: list[str], sent: str | None, send: _Exchange, *, may_drop: bool
    ) -> Literal["learned", "renewed", "dropped", "final"]:
        """What a 401 to a request that carried ``sent`` means: ``"learned"`` (a new challenge),
        ``"renewed"`` (another task changed the authorization meanwhile), ``"dropped"`` (the
        bearer token was rejected and is forgotten) - each worth a replay - or ``"final"``."""
        offered = _preferred_challenge(challenge_headers)
        if self.options.registry_token or offered is None:
            return "final"  # a fixed token, or nothing to authenticate with: a replay repeats the 401
        known = self._challenge
        if known is None or _challenge_identity(known) != _challenge_identity(offered):
            self._challenge = offered
            return "learned"
        now = self._current_authorization(send.scopes, send.repository)
        if known.scheme == "basic":
            # The same Basic challenge for the credentials just sent: they are wrong.
            return "renewed" if now is not None and now != sent else "final"
        if now is not None and now != sent:
            return "renewed"
        if not may_drop:
            return "final"
        self._tokens.invalidate(known, send.scopes)
        return "dropped"

    async def _send(
        self, send: _Exchange, url: str, base_url: str
    ) -> tuple[aiohttp.ClientResponse, str | None]:
        """One request (following redirects of GET/HEAD); returns the response and the
        ``Authorization`` it carried to the registry, so a 401 can be judged against it."""
        registry_origin = origin_of(base_url)
        request_headers = dict(send.headers or {})
        auth = await self._authorization(send.scopes, send.repository)
        for _ in range(MAX_REDIRECTS + 1):
            send_headers = dict(request_headers)
            if auth and origin_of(url) == registry_origin:
                send_headers["Authorization"] = auth
            response = await self.session.request(
                send.method, url, headers=send_headers, data=send.data, ssl=self._ssl, allow_redirects=False
            )
            log.debug("%s %s -> %s", send.method, redact_url(url), response.status)
            location = response.headers.get("Location")
            if send.follow and response.status in (301, 302, 303, 307, 308) and location:
                await self._drain(response)
                url = urljoin(url, location)
                if urlsplit(url).scheme not in ("http", "https"):
                    raise UsageError(f"{send.what}: redirect to an unsupported URL scheme")
                continue
            return response, auth
        raise TransportError(f"{send.what}: too many redirects", temporary=False)

    @staticmethod
    async def _drain(response: aiohttp.ClientResponse) -> None:
        try:
            await read_capped(response, 64 * 1024)
        finally:
            response.release()

    async def request(
        self,
        method: str,
        path: str,
        *,
        scopes: tuple[str, ...] = (),
        repository: str | None = None,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        ok: tuple[int, ...] = (200,),
        what: str = "",
        max_body: int = 4 * 1024 * 1024,
        retry: RetryPolicy | None = None,
    ) -> Response:
        """A replayable request whose whole (capped) body is read; retried per the session policy.

        Bodies larger than ``max_body`` raise :class:`~asyncsync.errors.ManifestError`-like
        :class:`TransportError` (not temporary).
        """

        async def attempt() -> Response:
            async with self.open(
                method,
                path,
                scopes=scopes,
                repository=repository,
                headers=headers,
                data=data,
                ok=ok,
                what=what,
            ) as response:
                body = b""
                if method != "HEAD":
                    body, truncated = await read_capped(response, max_body)
                    if truncated:
                        raise TransportError(
                            f"{what or method}: response body larger than {max_body} bytes", temporary=False
                        )
                return Response(response.status, response.headers, body, str(response.url))

        return await with_retries(retry or self.session.retry, attempt, on_retry=self._log_retry(what))

    @staticmethod
    def _log_retry(what: str) -> Any:
        def on_retry(attempt: int, exc: BaseException, wait: float) -> None:
            log.info("retrying %s in %.1fs after attempt %d failed: %s", what, wait, attempt, exc)

        return on_retry
