"""Recompressing one layer stream into a spool file: decompress, compress, hash, write.

A recompressed layer's digest is known only once the whole layer has been compressed, and a
registry (or a layout) needs the digest to commit the blob, so :func:`spool_recompressed`
writes the output to an anonymous temporary file (:class:`Spool`) while hashing it; the engine
then uploads the spool like any blob with a known digest (HEAD, mount, single-flight and retries
included). One pass of CPU per layer, one disk write and read of the compressed output.

The work runs in one worker thread per layer, pull-style: the thread reads the incoming chunks
through :class:`_Feed` (each read waits for the copying task's next chunk), wraps it in the
decompressor the first bytes call for (zlib-ng's ``GzipFile``, ``zstandard``'s stream reader,
``bz2``, ``lzma``; all read in bounded pieces of :data:`PIECE`, so a highly compressed layer
cannot balloon memory) and compresses each piece. Memory per layer is a few chunks plus the
encoder's window, whatever the layer size. gzip is written with zlib-ng (2.7x the standard zlib's
speed at the same level and ratio), zstd with zstandard; both release the GIL, so layers
recompress in parallel on as many cores as blobs are in flight.

Input already in the target format is passed through unchanged (a layer whose media type said
otherwise): its digest then stays the source's.
"""

from __future__ import annotations

import bz2
import hashlib
import lzma
import os
import tempfile
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, cast

import anyio
import anyio.from_thread
import anyio.to_thread
import zstandard
from zlib_ng import gzip_ng, zlib_ng

from asyncsync.copy.layer_format import Format
from asyncsync.digest import Digest
from asyncsync.errors import ContentError, LocalStorageError
from asyncsync.transports.layer_compression import MAGIC_LENGTH, ZstdFrames, detect

#: Bytes a decompressor hands over at once (and the read size of the spool).
PIECE = 1024 * 1024
#: Chunks buffered between the copying task and the worker thread.
_FEED_BUFFER = 4


@dataclass(slots=True)
class Spool:
    """A recompressed layer in an anonymous temporary file (deleted when closed).

    ``source_compression`` is what the input was (``None``: uncompressed); ``changed`` is false
    when the input was already in the target format and went through unchanged.
    """

    file: BinaryIO
    digest: Digest
    size: int
    source_compression: str | None
    changed: bool

    def close(self) -> None:
        with suppress(OSError):
            self.file.close()

    async def chunks(self, offset: int = 0) -> AsyncIterator[bytes]:
        """The spooled bytes from ``offset``, in pieces read by a worker thread (positional reads,
        so several readers may share one spool)."""
        fd = self.file.fileno()
        position = offset
        while position < self.size:
            piece = await anyio.to_thread.run_sync(os.pread, fd, min(PIECE, self.size - position), position)
            if not piece:
                raise LocalStorageError(f"spooled layer {self.digest.short}: file ended early")
            position += len(piece)
            yield piece


class _Aborted(Exception):
    """The producer stopped before the end of the stream (its own error is what is reported)."""


class _Feed:
    """A read-only file object whose ``read`` pulls the copying task's chunks into the thread."""

    def __init__(self, receive: Callable[[], bytes | None]) -> None:
        self._receive = receive
        self._buffer = b""
        self._ended = False
        #: Sees every chunk as it arrives (a :class:`ZstdFrames` for zstd input).
        self.observer: Callable[[bytes], object] | None = None

    def _fill(self) -> bool:
        if self._ended:
            return False
        chunk = self._receive()
        if chunk is None:
            self._ended = True
            return False
        if self.observer is not None:
            self.observer(chunk)
        self._buffer += chunk
        return True

    @property
    def exhausted(self) -> bool:
        """Whether the stream ended and every byte was read."""
        return self._ended and not self._buffer

    @property
    def buffered(self) -> bytes:
        """Bytes received and not yet read."""
        return self._buffer

    def peek(self, size: int) -> bytes:
        while len(self._buffer) < size and self._fill():
            pass
        return self._buffer[:size]

    def read(self, size: int = -1) -> bytes:
        if not self._buffer:
            self._fill()
        if size < 0 or size >= len(self._buffer):
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        """Nothing to release (the stream belongs to the copying task)."""


