"""Run-wide concurrency limits and the per-key primitives. Each limit lives here and nowhere else.

* :class:`HostLimiters` - requests in flight per registry host, held for one HTTP exchange
  (including streaming its body). Optional requests-per-second pacing per host.
* :class:`BlobLimiter` - blobs in flight across every copy of the run.
* Images in flight are bounded by the sync scheduler's worker count (``asyncsync.sync.scheduler``).
* :func:`checks_in_flight` - destination checks run ahead of the copy pool, sized from the
  latency the run has seen (:meth:`HostLimiters.latency`), within the per-host limit.
* :func:`pool_sizes` - the one place that turns flags and spec values into those three pool
  sizes, applying the deadlock rule (read its docstring); sync, mirror and copy all use it.
* :class:`SingleFlight` - "do this once per key": the first caller runs the work, concurrent
  callers share its result, a failure lets the next caller retry (uploads of one blob, tag
  lists, catalogs, Harbor project checks, token fetches).
* :class:`KeyedLock` - one mutex per key, for work every caller must do itself (index.json).

Each exposes ``statistics()`` returning a frozen dataclass (in the style of anyio's), for the
progress view and bench.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Generic, TypeVar

import anyio

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: Requests in flight per registry host unless a flag or the spec says (grows with blobs in flight).
DEFAULT_REQUESTS_PER_HOST = 16
#: A host never gets fewer slots: a blob streamed within one registry holds two of its slots.
MIN_REQUESTS_PER_HOST = 2
#: Blobs in flight of a sync or mirror run (one below the default per-host limit, see pool_sizes).
DEFAULT_BLOBS_IN_FLIGHT = DEFAULT_REQUESTS_PER_HOST - 1
#: Blobs in flight of ``copy`` (skopeo's default for ``--image-parallel-copies``).
DEFAULT_COPY_BLOBS_IN_FLIGHT = 6
#: Images in flight of a sync or mirror run (the scheduler's workers).
DEFAULT_PARALLEL_IMAGES = 8
#: Cheap requests (HEADs) per second one registry answers, for sizing checks from latency: to
#: keep a link of ``latency`` seconds busy takes about ``latency * CHECK_RATE`` in flight.
CHECK_RATE = 1000.0
#: Destination checks in flight ahead of the copy pool never go below this (nor above the host limit).
MIN_CHECKS_IN_FLIGHT = 4


def checks_in_flight(host_limit: int, latency: float | None) -> int:
    """Destination checks (``sync/decisions.py``) to run ahead of the copy pool: enough to cover
    one round trip of ``latency`` seconds (the fastest exchange seen on the run's hosts; ``None``:
    none seen, use the limit) at :data:`CHECK_RATE`, never above ``host_limit`` (the requests per
    host the run allows; the host limiters enforce it anyway) nor below :data:`MIN_CHECKS_IN_FLIGHT`.
    On loopback that is a few; at 20 ms RTT the per-host limit."""
    if latency is None:
        return host_limit
    wanted = math.ceil(latency * CHECK_RATE)
    return max(min(MIN_CHECKS_IN_FLIGHT, host_limit), min(host_limit, wanted))


@dataclass(frozen=True, slots=True)
class PoolSizes:
    """A run's pool sizes, as :func:`pool_sizes` computed them."""

    #: images in flight (sync and mirror; copy does one)
    images: int
    #: blobs in flight, run-wide
    blobs: int
    #: requests in flight per host, for hosts without their own limit
    requests_per_host: int
    #: hosts with their own limit -> that limit
    host_limits: Mapping[str, int]

    def host_limiters(self, default_rate: float | None = None) -> HostLimiters:
        """A :class:`HostLimiters` with these per-host limits."""
        limiters = HostLimiters(default_limit=self.requests_per_host, default_rate=default_rate)
        for host, limit in self.host_limits.items():
            limiters.configure(host, limit)
        return limiters


