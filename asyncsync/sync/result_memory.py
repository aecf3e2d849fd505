"""What earlier copies produced at destination tags whose digest cannot be predicted.

A copy that keeps the manifest bytes is decided with one destination HEAD: the planned source
digest is the expected destination digest. A copy that picks one platform out of an index
(``--multi-arch system``, the default without ``--all``) writes a digest that is only known
once the source index has been read, so without help every re-run would GET the index and walk
the copy again. :class:`ResultMemory` remembers, per destination
tag, which source digest and which copy settings produced which destination digest; when a
later run plans the same source digest with the same settings for the same tag, the remembered
digest is the expected one and the image is decided with the one HEAD as any other.

Trust: the memory only ever turns a "copy" into a "HEAD and compare": a skip still needs the
destination to answer the remembered digest at the tag. A stale, foreign or lost entry costs a
copy, never a wrong skip: the key holds everything the destination digest depends on (source
digest, ``multi_arch``, the platform actually chosen, ``platforms``, ``format``). Only
``--multi-arch system`` copies of an index without a format change are remembered
(:func:`remembers`): their result is one source manifest, unchanged, so what follows the image on
a skip (attachments) is known without the index; a format change or a ``platforms:`` subset
rewrite manifests and are copied as before.

Storage: ``copy-results.json`` in the run's state directory (beside the mount index; none with
``--no-mount-cache``). Saved at the end of a run by merging into what is on disk at that moment
(another run may have saved meanwhile) and renaming a temporary file over it, so concurrent runs
and crashes leave the old or the new file, never a torn one; a missing or damaged file is an
empty memory. Entries are bounded (:data:`MAX_ENTRIES`, the most recently used kept).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from asyncsync.digest import Digest
from asyncsync.errors import InvalidReferenceError
from asyncsync.manifest import host_platform
from asyncsync.specs.model import CopySettings
from asyncsync.state_files import read_entries, save_merged

if TYPE_CHECKING:
    from asyncsync.sync.plan import PlannedImage

RESULTS_FILE = "copy-results.json"
#: Entries kept on save (one per destination tag; the least recently used go first).
MAX_ENTRIES = 100_000
#: Version of the file's layout; another version is ignored (an empty memory).
FORMAT_VERSION = 1


def remembers(image: PlannedImage) -> bool:
    """Whether ``image``'s result is remembered: an index copied as one platform's image, to a
    registry tag, without a format change."""
    dest = image.destination
    return (
        image.is_index
        and image.manifest_pinned
        and image.settings.multi_arch == "system"
        and image.settings.format is None
        and image.destination_local is None
        and dest.tag is not None
        and dest.digest is None
    )


def settings_key(settings: CopySettings) -> str:
    """The copy settings a destination digest depends on, as one string (the platform resolved:
    a memory written on an arm64 host must not answer for an amd64 one)."""
    platform = settings.platform or host_platform()
    platforms = ",".join(sorted(str(p) for p in settings.platforms))
    return f"{settings.multi_arch}|{platform}|{platforms}|{settings.format or ''}"


class ResultMemory:
    """Destination tag -> (source digest, settings key, destination digest, last used)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._entries: dict[str, list[object]] = self._read() if directory is not None else {}
        self._changed: dict[str, list[object]] = {}

    @property
    def path(self) -> Path | None:
        return self.directory / RESULTS_FILE if self.directory is not None else None

    def _read(self) -> dict[str, list[object]]:
        assert self.path is not None
        entries = read_entries(self.path, FORMAT_VERSION)
        return {k: v for k, v in entries.items() if isinstance(v, list) and len(v) == 4}

    def expected(self, destination: str, source: Digest, settings: CopySettings) -> Digest | None:
        """The digest a copy of ``source`` with ``settings`` left at tag ``destination``
        (``registry/repository:tag``), if one was remembered for exactly these; else ``None``."""
        entry = self._entries.get(destination)
        if entry is None or entry[0] != str(source) or entry[1] != settings_key(settings):
            return None
        try:
            digest = Digest.parse(str(entry[2]))
        except InvalidReferenceError:
            return None
        self._changed[destination] = [entry[0], entry[1], entry[2], int(time.time())]
        return digest

    def record(self, destination: str, source: Digest, settings: CopySettings, result: Digest) -> None:
        """A copy of ``source`` with ``settings`` wrote ``result`` at tag ``destination``."""
        entry: list[object] = [str(source), settings_key(settings), str(result), int(time.time())]
        self._entries[destination] = entry
        self._changed[destination] = entry

    def save(self) -> None:
        """Merge this run's entries into the file on disk (:func:`~asyncsync.state_files.save_merged`);
        failures are ignored: the memory is an optimisation."""
        if self.path is None or not self._changed:
            return
        if save_merged(self.path, FORMAT_VERSION, self._changed, max_entries=MAX_ENTRIES, recency=_last_used):
            self._changed.clear()


def _last_used(entry: list[object]) -> int:
    value = entry[3] if isinstance(entry, list) and len(entry) == 4 else 0
    return value if isinstance(value, int) else 0
