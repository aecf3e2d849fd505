"""The rich live view of a running sync on a terminal (see :mod:`asyncsync.cli.sync_view` for the
plain and JSON views). A module of its own so a run without a terminal never imports rich's
console, live display and progress bars (about 40 ms of start-up)."""

from __future__ import annotations

import time

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from asyncsync.copy.progress import CopyProgress, NullProgress
from asyncsync.manifest import Descriptor
from asyncsync.sync.engine import SyncView
from asyncsync.sync.plan import Plan, PlannedImage
from asyncsync.sync.report import ImageResult, Outcome, human_bytes
from asyncsync.sync.scheduler import PoolStatistics


class _ByteCounter(NullProgress):
    """Per-image progress sink that adds streamed bytes to the run's total."""

    def __init__(self, view: RichSyncView, key: str) -> None:
        self.view = view
        self.key = key

    def blob_advanced(self, blob: Descriptor, count: int) -> None:
        self.view.bytes_moved += count
        self.view.active[self.key] = self.view.active.get(self.key, 0) + count


class RichSyncView(SyncView):
    """A live view: overall progress (images, bytes, rate, ETA) and the images in flight."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]images"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[bytes]}"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.task = self.progress.add_task("sync", total=None, bytes="")
        self.active: dict[str, int] = {}
        self.bytes_moved = 0
        self.started = time.monotonic()
        self.pool: PoolStatistics | None = None
        self.live = Live(
            self._render(), console=self.console, refresh_per_second=4, get_renderable=self._render
        )

    def __enter__(self) -> RichSyncView:
        self.live.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.live.stop()

    def _render(self) -> Group:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.bytes_moved / elapsed
        self.progress.update(self.task, bytes=f"{human_bytes(self.bytes_moved)} at {human_bytes(rate)}/s")
        table = Table.grid(padding=(0, 1))
        for name, moved in list(self.active.items())[:12]:
            table.add_row("  ", name, human_bytes(moved))
        return Group(self.progress, table)

    def planned(self, plan: Plan) -> None:
        self.progress.update(self.task, total=len(plan.images))
        for error in plan.errors:
            self.console.print(f"[red]plan error:[/red] {error}")

    def pool_started(self, stats: PoolStatistics) -> None:
        self.pool = stats

    def image_started(self, image: PlannedImage) -> CopyProgress:
        key = image.describe_destination()
        self.active[key] = 0
        return _ByteCounter(self, key)

    def image_finished(self, image: PlannedImage, result: ImageResult) -> None:
        self.active.pop(image.describe_destination(), None)
        self.progress.advance(self.task)
        if result.outcome is Outcome.FAILED:
            self.console.print(f"[red]FAILED[/red] {result.source} -> {result.destination}: {result.reason}")