def pool_sizes(
    *,
    images: int | None = None,
    blobs: int | None = None,
    default_blobs: int = DEFAULT_BLOBS_IN_FLIGHT,
    requests_per_host: int | None = None,
    host_limits: Mapping[str, int | None] | None = None,
) -> PoolSizes:
    """The pool sizes of a run from what the user asked (``None``: not asked).

    The deadlock rule: a streamed blob holds a request slot on its source host while it waits
    for one on its destination host (two slots of one host when both are the same registry).
    If every slot of a host were held by such transfers, each waiting for another slot, none
    could move. With fewer blobs in flight than the smallest per-host limit, some transfer can
    always take its second slot. So:

    * a per-host limit the user gave (``requests_per_host``, ``host_limits``) is kept (at least
      :data:`MIN_REQUESTS_PER_HOST`), and blobs in flight are lowered to one below the smallest;
    * without one, the per-host default is :data:`DEFAULT_REQUESTS_PER_HOST`, raised to blobs
      in flight + 1 when more blobs were asked for;
    * images in flight hold no request slot while they wait for blobs, so they need no rule.

    ``host_limits`` maps hosts to their own limit (``None``: the default applies to that host).
    """
    wanted_blobs = max(1, blobs or default_blobs)
    if requests_per_host:
        default_limit = max(MIN_REQUESTS_PER_HOST, requests_per_host)
    else:
        default_limit = max(DEFAULT_REQUESTS_PER_HOST, wanted_blobs + 1)
    limits = {
        host: max(MIN_REQUESTS_PER_HOST, limit) if limit else default_limit
        for host, limit in (host_limits or {}).items()
    }
    smallest = min([default_limit, *limits.values()])
    return PoolSizes(
        images=max(1, images or DEFAULT_PARALLEL_IMAGES),
        blobs=max(1, min(wanted_blobs, smallest - 1)),
        requests_per_host=default_limit,
        host_limits=MappingProxyType(limits),
    )


@dataclass(frozen=True, slots=True)
class HostStatistics:
    host: str
    limit: int
    in_flight: int
    waiting: int
    requests: int
    peak_in_flight: int


