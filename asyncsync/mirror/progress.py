"""Progress of a mirror cycle, as ``/healthz`` judges a stalled refresh.

:class:`ProgressView` wraps the cycle's :class:`~asyncsync.sync.engine.SyncView` and calls
``touch()`` whenever the cycle moves: an image starts or finishes, a blob starts, advances or
finishes, a manifest is written. Everything is forwarded unchanged to the wrapped view and its
progress sinks. A refresh that calls no ``touch()`` for the stall time (``--stall-after``) is
stalled (:meth:`asyncsync.mirror.metrics.MirrorMetrics.health`).
"""

from __future__ import annotations

from collections.abc import Callable

from asyncsync.copy.progress import BlobKind, BlobOutcome, CopyProgress
from asyncsync.digest import Digest
from asyncsync.manifest import Descriptor
from asyncsync.sync.engine import SyncView
from asyncsync.sync.plan import Plan, PlannedImage
from asyncsync.sync.report import ImageResult
from asyncsync.sync.scheduler import PoolStatistics


class _TouchingProgress:
    """A :class:`CopyProgress` that touches on every callback, then forwards it."""

    def __init__(self, inner: CopyProgress, touch: Callable[[], None]) -> None:
        self._inner = inner
        self._touch = touch

    def copy_started(self, source: str, destination: str) -> None:
        self._touch()
        self._inner.copy_started(source, destination)

    def image_started(self, digest: Digest, position: int, total: int) -> None:
        self._touch()
        self._inner.image_started(digest, position, total)

    def blob_started(self, blob: Descriptor, kind: BlobKind) -> None:
        self._touch()
        self._inner.blob_started(blob, kind)

    def blob_advanced(self, blob: Descriptor, count: int) -> None:
        self._touch()
        self._inner.blob_advanced(blob, count)

    def blob_restarted(self, blob: Descriptor, offset: int) -> None:
        self._inner.blob_restarted(blob, offset)  # a restart is not progress

    def blob_finished(
        self, blob: Descriptor, kind: BlobKind, outcome: BlobOutcome, mounted_from: str | None = None
    ) -> None:
        self._touch()
        self._inner.blob_finished(blob, kind, outcome, mounted_from)

    def manifest_writing(self) -> None:
        self._touch()
        self._inner.manifest_writing()

    def note(self, message: str) -> None:
        self._inner.note(message)

    def copy_finished(self, digest: Digest) -> None:
        self._touch()
        self._inner.copy_finished(digest)


class ProgressView(SyncView):
    """``inner`` with every step of the cycle reported to ``touch``."""

    def __init__(self, inner: SyncView, touch: Callable[[], None]) -> None:
        self._inner = inner
        self._touch = touch

    def planned(self, plan: Plan) -> None:
        self._touch()
        self._inner.planned(plan)

    def pool_started(self, stats: PoolStatistics) -> None:
        self._inner.pool_started(stats)

    def image_started(self, image: PlannedImage) -> CopyProgress:
        self._touch()
        return _TouchingProgress(self._inner.image_started(image), self._touch)

    def image_finished(self, image: PlannedImage, result: ImageResult) -> None:
        self._touch()
        self._inner.image_finished(image, result)
