"""The images-in-flight limit: a bounded worker pool fed through a bounded queue.

:func:`run_pool` starts ``parallel`` workers that pull jobs from a memory object stream of
capacity ``parallel``; a producer task feeds it from any (async) iterable, so a plan of
10,000 images costs 10,000 small job objects at most, never 10,000 coroutines, and the
producer blocks when the workers are busy (backpressure).

Stopping: :meth:`PoolControl.stop` (first SIGINT/SIGTERM, or ``--fail-fast`` after a
failure) makes the producer stop taking work while in-flight jobs finish. A signal also ends
every retry wait at once (backoff sleeps, ``Retry-After``: :func:`asyncsync.retry.pause`), and
in-flight jobs get :data:`STOP_GRACE_SECONDS` to finish before they are cancelled; a second
signal cancels them at once. Cancellation is safe for the destination because a copy
writes the tag last (see ``asyncsync.copy``): an interrupted image leaves no tag behind.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from asyncsync.limits import DEFAULT_PARALLEL_IMAGES
from asyncsync.retry import stoppable_waits

#: After the first signal, how long in-flight images may take to finish before they are abandoned.
STOP_GRACE_SECONDS = 10.0

J = TypeVar("J")
R = TypeVar("R")


@dataclass(slots=True)
class PoolStatistics:
    """Live counters for the progress view."""

    parallel: int
    queued: int = 0
    started: int = 0
    finished: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    stopping: bool = False


@dataclass(slots=True)
class PoolControl:
    """Handle to stop a running pool; ``reason`` says why it stopped early, if it did."""

    _stop_event: anyio.Event = field(default_factory=anyio.Event)
    _cancel_scope: anyio.CancelScope | None = None
    #: set by :func:`run_pool`: the run's :func:`~asyncsync.retry.stoppable_waits` event
    _waits: anyio.Event | None = None
    reason: str = ""

    def stop(self, reason: str) -> None:
        """Take no new work; in-flight jobs finish."""
        if not self._stop_event.is_set():
            self.reason = reason
            self._stop_event.set()

    def interrupt(self, reason: str, grace: float | None = None) -> None:
        """Stop, and end every retry wait of the in-flight jobs at once (their retries are given up).
        With ``grace`` (seconds), in-flight jobs are cancelled if they have not finished by then
        (a pool already running; one that starts later is stopped before it takes a job)."""
        self.stop(reason)
        if self._waits is not None:
            self._waits.set()
        if grace is not None and self._cancel_scope is not None:
            deadline = anyio.current_time() + grace
            self._cancel_scope.deadline = min(self._cancel_scope.deadline, deadline)

    def abort(self, reason: str) -> None:
        """Stop and cancel in-flight jobs as well."""
        if self.stopped and reason not in self.reason:
            self.reason = f"{self.reason}; {reason}"
        self.interrupt(reason)
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()

    @property
    def stopped(self) -> bool:
        return self._stop_event.is_set()


class _Pool(Generic[J, R]):
    def __init__(
        self,
        worker: Callable[[J], Awaitable[R]],
        on_result: Callable[[J, R], None],
        parallel: int,
        control: PoolControl,
    ) -> None:
        self.worker = worker
        self.on_result = on_result
        self.control = control
        self.stats = PoolStatistics(parallel=parallel)

    async def produce(
        self, jobs: Iterable[J] | AsyncIterable[J], send: anyio.abc.ObjectSendStream[J]
    ) -> None:
        async with send:
            if isinstance(jobs, AsyncIterable):
                async for job in jobs:
                    if self.control.stopped or not await self._send(send, job):
                        return
            else:
                for job in jobs:
                    if self.control.stopped or not await self._send(send, job):
                        return

    async def _send(self, send: anyio.abc.ObjectSendStream[J], job: J) -> bool:
        # Wait for queue space or a stop request, whichever comes first.
        async with anyio.create_task_group() as tg:
            sent = False

            async def put() -> None:
                nonlocal sent
                await send.send(job)
                sent = True
                tg.cancel_scope.cancel()

            async def watch_stop() -> None:
                await self.control._stop_event.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(put)
            tg.start_soon(watch_stop)
        if sent:
            self.stats.queued += 1
        return sent

    async def work(self, receive: anyio.abc.ObjectReceiveStream[J]) -> None:
        async with receive:
            async for job in receive:
                if self.control.stopped:
                    continue  # drain without running: the producer is closing
                self.stats.started += 1
                self.stats.in_flight += 1
                self.stats.peak_in_flight = max(self.stats.peak_in_flight, self.stats.in_flight)
                try:
                    result = await self.worker(job)
                finally:
                    self.stats.in_flight -= 1
                self.stats.finished += 1
                self.on_result(job, result)


async def run_pool(
    jobs: Iterable[J] | AsyncIterable[J],
    worker: Callable[[J], Awaitable[R]],
    *,
    parallel: int = DEFAULT_PARALLEL_IMAGES,
    on_result: Callable[[J, R], None] = lambda job, result: None,
    control: PoolControl | None = None,
    handle_signals: bool = False,
    on_stats: Callable[[PoolStatistics], None] | None = None,
    grace: float = STOP_GRACE_SECONDS,
) -> PoolControl:
    """Run ``worker`` over ``jobs`` with at most ``parallel`` in flight; return the control handle.

    ``worker`` must not raise for an ordinary job failure: it returns a result describing it
    (the sync reports failures and goes on). An exception escaping ``worker`` is a bug and
    cancels the pool. With ``handle_signals``, the first SIGINT/SIGTERM stops taking work and
    ends retry waits, in-flight jobs are aborted ``grace`` seconds later or at a second signal.
    """
    if parallel < 1:
        raise ValueError("parallel must be at least 1")
    control = control or PoolControl()
    pool: _Pool[J, R] = _Pool(worker, on_result, parallel, control)
    if on_stats is not None:
        on_stats(pool.stats)
    send, receive = anyio.create_memory_object_stream[J](parallel)
    with stoppable_waits() as waits:
        control._waits = waits
        if control.stopped:
            waits.set()
        await _run(pool, jobs, send, receive, parallel, handle_signals, grace)
    return control


async def _run(
    pool: _Pool[J, R],
    jobs: Iterable[J] | AsyncIterable[J],
    send: MemoryObjectSendStream[J],
    receive: MemoryObjectReceiveStream[J],
    parallel: int,
    handle_signals: bool,
    grace: float,
) -> None:
    control = pool.control
    async with anyio.create_task_group() as tg:
        control._cancel_scope = tg.cancel_scope
        if handle_signals:
            await tg.start(_watch_signals, control, grace)
        async with anyio.create_task_group() as work_group:
            work_group.start_soon(pool.produce, jobs, send)
            for _ in range(parallel):
                work_group.start_soon(pool.work, receive.clone())
            receive.close()
        pool.stats.stopping = control.stopped
        tg.cancel_scope.cancel()  # stop the signal watcher


async def _watch_signals(
    control: PoolControl, grace: float, *, task_status: anyio.abc.TaskStatus[None]
) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        name = ""
        async for signum in signals:
            name = signal.Signals(signum).name
            control.interrupt(
                f"{name} received: finishing in-flight images for up to {grace:g}s (send again to abort)"
            )
            break
        with anyio.move_on_after(grace):
            async for signum in signals:
                control.abort(f"{signal.Signals(signum).name} received twice: aborted in-flight images")
                return
        control.abort(f"in-flight images abandoned {grace:g}s after {name}")
