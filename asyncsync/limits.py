"""Run-wide concurrency limits. Each limit lives here and nowhere else.

* :class:`HostLimiters` - requests in flight per registry host, held for one HTTP exchange
  (including streaming its body). Optional requests-per-second pacing per host.
* :class:`BlobLimiter` - blobs in flight across every copy of the run.
* Images in flight are bounded by the sync scheduler's worker count (``asyncsync.sync.scheduler``).

Each exposes ``statistics()`` returning a frozen dataclass, for the progress view and bench.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import anyio

DEFAULT_REQUESTS_PER_HOST = 16
DEFAULT_BLOBS_IN_FLIGHT = 16


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


class _HostSlot:
    def __init__(self, host: str, limit: int, rate: float | None) -> None:
        self.host = host
        self.limiter = anyio.CapacityLimiter(limit)
        self.pacer = _RatePacer(rate) if rate else None
        self.requests = 0
        self.peak = 0


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
        # At least 2: a blob copied within one registry holds two slots of that host at once.
        new_limit = max(2, limit or current_limit)
        new_rate = rate if rate is not None else current_rate
        self._config[host] = (new_limit, new_rate)
        slot = self._slots.get(host)
        if slot is not None:
            slot.limiter.total_tokens = new_limit
            slot.pacer = _RatePacer(new_rate) if new_rate else None

    def configured_limits(self) -> list[int]:
        """The default limit and every configured per-host limit."""
        return [self.default_limit, *(limit for limit, _ in self._config.values())]

    def _slot(self, host: str) -> _HostSlot:
        slot = self._slots.get(host)
        if slot is None:
            limit, rate = self._config.get(host, (self.default_limit, self.default_rate))
            slot = self._slots[host] = _HostSlot(host, limit, rate)
        return slot

    @asynccontextmanager
    async def hold(self, *hosts: str) -> AsyncIterator[None]:
        """Hold one request slot on each distinct host for the duration of the block."""
        async with AsyncExitStack() as stack:
            for host in sorted(set(hosts)):
                slot = self._slot(host)
                await stack.enter_async_context(slot.limiter)
                if slot.pacer is not None:
                    await slot.pacer.wait()
                slot.requests += 1
                slot.peak = max(slot.peak, slot.limiter.borrowed_tokens)
            yield

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
        async with self._limiter:
            self._peak = max(self._peak, self._limiter.borrowed_tokens)
            yield

    def statistics(self) -> BlobStatistics:
        stats = self._limiter.statistics()
        return BlobStatistics(
            limit=int(self._limiter.total_tokens),
            in_flight=stats.borrowed_tokens,
            waiting=stats.tasks_waiting,
            peak_in_flight=self._peak,
        )
