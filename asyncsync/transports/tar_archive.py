"""Reading tar archives in place, safely, and writing them deterministically.

Reading (:class:`TarIndex`): an archive is never extracted. Its member headers are indexed once
and files are streamed straight from their byte range in the (uncompressed) tar, so nothing can
be written outside any directory. A compressed archive (gzip, bzip2, xz: ``docker save | gzip``)
is first decompressed to a temporary file, removed by :meth:`TarIndex.close`. While indexing,
the archive is refused with a :class:`~asyncsync.errors.LocalStorageError` naming the member
when a member name is absolute or contains ``..``, when a symlink or hardlink points outside the
archive, or when a member is a device, FIFO or sparse file. Links inside the archive are followed
(docker's legacy ``<id>/layer.tar`` symlinks), at most :data:`MAX_LINK_HOPS` deep.

Writing (:func:`write_tar`): deterministic headers (mtime 0, uid/gid 0, no user names) in the
order given, so the same image always gives the same archive bytes.

Streaming writers (the ``docker-archive:`` writer) build members themselves with
:func:`member_header`, :func:`padding` and :data:`END_OF_ARCHIVE`: the same bytes Go's
``archive/tar`` writes for containers/image (USTAR, octal device numbers, two zero blocks at the
end and no record padding), so such an archive can be byte-identical to skopeo's. A header for a
regular file is exactly :data:`BLOCK` bytes whatever its size (sizes of 8 GiB and more use the
GNU base-256 encoding, read by Go, GNU tar and Python), so a writer can reserve it before the
size is known and fill it in afterwards.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager, suppress
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

import anyio

from asyncsync.errors import LocalStorageError
from asyncsync.transports.layer_compression import MAGIC_LENGTH, detect
from asyncsync.transports.local_files import open_chunks, split_relative

MAX_LINK_HOPS = 16
_COPY_BUFFER = 1024 * 1024

MemberKind = Literal["file", "dir", "symlink", "hardlink"]


@dataclass(frozen=True, slots=True)
class TarMember:
    """One indexed member: ``name`` normalised; ``target`` the archive path a link points at."""

    name: str
    kind: MemberKind
    offset: int
    size: int
    target: str | None = None


def normalise_name(name: str, what: str) -> str:
    """A member name without ``./`` prefixes or duplicate slashes; refuses absolute and ``..`` names."""
    return "/".join(split_relative(name, what))


def _index_members(path: str, what: str) -> dict[str, TarMember]:
    members: dict[str, TarMember] = {}
    try:
        with _archive_file_errors(what), tarfile.open(path, mode="r:") as archive:
            for info in archive:
                if info.name in ("", ".", "./"):
                    continue
                where = f"{what}: member {info.name!r}"
                name = normalise_name(info.name, where)
                if info.issparse():
                    raise LocalStorageError(f"{where}: sparse files are not supported")
                if info.isreg():
                    members[name] = TarMember(name, "file", info.offset_data, info.size)
                elif info.isdir():
                    members[name] = TarMember(name, "dir", info.offset_data, 0)
                elif info.issym():
                    if info.linkname.startswith("/"):
                        raise LocalStorageError(
                            f"{where}: symlink to absolute path {info.linkname!r} refused"
                        )
                    joined = posixpath.normpath(posixpath.join(posixpath.dirname(name), info.linkname))
                    if joined == ".." or joined.startswith("../"):
                        raise LocalStorageError(
                            f"{where}: symlink to {info.linkname!r} points outside the archive"
                        )
                    members[name] = TarMember(name, "symlink", info.offset_data, 0, joined)
                elif info.islnk():
                    target = normalise_name(info.linkname, f"{where}: hardlink target")
                    members[name] = TarMember(name, "hardlink", info.offset_data, 0, target)
                else:
                    raise LocalStorageError(f"{where}: devices and FIFOs are not allowed in an image archive")
    except tarfile.TarError as exc:
        raise LocalStorageError(f"{what}: not a valid tar archive: {exc}") from None
    return members


def _decompress_to_temp(path: str, kind: str, what: str) -> str:
    import bz2
    import gzip
    import lzma

    openers: dict[str, Callable[..., Any]] = {"gzip": gzip.open, "bzip2": bz2.open, "xz": lzma.open}
    opener = openers.get(kind)
    if opener is None:
        raise LocalStorageError(f"{what}: {kind}-compressed archives are not supported")
    fd, temp = tempfile.mkstemp(prefix="asyncsync-archive-", suffix=".tar")
    try:
        with os.fdopen(fd, "wb") as out, opener(path, "rb") as compressed:
            shutil.copyfileobj(compressed, out, _COPY_BUFFER)
    except (OSError, EOFError, lzma.LZMAError) as exc:
        os.unlink(temp)
        raise LocalStorageError(f"{what}: cannot decompress the {kind} archive: {exc}") from None
    except BaseException:
        os.unlink(temp)
        raise
    return temp


@contextmanager
def _archive_file_errors(what: str) -> Iterator[None]:
    """Opening or reading the archive file at all: its ``OSError`` as one line naming ``what``."""
    try:
        yield
    except FileNotFoundError:
        raise LocalStorageError(f"{what}: no such file") from None
    except IsADirectoryError:
        raise LocalStorageError(f"{what}: is a directory, expected an archive file") from None
    except OSError as exc:
        raise LocalStorageError(f"{what}: {exc.strerror or exc}") from None


def _sniff(path: str, what: str) -> str | None:
    with _archive_file_errors(what), open(path, "rb") as handle:
        return detect(handle.read(MAGIC_LENGTH))


class TarIndex:
    """An uncompressed tar file indexed by member name; members are read from their byte range."""

    def __init__(self, path: str, members: dict[str, TarMember], what: str, temporary: bool) -> None:
        self.path = path
        self.what = what
        self._members = members
        self._temporary = temporary

    @classmethod
    async def open(cls, path: str, what: str) -> TarIndex:
        """Index ``path`` (decompressing it to a temporary file first if it is compressed)."""

        def build() -> TarIndex:
            kind = _sniff(path, what)
            plain = path if kind is None else _decompress_to_temp(path, kind, what)
            try:
                return cls(plain, _index_members(plain, what), what, temporary=kind is not None)
            except BaseException:
                if kind is not None:
                    os.unlink(plain)
                raise

        return await anyio.to_thread.run_sync(build)

    def names(self) -> list[str]:
        return list(self._members)

    def resolve(self, name: str) -> TarMember:
        """The regular-file member ``name`` designates, following symlinks and hardlinks."""
        parts = split_relative(name, f"{self.what}: {name!r}")
        hops = 0
        index = 0
        while True:
            while index < len(parts):
                prefix = "/".join(parts[: index + 1])
                member = self._members.get(prefix)
                if member is not None and member.kind == "symlink" and member.target is not None:
                    hops += 1
                    if hops > MAX_LINK_HOPS:
                        raise LocalStorageError(f"{self.what}: too many levels of links resolving {name!r}")
                    parts = [p for p in member.target.split("/") if p not in ("", ".")] + parts[index + 1 :]
                    if ".." in parts:
                        raise LocalStorageError(f"{self.what}: {name!r} resolves outside the archive")
                    index = 0
                    continue
                index += 1
            final = self._members.get("/".join(parts))
            if final is None:
                raise LocalStorageError(f"{self.what}: no member {name!r} in the archive")
            if final.kind == "hardlink" and final.target is not None:
                hops += 1
                if hops > MAX_LINK_HOPS:
                    raise LocalStorageError(f"{self.what}: too many levels of links resolving {name!r}")
                parts, index = final.target.split("/"), 0
                continue
            if final.kind != "file":
                raise LocalStorageError(f"{self.what}: member {name!r} is not a regular file")
            return final

    def exists(self, name: str) -> bool:
        try:
            self.resolve(name)
        except LocalStorageError:
            return False
        return True

    def open_member(self, name: str, offset: int = 0) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        member = self.resolve(name)
        offset = min(max(offset, 0), member.size)
        return open_chunks(
            self.path, member.offset + offset, member.size - offset, what=f"{self.what}: {name}"
        )

    async def read_member(self, name: str, limit: int) -> bytes:
        member = self.resolve(name)
        if member.size > limit:
            raise LocalStorageError(f"{self.what}: member {name!r} is larger than the {limit} byte limit")

        def read() -> bytes:
            with open(self.path, "rb") as handle:
                handle.seek(member.offset)
                data = handle.read(member.size)
            if len(data) != member.size:
                raise LocalStorageError(f"{self.what}: member {name!r} is truncated")
            return data

        return await anyio.to_thread.run_sync(read)

    async def read_head(self, name: str, length: int) -> bytes:
        """The first ``length`` bytes of a member (to detect compression)."""
        member = self.resolve(name)

        def read() -> bytes:
            with open(self.path, "rb") as handle:
                handle.seek(member.offset)
                return handle.read(min(length, member.size))

        return await anyio.to_thread.run_sync(read)

    async def close(self) -> None:
        if self._temporary:
            self._temporary = False
            with suppress(FileNotFoundError):
                os.unlink(self.path)


class TarTree:
    """A :class:`~asyncsync.transports.local_files.FileTree` on an indexed archive."""

    def __init__(self, index: TarIndex, label: str) -> None:
        self.index = index
        self.label = label

    def describe(self, name: str) -> str:
        return f"{self.label}: {name} in {self.index.what}"

    async def read_bytes(self, name: str, limit: int) -> bytes:
        return await self.index.read_member(name, limit)

    async def size(self, name: str) -> int | None:
        try:
            return self.index.resolve(name).size
        except LocalStorageError:
            return None

    def open_chunks(self, name: str, offset: int = 0) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        return self.index.open_member(name, offset)


@dataclass(frozen=True, slots=True)
class TarEntry:
    """One member to write: a file from ``source`` (a path) or ``data``, a directory, or a symlink."""

    name: str
    kind: Literal["file", "dir", "symlink"] = "file"
    source: str | None = None
    data: bytes | None = None
    target: str | None = None
    mode: int = 0o444


def write_tar(entries: Sequence[TarEntry], out: BinaryIO) -> None:
    """Write ``entries`` as a tar stream to ``out`` with deterministic headers (blocking)."""
    import io

    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, bufsize=_COPY_BUFFER) as archive:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = entry.mode
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            elif entry.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = entry.target or ""
                archive.addfile(info)
            elif entry.source is not None:
                with open(entry.source, "rb") as handle:
                    info.size = os.fstat(handle.fileno()).st_size
                    archive.addfile(info, handle)
            else:
                data = entry.data or b""
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))


#: A tar block; headers and member data are padded to it.
BLOCK = 512
#: What ends an archive: two zero blocks (Go's ``tar.Writer.Close``; no record padding).
END_OF_ARCHIVE = bytes(2 * BLOCK)
#: Sizes from this one on do not fit the 11 octal digits of a USTAR header.
_OCTAL_SIZE_LIMIT = 8**11
_NAME_LENGTH = 100


def _octal(value: int, length: int) -> bytes:
    """Zero-padded octal digits and a NUL, as Go's ``formatOctal``."""
    return b"%0*o\x00" % (length - 1, value)


