"""asyncsync registry clients pointed at a test registry or fault proxy, with test-sized timings.

Unlike the rest of ``tests.helpers`` this module imports ``asyncsync``: it is the glue the
reliability and security tests use to drive the package under test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asyncsync.limits import HostLimiters
from asyncsync.registry.client import RegistryClient, RegistryOptions, RegistrySession
from asyncsync.registry.credentials import Credentials
from asyncsync.retry import RetryPolicy

#: Fast backoff so fault tests take milliseconds per retry; Retry-After still wins when sent.
FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, max_retry_after=5.0)


@asynccontextmanager
async def registry_client(
    host: str,
    *,
    username: str | None = None,
    password: str | None = None,
    retry: RetryPolicy = FAST_RETRY,
    read_timeout: float = 5.0,
    limit: int = 16,
    **options: object,
) -> AsyncIterator[RegistryClient]:
    """A :class:`RegistryClient` for ``host`` in a fresh session (closed on exit).

    Plain-http test registries need ``tls_verify=False`` (the default here, unless ``options``
    sets it); ``username``/``password`` become ``--creds``-style explicit credentials.
    """
    settings: dict[str, object] = {"tls_verify": False, **options}
    if username is not None:
        settings["credentials"] = Credentials(username=username, password=password or "")
    session = RegistrySession(limiters=HostLimiters(limit), retry=retry, read_timeout=read_timeout)
    async with session:
        yield session.client(host, RegistryOptions(**settings))  # type: ignore[arg-type]
