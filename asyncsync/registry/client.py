"""The HTTP client for the Distribution API: requests to one registry, with auth and retries.

:class:`RegistrySession` is created once per command run: the run's
:class:`~asyncsync.http.session.HttpSession` (aiohttp session, proxies, host limiters, retry
policy) plus one :class:`RegistryClient` per (registry host, options) and one credential lookup
per auth file. A client is put together from

* :class:`~asyncsync.registry.endpoint.Endpoint` - scheme and challenge, learned by the first
  request (an anonymous client learns from its 401; a client with credentials pings first);
* :class:`~asyncsync.registry.authorizer.Authorizer` - credentials per repository, bearer
  tokens (:mod:`asyncsync.registry.tokens`), and what a 401 means.

Every request goes through :meth:`RegistryClient.open`, which

* holds one request slot of the host for the whole exchange (body included);
* adds ``Authorization`` for the requested token scopes; a 401 is replayed (at most
  :data:`MAX_AUTH_REPLAYS` times, and only with a replayable body) when replaying can change
  the answer (see :mod:`asyncsync.registry.authorizer`);
* follows redirects of GET/HEAD (:meth:`HttpSession.send
  <asyncsync.http.session.HttpSession.send>`), dropping ``Authorization`` when the origin changes;
* turns any non-expected status into a :class:`~asyncsync.errors.RegistryError` and any
  aiohttp failure into a :class:`~asyncsync.errors.TransportError`
  (:mod:`asyncsync.http.errors`, the one place that does it).

Retries of whole operations live in :meth:`RegistryClient.request` (replayable requests)
and in the copy engine (streamed blobs).
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import TypedDict, Unpack
from urllib.parse import urljoin

import aiohttp

from asyncsync.errors import AuthenticationError, RegistryError, TransportError
from asyncsync.http.errors import error_from_response, mapped
from asyncsync.http.session import Body, HttpSession, Response, drain, read_response
from asyncsync.http.tls import ssl_context_for
from asyncsync.quota import parse_ratelimit
from asyncsync.registry.auth import BearerToken
from asyncsync.registry.authorizer import Authorizer
from asyncsync.registry.credentials import Credentials, StoredCredentials
from asyncsync.registry.endpoint import Endpoint
from asyncsync.registry.tokens import TokenRequest, fetch_token
from asyncsync.retry import RetryPolicy

__all__ = ["Body", "RegistryClient", "RegistryOptions", "RegistrySession", "Response"]

DOCKER_HUB = "docker.io"
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
#: A 401 can need two replays: learn the challenge, then renew a token the registry rejected.
MAX_AUTH_REPLAYS = 2


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


class RegistrySession(HttpSession):
    """One per run: the HTTP session (same arguments as :class:`HttpSession`), and the registry
    clients made on it. Use as ``async with``."""

    async def __aenter__(self) -> RegistrySession:
        await super().__aenter__()
        return self

    @functools.cached_property
    def _clients(self) -> dict[tuple[str, RegistryOptions], RegistryClient]:
        return {}

    @functools.cached_property
    def _stored(self) -> dict[str | None, StoredCredentials]:
        return {}

    def client(self, registry: str, options: RegistryOptions | None = None) -> RegistryClient:
        """The client for ``registry`` (a reference domain such as ``docker.io`` or ``host:5000``)."""
        options = options or RegistryOptions()
        key = (registry, options)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = RegistryClient(self, registry, options)
        return client

    def stored_credentials(self, authfile: str | os.PathLike[str] | None) -> StoredCredentials:
        """The run's lookup of stored credentials for ``authfile`` (files read once, helpers
        asked once per server)."""
        key = os.fspath(authfile) if authfile is not None else None
        stored = self._stored.get(key)
        if stored is None:
            stored = self._stored[key] = StoredCredentials(authfile)
        return stored


def _joined(base_url: str, path: str) -> str:
    """``urljoin(base_url, path)`` for a ``scheme://host`` base: a ``/v2/...`` path without dot
    segments is appended as it is (urljoin parses both strings: about 10 us per request)."""
    if path.startswith("/") and not path.startswith("//") and "/." not in path:
        return base_url + path
    return urljoin(base_url, path)


def _endpoint_host(registry: str) -> str:
    return DOCKER_HUB_ENDPOINT if registry == DOCKER_HUB else registry


class ExchangeOptions(TypedDict, total=False):
    """What :meth:`RegistryClient.open` and :meth:`RegistryClient.request` take besides the body.

    ``scopes`` are the token scopes the request needs, ``repository`` the one whose credentials
    it carries, ``ok`` the statuses that are not errors (default 200), ``what`` the words an
    error message starts with.
    """

    scopes: tuple[str, ...]
    repository: str | None
    headers: Mapping[str, str] | None
    ok: tuple[int, ...]
    what: str


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
        #: What to pass as aiohttp's ``ssl=`` for this registry (also used by the Harbor API).
        self.ssl: ssl.SSLContext | bool = ssl_context_for(
            self.host, verify=options.tls_verify, cert_dir=options.cert_dir
        )
        self.endpoint = Endpoint(session, registry, self.host, self.ssl, tls_verify=options.tls_verify)
        stored = session.stored_credentials(options.authfile)
        self.auth = Authorizer(self.endpoint, options, stored=stored, fetch=self._fetch_token)

    async def credentials(self, repository: str | None = None) -> Credentials | None:
        """Explicit ``--creds``, else stored credentials for ``repository``; ``None`` with ``no_creds``."""
        return await self.auth.credentials(repository)

    async def base_url(self) -> str:
        """``scheme://host`` of the registry (pings ``/v2/`` when no request has found it yet)."""
        return await self.endpoint.base_url()

    async def url(self, path: str) -> str:
        """Absolute URL for a registry path (``/v2/...``) or pass an absolute URL through."""
        if path.startswith(("http://", "https://")):
            return path
        return _joined(await self.base_url(), path)

    async def _fetch_token(self, request: TokenRequest) -> BearerToken:
        return await fetch_token(
            self.session,
            request,
            registry=self.registry,
            host=self.host,
            base_url=await self.base_url(),
            ssl=self.ssl,
        )

    # -- requests ------------------------------------------------------------------------

    @asynccontextmanager
    async def open(
        self,
        method: str,
        path: str,
        *,
        data: Body = None,
        follow_redirects: bool | None = None,
        **options: Unpack[ExchangeOptions],
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One exchange; yields a response whose status is in ``ok`` (body not yet read).

        ``path`` is ``/v2/...`` or an absolute URL (an upload ``Location``). The host's request
        slot is held until the block exits. Errors inside the block that come from aiohttp are
        translated too. ``data`` as ``bytes`` is replayable (a 401 is replayed when that can
        help, see the module docstring); an async iterable is sent once.

        The client's first replayable request to a ``/v2/`` path runs alone and discovers the
        scheme and the challenge on the way; concurrent requests wait until it has answered.

        Manifest answers feed the run's pull quota (:mod:`asyncsync.quota`, see
        :meth:`_pull_quota`): a manifest GET is one pull, claimed before it is sent (refused
        with :class:`~asyncsync.errors.QuotaDeferredError` when the host's quota is down to the
        reserve or spent).
        """
        what = options.get("what") or f"{method} {self.registry}"
        ok = options.get("ok", (200,))
        repository = options.get("repository")
        follow = method in ("GET", "HEAD") if follow_redirects is None else follow_redirects
        replayable = data is None or isinstance(data, bytes)
        relative = not path.startswith(("http://", "https://"))
        scopes, headers = options.get("scopes", ()), options.get("headers")
        send = _Exchange(method, path, scopes, repository, headers, data, follow, what)
        with self._pull_quota(method, path) as answered:
            async with self._exchange(send, replayable, relative, ok) as response:
                answered(response.headers)
                yield response

    @asynccontextmanager
    async def _exchange(
        self, send: _Exchange, replayable: bool, relative: bool, ok: tuple[int, ...]
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The exchange of :meth:`open`, in the host's request slot."""
        what, path, repository = send.what, send.path, send.repository
        async with self.session.limiters.hold(self.host):
            learner = relative and replayable and not self.endpoint.learned and await self.endpoint.claim()
            try:
                with mapped(what):
                    if learner and await self.auth.has_credentials(repository):
                        # Credentials to send: learn the challenge first, as the ping costs the same
                        # one 401 that the request would, and a registry that hides private
                        # repositories from anonymous requests (404) cannot mislead us.
                        await self.endpoint.ping(slot_held=True)
                        response, sent = await self._send(send)
                    elif learner:
                        response, sent = await self.endpoint.discover(functools.partial(self._send, send))
                    else:
                        response, sent = await self._send(send)
                    response = await self._replay_unauthorized(send, response, sent, replayable)
                    if learner:
                        self.endpoint.finish()
                        learner = False
                    if response.status not in ok:
                        try:
                            raise self._quota_error(path, response, await error_from_response(response, what))
                        finally:
                            response.release()
                    try:
                        yield response
                    finally:
                        response.release()
            finally:
                if learner:
                    self.endpoint.abandon()

    @contextmanager
    def _pull_quota(self, method: str, path: str) -> Iterator[Callable[[Mapping[str, str]], None]]:
        """What the run's pull quota learns from one exchange; yields where the answer's headers go.

        Every manifest answer's ``ratelimit-*`` headers are read (HEADs included); a manifest GET
        claims one pull before it is sent and gives it back with its answer (``None``: it failed).
        Other requests are not counted."""
        quotas = self.session.quotas
        if "/manifests/" not in path or method not in ("GET", "HEAD"):
            yield lambda headers: None
            return
        if method == "HEAD":
            yield functools.partial(quotas.observe, self.host)
            return
        quotas.begin_pull(self.host)
        answered: list[Mapping[str, str]] = []
        try:
            yield answered.append
        finally:
            quotas.end_pull(self.host, answered[0] if answered else None)

    def _quota_error(self, path: str, response: aiohttp.ClientResponse, error: RegistryError) -> Exception:
        """The error to raise for a failed answer. A manifest's 429 that says the pull quota is
        spent (``ratelimit-remaining: 0``, as Docker Hub's ``TOOMANYREQUESTS`` does) or asks for a
        longer wait than the retry policy makes (``Retry-After``) stops the host's pulls
        (:meth:`PullQuotas.exhausted`); a short 429 without quota headers is an ordinary
        temporary error, retried after its ``Retry-After``."""
        if "/manifests/" not in path:
            return error
        quotas = self.session.quotas
        quotas.observe(self.host, response.headers)
        if error.status != 429:
            return error
        reading = parse_ratelimit(response.headers)
        spent = reading is not None and reading.remaining == 0
        if spent or not self.session.retry.waits_for(error.retry_after):
            return quotas.exhausted(self.host, error.retry_after)
        return error

    async def _replay_unauthorized(
        self, send: _Exchange, response: aiohttp.ClientResponse, sent: str | None, replayable: bool
    ) -> aiohttp.ClientResponse:
        """Replay a 401 while replaying can change the answer (at most :data:`MAX_AUTH_REPLAYS`)."""
        dropped_token = False
        for _ in range(MAX_AUTH_REPLAYS):
            if response.status != 401:
                return response
            verdict = await self.auth.after_unauthorized(
                response.headers.getall("WWW-Authenticate", []),
                sent,
                send.scopes,
                send.repository,
                may_drop=not dropped_token,
            )
            if verdict == "final":
                return response
            dropped_token = dropped_token or verdict == "dropped"
            await drain(response)
            if not replayable:
                err = AuthenticationError(401, "", "authorization expired during the request", what=send.what)
                challenge = self.endpoint.challenge
                err.temporary = bool(challenge and challenge.scheme == "bearer")
                raise err
            response, sent = await self._send(send)
        return response

    async def _send(
        self, send: _Exchange, base_url: str | None = None
    ) -> tuple[aiohttp.ClientResponse, str | None]:
        """One request (following redirects of GET/HEAD) to the registry at ``base_url`` (default:
        the known one); returns the response and the ``Authorization`` it carried to the
        registry, so a 401 can be judged against it."""
        if base_url is None:
            base_url = await self.base_url()
        path = send.path
        url = path if path.startswith(("http://", "https://")) else _joined(base_url, path)
        auth = await self.auth.authorization(send.scopes, send.repository)
        response = await self.session.send(
            send.method,
            url,
            ssl=self.ssl,
            what=send.what,
            headers=send.headers,
            data=send.data,
            authorization=auth,
            auth_origin=base_url,
            follow=send.follow,
        )
        return response, auth

    async def request(
        self,
        method: str,
        path: str,
        *,
        data: bytes | None = None,
        max_body: int = 4 * 1024 * 1024,
        retry: RetryPolicy | None = None,
        **options: Unpack[ExchangeOptions],
    ) -> Response:
        """A replayable request (:meth:`open`) whose whole (capped) body is read; retried per the
        session policy (or ``retry``).

        Bodies larger than ``max_body`` raise a :class:`~asyncsync.errors.TransportError`
        that is not temporary.
        """
        what = options.get("what", "")

        async def attempt() -> Response:
            async with self.open(method, path, data=data, **options) as response:
                answer = await read_response(response, max_body)
                if answer is None:
                    raise TransportError(
                        f"{what or method}: response body larger than {max_body} bytes", temporary=False
                    )
                return answer

        return await self.session.retrying(attempt, what, retry)
