"""Streaming layer (de)compression for local destinations: ``--dest-compress``, ``--dest-decompress``
and ``docker-archive:`` (which stores layers uncompressed, as ``docker save`` and skopeo do).

A transform is a synchronous callable run in the writer's worker thread
(:data:`asyncsync.transports.local_files.Transform`): it receives each chunk and ``None`` at the
end, and yields the bytes to write. Decompression output is produced in bounded pieces
(:data:`PIECE`), so a small, highly compressed chunk cannot balloon memory.

Compression is detected from the stream's first bytes, as containers/image does, not trusted
from the media type. gzip, bzip2 and xz are decompressed with the standard library; zstd is not
available there and is refused with a clear error.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

from asyncsync.errors import LocalStorageError
from asyncsync.manifest import (
    DOCKER_CONFIG,
    DOCKER_FOREIGN_LAYER,
    DOCKER_LAYER_GZIP,
    OCI_CONFIG,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_NONDIST_LAYER_GZIP,
)

#: An uncompressed Docker layer (``docker save`` content; skopeo writes it with --dest-decompress).
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
OCI_NONDIST_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_NONDIST_LAYER_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

#: Largest piece a decompressor emits at once.
PIECE = 1024 * 1024
#: How many leading bytes :func:`detect` needs.
MAGIC_LENGTH = 6

_COMPRESSED_TO_PLAIN = {
    DOCKER_LAYER_GZIP: DOCKER_LAYER_TAR,
    OCI_LAYER_GZIP: OCI_LAYER,
    OCI_LAYER_ZSTD: OCI_LAYER,
    OCI_NONDIST_LAYER_GZIP: OCI_NONDIST_LAYER,
    OCI_NONDIST_LAYER_ZSTD: OCI_NONDIST_LAYER,
}
_PLAIN_TO_GZIP = {
    DOCKER_LAYER_TAR: DOCKER_LAYER_GZIP,
    OCI_LAYER: OCI_LAYER_GZIP,
    OCI_NONDIST_LAYER: OCI_NONDIST_LAYER_GZIP,
}
LAYER_TYPES = frozenset({*_COMPRESSED_TO_PLAIN, *_PLAIN_TO_GZIP, DOCKER_FOREIGN_LAYER})
CONFIG_TYPES = frozenset({DOCKER_CONFIG, OCI_CONFIG})


def is_layer(media_type: str) -> bool:
    """Whether a blob of this media type is an image layer (a tar, maybe compressed)."""
    return media_type in LAYER_TYPES


def detect(head: bytes) -> str | None:
    """``"gzip"``, ``"bzip2"``, ``"xz"``, ``"zstd"`` from a stream's first bytes, or ``None``."""
    if head.startswith(b"\x1f\x8b\x08"):
        return "gzip"
    if head.startswith(b"BZh"):
        return "bzip2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "zstd"
    return None


def uncompressed_media_type(media_type: str) -> str:
    """The media type of the same layer stored uncompressed (unknown types are kept)."""
    return _COMPRESSED_TO_PLAIN.get(media_type, media_type)


def gzip_media_type(media_type: str) -> str:
    """The media type of the same layer stored gzip-compressed (unknown types are kept)."""
    if media_type in _COMPRESSED_TO_PLAIN:
        media_type = _COMPRESSED_TO_PLAIN[media_type]
    return _PLAIN_TO_GZIP.get(media_type, media_type)


