"""Recompressing a layer stream into a spool: every direction, bounded pieces, corrupt input."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import random
import tracemalloc
from collections.abc import AsyncIterator

import anyio
import pytest
import zstandard

from asyncsync.copy.layer_format import Format
from asyncsync.copy.recompress_stream import PIECE, Spool, ZstdFrames, recompressing, spool_recompressed
from asyncsync.errors import ContentError, DigestMismatchError
from asyncsync.registry.blobs import READ_CHUNK, pumped

pytestmark = pytest.mark.anyio

CHUNK = 64 * 1024


def _content(size: int = 3 * 1024 * 1024) -> bytes:
    rng = random.Random(15)
    # Half random, half repetitive: compressible like a real layer, with incompressible parts.
    return rng.randbytes(size // 2) + b"layer text line\n" * (size // 32)


async def _chunks(data: bytes, *, fail_after: int | None = None) -> AsyncIterator[bytes]:
    for start in range(0, len(data), CHUNK):
        if fail_after is not None and start >= fail_after:
            raise DigestMismatchError("blob sha256:x: digest mismatch (the producer's error)")
        yield data[start : start + CHUNK]


async def _read(spool: Spool) -> bytes:
    return b"".join([piece async for piece in spool.chunks()])


def _unzstd(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True).read()


@pytest.mark.parametrize(
    ("compress", "source"),
    [
        (lambda d: d, None),
        (lambda d: gzip.compress(d, mtime=0), "gzip"),
        (lambda d: zstandard.ZstdCompressor().compress(d), "zstd"),
        (bz2.compress, "bzip2"),
        (lzma.compress, "xz"),
    ],
)
@pytest.mark.parametrize("target", ["gzip", "zstd"])
async def test_every_input_becomes_the_target_format_with_digest_and_size_of_the_spool(
    compress: object, source: str | None, target: str
) -> None:
    content = _content()
    data = compress(content)  # type: ignore[operator]
    spool = await spool_recompressed(_chunks(data), target, 3, None, "layer L")  # type: ignore[arg-type]
    try:
        out = await _read(spool)
        assert spool.size == len(out)
        assert spool.digest.hex == hashlib.sha256(out).hexdigest()
        assert spool.source_compression == source
        if source == target:
            assert not spool.changed and out == data  # already in the format: unchanged bytes
        else:
            assert spool.changed
            assert (gzip.decompress(out) if target == "gzip" else _unzstd(out)) == content
    finally:
        spool.close()


async def test_output_is_deterministic_for_one_level() -> None:
    data = gzip.compress(_content(), mtime=0)
    first = await spool_recompressed(_chunks(data), "zstd", 5, None, "layer L")
    second = await spool_recompressed(_chunks(data), "zstd", 5, None, "layer L")
    other = await spool_recompressed(_chunks(data), "zstd", 1, None, "layer L")
    assert first.digest == second.digest != other.digest
    for spool in (first, second, other):
        spool.close()


async def test_spool_reads_are_bounded_and_resume_at_an_offset() -> None:
    data = _content(5 * 1024 * 1024)
    spool = await spool_recompressed(_chunks(data), "gzip", 1, None, "layer L")
    try:
        pieces = [piece async for piece in spool.chunks()]
        assert max(len(p) for p in pieces) <= PIECE
        tail = b"".join([piece async for piece in spool.chunks(1000)])
        assert tail == b"".join(pieces)[1000:]
    finally:
        spool.close()


def _zstd_with_checksum(content: bytes) -> bytes:
    return zstandard.ZstdCompressor(write_checksum=True).compress(content)


@pytest.mark.parametrize(
    ("name", "damage", "message"),
    [
        (
            "flipped byte",
            lambda z: z[: len(z) // 3] + bytes([z[len(z) // 3] ^ 0xFF]) + z[len(z) // 3 + 1 :],
            "corrupt zstd data",
        ),
        ("cut in half", lambda z: z[: len(z) // 2], "truncated zstd data"),
        ("checksum cut", lambda z: z[:-2], "truncated zstd data"),
        ("trailing garbage", lambda z: z + b"not a frame", "corrupt zstd data"),
    ],
)
async def test_corrupt_zstd_is_one_clear_content_error(name: str, damage: object, message: str) -> None:
    broken = damage(_zstd_with_checksum(_content()))  # type: ignore[operator]
    with pytest.raises(ContentError) as caught:
        await spool_recompressed(_chunks(broken), "gzip", 6, None, "layer sha256:abc")
    assert str(caught.value).startswith(f"layer sha256:abc: {message}"), name
    assert "\n" not in str(caught.value)


async def test_truncated_gzip_is_a_content_error() -> None:
    data = gzip.compress(_content(), mtime=0)
    with pytest.raises(ContentError, match="corrupt gzip data"):
        await spool_recompressed(_chunks(data[: len(data) // 2]), "zstd", 3, None, "layer L")


async def test_the_producers_error_is_raised_not_the_workers() -> None:
    data = gzip.compress(_content(), mtime=0)
    with pytest.raises(DigestMismatchError, match="the producer's error"):
        await spool_recompressed(_chunks(data, fail_after=CHUNK * 3), "zstd", 3, None, "layer L")


@pytest.mark.parametrize(("source", "target", "budget"), [(None, "gzip", 4), ("gzip", "zstd", 6)])
async def test_a_layer_streamed_into_an_upload_holds_a_few_pieces_whatever_its_size(
    source: str | None, target: Format, budget: int
) -> None:
    """Memory per layer is bounded by piece sizes, not by the layer (issue 15): 32 MiB of
    incompressible input recompressed into an upload body whose reader is slower than the
    encoder, so every buffer on the way is full (the feed's source chunks, the piece being
    encoded, output being gathered, the queued output pieces and the upload pump's). tracemalloc
    counts every bytes object whichever thread made it; the encoder's own state is C memory and
    is not counted; a decompressor adds its own buffers. Measured: 3.2 and 5.0 MiB (with 1 MiB
    pieces it was 5.3 and 7.9 MiB)."""
    total = 32 * 1024 * 1024
    chunks = [os.urandom(READ_CHUNK) for _ in range(total // READ_CHUNK)]
    data = b"".join(chunks) if source is None else gzip.compress(b"".join(chunks), compresslevel=1, mtime=0)
    del chunks

    async def source_chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), READ_CHUNK):
            yield data[start : start + READ_CHUNK]  # a fresh bytes object, as a GET delivers

    received = 0
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        async with (
            recompressing(source_chunks(), target, 1, "layer L") as output,
            pumped(output.chunks()) as body,
        ):
            async for piece in body:
                received += len(piece)
                await anyio.sleep(0.002)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert received == output.result().size > total
    assert peak <= budget * 1024 * 1024, f"{peak / 1024 / 1024:.1f} MiB held"


def test_zstd_frames_follow_skippable_and_several_frames() -> None:
    content = _content(256 * 1024)
    skippable = b"\x50\x2a\x4d\x18" + (4).to_bytes(4, "little") + b"toc!"
    stream = skippable + _zstd_with_checksum(content) + zstandard.ZstdCompressor().compress(content)
    frames = ZstdFrames("layer")
    for start in range(0, len(stream), 7):  # headers split across pieces
        frames.feed(stream[start : start + 7])
    frames.finish()
    assert frames.frames == 2
    empty = ZstdFrames("layer")
    with pytest.raises(ContentError, match="truncated"):
        empty.finish()
