"""The ``Authorization`` a request to one registry carries, and what a 401 to it means.

Credentials belong to a repository: explicit ones (``--creds``, ``--registry-token``) cover the
whole registry, stored ones are looked up per repository (the most specific auth-file key
wins, :class:`~asyncsync.registry.credentials.StoredCredentials`) and remembered per
repository for the client's life. Bearer tokens are cached per (credentials, realm, service,
scopes) and fetched once however many tasks need them at the same time; a refresh token the
service hands out is used only for the credentials that obtained it.

A 401 is judged by :meth:`Authorizer.after_unauthorized` against the ``Authorization`` the
request carried: replay when the challenge was just learned, when another task changed the
authorization meanwhile (a renewed token), or once after dropping a rejected token; the same
Basic challenge for the credentials just sent is final (a wrong password is refused once).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal, Protocol

from asyncsync.limits import SingleFlight
from asyncsync.registry.auth import (
    BearerToken,
    TokenCache,
    basic_header,
    challenge_identity,
    preferred_challenge,
)
from asyncsync.registry.credentials import Credentials, StoredCredentials
from asyncsync.registry.endpoint import Endpoint
from asyncsync.registry.tokens import TokenRequest

Verdict = Literal["learned", "renewed", "dropped", "final"]
TokenFetcher = Callable[[TokenRequest], Awaitable[BearerToken]]
_TokenKey = tuple[Credentials | None, tuple[str, str, tuple[str, ...]]]


class CredentialChoice(Protocol):
    """Where a client's credentials come from (:class:`~asyncsync.registry.client.RegistryOptions`).

    ``credentials`` are ``--creds``; ``registry_token`` a fixed bearer token sent as is;
    ``no_creds`` sends nothing; with none of them, stored credentials answer per repository.
    """

    @property
    def credentials(self) -> Credentials | None: ...

    @property
    def registry_token(self) -> str | None: ...

    @property
    def no_creds(self) -> bool: ...


class Authorizer:
    """Authorization for one client: the registry reached at ``endpoint``, with the credentials
    ``choice`` names, else those ``stored`` for each repository; tokens come from ``fetch``."""

    def __init__(
        self, endpoint: Endpoint, choice: CredentialChoice, *, stored: StoredCredentials, fetch: TokenFetcher
    ) -> None:
        self.endpoint = endpoint
        self._choice = choice
        self._registry_token = choice.registry_token
        self._stored = stored
        self._fetch = fetch
        self._per_repository: dict[str | None, Credentials | None] = {}
        self._tokens: dict[Credentials | None, TokenCache] = {}
        # One fetch per key at a time; the TokenCache keeps the tokens (they expire), not the flight.
        self._token_fetches: SingleFlight[_TokenKey, BearerToken] = SingleFlight(cache=False)

    # -- credentials -------------------------------------------------------------------

    async def credentials(self, repository: str | None = None) -> Credentials | None:
        """Explicit ``--creds``, else the stored credentials for ``repository`` (``None``: the
        registry's own entry); ``None`` with ``no_creds``."""
        if self._choice.no_creds:
            return None
        if self._choice.credentials is not None:
            return self._choice.credentials
        if repository not in self._per_repository:
            found = await self._stored.lookup(self.endpoint.registry, repository)
            self._per_repository[repository] = found
        return self._per_repository[repository]

    async def has_credentials(self, repository: str | None) -> bool:
        """Whether requests for ``repository`` would carry a username/password (a fixed
        ``--registry-token`` needs no challenge: it is sent as it is)."""
        if self._registry_token:
            return False
        creds = await self.credentials(repository)
        return creds is not None and bool(creds.username or creds.identity_token)

    def _cache(self, creds: Credentials | None) -> TokenCache:
        cache = self._tokens.get(creds)
        if cache is None:
            cache = self._tokens[creds] = TokenCache()
        return cache

    # -- authorization -------------------------------------------------------------------

    async def current(self, scopes: tuple[str, ...], repository: str | None) -> str | None:
        """The ``Authorization`` value a request would carry now, without fetching anything;
        ``None`` also when a bearer token for ``scopes`` is not cached yet."""
        return self._current(scopes, await self.credentials(repository))

    def _current(self, scopes: tuple[str, ...], creds: Credentials | None) -> str | None:
        if self._registry_token:
            return f"Bearer {self._registry_token}"
        challenge = self.endpoint.challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            return basic_header(creds) if creds and creds.username else None
        token = self._cache(creds).get(challenge, scopes)
        return f"Bearer {token.token}" if token is not None else None

    async def authorization(self, scopes: tuple[str, ...], repository: str | None) -> str | None:
        """:meth:`current`, fetching a bearer token first when one is needed (once per key,
        however many tasks ask at the same time)."""
        creds = await self.credentials(repository)
        current = self._current(scopes, creds)
        challenge = self.endpoint.challenge
        if current is not None or challenge is None or challenge.scheme != "bearer":
            return current
        cache = self._cache(creds)
        key = (creds, TokenCache.key(challenge, scopes))

        async def fetch() -> BearerToken:
            token = cache.get(challenge, scopes)  # fetched by a flight that ended since current()
            if token is None:
                refresh = (creds.identity_token if creds else "") or cache.refresh_token()
                token = await self._fetch(TokenRequest(challenge, scopes, creds, refresh))
                cache.put(challenge, scopes, token)
            return token

        token = await self._token_fetches.do(key, fetch)
        return f"Bearer {token.token}"

    async def after_unauthorized(
        self,
        challenge_headers: list[str],
        sent: str | None,
        scopes: tuple[str, ...],
        repository: str | None,
        *,
        may_drop: bool,
    ) -> Verdict:
        """What a 401 to a request that carried ``sent`` means: ``"learned"`` (a new challenge),
        ``"renewed"`` (another task changed the authorization meanwhile), ``"dropped"`` (the
        bearer token was rejected and is forgotten) - each worth a replay - or ``"final"``."""
        offered = preferred_challenge(challenge_headers)
        if self._registry_token or offered is None:
            return "final"  # a fixed token, or nothing to authenticate with: a replay repeats the 401
        known = self.endpoint.challenge
        if known is None or challenge_identity(known) != challenge_identity(offered):
            self.endpoint.challenge = offered
            return "learned"
        now = await self.current(scopes, repository)
        if known.scheme == "basic":
            # The same Basic challenge for the credentials just sent: they are wrong.
            return "renewed" if now is not None and now != sent else "final"
        if now is not None and now != sent:
            return "renewed"
        if not may_drop:
            return "final"
        self._cache(await self.credentials(repository)).invalidate(known, scopes)
        return "dropped"
