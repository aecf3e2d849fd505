"""How a running sync shows itself: plain lines or JSON lines (here), or a rich live view on a
terminal (:mod:`asyncsync.cli.sync_live_view`, imported only then: rich costs start-up time).

All three implement :class:`~asyncsync.sync.engine.SyncView`. Only names, digests, counts and
one-line error messages are printed (errors are already redacted).
"""

from __future__ import annotations

import sys
import time
from typing import IO

import orjson

from asyncsync.sync.engine import SyncView
from asyncsync.sync.plan import Plan, PlannedImage
from asyncsync.sync.report import ImageResult, Outcome, human_bytes


class PlainSyncView(SyncView):
    """One line per finished image (for logs and pipes); quiet prints only failures."""

    def __init__(self, stream: IO[str] | None = None, *, quiet: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.total = 0
        self.done = 0

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def planned(self, plan: Plan) -> None:
        self.total = len(plan.images)
        if not self.quiet:
            self._print(f"Planned {self.total} images ({len(plan.errors)} plan errors)")
        for error in plan.errors:
            self._print(f"plan error: {error}")

    def image_finished(self, image: PlannedImage, result: ImageResult) -> None:
        self.done += 1
        position = f"[{self.done}/{self.total}]"
        if result.outcome is Outcome.FAILED:
            self._print(f"{position} FAILED {result.source} -> {result.destination}: {result.reason}")
        elif self.quiet:
            return
        elif result.outcome is Outcome.SKIPPED:
            self._print(f"{position} skipped {result.destination}: {result.reason}")
        else:
            self._print(
                f"{position} copied {result.source} -> {result.destination} ({result.digest[:19]}): "
                f"{result.blobs_copied} uploaded, {result.blobs_mounted} mounted, "
                f"{result.blobs_existing} existing, {human_bytes(result.bytes_uploaded)}"
            )


class JsonSyncView(SyncView):
    """One JSON object per event (``--log-format json``)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout

    def _emit(self, event: dict[str, object]) -> None:
        event["time"] = round(time.time(), 3)
        self.stream.write(orjson.dumps(event).decode() + "\n")
        self.stream.flush()

    def planned(self, plan: Plan) -> None:
        self._emit(
            {"event": "planned", "images": len(plan.images), "plan_errors": [str(e) for e in plan.errors]}
        )

    def image_finished(self, image: PlannedImage, result: ImageResult) -> None:
        self._emit(
            {
                "event": "image",
                "outcome": result.outcome.value,
                "source": result.source,
                "destination": result.destination,
                "digest": result.digest,
                "reason": result.reason,
                "bytes_uploaded": result.bytes_uploaded,
                "seconds": result.seconds,
            }
        )
