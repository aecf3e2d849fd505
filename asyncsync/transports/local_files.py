"""Safe, atomic local file access shared by the local transports (``oci:``, ``dir:``, archives).

Contracts:

* :func:`safe_path` turns a relative name into a path under a root, refusing absolute names,
  ``..`` and empty components, NUL bytes, and any result whose real path (symlinks resolved)
  is outside the root's real path. Every path a local transport opens goes through it, and
  digests are validated (:class:`~asyncsync.digest.Digest`) before they become names.
* :func:`write_bytes_atomic` and :func:`write_chunks_atomic` write to a temporary file in the
  target's own directory, ``fsync`` it, and ``rename`` it into place only when all data was
  written; on any error or cancellation the temporary file is removed and the target is left
  as it was. A reader therefore sees the old file or the complete new one, never a prefix.
* :func:`open_chunks` streams a file (or a byte range of it) lazily in chunks of
  :data:`CHUNK_SIZE`; memory stays flat whatever the file size.
* :class:`FileTree` is what a layout reader needs from its storage; :class:`DirectoryTree`
  implements it on a directory (``asyncsync.transports.tar_archive.TarTree`` on a tar file).

A store that is missing, unreadable or unsafe raises :class:`~asyncsync.errors.LocalStorageError`
with a one-line message naming the file; a stored manifest whose bytes do not match its digest
raises :class:`~asyncsync.errors.DigestMismatchError` (:func:`read_manifest_file`).
"""

from __future__ import annotations

import errno
import os
import posixpath
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import anyio

from asyncsync.digest import Digest
from asyncsync.errors import LocalStorageError

#: Bytes per read or write hop to a worker thread.
CHUNK_SIZE = 1024 * 1024
#: Prefix of our temporary files; never a valid digest hex, so readers never mistake one for a blob.
TEMP_PREFIX = ".asyncsync-tmp-"

#: A synchronous transform applied to written data in the worker thread (compression): it gets a
#: chunk (``None`` at the end) and returns the bytes to write.
Transform = Callable[[bytes | None], Iterable[bytes]]


def split_relative(name: str, what: str) -> list[str]:
    """The components of a relative ``/``-separated name; refuses absolute names, ``..`` and NUL."""
    if "\x00" in name:
        raise LocalStorageError(f"{what}: refusing a path with a NUL byte: {name!r}")
    if name.startswith("/") or os.path.isabs(name):
        raise LocalStorageError(f"{what}: refusing absolute path {name!r}")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise LocalStorageError(f"{what}: refusing path {name!r}: '..' would leave the storage root")
    if not parts:
        raise LocalStorageError(f"{what}: refusing empty path {name!r}")
    return parts


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def safe_path(root: str, name: str, what: str = "") -> str:
    """``root/name`` after checking that it stays inside ``root`` even through symlinks.

    ``name`` is relative and ``/``-separated. The check is made on real paths, so a symlink
    inside the root that points outside it is refused like ``..`` is.
    """
    what = what or root
    parts = split_relative(name, what)
    path = os.path.join(root, *parts)
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if not _within(real, real_root):
        raise LocalStorageError(f"{what}: refusing {name!r}: it resolves to {real}, outside {real_root}")
    return path


def fsync_directory(directory: str) -> None:
    """Flush a directory entry change (a rename) to disk; ignored where directories cannot be synced."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems refuse fsync on directories
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.EROFS):
            raise
    finally:
        os.close(fd)


def _open_temp(directory: str, final_name: str) -> tuple[str, int]:
    for _ in range(100):
        temp = os.path.join(directory, f"{TEMP_PREFIX}{final_name[:40]}-{secrets.token_hex(6)}")
        try:
            # 0o666 through the umask, as the final file would be created; O_EXCL: never reuse a name.
            return temp, os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except FileExistsError:
            continue
    raise LocalStorageError(f"{directory}: cannot create a temporary file")


def _storage_error(path: str, exc: OSError) -> LocalStorageError:
    reason = exc.strerror or str(exc)
    return LocalStorageError(f"{path}: {reason}")


@contextmanager
def opening_errors(prefix: str) -> Iterator[None]:
    """Turns the usual reasons a named file cannot be read into one line, ``PREFIX: no such file``
    (``is a directory``, ``permission denied``); any other ``OSError`` passes through."""
    try:
        yield
    except FileNotFoundError:
        raise LocalStorageError(f"{prefix}: no such file") from None
    except IsADirectoryError:
        raise LocalStorageError(f"{prefix}: is a directory") from None
    except PermissionError:
        raise LocalStorageError(f"{prefix}: permission denied") from None


def _unlink_quietly(path: str) -> None:
    with suppress(OSError):
        os.unlink(path)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What :func:`write_chunks_atomic` wrote: size and sha256 of the bytes on disk."""

    size: int
    digest: Digest


