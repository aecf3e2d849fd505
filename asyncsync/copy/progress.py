"""Copy progress: the protocol of callbacks the copy engine reports to, and :class:`NullProgress`.

The engine only reports; rendering is the CLI's (:mod:`asyncsync.cli.copy_view`: skopeo's plain
lines, rich bars). Callbacks are called from the copy's tasks on the event loop thread; they must
not block.
"""

from __future__ import annotations

from typing import Literal, Protocol

from asyncsync.digest import Digest
from asyncsync.manifest import Descriptor

BlobKind = Literal["blob", "config"]
BlobOutcome = Literal["done", "skipped", "mounted"]


class CopyProgress(Protocol):
    """What the copy engine reports. Every method must return quickly and never raise."""

    def copy_started(self, source: str, destination: str) -> None:
        """A copy of one image (or index) begins."""

    def image_started(self, digest: Digest, position: int, total: int) -> None:
        """Copying instance ``position`` of ``total`` from an index (``--multi-arch all``)."""

    def blob_started(self, blob: Descriptor, kind: BlobKind) -> None:
        """A blob is about to be checked, mounted or transferred."""

    def blob_advanced(self, blob: Descriptor, count: int) -> None:
        """``count`` more bytes of ``blob`` passed through."""

    def blob_restarted(self, blob: Descriptor, offset: int) -> None:
        """A transfer broke and continues from ``offset`` (0 = from the start)."""

    def blob_finished(
        self, blob: Descriptor, kind: BlobKind, outcome: BlobOutcome, mounted_from: str | None = None
    ) -> None:
        """A blob is at the destination: transferred, already there, or mounted."""

    def manifest_writing(self) -> None:
        """The manifest (or tag) is being written."""

    def note(self, message: str) -> None:
        """Something worth telling the user (a skipped foreign layer, a retry)."""

    def copy_finished(self, digest: Digest) -> None:
        """The copy committed; ``digest`` is the top-level manifest's."""


class NullProgress:
    """Reports nothing."""

    def copy_started(self, source: str, destination: str) -> None:
        pass

    def image_started(self, digest: Digest, position: int, total: int) -> None:
        pass

    def blob_started(self, blob: Descriptor, kind: BlobKind) -> None:
        pass

    def blob_advanced(self, blob: Descriptor, count: int) -> None:
        pass

    def blob_restarted(self, blob: Descriptor, offset: int) -> None:
        pass

    def blob_finished(
        self, blob: Descriptor, kind: BlobKind, outcome: BlobOutcome, mounted_from: str | None = None
    ) -> None:
        pass

    def manifest_writing(self) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def copy_finished(self, digest: Digest) -> None:
        pass
