"""Retry policy: capped exponential backoff with full jitter, honouring ``Retry-After``.

Only errors whose ``temporary`` attribute is true are retried (see ``asyncsync.errors``);
everything else is raised at once. ``--retry-times`` / ``--retry-delay`` build the policy.

Every wait before a retry goes through :func:`pause`, which ends at once when the run is
stopping (:func:`stoppable_waits`, set by the sync's pool; the first SIGTERM/SIGINT sets it):
the retry is then given up and the error that caused it is raised, so no backoff sleep or
``Retry-After`` wait holds a stopping process.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

import anyio

T = TypeVar("T")

DEFAULT_ATTEMPTS = 4


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts`` is the total number of tries (1 = no retry).

    ``delay`` fixes the wait between tries (skopeo's ``--retry-delay``); when ``None`` the
    wait is exponential from ``base_delay`` up to ``max_delay``, with full jitter. A server's
    ``Retry-After`` overrides both; one longer than ``max_retry_after`` is not waited for at
    all (:meth:`waits_for` is false): a one-shot command fails (or defers) at once instead of
    sleeping for hours.
    """

    attempts: int = 4  # keep equal to DEFAULT_ATTEMPTS
    delay: float | None = None
    base_delay: float = 0.2
    max_delay: float = 10.0
    max_retry_after: float = 60.0

    @classmethod
    def from_flags(cls, retry_times: int | None, retry_delay: float | None) -> RetryPolicy:
        attempts = DEFAULT_ATTEMPTS if retry_times is None else max(0, retry_times) + 1
        return cls(attempts=attempts, delay=retry_delay)

    def waits_for(self, retry_after: float | None) -> bool:
        """Whether a ``Retry-After`` of this many seconds is worth waiting for."""
        return retry_after is None or retry_after <= self.max_retry_after

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before try number ``attempt + 1`` (``attempt`` counts from 1)."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_retry_after)
        if self.delay is not None:
            return self.delay
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)


NO_RETRY = RetryPolicy(attempts=1)

#: Set while a stoppable run is going; the event is set when it is asked to stop.
_STOPPING: ContextVar[anyio.Event | None] = ContextVar("asyncsync_stopping", default=None)


@contextmanager
def stoppable_waits() -> Iterator[anyio.Event]:
    """Within this block (and tasks started in it), :func:`pause` ends at once after the returned
    event is set. Tasks started inside inherit it (context variables are copied at task start)."""
    event = anyio.Event()
    token = _STOPPING.set(event)
    try:
        yield event
    finally:
        _STOPPING.reset(token)


def stopping() -> bool:
    """Whether the current run was asked to stop."""
    event = _STOPPING.get()
    return event is not None and event.is_set()


async def pause(seconds: float) -> bool:
    """Sleep ``seconds`` before a retry; ``False`` (at once) when the run is stopping."""
    event = _STOPPING.get()
    if event is None:
        await anyio.sleep(seconds)
        return True
    with anyio.move_on_after(seconds):
        await event.wait()
    return not event.is_set()


def is_temporary(exc: BaseException) -> bool:
    return bool(getattr(exc, "temporary", False))


async def with_retries(
    policy: RetryPolicy,
    operation: Callable[[], Awaitable[T]],
    *,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
) -> T:
    """Run ``operation`` until it succeeds, fails permanently, or the attempts are used up."""
    attempt = 1
    while True:
        try:
            return await operation()
        except Exception as exc:
            retry_after = getattr(exc, "retry_after", None)
            if attempt >= policy.attempts or not is_temporary(exc) or not policy.waits_for(retry_after):
                raise
            wait = policy.backoff(attempt, retry_after)
            if stopping():
                raise
            if on_retry is not None:
                on_retry(attempt, exc, wait)
            if not await pause(wait):
                raise
            attempt += 1
