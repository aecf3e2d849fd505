"""Streaming a ``docker save`` archive to disk as its layers arrive (the ``docker-archive:`` writer).

Contract of :class:`ArchiveWriter`:

* :meth:`ArchiveWriter.create` opens a temporary file in the target's own directory; the archive
  appears at its path only in :meth:`ArchiveWriter.finish`, complete, after an ``fsync`` (unless
  ``durable=False``, for an archive that is consumed at once), by a ``rename``. A crash or a
  failure before that leaves the target as it was; :meth:`ArchiveWriter.abandon` deletes the
  temporary file (spool files are anonymous and vanish with the process in any case).
* :meth:`ArchiveWriter.put_layer` checks the stream's size and digest as it passes
  (:class:`~asyncsync.digest.DigestVerifier`), decompresses it (gzip, bzip2, xz; uncompressed data
  passes through, as skopeo stores layers for ``docker load``), hashes the output (the diff id)
  and writes it as the member ``<diff id hex>.tar``. The member's header needs its size and name,
  known only at the end, so a fixed-size header is reserved and filled in afterwards (the file
  is seekable). If the stream fails in any way (digest mismatch, network error, corrupt data,
  cancellation) the partial member is cut off again (the file is truncated to where the member
  began) and nothing of the blob remains; the copy engine may then retry it. A layer whose diff
  id is already in the archive is written once.
* :meth:`ArchiveWriter.finish` appends the remaining members (config, legacy metadata,
  ``manifest.json``, ``repositories``) once every layer is in.

Concurrency: tar members follow one another, so one layer at a time writes into the archive: the one
at the head of a FIFO queue, in :meth:`put_layer` call order (the manifest's layer order when the
copy engine starts the layers together, so the members come in skopeo's order). The other layers do
not wait: they spool their decompressed output to an anonymous temporary file in the same directory
(in ``--tmpdir`` when given), and when one reaches the head its spooled prefix is copied into the
archive (``copy_file_range``) and the rest streams straight in. A layer whose stream ends while it
is still queued returns at once (its slot in the run's blob limiter is freed) and is moved into the
archive by whoever takes the head next. So a byte is written twice only if its layer arrived while
another member was being written; memory per layer is one batch of :data:`BATCH` bytes plus one
decompressed piece, whatever the layer size.

An I/O error on the archive file itself (disk full) breaks the writer: every later call raises.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, BinaryIO

import anyio

from asyncsync import tempdirs
from asyncsync.digest import Digest, DigestVerifier
from asyncsync.errors import LocalStorageError
from asyncsync.manifest import Descriptor
from asyncsync.transports.layer_compression import Decompress
from asyncsync.transports.local_files import TEMP_PREFIX, fsync_directory
from asyncsync.transports.tar_archive import BLOCK, END_OF_ARCHIVE, TarEntry, member_header, padding

#: Stream bytes gathered before one hop to a worker thread (verify, decompress, hash, write).
BATCH = 1024 * 1024
_COPY_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredLayer:
    """A layer as the archive holds it: uncompressed, ``size`` bytes with digest ``diff_id``."""

    diff_id: Digest
    size: int

    @property
    def member(self) -> str:
        return f"{self.diff_id.hex}.tar"


def _write_all(fd: int, data: bytes | bytearray | memoryview, offset: int | None = None) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view) if offset is None else os.pwrite(fd, view, offset)
        view = view[written:]
        if offset is not None:
            offset += written


def _copy_range(source: int, target: int, length: int, target_offset: int) -> None:
    """Copy ``length`` bytes from the start of ``source`` to ``target`` at ``target_offset``."""
    done = 0
    try:
        while done < length:
            copied = os.copy_file_range(source, target, length - done, done, target_offset + done)
            if copied == 0:
                raise OSError(errno.EIO, "a spool file is shorter than what was written to it")
            done += copied
        return
    except OSError as exc:
        # Not every filesystem pair supports it; fall back to reading and writing.
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM):
            raise
    while done < length:
        data = os.pread(source, min(_COPY_CHUNK, length - done), done)
        if not data:
            raise OSError(errno.EIO, "a spool file is shorter than what was written to it")
        _write_all(target, data, target_offset + done)
        done += len(data)


class _Layer:
    """One layer on its way into the archive (used from one worker thread at a time)."""

    def __init__(self, blob: Descriptor, what: str) -> None:
        self.blob = blob
        self.what = what
        self.verifier = DigestVerifier(blob.digest, blob.size, what)
        self.transform = Decompress(what)
        #: sha256 of the output; ``None`` while undecided and when the output is the input.
        self.out_hash: Any = None
        self.decided = False
        self.size = 0
        self.spool: BinaryIO | None = None
        self.spooled = 0
        #: Archive offset of the member's header once the layer writes into the archive.
        self.start: int | None = None
        #: The stream ended and was verified while queued: the next head moves the spool in.
        self.complete = False
        self.stored: StoredLayer | None = None

    def _decide(self) -> None:
        # Output equal to the verified input needs no second hash (its sha256 is the blob digest).
        self.decided = True
        if self.transform.compression is not None or self.blob.digest.algorithm != "sha256":
            self.out_hash = hashlib.sha256()

    def process(self, batch: Sequence[bytes], final: bool, archive: int, directory: str) -> None:
        """Verify, decompress, hash and write one batch (into the archive if ``start`` is set)."""
        inputs: list[bytes | None] = [*batch, None] if final else list(batch)
        for chunk in inputs:
            if chunk is not None:
                self.verifier.update(chunk)
            for piece in self.transform(chunk):
                if not piece:
                    continue
                if not self.decided:
                    self._decide()
                if self.out_hash is not None:
                    self.out_hash.update(piece)
                if self.start is not None:
                    _write_all(archive, piece, self.start + BLOCK + self.size)
                else:
                    if self.spool is None:
                        spool_dir = tempdirs.configured() or directory  # --tmpdir, as skopeo's spools
                        self.spool = tempfile.TemporaryFile(dir=spool_dir, buffering=0)  # noqa: SIM115
                    _write_all(self.spool.fileno(), piece)
                    self.spooled += len(piece)
                self.size += len(piece)
        if final:
            self.verifier.finish()
            if self.out_hash is not None:
                diff_id = Digest("sha256", self.out_hash.hexdigest())
            else:
                diff_id = self.blob.digest if self.size else Digest.of(b"")
            self.stored = StoredLayer(diff_id, self.size)

    def close_spool(self) -> None:
        if self.spool is not None:
            spool, self.spool = self.spool, None
            spool.close()


class ArchiveWriter:
    """One archive being written; see the module docstring for the contract."""

    def __init__(self, path: str, temp: str, fd: int, where: str, durable: bool) -> None:
        self.path = path
        self._temp = temp
        self._fd = fd
        self._where = where
        self._durable = durable
        self._directory = os.path.dirname(path) or "."
        #: Where the next member begins (everything before it is complete).
        self._end = 0
        self._names: set[str] = set()
        self._queue: deque[_Layer] = deque()
        self._draining = False
        self._broken: str | None = None
        self._finished = False

    @classmethod
    async def create(cls, path: str, where: str, *, durable: bool = True) -> ArchiveWriter:
        """Open a temporary file next to ``path`` (which is not touched until :meth:`finish`)."""

        def open_temp() -> ArchiveWriter:
            directory = os.path.dirname(path) or "."
            for _ in range(100):
                name = f"{TEMP_PREFIX}{os.path.basename(path)[:40]}-{secrets.token_hex(6)}"
                temp = os.path.join(directory, name)
                try:
                    # 0o666 through the umask, as the final file would be created; O_EXCL: a fresh name.
                    fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
                except FileExistsError:
                    continue
                except OSError as exc:
                    raise LocalStorageError(f"{where}: cannot create {temp}: {exc.strerror or exc}") from None
                return cls(path, temp, fd, where, durable)
            raise LocalStorageError(f"{where}: cannot create a temporary file in {directory}")

        return await anyio.to_thread.run_sync(open_temp)

    def _check(self) -> None:
        if self._broken is not None:
            raise LocalStorageError(f"{self._where}: the archive cannot be written: {self._broken}")
        if self._finished or self._fd < 0:
            raise LocalStorageError(f"{self._where}: the archive is already closed")

    async def put_layer(self, blob: Descriptor, chunks: AsyncIterator[bytes]) -> StoredLayer:
        """Store one layer from ``chunks`` (verified against ``blob``); see the module docstring."""
        self._check()
        layer = _Layer(blob, f"{self._where}: blob {blob.digest}")
        self._queue.append(layer)
        try:
            batch: list[bytes] = []
            pending = 0
            async for chunk in chunks:
                batch.append(chunk)
                pending += len(chunk)
                if pending >= BATCH:
                    await self._feed(layer, batch, final=False)
                    batch, pending = [], 0
            await self._feed(layer, batch, final=True)
            if self._is_head(layer):
                if layer.start is None:  # reached the head during the last batch
                    await anyio.to_thread.run_sync(self._append_spooled, layer)
                self._queue.popleft()
                await self._drain()
            else:
                # Set here, not in the worker thread: a drainer must never see a layer as
                # complete while its own task may still move it.
                layer.complete = True
        except BaseException as exc:
            self._abort(layer)
            if isinstance(exc, OSError):
                raise LocalStorageError(
                    f"{self._where}: writing blob {blob.digest}: {exc.strerror or exc}"
                ) from None
            raise
        assert layer.stored is not None
        return layer.stored

    def _is_head(self, layer: _Layer) -> bool:
        return bool(self._queue) and self._queue[0] is layer

    async def _feed(self, layer: _Layer, batch: list[bytes], *, final: bool) -> None:
        self._check()
        if not self._is_head(layer) and self._queue[0].complete:
            await self._drain()  # a failed holder left finished layers at the head
        head = self._is_head(layer)

        def work() -> None:
            if head and layer.start is None:
                self._switch(layer)
            layer.process(batch, final, self._fd, self._directory)
            if head and final:
                self._close_member(layer)

        await anyio.to_thread.run_sync(work)

    def _switch(self, layer: _Layer) -> None:
        """The layer reached the head: move what it spooled into the archive (worker thread)."""
        start = self._end
        if layer.spool is not None:
            _copy_range(layer.spool.fileno(), self._fd, layer.spooled, start + BLOCK)
            layer.close_spool()
        layer.start = start

    def _close_member(self, layer: _Layer) -> None:
        """Header and padding for a layer written in place; a duplicate diff id is cut off again."""
        assert layer.stored is not None and layer.start is not None
        name = layer.stored.member
        if name in self._names:
            os.ftruncate(self._fd, self._end)
            return
        _write_all(self._fd, member_header(name, layer.size), layer.start)
        tail = layer.start + BLOCK + layer.size
        _write_all(self._fd, padding(layer.size), tail)
        self._names.add(name)
        self._end = tail + len(padding(layer.size))

    def _append_spooled(self, layer: _Layer) -> None:
        """Append a complete spooled layer at the end of the archive (worker thread)."""
        self._switch(layer)
        self._close_member(layer)

    async def _drain(self) -> None:
        """Move finished spooled layers at the head of the queue into the archive, in order."""
        if self._draining:
            return
        self._draining = True
        try:
            while self._queue and self._queue[0].complete:
                layer = self._queue[0]
                try:
                    await anyio.to_thread.run_sync(self._append_spooled, layer)
                except BaseException as exc:
                    reason = exc.strerror if isinstance(exc, OSError) else None
                    self._broken = f"moving blob {layer.blob.digest} in failed: {reason or exc!r}"
                    layer.close_spool()
                    raise
                self._queue.popleft()
        finally:
            self._draining = False

    def _abort(self, layer: _Layer) -> None:
        """Forget a failed layer: drop its spool, or cut its partial member off the archive."""
        layer.close_spool()
        head = self._is_head(layer)
        if layer in self._queue:
            self._queue.remove(layer)
        if head and layer.start is not None and self._broken is None and self._fd >= 0:
            try:
                os.ftruncate(self._fd, self._end)
            except OSError as exc:
                self._broken = f"cannot remove a partial member: {exc.strerror or exc}"

    async def finish(
        self, members: Sequence[TarEntry], before_rename: Callable[[], None] | None = None
    ) -> None:
        """Append ``members`` (``data`` files and symlinks) and the end of the archive, then
        publish it at its path. ``before_rename`` runs just before the rename (a last check)."""
        await self._drain()
        self._check()
        if self._queue:
            raise LocalStorageError(
                f"{self._where}: blob {self._queue[0].blob.digest} is still being written"
            )

        def write() -> None:
            out = bytearray()
            for entry in members:
                if entry.kind == "symlink":
                    out += member_header(
                        entry.name, kind="symlink", target=entry.target or "", mode=entry.mode
                    )
                    continue
                data = entry.data or b""
                out += member_header(entry.name, len(data), mode=entry.mode) + data + padding(len(data))
            out += END_OF_ARCHIVE
            _write_all(self._fd, out, self._end)
            os.ftruncate(self._fd, self._end + len(out))
            if self._durable:
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
            if before_rename is not None:
                before_rename()
            os.replace(self._temp, self.path)
            if self._durable:
                fsync_directory(self._directory)

        try:
            await anyio.to_thread.run_sync(write)
        except OSError as exc:
            self._broken = exc.strerror or str(exc)
            raise LocalStorageError(f"{self._where}: writing {self.path}: {exc.strerror or exc}") from None
        self._finished = True

    def abandon(self) -> None:
        """Close and delete the temporary file and any spool (idempotent; synchronous, so it also
        runs in a cancelled task). A published archive is left alone."""
        for layer in self._queue:
            layer.close_spool()
        self._queue.clear()
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            with suppress(OSError):
                os.close(fd)
        if not self._finished:
            with suppress(OSError):
                os.unlink(self._temp)
