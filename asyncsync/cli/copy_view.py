"""How ``copy`` shows a copy's progress: skopeo's plain lines, or rich bars on a terminal.

Both implement :class:`~asyncsync.copy.progress.CopyProgress`, which is all the engine knows:

* :class:`PlainProgress` - skopeo's lines, one per finished step, for logs and pipes::

      Getting image source signatures
      Copying blob 3e207b409db3 done
      Copying blob 3e207b409db3 skipped: already exists
      Copying blob 3e207b409db3 mounted from proj/app
      Copying config 5e1f0a3b2c4d done
      Writing manifest to image destination

* :class:`RichProgress` - a rich progress bar per blob (bytes, rate) on a terminal, then the
  same final lines.
"""

from __future__ import annotations

import sys
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from asyncsync.copy.progress import BlobKind, BlobOutcome, CopyProgress, NullProgress
from asyncsync.digest import Digest
from asyncsync.manifest import Descriptor


def blob_line(kind: BlobKind, digest: Digest, outcome: BlobOutcome, mounted_from: str | None = None) -> str:
    """The skopeo-style line for a finished blob."""
    text = f"Copying {kind} {digest.short}"
    if outcome == "skipped":
        return f"{text} skipped: already exists"
    if outcome == "mounted":
        return f"{text} mounted from {mounted_from}" if mounted_from else f"{text} mounted"
    return f"{text} done"


def make_progress(quiet: bool) -> CopyProgress:
    """Nothing with ``--quiet``; rich bars on a terminal; skopeo's plain lines otherwise."""
    if quiet:
        return NullProgress()
    if sys.stdout.isatty():
        return RichProgress(Console())
    return PlainProgress(sys.stdout)


class PlainProgress(NullProgress):
    """skopeo's plain lines on ``stream`` (stdout, as skopeo), one per finished step."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def _print(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def copy_started(self, source: str, destination: str) -> None:
        self._print("Getting image source signatures")

    def image_started(self, digest: Digest, position: int, total: int) -> None:
        self._print(f"Copying image {digest} ({position}/{total})")

    def blob_finished(
        self, blob: Descriptor, kind: BlobKind, outcome: BlobOutcome, mounted_from: str | None = None
    ) -> None:
        self._print(blob_line(kind, blob.digest, outcome, mounted_from))

    def manifest_writing(self) -> None:
        self._print("Writing manifest to image destination")

    def note(self, message: str) -> None:
        self._print(message)


class RichProgress(NullProgress):
    """Live progress bars per blob on a terminal; finished blobs leave skopeo's line behind.

    Use as a context manager (or :meth:`start`/:meth:`stop`) around the copy.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._tasks: dict[Digest, TaskID] = {}

    def start(self) -> None:
        self._progress.start()

    def stop(self) -> None:
        self._progress.stop()

    def __enter__(self) -> RichProgress:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def copy_started(self, source: str, destination: str) -> None:
        self.console.print("Getting image source signatures")

    def image_started(self, digest: Digest, position: int, total: int) -> None:
        self.console.print(f"Copying image {digest} ({position}/{total})")

    def blob_started(self, blob: Descriptor, kind: BlobKind) -> None:
        if blob.digest not in self._tasks:
            self._tasks[blob.digest] = self._progress.add_task(
                f"Copying {kind} {blob.digest.short}", total=blob.size or None
            )

    def blob_advanced(self, blob: Descriptor, count: int) -> None:
        task = self._tasks.get(blob.digest)
        if task is not None:
            self._progress.advance(task, count)

    def blob_restarted(self, blob: Descriptor, offset: int) -> None:
        task = self._tasks.get(blob.digest)
        if task is not None:
            self._progress.reset(task, completed=offset)

    def blob_finished(
        self, blob: Descriptor, kind: BlobKind, outcome: BlobOutcome, mounted_from: str | None = None
    ) -> None:
        task = self._tasks.pop(blob.digest, None)
        if task is not None:
            self._progress.remove_task(task)
        self.console.print(blob_line(kind, blob.digest, outcome, mounted_from), highlight=False)

    def manifest_writing(self) -> None:
        self.console.print("Writing manifest to image destination")

    def note(self, message: str) -> None:
        self.console.print(message, highlight=False, markup=False)
