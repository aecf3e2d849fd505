"""The bounded worker pool: images in flight, backpressure, stop and abort."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator

import anyio
import pytest

from asyncsync.sync.scheduler import PoolControl, PoolStatistics, run_pool

pytestmark = pytest.mark.anyio


async def test_never_more_than_parallel_in_flight_and_all_results_delivered() -> None:
    active = peak = 0
    results: list[int] = []

    async def worker(job: int) -> int:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await anyio.sleep(0.001 * (job % 3))
        active -= 1
        return job * 2

    await run_pool(range(100), worker, parallel=7, on_result=lambda job, result: results.append(result))
    assert peak == 7
    assert sorted(results) == [i * 2 for i in range(100)]


async def test_producer_is_backpressured_by_the_bounded_queue() -> None:
    produced = 0
    stats_holder: list[PoolStatistics] = []
    gate = anyio.Event()

    async def jobs() -> AsyncIterator[int]:
        nonlocal produced
        for i in range(1000):
            produced += 1
            yield i

    async def worker(job: int) -> None:
        await gate.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: run_pool(jobs(), worker, parallel=4, on_stats=stats_holder.append))
        await anyio.sleep(0.05)
        # 4 running + 4 queued + 1 held by the blocked producer; nowhere near 1000.
        assert produced <= 4 + 4 + 1
        gate.set()
    assert stats_holder[0].finished == 1000
    assert stats_holder[0].peak_in_flight == 4


async def test_stop_finishes_in_flight_and_takes_no_new_work() -> None:
    control = PoolControl()
    done: list[int] = []

    async def worker(job: int) -> int:
        if job == 3:
            control.stop("fail-fast")
        await anyio.sleep(0.01)
        return job

    await run_pool(range(1000), worker, parallel=2, control=control, on_result=lambda j, r: done.append(r))
    assert control.reason == "fail-fast"
    assert 3 in done
    assert len(done) < 10


async def test_abort_cancels_in_flight_jobs() -> None:
    control = PoolControl()
    finished: list[int] = []

    async def worker(job: int) -> int:
        if job == 0:
            await anyio.sleep(0.01)
            control.abort("aborted")
            return job
        await anyio.sleep(10)
        return job

    with anyio.fail_after(5):
        await run_pool(
            range(5), worker, parallel=3, control=control, on_result=lambda j, r: finished.append(j)
        )
    assert finished == [0]


async def test_first_sigterm_stops_second_aborts() -> None:
    started: list[int] = []
    finished: list[int] = []

    async def worker(job: int) -> int:
        started.append(job)
        if job == 0:
            os.kill(os.getpid(), signal.SIGTERM)
        await anyio.sleep(0.2)
        return job

    with anyio.fail_after(5):
        control = await run_pool(
            range(100), worker, parallel=2, handle_signals=True, on_result=lambda j, r: finished.append(j)
        )
    assert "SIGTERM" in control.reason
    assert len(started) <= 4
    assert set(finished) == set(started)
