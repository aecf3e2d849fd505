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
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager, suppress
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, cast

import anyio
import anyio.from_thread
import anyio.to_thread
import zstandard
from anyio.streams.memory import MemoryObjectReceiveStream
from zlib_ng import gzip_ng, zlib_ng

from asyncsync.copy.layer_format import Format
from asyncsync.digest import Digest
from asyncsync.errors import ContentError, LocalStorageError
from asyncsync.transports.layer_compression import MAGIC_LENGTH, ZstdFrames, detect

#: Bytes a decompressor hands over at once (and the read size of the spool).
PIECE = 256 * 1024
#: Chunks buffered between the copying task and the worker thread.
_FEED_BUFFER = 4
#: Compressed output handed to a streamed upload at once (a registry GET's read size,
#: :data:`asyncsync.registry.blobs.READ_CHUNK`), and pieces buffered on the way. With the upload
#: pump's own buffer (:data:`asyncsync.registry.blobs.PUMP_BUFFER`) a layer in flight holds 3-5 MiB
#: of buffers besides the encoder's state (1 MiB pieces held 5-8 MiB).
OUT_PIECE = 256 * 1024
_OUT_BUFFER = 2


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


@dataclass(frozen=True, slots=True)
class Recompressed:
    """What a recompression produced: the output's ``digest`` and ``size``, what the input was
    (``source_compression``, ``None``: uncompressed) and whether it ``changed``."""

    digest: Digest
    size: int
    source_compression: str | None
    changed: bool


def _recompress(
    feed: _Feed, fmt: Format, level: int, write: Callable[[bytes], None], what: str
) -> Recompressed:
    """The worker thread: detect, decompress, compress and hash the whole layer, handing the
    output to ``write`` piece by piece."""
    hasher = hashlib.sha256()
    size = 0

    def out(data: bytes) -> None:
        nonlocal size
        if data:
            hasher.update(data)
            size += len(data)
            write(data)

    kind = detect(feed.peek(MAGIC_LENGTH))
    changed = kind != fmt
    if not changed:
        while data := feed.read(PIECE):
            out(data)
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
                out(encoder.compress(data))
        except _CORRUPT as exc:
            raise ContentError(f"{what}: corrupt {kind} data: {exc}") from None
        if frames is not None:
            while feed.read(PIECE):  # what the reader left (it stops at a frame boundary)
                pass
            frames.finish()
        out(encoder.flush())
    return Recompressed(Digest("sha256", hasher.hexdigest()), size, kind, changed)


def _run(feed: _Feed, fmt: Format, level: int, directory: str | None, what: str) -> Spool:
    """The worker thread of :func:`spool_recompressed`: the layer recompressed into a spool file."""
    try:
        out = tempfile.TemporaryFile(dir=directory, prefix="asyncsync-layer-")  # noqa: SIM115
    except OSError as exc:
        raise LocalStorageError(f"{what}: cannot create a spool file: {exc.strerror or exc}") from None

    def write(data: bytes) -> None:
        try:
            out.write(data)
        except OSError as exc:
            reason = exc.strerror or exc
            raise LocalStorageError(f"{what}: cannot write the spool file: {reason}") from None

    try:
        done = _recompress(feed, fmt, level, write, what)
        out.flush()
    except BaseException:
        out.close()
        raise
    return Spool(out, done.digest, done.size, done.source_compression, done.changed)


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


class RecompressingStream:
    """The output of :func:`recompressing`: :meth:`chunks` while it runs, :meth:`result` after."""

    def __init__(self, receive: MemoryObjectReceiveStream[bytes]) -> None:
        self._receive = receive
        self._result: Recompressed | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        """The compressed bytes, in pieces of about :data:`OUT_PIECE`; iterate once."""
        async for piece in self._receive:
            yield piece

    @property
    def digest(self) -> Digest:
        """The output's digest (see :meth:`result`)."""
        return self.result().digest

    def result(self) -> Recompressed:
        """Digest and size of the output; only once :meth:`chunks` has ended (raises before)."""
        if self._result is None:
            raise ContentError("the recompressed stream was read before it ended")
        return self._result


@asynccontextmanager
async def recompressing(
    chunks: AsyncGenerator[bytes, None], fmt: Format, level: int, what: str
) -> AsyncIterator[RecompressingStream]:
    """Recompress the verified stream ``chunks`` to ``fmt`` while the caller reads the output.

    For uploads that learn the digest at the end
    (:meth:`~asyncsync.registry.blobs.UploadSession.put_streamed`): nothing is written to disk.
    ``chunks`` is iterated and closed by one child task; a worker
    thread decompresses, compresses and hashes; output waits in a buffer of :data:`_OUT_BUFFER`
    pieces, so memory is bounded whatever the layer size. The output's end is seen only after
    :meth:`RecompressingStream.result` is set. An error of the source (a digest mismatch), of the
    data (:class:`ContentError`) or of the reader ends the block with that error; leaving the
    block early stops the thread.
    """
    feed_send, feed_receive = anyio.create_memory_object_stream[bytes](_FEED_BUFFER)
    out_send, out_receive = anyio.create_memory_object_stream[bytes](_OUT_BUFFER)
    stream = RecompressingStream(out_receive)
    fed = False

    def pull() -> bytes | None:
        try:
            return anyio.from_thread.run(feed_receive.receive)
        except anyio.EndOfStream:
            if not fed:
                raise _Aborted from None
            return None

    def work() -> Recompressed:
        pending = bytearray()

        def write(data: bytes) -> None:
            pending.extend(data)
            if len(pending) >= OUT_PIECE:
                piece = bytes(pending)
                pending.clear()
                anyio.from_thread.run(out_send.send, piece)

        done = _recompress(_Feed(pull), fmt, level, write, what)
        if pending:
            anyio.from_thread.run(out_send.send, bytes(pending))
        return done

    async def feed() -> None:
        nonlocal fed
        async with feed_send, aclosing(chunks):
            async for chunk in chunks:
                await feed_send.send(chunk)
            fed = True

    async def run() -> None:
        async with out_send:
            stream._result = await anyio.to_thread.run_sync(work)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(feed)
            group.start_soon(run)
            try:
                yield stream
            except BaseException:
                group.cancel_scope.cancel()
                raise
            finally:
                out_receive.close()  # a thread still writing stops (BrokenResourceError)
    except BaseExceptionGroup as failed:
        causes = [
            exc
            for exc in failed.exceptions
            if not isinstance(exc, _Aborted | anyio.BrokenResourceError | anyio.ClosedResourceError)
        ]
        raise (causes[0] if causes else failed.exceptions[0]) from None
    finally:
        feed_receive.close()
