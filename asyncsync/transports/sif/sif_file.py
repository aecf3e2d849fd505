"""The SIF container format (sylabs/sif v2, spec version 01): global header and object descriptors.

Layout (little endian, Go ``binary.Read`` of packed structs, as ``sylabs/sif/v2/pkg/sif``):

* header, 128 bytes: launch script [32], magic ``SIF_MAGIC\\0`` [10], version ``01\\0`` [3],
  architecture [3] (``02\\0`` = amd64 ...), uuid [16], then int64 created, modified, descriptors
  free, descriptors total, descriptors offset, descriptors size, data offset, data size;
* ``descriptors total`` descriptors of 585 bytes each at ``descriptors offset``: int32 data type,
  bool used, uint32 id, group id, linked id, int64 offset, size, size with padding, created,
  modified, uid, gid, name [128], extra [384]. A partition's extra starts with int32 file system
  type, int32 partition type and its architecture [3].

Only descriptors marked used count. :func:`read_sif` reads the header and descriptors (never the
data objects) and refuses anything that is not a SIF file of version 01, with one line naming it.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from asyncsync.errors import LocalStorageError
from asyncsync.transports.local_files import opening_errors

HEADER_SIZE = 128
DESCRIPTOR_SIZE = 585
MAGIC = b"SIF_MAGIC\x00"
VERSION = b"01\x00"

DATA_DEFFILE = 0x4001
DATA_PARTITION = 0x4004
PART_PRIMSYS = 2
FS_SQUASH = 1

_ARCHES = {
    b"01\x00": "386",
    b"02\x00": "amd64",
    b"03\x00": "arm",
    b"04\x00": "arm64",
    b"05\x00": "ppc64",
    b"06\x00": "ppc64le",
    b"07\x00": "mips",
    b"08\x00": "mipsle",
    b"09\x00": "mips64",
    b"10\x00": "mips64le",
    b"11\x00": "s390x",
    b"12\x00": "riscv64",
}
_HEADER = struct.Struct("<32s10s3s3s16s8q")
_DESCRIPTOR = struct.Struct("<i?IIIqqqqqqq128s384s")
_PARTITION = struct.Struct("<ii3s")
#: ``read_at(offset, size) -> bytes``: a positioned read of the file being parsed.
ReadAt = Callable[[int, int], bytes]
# More descriptors than any real file has; bounds what a corrupt header can make us read.
_MAX_DESCRIPTORS = 65536


@dataclass(frozen=True, slots=True)
class SifObject:
    """One used data object: its type, where its bytes are, and (partitions) fs and partition types."""

    data_type: int
    id: int
    offset: int
    size: int
    name: str
    fs_type: int | None = None
    part_type: int | None = None


@dataclass(frozen=True, slots=True)
class SifFile:
    """A SIF file's header fields and used objects."""

    path: str
    arch: str
    id: str
    created_at: int
    modified_at: int
    objects: tuple[SifObject, ...]

    def single(self, data_type: int, part_type: int | None = None) -> SifObject | None:
        """The one object of ``data_type`` (and ``part_type``); ``None`` if there is none.

        Raises :class:`LocalStorageError` when several match (sylabs/sif's ``GetDescriptor``)."""
        # (an image without objects finds nothing, like sylabs/sif's "no objects in image")
        found = [
            obj
            for obj in self.objects
            if obj.data_type == data_type and (part_type is None or obj.part_type == part_type)
        ]
        if len(found) > 1:
            raise LocalStorageError(f"{self.path}: multiple objects found")
        return found[0] if found else None


def _arch(raw: bytes) -> str:
    return _ARCHES.get(raw, "unknown")


def parse_sif(data_head: bytes, read_at: ReadAt, path: str, file_size: int) -> SifFile:
    """Parse the header in ``data_head`` (its first 128 bytes) and the descriptors via ``read_at``."""
    if len(data_head) < HEADER_SIZE:
        raise LocalStorageError(f"{path}: loading SIF file: not a SIF file (too short)")
    _launch, magic, version, arch, raw_id, created, modified, _free, total, d_offset, _d_size, *_ = (
        _HEADER.unpack_from(data_head)
    )
    if magic != MAGIC:
        raise LocalStorageError(f"{path}: loading SIF file: invalid SIF magic")
    if version != VERSION:
        raise LocalStorageError(f"{path}: loading SIF file: incompatible SIF version")
    if not 0 <= total <= _MAX_DESCRIPTORS or d_offset < 0 or d_offset + total * DESCRIPTOR_SIZE > file_size:
        raise LocalStorageError(f"{path}: loading SIF file: reading descriptors: unexpected EOF")
    raw = read_at(d_offset, total * DESCRIPTOR_SIZE)
    objects = []
    for index in range(total):
        fields = _DESCRIPTOR.unpack_from(raw, index * DESCRIPTOR_SIZE)
        data_type, used, object_id, _group, _link, offset, size = fields[:7]
        name_raw, extra = fields[12], fields[13]
        if not used:
            continue
        if offset < 0 or size < 0 or offset + size > file_size:
            raise LocalStorageError(f"{path}: loading SIF file: object {object_id} lies outside the file")
        fs_type = part_type = None
        if data_type == DATA_PARTITION:
            fs_type, part_type, _part_arch = _PARTITION.unpack_from(extra)
        name = name_raw.rstrip(b"\x00").decode("utf-8", "replace")
        objects.append(SifObject(data_type, object_id, offset, size, name, fs_type, part_type))
    return SifFile(path, _arch(arch), str(uuid.UUID(bytes=raw_id)), created, modified, tuple(objects))


def read_sif(path: str) -> SifFile:
    """Read and parse the SIF file at ``path`` (blocking; reads only the header and descriptors)."""
    with opening_errors(f"{path}: loading SIF file"), open(path, "rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(0)
        head = handle.read(HEADER_SIZE)

        def read_at(offset: int, length: int) -> bytes:
            handle.seek(offset)
            data = handle.read(length)
            if len(data) != length:
                raise LocalStorageError(f"{path}: loading SIF file: unexpected EOF")
            return data

        return parse_sif(head, read_at, path, size)