class _Decompressor:
    """One compressed stream, possibly several concatenated members (as pigz and pbzip2 write)."""

    def __init__(self, kind: str, what: str) -> None:
        self.kind = kind
        self.what = what
        self._engine = self._new()
        #: Whether the current member has received input it has not finished.
        self._open = False

    def _new(self) -> Any:
        if self.kind == "gzip":
            return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        if self.kind == "bzip2":
            return bz2.BZ2Decompressor()
        if self.kind == "xz":
            return lzma.LZMADecompressor()
        raise LocalStorageError(
            f"{self.what}: {self.kind}-compressed layers cannot be decompressed here "
            "(only gzip, bzip2 and xz are supported)"
        )

    def _step(self, data: bytes) -> tuple[bytes, bytes]:
        """Decompress up to PIECE bytes of output; returns (output, input still to feed)."""
        engine = self._engine
        if self.kind == "gzip":
            piece = engine.decompress(data, PIECE)
            rest = engine.unconsumed_tail
            if engine.eof:
                rest = engine.unused_data + rest
        else:
            piece = engine.decompress(data, PIECE)
            rest = engine.unused_data if engine.eof else b""
        if engine.eof:
            self._engine = self._new()
            self._open = False
        return piece, rest

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            while data:
                self._open = True
                piece, data = self._step(data)
                if piece:
                    yield piece
                engine = self._engine
                # bz2/lzma buffer output beyond max_length internally: drain it before new input.
                while self._open and self.kind != "gzip" and not engine.needs_input and not engine.eof:
                    piece, _ = self._step(b"")
                    if not piece:
                        break
                    yield piece
        except (zlib.error, OSError, EOFError, lzma.LZMAError) as exc:
            raise LocalStorageError(f"{self.what}: corrupt {self.kind} data: {exc}") from None

    def finish(self) -> None:
        if self._open:
            raise LocalStorageError(f"{self.what}: truncated {self.kind} data")


class _Detecting(ABC):
    """Base of the transforms: buffers the first bytes until the compression can be detected."""

    def __init__(self, what: str) -> None:
        self.what = what
        #: The compression detected in the input (``None``: uncompressed), once data arrived.
        self.compression: str | None = None
        self._head: bytes | None = b""

    def __call__(self, chunk: bytes | None) -> Iterator[bytes]:
        if self._head is not None:
            if chunk is not None:
                self._head += chunk
                if len(self._head) < MAGIC_LENGTH:
                    return
            data, self._head = self._head, None
            self.compression = detect(data)
            self._start()
            if data:
                yield from self._process(data)
        elif chunk is not None:
            yield from self._process(chunk)
        if chunk is None:
            yield from self._end()

    @property
    @abstractmethod
    def changed(self) -> bool:
        """Whether the output differs from the input (so its digest and media type change)."""

    @abstractmethod
    def _start(self) -> None:
        """Called once the input's compression is known (``self.compression``)."""

    @abstractmethod
    def _process(self, data: bytes) -> Iterator[bytes]:
        """Transform one piece of input; yields output pieces of bounded size."""

    @abstractmethod
    def _end(self) -> Iterator[bytes]:
        """Flush at end of input; yields the last output pieces."""


class Decompress(_Detecting):
    """Transform: decompress gzip/bzip2/xz input; uncompressed input passes through unchanged."""

    _decoder: _Decompressor | None = None

    @property
    def changed(self) -> bool:
        return self.compression is not None

    def _start(self) -> None:
        if self.compression is not None:
            self._decoder = _Decompressor(self.compression, self.what)

    def _process(self, data: bytes) -> Iterator[bytes]:
        if self._decoder is None:
            yield data
        else:
            yield from self._decoder.feed(data)

    def _end(self) -> Iterator[bytes]:
        if self._decoder is not None:
            self._decoder.finish()
        return iter(())


class GzipCompress(_Detecting):
    """Transform: gzip uncompressed input; already compressed input passes through unchanged."""

    _encoder: Any = None

    @property
    def changed(self) -> bool:
        return self.compression is None

    def _start(self) -> None:
        if self.compression is None:
            # gzip framing (wbits 16+), level 6 like gzip(1); the header carries no name or mtime.
            self._encoder = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    def _process(self, data: bytes) -> Iterator[bytes]:
        if self._encoder is None:
            yield data
            return
        out = self._encoder.compress(data)
        if out:
            yield out

    def _end(self) -> Iterator[bytes]:
        if self._encoder is not None:
            yield self._encoder.flush()
