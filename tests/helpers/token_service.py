"""A Docker registry token service for tests (``auth.token`` of CNCF distribution).

It runs an aiohttp application on ``127.0.0.1`` in a background thread with its own event loop, so it
serves requests no matter whether the caller is a sync test, a sync fixture or an anyio test (whose loop
lives in the main thread). Start it with ``with TokenService(...) as svc:`` or ``svc.start()``/``svc.stop()``.

Protocol implemented (https://distribution.github.io/distribution/spec/auth/):

* ``GET /token?service=S&scope=T:NAME:A,B&scope=...`` with optional HTTP Basic credentials, and optional
  ``offline_token=true``. Answers 200 ``{"token", "access_token", "expires_in", "issued_at"}`` (plus
  ``refresh_token`` when ``offline_token=true`` and the caller authenticated). Several scopes may also be
  packed space-separated into one ``scope`` parameter.
* ``POST /token`` (``application/x-www-form-urlencoded``, the OAuth2 variant) with ``grant_type=password``
  (``username``, ``password``) or ``grant_type=refresh_token`` (``refresh_token``), ``service``,
  ``client_id`` (required unless ``require_client_id=False``), ``scope`` (space-separated) and
  ``access_type=offline`` to receive a ``refresh_token``. Answers 200 ``{"access_token", "scope",
  "expires_in", "issued_at"[, "refresh_token"]}``; no ``token`` key, as in the spec.
* Bad credentials (unknown user, wrong password, unknown refresh token, an ``Authorization`` header that is
  not Basic) answer **401**; a malformed POST answers 400.

Policy: an authenticated user is granted every action it asks for; an anonymous caller only the actions in
``anonymous_actions`` (default ``("pull",)``; ``()`` grants nothing). ``policy`` replaces this rule.
Entries with no granted action are left out of the token's ``access`` claim.

Tokens are ES256 JWTs signed by a fresh key whose self-signed certificate must be the registry's
``rootcertbundle`` (:meth:`TokenService.write_root_cert_bundle`); the certificate travels base64-DER in the
JWT header ``x5c``. Claims: ``iss``, ``sub`` (user, ``""`` when anonymous), ``aud`` (the requested
``service``, else the configured one), ``exp``, ``nbf``, ``iat``, ``jti``, ``access``.

Expiry: ``expires_in`` is what the answer advertises; ``jwt_lifetime`` (default: ``expires_in``) is what the
``exp`` claim says. Distribution 2.8 accepts a token up to 60 s after ``exp`` (clock-skew leeway), so to make
the registry refuse a token *now* set ``jwt_lifetime`` to -61 or less.

Every request is recorded as a :class:`TokenRequest` in :attr:`TokenService.requests` (thread-safe
snapshot); :meth:`TokenService.reset` clears it. :meth:`TokenService.issue_token` mints a token in-process
without being recorded (for helpers that must not disturb what tests count).

The attributes ``users``, ``anonymous_actions``, ``expires_in``, ``jwt_lifetime`` and ``policy`` may be
reassigned while the service runs; each request reads them afresh.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import jwt
from aiohttp import web

from tests.helpers.certs import KeyPair, make_signing_cert, write_pem

__all__ = [
    "DEFAULT_ISSUER",
    "DEFAULT_SERVICE",
    "Policy",
    "Scope",
    "TokenRequest",
    "TokenService",
]

DEFAULT_SERVICE = "asyncsync-test-registry"
DEFAULT_ISSUER = "asyncsync-test-issuer"

#: ``policy(user, scope) -> actions granted`` (``user`` is None for anonymous callers). The result is
#: intersected with the requested actions.
Policy = Callable[[str | None, "Scope"], Iterable[str]]


@dataclass(frozen=True, slots=True)
class Scope:
    """One resource scope, e.g. ``repository:foo/bar:pull,push``."""

    type: str
    name: str
    actions: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Scope:
        """Parse ``TYPE:NAME:ACTIONS``; NAME may contain colons (``host:port/repo``). Raises ValueError."""
        kind, sep, rest = text.partition(":")
        name, sep2, actions = rest.rpartition(":")
        if not sep or not sep2 or not kind or not name:
            raise ValueError(f"malformed scope {text!r}")
        return cls(kind, name, tuple(a for a in actions.split(",") if a))

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"

    def claim(self) -> dict[str, Any]:
        """This scope as an entry of the JWT ``access`` claim."""
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """What the token service saw in one request, and what it answered.

    ``scopes`` are the raw requested scope strings (space-separated lists split apart), ``authorization``
    tells whether an ``Authorization`` header was sent, ``user`` is the authenticated user (None when
    anonymous or refused), ``grant_type`` is None for GET, ``offline`` is ``offline_token=true`` (GET) or
    ``access_type=offline`` (POST), ``granted`` is the ``access`` claim of the token issued (empty on error).
    """

    method: str
    service: str | None
    scopes: tuple[str, ...]
    authorization: bool
    user: str | None
    grant_type: str | None
    client_id: str | None
    offline: bool
    status: int
    granted: tuple[Scope, ...]


class _Refused(Exception):
    """A request answered with an error status."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def _merge_scopes(raw: Sequence[str]) -> list[Scope]:
    """Parse scopes, merging the actions of repeated resources in first-seen order."""
    merged: dict[tuple[str, str], list[str]] = {}
    for text in raw:
        scope = Scope.parse(text)
        actions = merged.setdefault((scope.type, scope.name), [])
        actions.extend(a for a in scope.actions if a not in actions)
    return [Scope(kind, name, tuple(actions)) for (kind, name), actions in merged.items()]