class _RatePacer:
    """Spaces request starts at least ``1/rate`` seconds apart (a token bucket of size 1)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = 0.0
        self._lock = anyio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            await anyio.sleep(delay)


async def acquire(limiter: anyio.CapacityLimiter) -> None:
    """Take a token of ``limiter`` for the current task: at once when one is free and nobody
    waits (anyio's ``acquire`` passes through the event loop twice even then, a scheduler round
    trip per request), else in turn with the waiters. Release with ``limiter.release()``."""
    try:
        limiter.acquire_nowait()
    except anyio.WouldBlock:
        await limiter.acquire()


class _HostSlot:
    def __init__(self, host: str, limit: int, rate: float | None) -> None:
        self.host = host
        self.limiter = anyio.CapacityLimiter(limit)
        self.pacer = _RatePacer(rate) if rate else None
        self.requests = 0
        self.peak = 0
        #: the shortest exchange on this host so far (seconds): about its round trip
        self.fastest: float | None = None


class HostLimiters:
    """Per-host request limits for the whole run.

    ``configure(host, limit, rate)`` sets a host's limit before first use (from a spec);
    other hosts get ``default_limit``. ``hold(*hosts)`` takes one slot on every named host,
    in sorted order so two tasks holding source+destination slots cannot deadlock.
    """

    def __init__(
        self, default_limit: int = DEFAULT_REQUESTS_PER_HOST, default_rate: float | None = None
    ) -> None:
        self.default_limit = default_limit
        self.default_rate = default_rate
        self._slots: dict[str, _HostSlot] = {}
        self._config: dict[str, tuple[int, float | None]] = {}

    def configure(self, host: str, limit: int | None = None, rate: float | None = None) -> None:
        current_limit, current_rate = self._config.get(host, (self.default_limit, self.default_rate))
        new_limit = max(MIN_REQUESTS_PER_HOST, limit or current_limit)
        new_rate = rate if rate is not None else current_rate
        self._config[host] = (new_limit, new_rate)
        slot = self._slots.get(host)
        if slot is not None:
            slot.limiter.total_tokens = new_limit
            slot.pacer = _RatePacer(new_rate) if new_rate else None

    def _slot(self, host: str) -> _HostSlot:
        slot = self._slots.get(host)
        if slot is None:
            limit, rate = self._config.get(host, (self.default_limit, self.default_rate))
            slot = self._slots[host] = _HostSlot(host, limit, rate)
        return slot

    @asynccontextmanager
    async def hold(self, *hosts: str) -> AsyncIterator[None]:
        """Hold one request slot on each distinct host for the duration of the block."""
        if len(hosts) == 1:  # every request: one limiter, no exit stack (about 10 us less each)
            slot = self._slot(hosts[0])
            await acquire(slot.limiter)
            try:
                await self._taken(slot)
                started = time.monotonic()
                yield
                self._timed(slot, time.monotonic() - started)
            finally:
                slot.limiter.release()
            return
        async with AsyncExitStack() as stack:
            slots = [self._slot(host) for host in sorted(set(hosts))]
            for slot in slots:
                await acquire(slot.limiter)
                stack.callback(slot.limiter.release)
                await self._taken(slot)
            started = time.monotonic()
            yield
            elapsed = time.monotonic() - started
            for slot in slots:
                self._timed(slot, elapsed)

    @staticmethod
    async def _taken(slot: _HostSlot) -> None:
        if slot.pacer is not None:
            await slot.pacer.wait()
        slot.requests += 1
        slot.peak = max(slot.peak, slot.limiter.borrowed_tokens)

    @staticmethod
    def _timed(slot: _HostSlot, elapsed: float) -> None:
        if slot.fastest is None or elapsed < slot.fastest:
            slot.fastest = elapsed

    def limit(self, host: str) -> int:
        """The request limit of ``host`` (its own, else the default)."""
        return self._config.get(host, (self.default_limit, self.default_rate))[0]

    def round_trip(self, host: str) -> float | None:
        """The fastest exchange seen on ``host`` (about its round trip; ``None`` before one ended)."""
        slot = self._slots.get(host)
        return slot.fastest if slot is not None else None

    def latency(self) -> float | None:
        """The round trip of the slowest link seen: the largest of the hosts' fastest exchanges
        (``None`` before any exchange finished)."""
        seen = [slot.fastest for slot in self._slots.values() if slot.fastest is not None]
        return max(seen) if seen else None

    def statistics(self) -> list[HostStatistics]:
        result = []
        for host, slot in sorted(self._slots.items()):
            stats = slot.limiter.statistics()
            result.append(
                HostStatistics(
                    host=host,
                    limit=int(slot.limiter.total_tokens),
                    in_flight=stats.borrowed_tokens,
                    waiting=stats.tasks_waiting,
                    requests=slot.requests,
                    peak_in_flight=slot.peak,
                )
            )
        return result


@dataclass(frozen=True, slots=True)
class BlobStatistics:
    limit: int
    in_flight: int
    waiting: int
    peak_in_flight: int


class BlobLimiter:
    """Blobs in flight for the whole run; every copy shares one instance."""

    def __init__(self, limit: int = DEFAULT_BLOBS_IN_FLIGHT) -> None:
        self._limiter = anyio.CapacityLimiter(limit)
        self._peak = 0

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        await acquire(self._limiter)
        try:
            self._peak = max(self._peak, self._limiter.borrowed_tokens)
            yield
        finally:
            self._limiter.release()

    def statistics(self) -> BlobStatistics:
        stats = self._limiter.statistics()
        return BlobStatistics(
            limit=int(self._limiter.total_tokens),
            in_flight=stats.borrowed_tokens,
            waiting=stats.tasks_waiting,
            peak_in_flight=self._peak,
        )


# ---------------------------------------------------------------------------------- single flight


@dataclass(frozen=True, slots=True)
class SingleFlightStatistics:
    """A :class:`SingleFlight`'s counters since it was made (``in_flight``/``tasks_waiting`` now)."""

    #: keys whose work is running now
    in_flight: int
    #: callers waiting now for another caller's work
    tasks_waiting: int
    #: times a caller ran the work (the first for its key, or the next after a failure)
    runs: int
    #: runs that ended in an exception or a cancellation (their waiters tried again)
    failures: int
    #: calls answered by a concurrent caller's run
    shared: int
    #: calls answered from the run's cache (``cache=True``)
    cached: int


