"""ProgressView: every step of a cycle touches the stall clock and reaches the wrapped view."""

from __future__ import annotations

from asyncsync.copy.progress import CopyProgress, NullProgress
from asyncsync.digest import Digest
from asyncsync.manifest import Descriptor
from asyncsync.mirror.progress import ProgressView
from asyncsync.sync.engine import SyncView
from asyncsync.sync.plan import PlannedImage

DIGEST = Digest.parse("sha256:" + "a" * 64)
BLOB = Descriptor(media_type="application/octet-stream", digest=DIGEST, size=3)


class _Recording(NullProgress):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def blob_advanced(self, blob: Descriptor, count: int) -> None:
        self.calls.append(f"advanced {count}")

    def blob_restarted(self, blob: Descriptor, offset: int) -> None:
        self.calls.append(f"restarted {offset}")


class _View(SyncView):
    def __init__(self, progress: CopyProgress) -> None:
        self.progress = progress
        self.started = 0

    def image_started(self, image: PlannedImage) -> CopyProgress:
        self.started += 1
        return self.progress


def test_steps_touch_and_forward() -> None:
    touches: list[int] = []
    inner = _Recording()
    view = _View(inner)
    wrapped = ProgressView(view, lambda: touches.append(1))
    progress = wrapped.image_started(None)  # type: ignore[arg-type]  # the image is only passed on
    assert view.started == 1 and len(touches) == 1
    progress.blob_started(BLOB, "blob")
    progress.blob_advanced(BLOB, 3)
    progress.blob_finished(BLOB, "blob", "done")
    progress.manifest_writing()
    progress.copy_finished(DIGEST)
    assert len(touches) == 6
    progress.blob_restarted(BLOB, 0)  # a restart is not progress
    progress.note("retrying")
    assert len(touches) == 6
    assert inner.calls == ["advanced 3", "restarted 0"]
