"""Retry policy: which errors are retried, how often, and how long it waits."""

from __future__ import annotations

import time

import anyio
import pytest

from asyncsync.errors import AuthenticationError, RegistryError, TransportError
from asyncsync.retry import RetryPolicy, pause, stoppable_waits, stopping, with_retries

pytestmark = pytest.mark.anyio


async def test_temporary_errors_are_retried_until_success() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise TransportError("reset")
        return "ok"

    assert await with_retries(RetryPolicy(attempts=4, delay=0), flaky) == "ok"
    assert calls == 3


async def test_permanent_errors_are_not_retried() -> None:
    calls = 0

    async def denied() -> None:
        nonlocal calls
        calls += 1
        raise AuthenticationError(401, "UNAUTHORIZED")

    with pytest.raises(AuthenticationError):
        await with_retries(RetryPolicy(attempts=5, delay=0), denied)
    assert calls == 1


async def test_gives_up_after_the_attempt_budget() -> None:
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise RegistryError(503)

    with pytest.raises(RegistryError):
        await with_retries(RetryPolicy(attempts=3, delay=0), down)
    assert calls == 3


def test_backoff_is_capped_exponential_with_jitter() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (10, 5.0)]:
        waits = [policy.backoff(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1


def test_retry_after_overrides_and_is_capped() -> None:
    policy = RetryPolicy(delay=0.1, max_retry_after=30)
    assert policy.backoff(1, retry_after=7) == 7
    assert policy.backoff(1, retry_after=3600) == 30


async def test_a_retry_after_beyond_the_bound_is_not_slept_on() -> None:
    """A 6-hour Retry-After fails at once (the caller defers), instead of sleeping or retrying."""
    calls = 0

    async def busy() -> None:
        nonlocal calls
        calls += 1
        raise RegistryError(429, "TOOMANYREQUESTS", what="reading", retry_after=21600)

    policy = RetryPolicy(attempts=5, max_retry_after=30)
    assert not policy.waits_for(21600) and policy.waits_for(30) and policy.waits_for(None)
    started = time.monotonic()
    with pytest.raises(RegistryError):
        await with_retries(policy, busy)
    assert calls == 1
    assert time.monotonic() - started < 1


def test_from_flags_matches_skopeo_semantics() -> None:
    assert RetryPolicy.from_flags(0, None).attempts == 1
    assert RetryPolicy.from_flags(3, 2.0).attempts == 4
    assert RetryPolicy.from_flags(3, 2.0).backoff(1) == 2.0


async def test_pause_ends_at_once_when_the_run_is_stopping() -> None:
    assert await pause(0.01) is True  # outside a stoppable run: a plain sleep
    with stoppable_waits() as stop:
        assert not stopping()
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: anyio.sleep(0.1))
            started = time.monotonic()

            async def later() -> None:
                await anyio.sleep(0.1)
                stop.set()

            tg.start_soon(later)
            assert await pause(30) is False
        assert time.monotonic() - started < 2
        assert stopping()
    assert not stopping()