def _size_field(size: int) -> bytes:
    if size < _OCTAL_SIZE_LIMIT:
        return _octal(size, 12)
    # GNU base-256: a leading 0x80, then the value big-endian in the remaining 11 bytes.
    return b"\x80" + size.to_bytes(11, "big")


def _ustar(name: bytes, size: int, typeflag: bytes, target: bytes, mode: int) -> bytes:
    block = bytearray(BLOCK)
    block[0 : len(name)] = name
    block[100:108] = _octal(mode, 8)
    block[108:116] = _octal(0, 8)  # uid
    block[116:124] = _octal(0, 8)  # gid
    block[124:136] = _size_field(size)
    block[136:148] = _octal(0, 12)  # mtime: the epoch, as skopeo writes
    block[148:156] = b" " * 8  # the checksum is computed with its own field as spaces
    block[156:157] = typeflag
    block[157 : 157 + len(target)] = target
    block[257:265] = b"ustar\x0000"
    block[329:337] = _octal(0, 8)  # devmajor
    block[337:345] = _octal(0, 8)  # devminor
    block[148:156] = b"%06o\x00 " % sum(block)
    return bytes(block)


def _pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode()
    length = len(body) + 1
    while len(str(length)) + len(body) != length:  # the length counts its own digits
        length += 1
    return str(length).encode() + body


