"""The mirror loop: the sync, run again and again in one process, never two cycles at once.

:class:`MirrorLoop` runs cycles one after the other; each cycle reloads the spec (so an
edited ConfigMap or rotated password file is picked up; a spec that no longer loads fails that
cycle and the loop goes on), builds fresh hooks (:func:`~asyncsync.extensions.build_hooks`
plus :class:`EntryTracker` for per-entry metrics) and calls
:func:`~asyncsync.sync.engine.run_sync`.

Scheduling (:class:`Every`, :class:`Cron`): a cycle starts at its nominal time plus a random
jitter in ``[0, jitter]`` (spreads many mirrors' load on one registry). ``--every D`` starts the
first cycle at once (no jitter) and then keeps a grid of ``D`` from that start; ``--cron`` waits
for the next fire time (a start within the fire's minute runs at once). A cycle that overruns
its slot never overlaps the next one: the missed starts are skipped (counted in
``missed_cycles_total``) and the next start is the next grid point or fire time still ahead.
``once`` (``--once``, for cron/CronJob use) runs exactly one cycle.

Pull quotas: the loop keeps one :class:`~asyncsync.quota.PullQuotas` (``metrics.quotas``) across
cycles. A cycle that deferred images for a spent quota makes the next cycle start when the
earliest deferred host's window resets, if that is sooner than the schedule says; the deferred
images are copied then. Every step of a cycle is progress for ``/healthz``'s stall check
(:mod:`asyncsync.mirror.progress`).

Signals: the first SIGTERM/SIGINT stops taking new images (in-flight images finish through the
engine's :class:`~asyncsync.sync.scheduler.PoolControl`), no further cycle starts, and
``/healthz`` turns 503; a wait between cycles ends at once. In-flight images get
:data:`~asyncsync.sync.scheduler.STOP_GRACE_SECONDS` to finish; a second signal, or the end of
that grace, aborts them (the copy writes the tag last, so none is left half-tagged).
"""

from __future__ import annotations

import datetime as dt
import random
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio
import anyio.abc

from asyncsync.errors import AsyncSyncError
from asyncsync.extensions import Extensions, build_hooks
from asyncsync.mirror.cron import CronSchedule
from asyncsync.mirror.metrics import CycleOutcome, EntryLabel, MirrorMetrics
from asyncsync.mirror.progress import ProgressView
from asyncsync.specs.model import SyncEntry, SyncSpec
from asyncsync.sync.engine import SyncView, run_sync
from asyncsync.sync.hooks import RunContext, SyncHooks
from asyncsync.sync.plan import Plan, PlannedImage
from asyncsync.sync.report import ImageResult, Outcome, SyncReport
from asyncsync.sync.scheduler import STOP_GRACE_SECONDS, PoolControl
from asyncsync.sync.settings import CommandLine, resolve_settings

#: Longest automatic jitter (the default is 10% of the period, capped here).
MAX_AUTO_JITTER = 300.0
MAX_MISSED_COUNTED = 100_000


class Schedule(Protocol):
    def next_start(self, previous: float | None, now: float) -> tuple[float, int]:
        """The nominal start after the cycle that nominally started at ``previous`` (``None``: the
        first), never before ``now``; and how many starts were skipped because they passed."""

    def period(self, now: float) -> float:
        """The usual time between starts (for the automatic jitter)."""


