"""Run-wide limiters: per-host request slots and the blob limiter."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import anyio.lowlevel
import pytest

from asyncsync.limits import (
    DEFAULT_BLOBS_IN_FLIGHT,
    DEFAULT_COPY_BLOBS_IN_FLIGHT,
    MIN_CHECKS_IN_FLIGHT,
    MIN_REQUESTS_PER_HOST,
    BlobLimiter,
    HostLimiters,
    KeyedLock,
    KeyedLockStatistics,
    PoolSizes,
    SingleFlight,
    SingleFlightStatistics,
    checks_in_flight,
    pool_sizes,
)

pytestmark = pytest.mark.anyio


async def wait_until(condition: Callable[[], bool]) -> None:
    """Yield to the other tasks until ``condition`` holds (at most 5 s)."""
    with anyio.fail_after(5):
        while not condition():
            await anyio.lowlevel.checkpoint()


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


async def test_a_free_slot_is_taken_without_passing_through_the_event_loop() -> None:
    # Every request takes a slot: with one free (and nobody waiting) the task goes on at once;
    # anyio's CapacityLimiter would let every other ready task run first (twice).
    limiters, blobs = HostLimiters(default_limit=2), BlobLimiter(limit=2)
    others_ran = False

    async def other() -> None:
        nonlocal others_ran
        others_ran = True

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        async with limiters.hold("a:5000"), blobs.hold():
            assert not others_ran
            assert limiters.statistics()[0].in_flight == 1
            assert blobs.statistics().in_flight == 1
    assert others_ran
    assert limiters.statistics()[0].in_flight == 0
    assert blobs.statistics().in_flight == 0


async def test_a_task_that_lets_go_of_a_slot_queues_behind_the_waiting_ones() -> None:
    limiters = HostLimiters(default_limit=MIN_REQUESTS_PER_HOST)
    order: list[str] = []
    holding = [anyio.Event() for _ in range(MIN_REQUESTS_PER_HOST)]
    release = anyio.Event()

    async def hold(name: str, started: anyio.Event | None = None) -> None:
        async with limiters.hold("a:5000"):
            order.append(name)
            if started is not None:
                started.set()
                await release.wait()

    async with anyio.create_task_group() as tg:
        for index, event in enumerate(holding):
            tg.start_soon(hold, f"holder{index}", event)
        for event in holding:
            await event.wait()
        tg.start_soon(hold, "waiter")
        await wait_until(lambda: limiters.statistics()[0].waiting == 1)
        release.set()
        await hold("newcomer")  # asks while the waiter is being handed the freed slot
    assert order[-2:] == ["waiter", "newcomer"]


async def test_slots_are_given_back_when_the_block_fails_or_is_cancelled() -> None:
    limiters = HostLimiters(default_limit=2)
    with pytest.raises(ValueError):
        async with limiters.hold("a", "b"):
            raise ValueError("boom")
    with anyio.CancelScope() as scope:
        scope.cancel()
        async with limiters.hold("a"):
            await anyio.sleep(1)
    assert scope.cancelled_caught
    assert [stats.in_flight for stats in limiters.statistics()] == [0, 0]


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


# -- SingleFlight --------------------------------------------------------------------------------


async def test_single_flight_runs_once_for_concurrent_callers_and_shares_the_result() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    runs = 0
    release = anyio.Event()
    results: list[int] = []

    async def work() -> int:
        nonlocal runs
        runs += 1
        await release.wait()
        return 42

    async def call() -> None:
        results.append(await flight.do("k", work))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(call)
        await wait_until(lambda: flight.statistics().tasks_waiting == 4)
        assert flight.statistics().in_flight == 1
        release.set()
    assert results == [42] * 5 and runs == 1
    assert await flight.do("k", work) == 42  # cached for the run: no second run
    assert flight.statistics() == SingleFlightStatistics(
        in_flight=0, tasks_waiting=0, runs=1, failures=0, shared=4, cached=1
    )


async def test_single_flight_keys_are_independent() -> None:
    flight: SingleFlight[tuple[str, int], str] = SingleFlight()
    both_running = anyio.Event()
    running = 0

    async def work(name: str) -> str:
        nonlocal running
        running += 1
        if running == 2:
            both_running.set()
        await both_running.wait()  # deadlocks (times out) if one key waited for the other
        return name

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(flight.do, ("a", 1), lambda: work("a"))
            tg.start_soon(flight.do, ("b", 1), lambda: work("b"))
    assert flight.statistics().runs == 2


async def test_a_failure_goes_to_its_caller_and_the_next_caller_retries() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    started = anyio.Event()
    fail_now = anyio.Event()
    outcomes: list[str] = []

    async def failing() -> str:
        started.set()
        await fail_now.wait()
        raise RuntimeError("boom")

    async def succeeding() -> str:
        return "second"

    async def leader() -> None:
        try:
            await flight.do("k", failing)
        except RuntimeError as exc:
            outcomes.append(f"leader: {exc}")

    async def follower() -> None:
        outcomes.append(f"follower: {await flight.do('k', succeeding)}")

    async with anyio.create_task_group() as tg:
        tg.start_soon(leader)
        await started.wait()
        tg.start_soon(follower)
        await wait_until(lambda: flight.statistics().tasks_waiting == 1)
        fail_now.set()
    assert sorted(outcomes) == ["follower: second", "leader: boom"]
    stats = flight.statistics()
    assert (stats.runs, stats.failures, stats.shared) == (2, 1, 0)
    assert await flight.do("k", failing) == "second"  # the retry's success is the cached one


async def test_a_cancelled_leader_does_not_strand_its_waiters() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    started = anyio.Event()
    got: list[str] = []

    async def hangs() -> str:
        started.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def quick() -> str:
        return "done"

    async def waiter() -> None:
        got.append(await flight.do("k", quick))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg, anyio.create_task_group() as leader_group:
            leader_group.start_soon(flight.do, "k", hangs)
            await started.wait()
            for _ in range(3):
                tg.start_soon(waiter)
            await wait_until(lambda: flight.statistics().tasks_waiting == 3)
            leader_group.cancel_scope.cancel()
    assert got == ["done"] * 3
    stats = flight.statistics()
    # One waiter became the new leader; the other two got its result (shared or cached).
    assert (stats.runs, stats.failures, stats.shared + stats.cached, stats.in_flight) == (2, 1, 2, 0)


async def test_a_cancelled_waiter_leaves_the_leader_alone() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    release = anyio.Event()

    async def work() -> int:
        await release.wait()
        return 7

    async with anyio.create_task_group() as tg:
        tg.start_soon(flight.do, "k", work)
        await wait_until(lambda: flight.statistics().in_flight == 1)
        with anyio.move_on_after(0.05):
            await flight.do("k", work)
        assert flight.statistics().tasks_waiting == 0
        release.set()
    assert await flight.do("k", work) == 7
    assert flight.statistics().runs == 1


async def test_without_cache_a_later_call_runs_again_but_concurrent_ones_share() -> None:
    flight: SingleFlight[str, int] = SingleFlight(cache=False)
    calls = 0
    release = anyio.Event()

    async def work() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return calls

    results: list[int] = []

    async def call() -> None:
        results.append(await flight.do("k", work))

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        tg.start_soon(call)
        await wait_until(lambda: flight.statistics().tasks_waiting == 1)
        release.set()
    assert results == [1, 1]
    assert await flight.do("k", work) == 2


async def test_remember_answers_later_calls() -> None:
    flight: SingleFlight[str, bool] = SingleFlight()
    flight.remember("k", True)

    async def never() -> bool:
        raise AssertionError("the remembered value answers")

    assert await flight.do("k", never) is True
    assert dict(flight.results()) == {"k": True}


# -- KeyedLock -----------------------------------------------------------------------------------


async def test_keyed_lock_excludes_per_key_and_forgets_idle_keys() -> None:
    locks: KeyedLock[str] = KeyedLock()
    inside: dict[str, int] = {"a": 0, "b": 0}
    peak: dict[str, int] = {"a": 0, "b": 0}

    async def work(key: str) -> None:
        async with locks.hold(key):
            inside[key] += 1
            peak[key] = max(peak[key], inside[key])
            await anyio.sleep(0.005)
            inside[key] -= 1

    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(work, "ab"[i % 2])
        await wait_until(lambda: locks.statistics().held == 2)
        assert locks.statistics().tasks_waiting == 8
    assert peak == {"a": 1, "b": 1}
    assert locks.statistics() == KeyedLockStatistics(held=0, tasks_waiting=0, acquisitions=10)
    assert not locks._locks  # idle keys hold no lock


async def test_keyed_lock_waiter_cancelled_is_forgotten() -> None:
    locks: KeyedLock[str] = KeyedLock()

    async def waiter() -> None:
        async with locks.hold("k"):
            raise AssertionError("the key is held")

    async with locks.hold("k"), anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await wait_until(lambda: locks.statistics().tasks_waiting == 1)
        tg.cancel_scope.cancel()
    assert locks.statistics().tasks_waiting == 0
    assert not locks._locks


# -- pool sizes ----------------------------------------------------------------------------------


def test_pool_sizes_defaults_for_sync_and_copy() -> None:
    assert pool_sizes() == PoolSizes(images=8, blobs=15, requests_per_host=16, host_limits={})
    copy = pool_sizes(default_blobs=DEFAULT_COPY_BLOBS_IN_FLIGHT)
    assert (copy.blobs, copy.requests_per_host) == (6, 16)


def test_more_blobs_than_the_default_host_limit_raise_it() -> None:
    sizes = pool_sizes(blobs=32)
    assert (sizes.blobs, sizes.requests_per_host) == (32, 33)


def test_a_given_host_limit_is_kept_and_blobs_go_below_the_smallest() -> None:
    assert pool_sizes(blobs=32, requests_per_host=8).blobs == 7
    sizes = pool_sizes(blobs=10, host_limits={"a.example": 4, "b.example": None})
    assert dict(sizes.host_limits) == {"a.example": 4, "b.example": 16}
    assert (sizes.blobs, sizes.requests_per_host) == (3, 16)


def test_a_host_never_gets_fewer_than_two_slots() -> None:
    sizes = pool_sizes(requests_per_host=1, host_limits={"a.example": 1})
    assert (sizes.requests_per_host, dict(sizes.host_limits), sizes.blobs) == (2, {"a.example": 2}, 1)


@pytest.mark.parametrize("blobs", [None, 1, 5, 15, 16, 17, 100])
@pytest.mark.parametrize("per_host", [None, 1, 2, 3, 16, 64])
@pytest.mark.parametrize("own", [None, 1, 2, 7])
def test_the_deadlock_rule_always_holds(blobs: int | None, per_host: int | None, own: int | None) -> None:
    sizes = pool_sizes(blobs=blobs, requests_per_host=per_host, host_limits={"h": own})
    every_limit = [sizes.requests_per_host, *sizes.host_limits.values()]
    assert min(every_limit) >= MIN_REQUESTS_PER_HOST
    assert 1 <= sizes.blobs < min(every_limit)
    if per_host is None and own is None:
        assert sizes.blobs == (blobs or DEFAULT_BLOBS_IN_FLIGHT)  # nothing to lower it


async def test_host_limiters_carry_the_sizes() -> None:
    limiters = pool_sizes(requests_per_host=5, host_limits={"a.example": 3}).host_limiters()
    async with limiters.hold("a.example", "b.example"):
        pass
    assert {(s.host, s.limit) for s in limiters.statistics()} == {("a.example", 3), ("b.example", 5)}


def test_checks_in_flight_cover_the_round_trip_within_the_host_limit() -> None:
    assert checks_in_flight(16, None) == 16  # nothing seen yet: the host limit
    assert checks_in_flight(16, 0.0004) == MIN_CHECKS_IN_FLIGHT  # loopback: a few
    assert checks_in_flight(64, 0.020) == 20  # 20 ms RTT: 20 in flight at 1000 HEADs/s
    assert checks_in_flight(16, 0.200) == 16  # never above the host limit
    assert checks_in_flight(2, 0.0) == 2  # nor the minimum above it


async def test_host_limiters_report_limits_and_the_slowest_link() -> None:
    limiters = HostLimiters(default_limit=8)
    limiters.configure("slow.example", 3)
    assert limiters.latency() is None
    assert (limiters.limit("slow.example"), limiters.limit("other.example")) == (3, 8)
    async with limiters.hold("fast.example"):
        pass
    async with limiters.hold("slow.example"):
        await anyio.sleep(0.05)
    async with limiters.hold("slow.example"):
        await anyio.sleep(0.02)
    latency = limiters.latency()
    assert latency is not None and 0.02 <= latency < 0.05  # the slow host's fastest exchange