def _decompressing(kind: str, feed: _Feed) -> Any:
    """A reader of the decompressed stream; every ``read(n)`` returns at most ``n`` bytes."""
    source = cast(IO[bytes], feed)  # the file protocol the decompressors use: read(n)
    if kind == "gzip":
        return gzip_ng.GzipFile(fileobj=source, mode="rb")  # type: ignore[no-untyped-call]  # untyped in zlib-ng
    if kind == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(source, read_size=PIECE, read_across_frames=True)
    if kind == "bzip2":
        return bz2.BZ2File(source)
    return lzma.LZMAFile(source)


class _Encoder:
    """gzip (zlib-ng, no name or mtime in the header) or zstd (one frame, with a checksum)."""

    def __init__(self, fmt: Format, level: int) -> None:
        if fmt == "gzip":
            self._engine: Any = zlib_ng.compressobj(level, zlib_ng.DEFLATED, 16 + zlib_ng.MAX_WBITS)
        else:
            self._engine = zstandard.ZstdCompressor(level=level, write_checksum=True).compressobj()

    def compress(self, data: bytes) -> bytes:
        out: bytes = self._engine.compress(data)
        return out

    def flush(self) -> bytes:
        out: bytes = self._engine.flush()
        return out


# zlib-ng's stub declares ``error`` as an instance; it is the module's exception class.
_CORRUPT = (
    OSError,
    EOFError,
    zlib.error,
    cast(type[Exception], zlib_ng.error),
    lzma.LZMAError,
    zstandard.ZstdError,
)


def _run(feed: _Feed, fmt: Format, level: int, directory: str | None, what: str) -> Spool:
    """The worker thread: detect, decompress, compress, hash and write the whole layer."""
    try:
        out = tempfile.TemporaryFile(dir=directory, prefix="asyncsync-layer-")  # noqa: SIM115
    except OSError as exc:
        raise LocalStorageError(f"{what}: cannot create a spool file: {exc.strerror or exc}") from None
    hasher = hashlib.sha256()
    size = 0

    def write(data: bytes) -> None:
        nonlocal size
        if data:
            hasher.update(data)
            size += len(data)
            try:
                out.write(data)
            except OSError as exc:
                reason = exc.strerror or exc
                raise LocalStorageError(f"{what}: cannot write the spool file: {reason}") from None

    try:
        kind = detect(feed.peek(MAGIC_LENGTH))
        changed = kind != fmt
        if not changed:
            while data := feed.read(PIECE):
                write(data)
        else:
            encoder = _Encoder(fmt, level)
            frames = None
            if kind == "zstd":
                frames = ZstdFrames(what)
                frames.feed(feed.buffered)
                feed.observer = frames.feed
            plain: Any = feed if kind is None else _decompressing(kind, feed)
            try:
                while data := plain.read(PIECE):
                    write(encoder.compress(data))
            except _CORRUPT as exc:
                raise ContentError(f"{what}: corrupt {kind} data: {exc}") from None
            if frames is not None:
                while feed.read(PIECE):  # what the reader left (it stops at a frame boundary)
                    pass
                frames.finish()
            write(encoder.flush())
        out.flush()
    except BaseException:
        out.close()
        raise
    return Spool(out, Digest("sha256", hasher.hexdigest()), size, kind, changed)


async def spool_recompressed(
    chunks: AsyncIterator[bytes], fmt: Format, level: int, directory: str | None, what: str
) -> Spool:
    """Recompress the verified stream ``chunks`` to ``fmt`` into a :class:`Spool`.

    ``chunks`` is consumed in the calling task (a source stream holds slots that task took);
    an error from it (a digest mismatch, a broken source) is raised here, and the spool file
    is removed. Corrupt compressed input is a :class:`ContentError` naming ``what``.
    """
    send, receive = anyio.create_memory_object_stream[bytes](_FEED_BUFFER)
    finished = False

    def pull() -> bytes | None:
        try:
            return anyio.from_thread.run(receive.receive)
        except anyio.EndOfStream:
            if not finished:
                raise _Aborted from None
            return None

    result: list[Spool] = []

    async def work() -> None:
        result.append(await anyio.to_thread.run_sync(_run, _Feed(pull), fmt, level, directory, what))

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(work)
            async with send:
                async for chunk in chunks:
                    await send.send(chunk)
                finished = True
    except BaseExceptionGroup as failed:
        # The producer's own error (a digest mismatch, a source failure) beats the worker's
        # _Aborted, which only says the producer stopped.
        causes = [exc for exc in failed.exceptions if not isinstance(exc, _Aborted)]
        for spool in result:
            spool.close()
        raise (causes[0] if causes else failed) from None
    finally:
        receive.close()
    return result[0]
