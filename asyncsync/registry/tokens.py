"""Bearer tokens from a registry's token service (the Docker token protocol and its OAuth2 form).

:func:`fetch_token` asks the challenge's realm for a token covering ``scopes``:

* with a refresh token (an identity token from the auth file, or one the service handed out
  to the same credentials), ``POST`` ``grant_type=refresh_token`` (OAuth2);
* otherwise ``GET realm?service=&scope=...&account=`` with Basic credentials, or anonymously.

Secrets reach the realm only where :func:`~asyncsync.registry.auth.may_send_basic_to` allows
(https, the registry's own host, or a registry that is plain http itself). A refused login
(401/403) says "authentication failed"; an answer without a token is a 502.
"""

from __future__ import annotations

import contextlib
import ssl
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import orjson

from asyncsync.errors import AuthenticationError, RegistryError, TransportError, redact_url
from asyncsync.http.errors import error_from_response, mapped, read_capped
from asyncsync.http.session import HttpSession
from asyncsync.registry.auth import BearerToken, Challenge, basic_header, may_send_basic_to, token_expiry
from asyncsync.registry.credentials import Credentials

MAX_TOKEN_BODY = 1024 * 1024


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """What to ask a token service for: ``scopes`` under ``challenge``, as ``creds`` (or anonymously)."""

    challenge: Challenge
    scopes: tuple[str, ...]
    creds: Credentials | None
    #: A refresh token for ``creds`` (their identity token, or one the service gave them).
    refresh_token: str = ""


async def fetch_token(
    session: HttpSession,
    request: TokenRequest,
    *,
    registry: str,
    host: str,
    base_url: str,
    ssl: ssl.SSLContext | bool,
) -> BearerToken:
    """One token from ``request.challenge``'s realm for the registry at ``base_url``.

    The task calling this holds a request slot of ``host``; a realm on that same host (Harbor,
    Quay) must not take a second one from the same task.
    """
    challenge, scopes, creds = request.challenge, request.scopes, request.creds
    realm = challenge.realm
    what = f"getting a token for {registry}"
    if urlsplit(realm).scheme not in ("http", "https"):
        raise AuthenticationError(
            401, "", f"unsupported token realm scheme in {redact_url(realm)}", what=what
        )
    send_secret = creds is not None and may_send_basic_to(realm, base_url)
    headers: dict[str, str] = {}
    if request.refresh_token and send_secret:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": request.refresh_token,
            "client_id": "asyncsync",
        }
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
    realm_slot = contextlib.nullcontext() if realm_host == host else session.limiters.hold(realm_host)
    with mapped(what):
        async with (
            realm_slot,
            session.request(
                method, url, headers=headers, data=data, ssl=ssl, allow_redirects=False
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
    if truncated:
        raise TransportError(f"{what}: token response larger than 1 MiB", temporary=False)
    return _parse_token(body, what)


def _parse_token(body: bytes, what: str) -> BearerToken:
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
