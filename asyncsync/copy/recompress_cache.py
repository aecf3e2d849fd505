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

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from asyncsync.copy.recompress_stream import Recompressed, Spool
from asyncsync.digest import Digest
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


class RecompressCache:
    """Single-flight recompression per key and the run's results (see the module docstring)."""

    def __init__(self) -> None:
        self._layers: SingleFlight[Key, CachedLayer] = SingleFlight()

    def known(self, key: Key) -> CachedLayer | None:
        """The result for ``key`` if this run has one."""
        return self._layers.results().get(key)

    async def get(
        self, key: Key, make: Callable[[], Awaitable[Spool | Recompressed]], compression: str
    ) -> CachedLayer:
        """The result for ``key``, made by ``make`` (once for concurrent callers and the run):
        a :class:`Spool` to upload from, or the :class:`Recompressed` result of a layer that
        ``make`` streamed to its destination itself (nothing kept: later copies elsewhere
        recompress again).

        The caller gets the entry already held (:meth:`CachedLayer.hold`); it must release it.
        """

        async def recompress() -> CachedLayer:
            made = await make()
            spool = made if isinstance(made, Spool) else None
            return CachedLayer(made.digest, made.size, compression, made.changed, spool)

        entry = await self._layers.do(key, recompress)
        entry.hold()
        return entry

    def statistics(self) -> SingleFlightStatistics:
        """``runs`` is the number of layers recompressed; ``shared`` + ``cached`` the ones saved."""
        return self._layers.statistics()

    def close(self) -> None:
        """Close every spool still open (the run is over)."""
        for entry in self._layers.results().values():
            if entry.spool is not None:
                entry.spool.close()
                entry.spool = None