class _Sink:
    """A temporary file written from a worker thread, hashing what it writes."""

    def __init__(self, path: str, transform: Transform | None) -> None:
        import hashlib

        self.path = path
        self.directory = os.path.dirname(path) or "."
        self.temp, self.fd = _open_temp(self.directory, os.path.basename(path))
        self.transform = transform
        self.size = 0
        self._hash = hashlib.sha256()

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self.size += len(data)
        self._hash.update(data)

    def write(self, chunk: bytes | None) -> None:
        if self.transform is None:
            if chunk:
                self._write_all(chunk)
            return
        for piece in self.transform(chunk):
            if piece:
                self._write_all(piece)

    def commit(self) -> WriteResult:
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1
        os.replace(self.temp, self.path)
        fsync_directory(self.directory)
        return WriteResult(self.size, Digest("sha256", self._hash.hexdigest()))

    def abandon(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        _unlink_quietly(self.temp)


async def write_chunks_atomic(
    path: str, chunks: AsyncIterator[bytes], transform: Transform | None = None
) -> WriteResult:
    """Write ``chunks`` (optionally through ``transform``) to ``path`` atomically.

    The file appears at ``path`` only after the stream ended without error and the data was
    fsynced; if ``chunks`` raises (a digest mismatch from the copy engine's verifier) or the
    task is cancelled, the temporary file is deleted and ``path`` is untouched.
    """
    try:
        sink = await anyio.to_thread.run_sync(_Sink, path, transform)
    except OSError as exc:
        raise _storage_error(path, exc) from None
    try:
        async for chunk in chunks:
            await anyio.to_thread.run_sync(sink.write, chunk)
        await anyio.to_thread.run_sync(sink.write, None)
        return await anyio.to_thread.run_sync(sink.commit)
    except BaseException as exc:
        sink.abandon()
        if isinstance(exc, OSError):
            raise _storage_error(path, exc) from None
        raise


def write_file_atomic_sync(path: str, produce: Callable[[BinaryIO], None]) -> None:
    """Blocking: let ``produce`` write a file object, then fsync and rename it to ``path``.

    For producers that need a file object (the tar writer); run it in a worker thread. On any
    error the temporary file is removed and ``path`` is untouched.
    """
    directory = os.path.dirname(path) or "."
    temp, fd = _open_temp(directory, os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as handle:
            produce(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        _unlink_quietly(temp)
        raise
    fsync_directory(directory)


async def write_bytes_atomic(path: str, data: bytes) -> Digest:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename); returns its sha256."""

    async def one() -> AsyncIterator[bytes]:
        yield data

    return (await write_chunks_atomic(path, one())).digest


@asynccontextmanager
async def open_chunks(
    path: str, offset: int = 0, length: int | None = None, *, what: str = ""
) -> AsyncIterator[AsyncIterator[bytes]]:
    """Stream ``path`` from ``offset`` (``length`` bytes at most) in chunks; the file is read lazily.

    A missing file is a :class:`LocalStorageError` naming ``what`` (default: the path).
    """
    try:
        # Shielded: a cancel while the worker thread opens the file would drop the handle unclosed.
        with anyio.CancelScope(shield=True):
            handle = await anyio.open_file(path, "rb")
    except FileNotFoundError:
        raise LocalStorageError(f"{what or path}: no such file") from None
    except OSError as exc:
        raise _storage_error(what or path, exc) from None
    try:
        if offset:
            await handle.seek(offset)

        async def chunks() -> AsyncGenerator[bytes, None]:
            remaining = length
            while remaining is None or remaining > 0:
                want = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
                data = await handle.read(want)
                if not data:
                    return
                if remaining is not None:
                    remaining -= len(data)
                yield data

        async with aclosing(chunks()) as stream:
            yield stream
    finally:
        # Shielded: when a failed copy cancels the reading task, the file must still be closed
        # (a cancelled close would leak the descriptor).
        with anyio.CancelScope(shield=True):
            await handle.aclose()


def _read_at_most(path: str, limit: int, what: str) -> bytes:
    """The file's content (blocking); its ``OSError`` goes to the caller, which knows what absent means."""
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise LocalStorageError(f"{what}: larger than the {limit} byte limit")
    return data


def read_existing(
    path: str, limit: int, *, absent: tuple[type[OSError], ...] = (FileNotFoundError,)
) -> bytes | None:
    """A small file's content, ``None`` when reading it raises one of ``absent``; refuses files
    over ``limit`` bytes. Blocking: for code that already runs in a worker thread."""
    try:
        return _read_at_most(path, limit, path)
    except absent:
        return None
    except OSError as exc:
        raise _storage_error(path, exc) from None


async def read_capped(path: str, limit: int, what: str = "") -> bytes:
    """The whole content of a small file; refuses files over ``limit`` bytes."""
    what = what or path
    try:
        return await anyio.to_thread.run_sync(_read_at_most, path, limit, what)
    except FileNotFoundError:
        raise LocalStorageError(f"{what}: no such file") from None
    except IsADirectoryError:
        raise LocalStorageError(f"{what}: is a directory, expected a file") from None
    except OSError as exc:
        raise _storage_error(what, exc) from None


class FileTree(Protocol):
    """Read access to a tree of files by relative ``/``-separated name (a layout's storage)."""

    def describe(self, name: str) -> str:
        """A human-readable location of ``name``, for messages."""

    async def read_bytes(self, name: str, limit: int) -> bytes:
        """The content of a small file; :class:`LocalStorageError` if missing or over ``limit``."""

    async def size(self, name: str) -> int | None:
        """The size of a regular file, or ``None`` when there is none."""

    def open_chunks(self, name: str, offset: int = 0) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Stream a file from ``offset``."""


class DirectoryTree:
    """A :class:`FileTree` on a directory; every name goes through :func:`safe_path`."""

    def __init__(self, root: str, label: str) -> None:
        self.root = root
        self.label = label

    def describe(self, name: str) -> str:
        return f"{self.label}: {posixpath.join(self.root, name)}"

    def path(self, name: str) -> str:
        return safe_path(self.root, name, self.label)

    async def read_bytes(self, name: str, limit: int) -> bytes:
        return await read_capped(self.path(name), limit, self.describe(name))

    async def size(self, name: str) -> int | None:
        path = self.path(name)
        try:
            stat = await anyio.to_thread.run_sync(os.stat, path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _storage_error(self.describe(name), exc) from None
        import stat as stat_module

        return stat.st_size if stat_module.S_ISREG(stat.st_mode) else None

    def open_chunks(self, name: str, offset: int = 0) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        return open_chunks(self.path(name), offset, what=self.describe(name))


def ensure_directory(path: str, what: str) -> None:
    """Create ``path`` (and parents) if missing; refuse when it exists and is not a directory."""
    try:
        os.makedirs(path, exist_ok=True)
    except FileExistsError:
        raise LocalStorageError(f"{what}: {path} exists and is not a directory") from None
    except OSError as exc:
        raise _storage_error(f"{what}: {path}", exc) from None


def remove_file(path: str, what: str) -> bool:
    """Remove the file ``path``; ``False`` when there was none. Any other failure is one line,
    ``WHAT: reason`` (blocking)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise LocalStorageError(f"{what}: {exc.strerror or exc}") from None
    return True


def remove_tree_quietly(path: str) -> None:
    """Remove a temporary directory tree, ignoring errors (cleanup must not mask the real error)."""
    import shutil

    shutil.rmtree(path, ignore_errors=True)


async def read_manifest_file(
    tree: FileTree, name: str, expected: Digest | None, expected_size: int | None = None
) -> bytes:
    """Read a stored manifest (capped at 4 MiB) and, when its descriptor is known, verify it.

    A manifest whose bytes do not match the digest (and size) that names it is refused with a
    :class:`~asyncsync.errors.DigestMismatchError`: a local store must not hand out a corrupt
    manifest as if it were the image.
    """
    from asyncsync.errors import DigestMismatchError
    from asyncsync.manifest import MAX_MANIFEST_SIZE

    raw = await tree.read_bytes(name, MAX_MANIFEST_SIZE)
    if expected is None:
        return raw
    what = f"manifest {expected} ({tree.describe(name)})"
    if expected_size is not None and len(raw) != expected_size:
        raise DigestMismatchError(
            f"{what}: size {len(raw)} is not the expected {expected_size}; the file is corrupt"
        )
    actual = Digest.of(raw, expected.algorithm)
    if actual != expected:
        raise DigestMismatchError(f"{what}: content digest is {actual}; the file is corrupt")
    return raw


def absolute_path(path: str) -> str:
    """``path`` made absolute against the working directory (no symlinks resolved)."""
    return os.path.abspath(path)


def existing_directory(path: str, what: str) -> str:
    """The absolute form of ``path``, which must be an existing directory (blocking)."""
    absolute = os.path.abspath(path)
    if not os.path.isdir(absolute):
        raise LocalStorageError(f"{what}: no such directory {absolute}")
    return absolute


async def find_directory(path: str, what: str) -> str:
    """:func:`existing_directory` in a worker thread."""
    return await anyio.to_thread.run_sync(existing_directory, path, what)