def member_header(
    name: str,
    size: int = 0,
    *,
    kind: Literal["file", "symlink"] = "file",
    target: str = "",
    mode: int = 0o444,
) -> bytes:
    """The header block(s) of one member, with mtime 0 and uid/gid 0 (deterministic).

    A name or link target longer than 100 bytes gets a PAX extended header first (as Go does);
    otherwise, and always for a regular file whose name fits, the result is one :data:`BLOCK`.
    """
    encoded, linked = name.encode(), target.encode()
    typeflag = b"0" if kind == "file" else b"2"
    if kind != "file":
        size = 0
    records = b""
    if len(encoded) > _NAME_LENGTH:
        records += _pax_record("path", name)
        encoded = encoded[:_NAME_LENGTH]
    if len(linked) > _NAME_LENGTH:
        records += _pax_record("linkpath", target)
        linked = linked[:_NAME_LENGTH]
    header = _ustar(encoded, size, typeflag, linked, mode)
    if not records:
        return header
    base = posixpath.basename(name.rstrip("/")) or "member"
    pax_name = posixpath.join(posixpath.dirname(name), "PaxHeaders.0", base).encode()[:_NAME_LENGTH]
    return _ustar(pax_name, len(records), b"x", b"", 0o444) + records + padding(len(records)) + header


def padding(size: int) -> bytes:
    """The zero bytes that follow ``size`` bytes of member data up to the next block."""
    return bytes(-size % BLOCK)
