"""What a run knows about destination repositories: which were new, and what a crash left in them.

A sync into a fresh registry spends most of its requests asking "is this blob here?" of
repositories that did not exist when the run began. :class:`DestinationState` lets the run
answer that without a request, safely:

* ``mark_fresh(registry, repository)``: the sync's destination check found the repository
  absent (its tag list answered ``NAME_UNKNOWN``) before this run wrote anything there.
* A blob is ``known_absent`` in a fresh repository unless this run or an earlier one may
  have left it there. Uploads are appended to a journal file (one line per blob, flushed as
  it happens, so a ``kill -9`` keeps it) in the user cache directory; the next run loads
  it. Without a journal (``--no-mount-cache``) nothing is ever "known absent" and every blob
  gets its HEAD, as before.

A registry whose repository lost its tags but kept blobs also answers ``NAME_UNKNOWN``; the
journal is what keeps a re-run after a crash from uploading those blobs again. Blobs left by
another tool are not in the journal: at worst they are uploaded once more, never lost.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO

from asyncsync.digest import Digest

JOURNAL_FILE = "upload-journal.tsv"
#: Lines kept when the journal is compacted at load (the newest; older runs' blobs age out).
MAX_JOURNAL_LINES = 200_000


def default_mount_index_dir() -> Path:
    """The run's state directory, the user cache directory (``$XDG_CACHE_HOME/asyncsync`` on
    Linux): this journal, the mount-source index, the recompressed layers, the copy results."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("asyncsync"))


class DestinationState:
    """Run-wide facts about destination repositories (see the module docstring)."""

    def __init__(self, journal_dir: Path | None = None) -> None:
        self._fresh: set[tuple[str, str]] = set()
        self._left: set[tuple[str, str, str]] = set()
        self._journal: IO[str] | None = None
        if journal_dir is not None:
            self._open_journal(journal_dir / JOURNAL_FILE)

    @property
    def trusted(self) -> bool:
        """Whether fresh repositories may skip presence checks (a journal is being kept)."""
        return self._journal is not None

    def _open_journal(self, path: Path) -> None:
        lines: list[str] = []
        with contextlib.suppress(OSError):
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        for line in lines:
            parts = line.split("\t")
            if len(parts) == 3:
                self._left.add((parts[0], parts[1], parts[2]))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if len(lines) > MAX_JOURNAL_LINES:
                tmp = path.with_suffix(".tmp")
                tmp.write_text("\n".join(lines[-MAX_JOURNAL_LINES:]) + "\n", encoding="utf-8")
                os.replace(tmp, path)
            self._journal = path.open("a", encoding="utf-8")
        except OSError:
            self._journal = None  # no journal: behave as without a cache (HEAD everything)

    def mark_fresh(self, registry: str, repository: str) -> None:
        """The repository did not exist when the run first looked, before any write of this run."""
        self._fresh.add((registry, repository))

    def is_fresh(self, registry: str, repository: str) -> bool:
        return (registry, repository) in self._fresh

    def known_absent(self, registry: str, repository: str, digest: Digest) -> bool:
        """True only when no request is needed to know the blob is not in the repository."""
        return (
            self._journal is not None
            and (registry, repository) in self._fresh
            and (registry, repository, str(digest)) not in self._left
        )

    def uploaded(self, registry: str, repository: str, digest: Digest) -> None:
        """Journal a blob upload about to be (or just) committed to ``registry/repository``."""
        if self._journal is None:
            return
        try:
            self._journal.write(f"{registry}\t{repository}\t{digest}\n")
            self._journal.flush()  # into the kernel: survives kill -9 of this process
        except OSError:
            return

    def close(self) -> None:
        if self._journal is not None:
            with contextlib.suppress(OSError):
                self._journal.close()
            self._journal = None