@dataclass(frozen=True, slots=True)
class Every:
    """``--every``: a grid of ``interval`` seconds from the first start (which is immediate)."""

    interval: float

    def next_start(self, previous: float | None, now: float) -> tuple[float, int]:
        if previous is None:
            return now, 0
        missed = 0
        start = previous + self.interval
        if start < now:
            missed = int((now - start) // self.interval) + 1
            start += missed * self.interval
        return start, missed

    def period(self, now: float) -> float:
        return self.interval


@dataclass(frozen=True, slots=True)
class Cron:
    """``--cron``: the expression's fire times (UTC); the first cycle waits for the next one."""

    schedule: CronSchedule

    def _after(self, when: float) -> float:
        return self.schedule.next_after(dt.datetime.fromtimestamp(when, dt.UTC)).timestamp()

    def next_start(self, previous: float | None, now: float) -> tuple[float, int]:
        missed = 0
        if previous is not None:
            fire = self._after(previous)
            while fire < now and missed < MAX_MISSED_COUNTED:
                missed += 1
                fire = self._after(fire)
        return self._after(now - 60 if previous is None else now), missed

    def period(self, now: float) -> float:
        first = self._after(now)
        return self._after(first) - first


def auto_jitter(schedule: Schedule, now: float) -> float:
    return min(MAX_AUTO_JITTER, 0.1 * schedule.period(now))


class EntryTracker(SyncHooks):
    """Per-spec-entry outcomes of one cycle, for the metrics (images and plan errors by line)."""

    def __init__(self, spec: SyncSpec) -> None:
        self.entries = sorted(spec.entries, key=lambda entry: entry.origin.line)
        self.labels = {id(entry): _label(index, entry) for index, entry in enumerate(spec.entries, 1)}
        self.outcomes: dict[EntryLabel, Counter[Outcome]] = {
            label: Counter() for label in self.labels.values()
        }
        self.troubled: set[EntryLabel] = set()

    def entry_at(self, line: int) -> EntryLabel | None:
        """The entry whose block holds ``line`` (the last entry starting at or before it)."""
        found = None
        for entry in self.entries:
            if entry.origin.line <= line:
                found = entry
        return self.labels[id(found)] if found is not None else None

    async def before_copy(self, plan: Plan, ctx: RunContext) -> Plan:
        for error in plan.errors:
            label = self.entry_at(error.origin.line)
            if label is not None:
                self.troubled.add(label)
        return plan

    def image_finished(self, image: PlannedImage, result: ImageResult) -> None:
        label = self.entry_at(image.origin.line)
        if label is not None:
            self.outcomes[label][result.outcome] += 1
            if result.outcome is Outcome.FAILED:
                self.troubled.add(label)


def _label(index: int, entry: SyncEntry) -> EntryLabel:
    source = str(entry.sources[0]) + (f" (+{len(entry.sources) - 1})" if len(entry.sources) > 1 else "")
    return EntryLabel(index, source, str(entry.destination))


class MirrorLoop:
    """Cycles of the sync (see the module docstring). ``schedule`` ``None`` = one cycle (``--once``).

    ``load`` returns the spec for a cycle (raises a ``UsageError``/``SpecError`` when it does not
    load); ``flags`` is what the command line said, laid over each cycle's spec by
    :func:`~asyncsync.sync.settings.resolve_settings` (the spec may change between cycles).
    ``max_cycles`` and ``on_cycle(number, report)`` are for tests and embedding.
    """

    def __init__(
        self,
        load: Callable[[], SyncSpec],
        flags: CommandLine,
        schedule: Schedule | None,
        *,
        extensions: Extensions | None = None,
        jitter: float | None = None,
        metrics: MirrorMetrics | None = None,
        view: Callable[[], SyncView] = SyncView,
        echo: Callable[[str], None] = print,
        report_path: Path | None = None,
        max_cycles: int | None = None,
        on_cycle: Callable[[int, SyncReport | None], Awaitable[None]] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.load = load
        self.flags = flags
        self.schedule = schedule
        self.extensions = extensions or Extensions()
        self.jitter = jitter
        self.metrics = metrics or MirrorMetrics()
        self.view = view
        self.echo = echo
        self.report_path = report_path
        self.max_cycles = max_cycles
        self.on_cycle = on_cycle
        self.rng = rng or random.Random()
        self.cycles = 0
        self.last_ok = False
        self.stop_reason = ""
        #: after a stop request, how long in-flight images may take before they are abandoned
        self.stop_grace = STOP_GRACE_SECONDS
        self._control: PoolControl | None = None
        self._sleep: anyio.CancelScope | None = None

    @property
    def stopping(self) -> bool:
        return bool(self.stop_reason)

    def request_stop(self, reason: str) -> None:
        """Finish in-flight images, start no new cycle; a second request aborts in-flight images."""
        if self.stopping:
            if self._control is not None:
                self._control.abort(f"{reason} again: aborted in-flight images")
            return
        self.stop_reason = reason
        self.metrics.stopping = True
        if self._control is not None:
            grace = self.stop_grace
            self._control.interrupt(f"{reason}: finishing in-flight images for up to {grace:g}s", grace)
        if self._sleep is not None:
            self._sleep.cancel()

    async def run(self, *, handle_signals: bool = True) -> bool:
        """Run until stopped (or ``once``/``max_cycles``); returns whether the last cycle was clean."""
        async with anyio.create_task_group() as group:
            if handle_signals:
                await group.start(self._watch_signals)
            try:
                await self._cycles()
            finally:
                group.cancel_scope.cancel()
        return self.last_ok

    async def _watch_signals(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                self.request_stop(f"{signal.Signals(signum).name} received")

    async def _cycles(self) -> None:
        previous: float | None = None
        while not self.stopping:
            now = time.time()
            nominal = now
            if self.schedule is not None:
                nominal, missed = self.schedule.next_start(previous, now)
                self.metrics.missed += missed
                jitter = self.jitter if self.jitter is not None else auto_jitter(self.schedule, now)
                if previous is None and isinstance(self.schedule, Every):
                    jitter = 0.0  # --every starts its first cycle at once
                start = nominal + (self.rng.uniform(0, jitter) if jitter > 0 else 0.0)
                start = self._quota_resume(start)
                self.metrics.next_cycle = start
                if self.cycles:
                    when = dt.datetime.fromtimestamp(start, dt.UTC).isoformat(timespec="seconds")
                    self.echo(f"mirror: next cycle at {when}")
                with anyio.CancelScope() as self._sleep:
                    await anyio.sleep(max(0.0, start - time.time()))
                self._sleep = None
                if self.stopping:
                    break
            previous = nominal
            await self.run_cycle()
            if self.schedule is None or (self.max_cycles is not None and self.cycles >= self.max_cycles):
                break
        if self.stopping:
            self.echo(f"mirror: stopped ({self.stop_reason})")

    def _quota_resume(self, start: float) -> float:
        """``start``, or sooner: when the earliest window of a host that deferred images resets."""
        resets = [at for at in self.metrics.quota_resets.values() if at is not None]
        if not self.metrics.deferred_images or not resets or min(resets) >= start:
            return start
        resume = max(time.time(), min(resets) + 1.0)  # a second after the reset: the window is new
        when = dt.datetime.fromtimestamp(resume, dt.UTC).isoformat(timespec="seconds")
        deferred = self.metrics.deferred_images
        self.echo(f"mirror: {deferred} images deferred by a pull quota; resuming at {when}")
        return resume

    async def run_cycle(self) -> SyncReport | None:
        """One cycle: reload the spec, sync, record metrics, print the summary."""
        self.cycles += 1
        number = self.cycles
        started = time.time()
        self.metrics.running = True
        self.echo(f"mirror: cycle {number} started")
        report: SyncReport | None = None
        tracker: EntryTracker | None = None
        hooks_ok = False
        try:
            spec = self.load()
            for warning in spec.warnings:
                self.echo(f"warning: {warning}")
            tracker = EntryTracker(spec)
            hooks = build_hooks(spec, self.extensions, tracker)
            self._control = PoolControl()
            if self.stopping:
                self._control.stop(self.stop_reason)
            self.metrics.touch()
            report = await run_sync(
                spec,
                resolve_settings(spec, self.flags),
                ProgressView(self.view(), self.metrics.touch),
                handle_signals=False,
                control=self._control,
                hooks=hooks,
                quotas=self.metrics.quotas,
            )
            report.extra.update(hooks.report_data())
            hooks_ok = hooks.ok
            for line in report.summary_lines() + hooks.summary_lines():
                self.echo(line)
        except AsyncSyncError as exc:
            self.echo(f"mirror: cycle {number} failed: {exc}")
        finally:
            self._control = None
            self.metrics.running = False
        self.last_ok = report is not None and report.ok and hooks_ok
        if report is not None:
            self.metrics.record_deferred(len(report.deferred), report.quota_deferred)
        self._record(report, tracker, started)
        if report is not None and self.report_path is not None:
            report.write_json(self.report_path)
        if self.on_cycle is not None:
            await self.on_cycle(number, report)
        return report

    def _record(self, report: SyncReport | None, tracker: EntryTracker | None, started: float) -> None:
        outcome = CycleOutcome(ok=self.last_ok, started=started, finished=time.time())
        if report is not None:
            outcome.outcomes = report.counts
            outcome.bytes_uploaded = report.bytes_uploaded
            outcome.bytes_reused = report.bytes_reused
            prune = report.extra.get("prune", {})
            outcome.pruned = sum(1 for tag in prune.get("tags", []) if tag.get("action") == "deleted")
        if tracker is not None:
            clean_run = report is not None and not report.stopped_reason
            outcome.entries = {
                label: (counts, clean_run and label not in tracker.troubled)
                for label, counts in tracker.outcomes.items()
            }
        self.metrics.record(outcome)
