"""The bounded worker pool: images in flight, backpressure, stop and abort."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from asyncsync.errors import RegistryError
from asyncsync.retry import RetryPolicy, with_retries
from asyncsync.sync.scheduler import PoolControl, PoolStatistics, run_pool
from tests.helpers.asyncsync_cli import REPO_ROOT
from tests.helpers.fault_proxy import Fault, FaultProxy
from tests.helpers.images import list_tags_sync, make_image, push_image_sync
from tests.helpers.registry import RegistryFactory

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


async def test_first_signal_ends_retry_waits_at_once() -> None:
    """A job sleeping before a retry (here a 50 s Retry-After) is released by the first SIGTERM."""
    outcomes: list[str] = []

    async def busy() -> None:
        raise RegistryError(503, what="reading", retry_after=50)

    async def worker(job: int) -> int:
        if job == 0:
            await anyio.sleep(0.2)  # job 1 is in its Retry-After wait by now
            os.kill(os.getpid(), signal.SIGTERM)
        try:
            await with_retries(RetryPolicy(attempts=3), busy)
        except RegistryError:
            outcomes.append("gave up")
        return job

    started = anyio.current_time()
    with anyio.fail_after(5):
        control = await run_pool(range(2), worker, parallel=2, handle_signals=True)
    assert anyio.current_time() - started < 2
    assert outcomes == ["gave up", "gave up"]
    assert "SIGTERM" in control.reason


async def test_in_flight_jobs_are_abandoned_after_the_grace() -> None:
    async def worker(job: int) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        await anyio.sleep(30)  # an upload that would not finish in time
        return job

    started = anyio.current_time()
    with anyio.fail_after(5):
        control = await run_pool(range(3), worker, parallel=1, handle_signals=True, grace=0.3)
    assert anyio.current_time() - started < 2
    assert "abandoned 0.3s after SIGTERM" in control.reason


def test_sigterm_ends_a_retry_after_wait_of_a_real_sync_within_seconds(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    """A real ``asyncsync sync`` process waiting on a 50 s Retry-After exits within seconds of SIGTERM,
    leaving no tag at the destination."""
    source, dest = make_registry("anon"), make_registry("anon")
    push_image_sync(source, "team/app", "v1", make_image("stop-retry-after", layers=2))
    with FaultProxy(source.host) as proxy:
        proxy.add_rule(
            Fault.too_many_requests("seconds", delay=50), method="GET", path=r"/v2/.+/blobs/.+", times=0
        )
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "asyncsync",
                "sync",
                "--src",
                "docker",
                "--dest",
                "docker",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                "--no-mount-cache",
                f"{proxy.address}/team/app",
                f"{dest.host}/mirror",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while proxy.count("GET", r"/v2/.+/blobs/.+", status=429) == 0:
                assert time.monotonic() < deadline, "the sync never reached a blob"
                assert process.poll() is None, process.communicate()[0].decode()
                time.sleep(0.05)
            time.sleep(0.5)  # now inside the Retry-After wait
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=30)
            took = time.monotonic() - signalled
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    text = output.decode(errors="replace")
    print(f"sync exited {took:.2f}s after SIGTERM")  # the figure, with -s
    assert took < 5, f"exit took {took:.1f}s after SIGTERM:\n{text}"
    assert process.returncode == 1, text
    assert "SIGTERM received" in text
    assert "Traceback" not in text
    assert list_tags_sync(dest, "mirror/app") == []


async def test_interrupt_with_a_grace_cancels_in_flight_jobs_when_it_ends() -> None:
    control = PoolControl()
    finished: list[int] = []

    async def job(n: int) -> int:
        if n == 0:
            control.interrupt("stop", grace=0.2)
            return n
        await anyio.sleep(3600 if n == 1 else 0)
        return n

    with anyio.fail_after(10):
        await run_pool([0, 1], job, parallel=2, control=control, on_result=lambda j, r: finished.append(r))
    assert finished == [0]  # job 1 was cancelled at the end of the grace
    assert control.stopped
