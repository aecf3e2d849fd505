"""The run's recompression cache and its index across runs (:mod:`asyncsync.copy.recompress_cache`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncsync.copy.recompress_cache import INDEX_FILE, RecompressCache
from asyncsync.copy.recompress_stream import Recompressed
from asyncsync.digest import Digest

pytestmark = pytest.mark.anyio

SOURCE = Digest.of(b"source layer")
OUT = Digest.of(b"recompressed layer")


async def test_a_result_is_recorded_and_known_to_the_next_run_without_recompressing(tmp_path: Path) -> None:
    made: list[int] = []

    async def make() -> Recompressed:
        made.append(1)
        return Recompressed(OUT, 1234, None, True)

    first = RecompressCache(tmp_path)
    entry = await first.get((SOURCE, "zstd", 3), make, "zstd")
    entry.release()
    first.close()
    assert made == [1]

    second = RecompressCache(tmp_path)
    known = second.known((SOURCE, "zstd", 3))
    assert known is not None and (known.digest, known.size, known.spool) == (OUT, 1234, None)
    assert second.known((SOURCE, "zstd", 5)) is None  # another level is another result
    entry = await second.get((SOURCE, "zstd", 3), make, "zstd")
    assert (entry.digest, entry.size) == (OUT, 1234) and made == [1]  # nothing recompressed
    entry.release()
    second.close()


async def test_results_of_other_encoder_versions_and_damaged_lines_are_ignored(tmp_path: Path) -> None:
    (tmp_path / INDEX_FILE).write_text(
        f"{SOURCE}\tzstd\t3\t{OUT}\t1234\t1\tzlib-ng 0.0, zstandard 0.0\n"
        f"{SOURCE}\tgzip\tsix\t{OUT}\t1234\t1\tx\n"
        "not a line\n"
    )
    cache = RecompressCache(tmp_path)
    assert cache.known((SOURCE, "zstd", 3)) is None
    assert cache.known((SOURCE, "gzip", 6)) is None
    cache.close()


async def test_without_a_directory_nothing_is_kept() -> None:
    async def make() -> Recompressed:
        return Recompressed(OUT, 1, None, True)

    cache = RecompressCache()
    (await cache.get((SOURCE, "gzip", 6), make, "gzip")).release()
    assert cache.known((SOURCE, "gzip", 6)) is not None  # this run's own result
    assert RecompressCache().known((SOURCE, "gzip", 6)) is None
