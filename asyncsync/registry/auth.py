"""Registry authentication: challenges, Basic credentials, and bearer tokens.

``WWW-Authenticate`` challenges are parsed per RFC 7235 (quoted values, commas inside
quotes). For a Bearer challenge, tokens are fetched per (realm, service, scopes) and
cached until shortly before they expire; a 401 with ``error="invalid_token"`` drops the
cached token so the next attempt fetches a fresh one.

Credentials are bound to their origin: Basic credentials go only to the registry's own
host, or to a token realm that is https (or on the registry's own host, or when the
registry itself is plain http, where they travel in clear anyway).
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass, field

from asyncsync.http.session import origin_of
from asyncsync.registry.credentials import Credentials

_AUTH_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|$)')


@dataclass(frozen=True, slots=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: scheme (lowercase) and its parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def service(self) -> str:
        return self.params.get("service", "")

    @property
    def scopes(self) -> tuple[str, ...]:
        """Scopes named by the challenge (space-separated per the spec)."""
        return tuple(s for s in self.params.get("scope", "").split(" ") if s)

    @property
    def error(self) -> str:
        return self.params.get("error", "")


def parse_challenges(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` value into challenges (``Bearer realm="...",service="..."``)."""
    challenges: list[Challenge] = []
    rest = header.strip()
    while rest:
        match = re.match(r"([A-Za-z][A-Za-z0-9_-]*)\s*", rest)
        if not match:
            break
        scheme = match.group(1).lower()
        rest = rest[match.end() :]
        params: dict[str, str] = {}
        while rest:
            param = _AUTH_PARAM.match(rest)
            if not param:
                break
            value = param.group(2) if param.group(2) is not None else param.group(3)
            params[param.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
            rest = rest[param.end() :]
            if re.match(r"\s*[A-Za-z][A-Za-z0-9_-]*\s+[A-Za-z0-9_.-]+\s*=", rest) or re.match(
                r"\s*[A-Za-z][A-Za-z0-9_-]*\s*$", rest
            ):
                break  # the next token starts another challenge
        challenges.append(Challenge(scheme, params))
        rest = rest.lstrip(", ")
    return challenges


def preferred_challenge(headers: list[str]) -> Challenge | None:
    """The challenge we answer out of ``WWW-Authenticate`` values: Bearer (with a realm), else Basic."""
    challenges = [c for header in headers for c in parse_challenges(header)]
    bearer = [c for c in challenges if c.scheme == "bearer" and c.realm]
    basic = [c for c in challenges if c.scheme == "basic"]
    return bearer[0] if bearer else basic[0] if basic else None


def challenge_identity(challenge: Challenge) -> tuple[str, str, str]:
    """What makes two challenges the same authority; ``error``/``scope`` parameters vary per 401."""
    return (challenge.scheme, challenge.realm, challenge.service)


def repository_scope(repository: str, *actions: str) -> str:
    """``repository:<name>:<actions>`` as the token protocol spells it."""
    return f"repository:{repository}:{','.join(actions)}"


def basic_header(creds: Credentials) -> str:
    return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()


def may_send_basic_to(url: str, registry_url: str) -> bool:
    """Whether Basic credentials for the registry at ``registry_url`` may be sent to ``url``."""
    target, registry = origin_of(url), origin_of(registry_url)
    if target == registry:
        return True
    if target[0] == "https":
        return True
    # A plain-http realm only for a plain-http registry: the user already sends these credentials
    # in clear (the registry chose the realm); an https registry must not leak them to plain http.
    return registry[0] == "http"


@dataclass(slots=True)
class BearerToken:
    token: str = field(repr=False)
    expires_at: float
    refresh_token: str = field(default="", repr=False)

    def fresh(self, now: float | None = None) -> bool:
        return (now or time.monotonic()) < self.expires_at


#: Tokens are renewed this long before they expire (or at 90% of their life if shorter).
EXPIRY_MARGIN_SECONDS = 30.0
DEFAULT_TOKEN_LIFETIME = 60.0


def token_expiry(expires_in: float | None, now: float | None = None) -> float:
    """Monotonic time at which a token with ``expires_in`` seconds of life should be renewed."""
    life = float(expires_in) if expires_in and expires_in > 0 else DEFAULT_TOKEN_LIFETIME
    margin = min(EXPIRY_MARGIN_SECONDS, life * 0.1)
    return (now or time.monotonic()) + life - margin


class TokenCache:
    """Bearer tokens keyed by (realm, service, sorted scopes)."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, tuple[str, ...]], BearerToken] = {}

    @staticmethod
    def key(challenge: Challenge, scopes: tuple[str, ...]) -> tuple[str, str, tuple[str, ...]]:
        return (challenge.realm, challenge.service, tuple(sorted(set(scopes))))

    def get(self, challenge: Challenge, scopes: tuple[str, ...]) -> BearerToken | None:
        token = self._tokens.get(self.key(challenge, scopes))
        return token if token is not None and token.fresh() else None

    def put(self, challenge: Challenge, scopes: tuple[str, ...], token: BearerToken) -> None:
        self._tokens[self.key(challenge, scopes)] = token

    def invalidate(self, challenge: Challenge, scopes: tuple[str, ...]) -> None:
        self._tokens.pop(self.key(challenge, scopes), None)

    def refresh_token(self) -> str:
        """Any refresh token the service handed out (OAuth2 ``access_type=offline``)."""
        for token in self._tokens.values():
            if token.refresh_token:
                return token.refresh_token
        return ""
