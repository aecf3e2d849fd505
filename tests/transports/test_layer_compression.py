"""Streaming layer (de)compression transforms."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
from collections.abc import Callable

import pytest

from asyncsync.errors import LocalStorageError
from asyncsync.manifest import DOCKER_LAYER_GZIP, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD
from asyncsync.transports.layer_compression import (
    DOCKER_LAYER_TAR,
    PIECE,
    Decompress,
    GzipCompress,
    detect,
    gzip_media_type,
    is_layer,
    uncompressed_media_type,
)

DATA = os.urandom(200_000) + bytes(3_000_000)


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


def test_zstd_is_refused_clearly() -> None:
    with pytest.raises(LocalStorageError, match="zstd"):
        _run(Decompress("layer x"), b"\x28\xb5\x2f\xfd" + bytes(100))


def test_gzip_compress_only_compresses_uncompressed_input() -> None:
    transform = GzipCompress("layer")
    out, _ = _run(transform, DATA)
    assert gzip.decompress(out) == DATA and transform.changed
    already = gzip.compress(DATA)
    again = GzipCompress("layer")
    assert _run(again, already)[0] == already and not again.changed


def test_detection_and_media_types() -> None:
    assert detect(gzip.compress(b"x")) == "gzip"
    assert detect(b"plain tar") is None
    assert uncompressed_media_type(DOCKER_LAYER_GZIP) == DOCKER_LAYER_TAR
    assert uncompressed_media_type(OCI_LAYER_ZSTD) == OCI_LAYER
    assert gzip_media_type(OCI_LAYER) == OCI_LAYER_GZIP
    assert gzip_media_type(OCI_LAYER_ZSTD) == OCI_LAYER_GZIP
    assert is_layer(DOCKER_LAYER_TAR) and not is_layer("application/vnd.oci.image.config.v1+json")
