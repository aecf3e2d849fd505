"""Streaming layer (de)compression transforms."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
from collections.abc import Callable

import pytest
import zstandard

from asyncsync.errors import ContentError, LocalStorageError
from asyncsync.manifest import DOCKER_LAYER_GZIP, OCI_LAYER, OCI_LAYER_ZSTD
from asyncsync.transports.layer_compression import (
    DOCKER_LAYER_TAR,
    PIECE,
    Decompress,
    detect,
    is_layer,
    uncompressed_media_type,
)

DATA = os.urandom(200_000) + bytes(3_000_000)
SKIPPABLE = b"\x50\x2a\x4d\x18" + (4).to_bytes(4, "little") + b"toc!"


def _zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(write_checksum=True).compress(data)


def _run(transform: Callable[[bytes | None], object], data: bytes, step: int = 4096) -> tuple[bytes, int]:
    out = bytearray()
    biggest = 0
    pieces = [data[i : i + step] for i in range(0, len(data), step)]
    for chunk in [*pieces, None]:
        for piece in transform(chunk):  # type: ignore[attr-defined]
            out += piece
            biggest = max(biggest, len(piece))
    return bytes(out), biggest


@pytest.mark.parametrize(
    ("compress", "kind"),
    [
        (gzip.compress, "gzip"),
        (bz2.compress, "bzip2"),
        (lzma.compress, "xz"),
        (lambda d: gzip.compress(d[:1000]) + gzip.compress(d[1000:]), "gzip"),
        (lambda d: bz2.compress(d[:1000]) + bz2.compress(d[1000:]), "bzip2"),
        (lambda d: lzma.compress(d[:1000]) + lzma.compress(d[1000:]), "xz"),
        (lambda d: _zstd(d), "zstd"),
        (lambda d: _zstd(d[:1000]) + _zstd(d[1000:]), "zstd"),
        (lambda d: _zstd(d[:1000]) + SKIPPABLE + _zstd(d[1000:]) + SKIPPABLE, "zstd"),
    ],
)
def test_decompress_restores_the_data_in_bounded_pieces(
    compress: Callable[[bytes], bytes], kind: str
) -> None:
    transform = Decompress("layer")
    out, biggest = _run(transform, compress(DATA))
    assert out == DATA
    assert transform.compression == kind and transform.changed
    assert biggest <= PIECE


def test_decompress_passes_uncompressed_data_through() -> None:
    transform = Decompress("layer")
    assert _run(transform, DATA)[0] == DATA
    assert transform.compression is None and not transform.changed
    assert _run(Decompress("tiny"), b"abc")[0] == b"abc"


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_truncated_compressed_data_is_an_error(compress: Callable[[bytes], bytes]) -> None:
    with pytest.raises(LocalStorageError, match=r"truncated|corrupt"):
        _run(Decompress("layer x"), compress(DATA)[:-64])


def test_truncated_or_corrupt_zstd_is_an_error() -> None:
    frame = _zstd(DATA)
    with pytest.raises(ContentError, match="truncated zstd data"):
        _run(Decompress("layer x"), frame[:-64])
    with pytest.raises(ContentError, match="truncated zstd data"):
        _run(Decompress("layer x"), frame[:-2])  # only the checksum cut
    with pytest.raises(LocalStorageError, match="corrupt zstd data"):
        _run(Decompress("layer x"), frame[:5000] + bytes([frame[5000] ^ 0xFF]) + frame[5001:])


def test_a_zstd_bomb_still_comes_out_in_bounded_pieces() -> None:
    # 64 MiB of zeros is a few hundred bytes of zstd: every 4 KiB chunk holds ~1000 RLE blocks.
    out, biggest = _run(Decompress("layer"), _zstd(bytes(64 * 1024 * 1024)))
    assert len(out) == 64 * 1024 * 1024 and biggest <= PIECE


def test_detection_and_media_types() -> None:
    assert detect(gzip.compress(b"x")) == "gzip"
    assert detect(b"plain tar") is None
    assert uncompressed_media_type(DOCKER_LAYER_GZIP) == DOCKER_LAYER_TAR
    assert uncompressed_media_type(OCI_LAYER_ZSTD) == OCI_LAYER
    assert is_layer(DOCKER_LAYER_TAR) and not is_layer("application/vnd.oci.image.config.v1+json")
