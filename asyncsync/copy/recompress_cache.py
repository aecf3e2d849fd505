"""The run's recompressed layers: (source digest, format, level) -> what the layer became.

Every copy of a run shares one :class:`RecompressCache` (in the copy environment), so a layer
shared by many images is recompressed once: the first copy that needs it recompresses it into a
spool while the others wait (single flight), and every later copy learns the new digest and size
from the cache and goes straight to the destination's reuse check (HEAD, mount, or the run's own
upload of it). A failed recompression lets the next waiter try.

The spool file is kept while some copy is uploading from it (:meth:`CachedLayer.hold`) and closed
(deleted) after the last one, so disk use stays at the layers in flight, not the run's total. A
copy that needs the bytes after that (another destination registry) recompresses again, and the
engine checks that the result has the cached digest (zlib and zstd are deterministic for one
level and library version).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from asyncsync.copy.recompress_stream import Recompressed, Spool
from asyncsync.digest import Digest
from asyncsync.errors import AsyncSyncError
from asyncsync.limits import SingleFlight, SingleFlightStatistics

Key = tuple[Digest, str, int]


@dataclass(slots=True)
class CachedLayer:
    """What a layer became: ``digest``/``size`` in ``compression``; ``changed`` is false when the
    bytes were already in that compression (the digest is then the source's)."""

    digest: Digest
    size: int
    compression: str
    changed: bool
    spool: Spool | None = None
    _holders: int = field(default=0, repr=False)

    def hold(self) -> Spool | None:
        """The spool, if still open, kept open until the matching :meth:`release`."""
        self._holders += 1
        return self.spool

    def release(self) -> None:
        self._holders -= 1
        if self._holders <= 0 and self.spool is not None:
            self.spool.close()
            self.spool = None


INDEX_FILE = "recompressed.tsv"
#: Lines kept when the index is compacted at load (the newest).
MAX_INDEX_LINES = 100_000


def _encoders() -> str:
    """The encoder libraries' versions: a recorded result holds only for the same ones."""
    import zlib_ng
    import zstandard

    return f"zlib-ng {getattr(zlib_ng, '__version__', '?')}, zstandard {zstandard.__version__}"


class RecompressCache:
    """Single-flight recompression per key and the run's results (see the module docstring).

    With ``index_dir`` (the user cache directory, as the upload journal), results are also
    appended to ``recompressed.tsv`` there and earlier runs' are loaded, for the same encoder
    versions: a re-run knows a layer's recompressed digest without recompressing it, so the
    destination is asked for that digest (HEAD, mount) before any work; only a destination
    without it gets the layer recompressed again. The index is read at the first question, so a
    run that recompresses nothing never reads it.
    """

    def __init__(self, index_dir: Path | None = None) -> None:
        self._layers: SingleFlight[Key, CachedLayer] = SingleFlight()
        self._recorded: dict[Key, tuple[Digest, int, bool]] = {}
        self._index: IO[str] | None = None
        self._index_path = index_dir / INDEX_FILE if index_dir is not None else None

    def _records(self) -> dict[Key, tuple[Digest, int, bool]]:
        """Earlier runs' results (the index is read and opened for appending on the first call)."""
        if self._index_path is not None:
            path, self._index_path = self._index_path, None
            self._open_index(path)
        return self._recorded

    def _open_index(self, path: Path) -> None:
        lines: list[str] = []
        with contextlib.suppress(OSError):
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        encoders = _encoders()
        for line in lines:
            parts = line.split("\t")
            if len(parts) != 7 or parts[6] != encoders or not parts[2].isdigit() or not parts[4].isdigit():
                continue
            with contextlib.suppress(AsyncSyncError):
                key = (Digest.parse(parts[0]), parts[1], int(parts[2]))
                self._recorded[key] = (Digest.parse(parts[3]), int(parts[4]), parts[5] == "1")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if len(lines) > MAX_INDEX_LINES:
                tmp = path.with_suffix(".tmp")
                tmp.write_text("\n".join(lines[-MAX_INDEX_LINES:]) + "\n", encoding="utf-8")
                os.replace(tmp, path)
            self._index = path.open("a", encoding="utf-8")
        except OSError:
            self._index = None  # no index: every run recompresses, as without a cache

    def _record(self, key: Key, entry: CachedLayer) -> None:
        line = (entry.digest, entry.size, entry.changed)
        if self._records().get(key) == line or self._index is None:
            return
        self._recorded[key] = line
        source, fmt, level = key
        fields = (str(source), fmt, str(level), str(entry.digest), str(entry.size))
        try:
            self._index.write("\t".join((*fields, "1" if entry.changed else "0", _encoders())) + "\n")
            self._index.flush()
        except OSError:
            return

    def made(self, key: Key) -> CachedLayer | None:
        """This run's result for ``key``, if it has one (an earlier run's record is not)."""
        return self._layers.results().get(key)

    def recorded(self, key: Key) -> CachedLayer | None:
        """What an earlier run recorded for ``key`` (digest and size; no bytes kept)."""
        if key not in self._records():
            return None
        digest, size, changed = self._recorded[key]
        return CachedLayer(digest, size, key[1], changed)

    def known(self, key: Key) -> CachedLayer | None:
        """The result for ``key`` if this run has one, or an earlier run recorded one."""
        return self.made(key) or self.recorded(key)

    async def get(
        self,
        key: Key,
        make: Callable[[], Awaitable[Spool | Recompressed]],
        compression: str,
        *,
        use_record: bool = True,
    ) -> CachedLayer:
        """The result for ``key``, made by ``make`` (once for concurrent callers and the run):
        a :class:`Spool` to upload from, or the :class:`Recompressed` result of a layer that
        ``make`` streamed to its destination itself (nothing kept: later copies elsewhere
        recompress again). An earlier run's record answers without ``make`` unless
        ``use_record`` is false (the caller found its digest missing at the destination and
        will recompress; the new result is recorded if it differs).

        The caller gets the entry already held (:meth:`CachedLayer.hold`); it must release it.
        """

        async def recompress() -> CachedLayer:
            if use_record and key in self._records():  # an earlier run's result: nothing to make yet
                digest, size, changed = self._recorded[key]
                return CachedLayer(digest, size, compression, changed)
            made = await make()
            spool = made if isinstance(made, Spool) else None
            entry = CachedLayer(made.digest, made.size, compression, made.changed, spool)
            self._record(key, entry)
            return entry

        entry = await self._layers.do(key, recompress)
        entry.hold()
        return entry

    def statistics(self) -> SingleFlightStatistics:
        """``runs`` is the number of layers recompressed; ``shared`` + ``cached`` the ones saved."""
        return self._layers.statistics()

    def close(self) -> None:
        """Close every spool still open and the index (the run is over)."""
        if self._index is not None:
            with contextlib.suppress(OSError):
                self._index.close()
            self._index = None
        for entry in self._layers.results().values():
            if entry.spool is not None:
                entry.spool.close()
                entry.spool = None