class _Flight:
    __slots__ = ("done", "ok", "value")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.ok = False
        self.value: object = None


class SingleFlight(Generic[K, V]):
    """Do the work for a key once, however many tasks ask at the same time.

    As Go's ``singleflight`` and go-containerregistry's ``workers``: the first caller of
    :meth:`do` for a key runs its ``work``; callers that arrive while it runs wait and get its
    result. When the work raises or its caller is cancelled, that caller gets the exception and
    the waiters wake: the first of them runs its own ``work`` (a failure is never shared, and a
    cancelled leader strands no one). With ``cache=True`` a success is kept for the life of the
    object (one run): later calls get it at once. Keys must be hashable; values may be anything
    (a site that must remember a failure returns it as a value).
    """

    def __init__(self, *, cache: bool = True) -> None:
        self._cache = cache
        self._results: dict[K, V] = {}
        self._flights: dict[K, _Flight] = {}
        self._waiting = self._runs = self._failures = self._shared = self._cached = 0

    async def do(self, key: K, work: Callable[[], Awaitable[V]]) -> V:
        """``work()``'s result for ``key``: from the cache, from a concurrent run, or run here."""
        while True:
            if key in self._results:
                self._cached += 1
                return self._results[key]
            flight = self._flights.get(key)
            if flight is None:
                break
            self._waiting += 1
            try:
                await flight.done.wait()
            finally:
                self._waiting -= 1
            if flight.ok:
                self._shared += 1
                value: V = flight.value  # type: ignore[assignment]
                return value
        flight = self._flights[key] = _Flight()
        self._runs += 1
        try:
            value = await work()
        except BaseException:
            self._failures += 1
            raise
        else:
            flight.ok, flight.value = True, value
            if self._cache:
                self._results[key] = value
            return value
        finally:
            del self._flights[key]
            flight.done.set()

    def results(self) -> Mapping[K, V]:
        """The cached results (``cache=True``), read-only and live."""
        return MappingProxyType(self._results)

    def remember(self, key: K, value: V) -> None:
        """Cache ``value`` for ``key`` as if a run had returned it (the caller learnt it otherwise)."""
        self._results[key] = value

    def statistics(self) -> SingleFlightStatistics:
        return SingleFlightStatistics(
            in_flight=len(self._flights),
            tasks_waiting=self._waiting,
            runs=self._runs,
            failures=self._failures,
            shared=self._shared,
            cached=self._cached,
        )


# ------------------------------------------------------------------------------------ keyed lock


class _KeyLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = anyio.Lock()
        #: tasks holding or waiting for the lock
        self.users = 0


@dataclass(frozen=True, slots=True)
class KeyedLockStatistics:
    """A :class:`KeyedLock`'s state now and its acquisitions since it was made."""

    #: keys held now
    held: int
    #: tasks waiting now for a held key
    tasks_waiting: int
    #: times a key was acquired
    acquisitions: int


class KeyedLock(Generic[K]):
    """One mutex per key, for work that every caller must do itself but never two at once on
    the same key (unlike :class:`SingleFlight`, whose waiters share the first caller's result).

    A key's lock exists only while some task holds or waits for it, so the table does not grow
    with the keys ever used, and no lock outlives the event loop that made it.
    """

    def __init__(self) -> None:
        self._locks: dict[K, _KeyLock] = {}
        self._acquisitions = 0

    @asynccontextmanager
    async def hold(self, key: K) -> AsyncIterator[None]:
        """Hold ``key``'s lock for the block."""
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = _KeyLock()
        entry.users += 1
        try:
            async with entry.lock:
                self._acquisitions += 1
                yield
        finally:
            entry.users -= 1
            if not entry.users:
                del self._locks[key]

    def statistics(self) -> KeyedLockStatistics:
        entries = self._locks.values()
        return KeyedLockStatistics(
            held=sum(1 for entry in entries if entry.lock.locked()),
            tasks_waiting=sum(entry.lock.statistics().tasks_waiting for entry in entries),
            acquisitions=self._acquisitions,
        )
