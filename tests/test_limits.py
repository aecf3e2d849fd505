"""Run-wide limiters: per-host request slots and the blob limiter."""

from __future__ import annotations

import anyio
import pytest

from asyncsync.limits import BlobLimiter, HostLimiters

pytestmark = pytest.mark.anyio


async def test_host_limit_is_never_exceeded() -> None:
    limiters = HostLimiters(default_limit=3)
    active = peak = 0

    async def request() -> None:
        nonlocal active, peak
        async with limiters.hold("a:5000"):
            active += 1
            peak = max(peak, active)
            await anyio.sleep(0.01)
            active -= 1

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(request)
    assert peak == 3
    (stats,) = limiters.statistics()
    assert stats.host == "a:5000"
    assert stats.requests == 20
    assert stats.peak_in_flight == 3
    assert stats.in_flight == 0


async def test_holding_two_hosts_in_opposite_orders_does_not_deadlock() -> None:
    limiters = HostLimiters(default_limit=1)

    async def copy(first: str, second: str) -> None:
        async with limiters.hold(first, second):
            await anyio.sleep(0.001)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for i in range(50):
                pair = ("src", "dst") if i % 2 else ("dst", "src")
                tg.start_soon(copy, *pair)


async def test_configured_limit_and_rate() -> None:
    limiters = HostLimiters(default_limit=8)
    limiters.configure("slow", limit=2, rate=50.0)
    started: list[float] = []

    async def request() -> None:
        async with limiters.hold("slow"):
            started.append(anyio.current_time())

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(request)
    # 50/s -> starts at least 20 ms apart on average; wake-ups under load jitter single gaps,
    # so check the span of all six starts (at least 5 intervals, allowing timer slack).
    assert max(started) - min(started) >= 5 * 0.02 * 0.9
    assert limiters.statistics()[0].limit == 2


async def test_blob_limiter_statistics() -> None:
    limiter = BlobLimiter(limit=2)
    async with limiter.hold():
        stats = limiter.statistics()
        assert stats.in_flight == 1
        assert stats.limit == 2
    assert limiter.statistics().peak_in_flight == 1