def _split_scope_params(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(part for value in values for part in value.split() if part)


class TokenService:
    """A running (after :meth:`start`) token service on ``127.0.0.1``; see the module docstring."""

    def __init__(
        self,
        *,
        users: Mapping[str, str] | None = None,
        service: str = DEFAULT_SERVICE,
        issuer: str = DEFAULT_ISSUER,
        anonymous_actions: Sequence[str] = ("pull",),
        expires_in: int = 300,
        jwt_lifetime: int | None = None,
        policy: Policy | None = None,
        require_client_id: bool = True,
        signing: KeyPair | None = None,
    ) -> None:
        self.users: dict[str, str] = dict(users or {})
        self.service = service
        self.issuer = issuer
        self.anonymous_actions: tuple[str, ...] = tuple(anonymous_actions)
        self.expires_in = expires_in
        self.jwt_lifetime = jwt_lifetime
        self.policy = policy
        self.require_client_id = require_client_id
        self.signing = signing or make_signing_cert()
        self._x5c = [base64.b64encode(self.signing.cert_der).decode("ascii")]
        self._lock = threading.Lock()
        self._requests: list[TokenRequest] = []
        self._refresh_tokens: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 10.0) -> Self:
        """Start serving on a free loopback port; returns self. Raises RuntimeError if already started."""
        if self._thread is not None:
            raise RuntimeError("token service already started")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="token-service", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            self._port = asyncio.run_coroutine_threadsafe(self._serve(), loop).result(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    async def _serve(self) -> int:
        app = web.Application()
        app.router.add_get("/token", self._handle)
        app.router.add_post("/token", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return int(runner.addresses[0][1])

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, join the thread and close its loop. Idempotent."""
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

    # ----------------------------------------------------------------- addresses

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (raises RuntimeError before :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("token service not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def realm(self) -> str:
        """The token endpoint, ``http://127.0.0.1:PORT/token``: the registry's ``auth.token.realm``."""
        return f"{self.url}/token"

    def write_root_cert_bundle(self, path: Path) -> Path:
        """Write the signing certificate (PEM) to ``path`` for the registry's ``rootcertbundle``."""
        return write_pem(path, self.signing.cert_pem)

    # ----------------------------------------------------------------- records

    @property
    def requests(self) -> list[TokenRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        """Forget the recorded requests (refresh tokens stay valid)."""
        with self._lock:
            self._requests.clear()

    def revoke_refresh_tokens(self) -> None:
        """Make every refresh token handed out so far invalid (their use then answers 401)."""
        with self._lock:
            self._refresh_tokens.clear()

    # ----------------------------------------------------------------- minting

    def grant(self, user: str | None, requested: Sequence[str]) -> tuple[Scope, ...]:
        """The scopes a ``user`` (None = anonymous) gets for the ``requested`` scope strings."""
        granted: list[Scope] = []
        for scope in _merge_scopes(requested):
            if self.policy is not None:
                allowed = set(self.policy(user, scope))
            elif user is not None:
                allowed = set(scope.actions)
            else:
                allowed = set(self.anonymous_actions)
            actions = tuple(a for a in scope.actions if a in allowed)
            if actions:
                granted.append(Scope(scope.type, scope.name, actions))
        return tuple(granted)

    def issue_token(
        self,
        user: str | None,
        scopes: Sequence[str] = (),
        *,
        service: str | None = None,
        lifetime: int | None = None,
    ) -> str:
        """Mint a JWT for ``user`` with the scopes :meth:`grant` allows, without an HTTP round trip.

        Not recorded in :attr:`requests`. ``lifetime`` overrides ``jwt_lifetime``/``expires_in``.
        """
        return self._sign(user, self.grant(user, scopes), service or self.service, lifetime)

    def _sign(self, user: str | None, granted: Sequence[Scope], service: str, lifetime: int | None) -> str:
        now = int(time.time())
        if lifetime is None:
            lifetime = self.jwt_lifetime if self.jwt_lifetime is not None else self.expires_in
        claims = {
            "iss": self.issuer,
            "sub": user or "",
            "aud": service,
            "exp": now + lifetime,
            "nbf": now,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": [scope.claim() for scope in granted],
        }
        return jwt.encode(claims, self.signing.key, algorithm="ES256", headers={"x5c": self._x5c})

    # ----------------------------------------------------------------- HTTP

    def _check_password(self, user: str, password: str) -> str:
        if user not in self.users or not secrets.compare_digest(self.users[user].encode(), password.encode()):
            raise _Refused(401, "unauthorized", "incorrect username or password")
        return user

    def _basic_user(self, header: str | None) -> str | None:
        if header is None:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            raise _Refused(401, "unauthorized", "only Basic credentials are accepted here")
        try:
            user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise _Refused(401, "unauthorized", "malformed Basic credentials") from exc
        if not sep:
            raise _Refused(401, "unauthorized", "malformed Basic credentials")
        return self._check_password(user, password)

    def _new_refresh_token(self, user: str) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._refresh_tokens[token] = user
        return token

    async def _handle(self, request: web.Request) -> web.Response:
        form: Mapping[str, str] = {}
        if request.method == "POST":
            form = {key: str(value) for key, value in (await request.post()).items()}
            raw_scopes = _split_scope_params([form.get("scope", "")])
            service = form.get("service")
            grant_type: str | None = form.get("grant_type", "")
            client_id = form.get("client_id")
            offline = form.get("access_type") == "offline"
        else:
            raw_scopes = _split_scope_params(request.query.getall("scope", []))
            service = request.query.get("service")
            grant_type = None
            client_id = request.query.get("client_id")
            offline = request.query.get("offline_token", "").lower() == "true"
        authorization = "Authorization" in request.headers
        user: str | None = None
        granted: tuple[Scope, ...] = ()
        try:
            user, body, granted = self._answer(
                request, form, raw_scopes, service, grant_type, client_id, offline
            )
            status = 200
            response = web.json_response(body)
        except _Refused as refused:
            user, status = None, refused.status
            response = web.json_response(
                {"error": refused.error, "error_description": refused.description}, status=status
            )
            if status == 401:
                response.headers["WWW-Authenticate"] = 'Basic realm="asyncsync-test-token-service"'
        record = TokenRequest(
            method=request.method,
            service=service,
            scopes=raw_scopes,
            authorization=authorization,
            user=user,
            grant_type=grant_type,
            client_id=client_id,
            offline=offline,
            status=status,
            granted=granted,
        )
        with self._lock:
            self._requests.append(record)
        return response

    def _answer(
        self,
        request: web.Request,
        form: Mapping[str, str],
        raw_scopes: tuple[str, ...],
        service: str | None,
        grant_type: str | None,
        client_id: str | None,
        offline: bool,
    ) -> tuple[str | None, dict[str, Any], tuple[Scope, ...]]:
        """Authenticate the request and build the 200 answer; raises :class:`_Refused` otherwise."""
        try:
            _merge_scopes(raw_scopes)
        except ValueError as exc:
            raise _Refused(400, "invalid_scope", str(exc)) from exc
        refresh_token: str | None = None
        if request.method == "GET":
            user = self._basic_user(request.headers.get("Authorization"))
            if offline and user is not None:
                refresh_token = self._new_refresh_token(user)
        else:
            if self.require_client_id and not client_id:
                raise _Refused(400, "invalid_request", "client_id is required")
            if grant_type == "password":
                user = self._check_password(form.get("username", ""), form.get("password", ""))
                if offline:
                    refresh_token = self._new_refresh_token(user)
            elif grant_type == "refresh_token":
                given = form.get("refresh_token", "")
                with self._lock:
                    owner = self._refresh_tokens.get(given)
                if owner is None:
                    raise _Refused(401, "invalid_grant", "unknown refresh token")
                user = owner
                if offline:
                    refresh_token = given
            else:
                raise _Refused(400, "unsupported_grant_type", f"grant_type {grant_type!r} not supported")
        granted = self.grant(user, raw_scopes)
        token = self._sign(user, granted, service or self.service, None)
        issued_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body: dict[str, Any] = {"access_token": token, "expires_in": self.expires_in, "issued_at": issued_at}
        if request.method == "GET":
            body["token"] = token
        else:
            body["scope"] = " ".join(str(scope) for scope in granted)
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        return user, body, granted
