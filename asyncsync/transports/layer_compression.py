"""Streaming layer decompression for local destinations: ``--dest-decompress`` and
``docker-archive:`` (which stores layers uncompressed, as ``docker save`` and skopeo do), and the
compression detection and zstd frame walking the copy engine's recompression shares
(:mod:`asyncsync.copy.recompress_stream`; it also does ``--dest-compress``).

A transform is a synchronous callable run in the writer's worker thread
(:data:`asyncsync.transports.local_files.Transform`): it receives each chunk and ``None`` at the
end, and yields the bytes to write. Decompression output is produced in bounded pieces
(:data:`PIECE`), so a small, highly compressed chunk cannot balloon memory.

Compression is detected from the stream's first bytes, as containers/image does, not trusted
from the media type. gzip, bzip2 and xz are decompressed with the standard library, zstd with
zstandard. zstandard's decompressor has no output limit per call, so zstd input is handed to it a
few blocks at a time (:class:`ZstdFrames` follows the frame and block headers and says where
blocks end; a block decompresses to at most 128 KiB), which also makes a truncated stream an error.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import zstandard

from asyncsync.errors import ContentError, LocalStorageError
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
#: zstd blocks handed to the decompressor at once: at most this many x 128 KiB of output per call.
ZSTD_BLOCKS_PER_STEP = 8

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


ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class ZstdFrames:
    """Follows the frame and block headers of a zstd stream to tell whether it ended complete.

    zstandard's stream readers end quietly when their input ends inside a frame; this walk
    (headers only: block contents are skipped, so it costs a few operations per 128 KiB block)
    makes a truncated layer an error. Skippable frames (zstd:chunked's table of contents) are
    skipped. Raises :class:`ContentError` for bytes that are not zstd frames.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self.frames = 0
        self._state = "magic"
        self._need = 4
        self._buffer = b""
        self._skip = 0
        self._checksum = False
        self._in_block = False

    def feed(self, data: bytes) -> list[int]:
        """Follow ``data``; returns the offsets in it just after each block that ends there (a
        decompressor given input up to such an offset can emit that block whole)."""
        ends: list[int] = []
        position, length = 0, len(data)
        while position < length:
            if self._skip:
                step = min(self._skip, length - position)
                self._skip -= step
                position += step
                if not self._skip and self._in_block:
                    self._in_block = False
                    ends.append(position)
                continue
            step = min(self._need - len(self._buffer), length - position)
            self._buffer += data[position : position + step]
            position += step
            if len(self._buffer) == self._need:
                header, self._buffer = self._buffer, b""
                self._advance(header)
        return ends

    def _advance(self, header: bytes) -> None:
        state = self._state
        if state == "magic":
            if header == ZSTD_MAGIC:
                self._state, self._need = "descriptor", 1
            elif header[1:] == b"\x2a\x4d\x18" and header[0] & 0xF0 == 0x50:
                self._state, self._need = "skippable", 4
            else:
                raise ContentError(f"{self.what}: corrupt zstd data: no frame at a frame boundary")
        elif state == "descriptor":
            descriptor = header[0]
            single = bool(descriptor & 0x20)
            self._checksum = bool(descriptor & 0x04)
            content_size = (1 if single else 0, 2, 4, 8)[descriptor >> 6]
            rest = (0 if single else 1) + (0, 1, 2, 4)[descriptor & 0x03] + content_size
            self._state, self._need = ("header", rest) if rest else ("block", 3)
        elif state == "header":
            self._state, self._need = "block", 3
        elif state == "block":
            value = int.from_bytes(header, "little")
            kind, size = (value >> 1) & 0x03, value >> 3
            if kind == 3:
                raise ContentError(f"{self.what}: corrupt zstd data: reserved block type")
            self._skip = 1 if kind == 1 else size
            self._in_block = self._skip > 0
            if value & 1:
                self._state, self._need = ("checksum", 4) if self._checksum else ("magic", 4)
                self.frames += 0 if self._checksum else 1
        elif state == "checksum":
            self._state, self._need = "magic", 4
            self.frames += 1
        else:  # skippable: the frame's length
            self._skip = int.from_bytes(header, "little")
            self._state, self._need = "magic", 4

    def finish(self) -> None:
        """Raise :class:`ContentError` unless the stream ended after a complete frame."""
        if self.frames == 0 or self._state != "magic" or self._buffer or self._skip:
            raise ContentError(f"{self.what}: truncated zstd data")


class _Decompressor:
    """One compressed stream, possibly several concatenated members (as pigz and pbzip2 write)."""

    def __init__(self, kind: str, what: str) -> None:
        self.kind = kind
        self.what = what
        self._engine = self._new()
        #: Whether the current member has received input it has not finished.
        self._open = False
        self._frames = ZstdFrames(what) if kind == "zstd" else None

    def _new(self) -> Any:
        if self.kind == "gzip":
            return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        if self.kind == "bzip2":
            return bz2.BZ2Decompressor()
        if self.kind == "xz":
            return lzma.LZMADecompressor()
        if self.kind == "zstd":
            return zstandard.ZstdDecompressor().decompressobj()
        raise LocalStorageError(
            f"{self.what}: {self.kind}-compressed layers cannot be decompressed here "
            "(only gzip, bzip2, xz and zstd are supported)"
        )

    def _feed_zstd(self, frames: ZstdFrames, data: bytes) -> Iterator[bytes]:
        """Hand ``data`` to zstandard at most :data:`ZSTD_BLOCKS_PER_STEP` whole blocks at a time."""
        ends = frames.feed(data)
        start = 0
        for index in range(ZSTD_BLOCKS_PER_STEP - 1, len(ends), ZSTD_BLOCKS_PER_STEP):
            yield from self._zstd_step(data[start : ends[index]])
            start = ends[index]
        yield from self._zstd_step(data[start:])

    def _zstd_step(self, piece: bytes) -> Iterator[bytes]:
        while piece:
            output = self._engine.decompress(piece)
            if output:
                yield output
            if not self._engine.eof:
                return
            # A frame ended inside this piece: the rest (a next frame, a skippable one) goes to a
            # fresh decompressor.
            piece = self._engine.unused_data
            self._engine = self._new()

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
        if self._frames is not None:
            try:
                yield from self._feed_zstd(self._frames, data)
            except zstandard.ZstdError as exc:
                raise LocalStorageError(f"{self.what}: corrupt zstd data: {exc}") from None
            return
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
        if self._frames is not None:
            self._frames.finish()
        elif self._open:
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
    """Transform: decompress gzip/bzip2/xz/zstd input; uncompressed input passes through unchanged."""

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
