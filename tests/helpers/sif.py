"""Build SIF files (sylabs/sif v2 format, spec version 01) for the ``sif:`` transport tests.

:func:`make_sif` writes a SIF file holding an optional definition file object and, unless
``partition=False``, a squashfs of ``rootfs`` (built with ``mksquashfs`` from squashfs-tools) as the
primary system partition, with the header's architecture set from ``arch`` (Go names). The layout is
what ``singularity build`` writes (header, a descriptor table, data objects at 4 KiB alignment);
the vendored ``busybox_latest.sif`` from skopeo's tests is a real one to compare with.
"""

from __future__ import annotations

import struct
import subprocess
import uuid
from pathlib import Path

__all__ = ["make_sif"]

_ARCH_CODES = {"386": b"01", "amd64": b"02", "arm": b"03", "arm64": b"04", "ppc64le": b"06", "s390x": b"11"}
_DESCRIPTOR = struct.Struct("<i?IIIqqqqqqq128s384s")
_ALIGN = 4096


def _squashfs(rootfs: Path, work: Path) -> bytes:
    image = work / "rootfs.squashfs"
    subprocess.run(
        ["mksquashfs", str(rootfs), str(image), "-noappend", "-quiet", "-no-progress", "-all-root"],
        check=True,
        capture_output=True,
    )
    return image.read_bytes()


def make_sif(
    path: Path,
    rootfs: Path | None,
    *,
    deffile: str | None = None,
    arch: str = "amd64",
    modified: int = 1_627_931_376,
    partition: bool = True,
    descriptors_total: int = 48,
) -> Path:
    """Write a SIF file at ``path``; returns ``path``."""
    objects: list[tuple[int, bytes, bytes]] = []  # (data type, payload, extra)
    if deffile is not None:
        objects.append((0x4001, deffile.encode(), b""))
    if partition:
        if rootfs is None:
            raise ValueError("a partition needs a rootfs directory")
        extra = struct.pack("<ii3s", 1, 2, _ARCH_CODES[arch] + b"\x00")  # squashfs, primary system
        objects.append((0x4004, _squashfs(rootfs, path.parent), extra))
    descriptors_offset = 4096
    data_offset = descriptors_offset + descriptors_total * _DESCRIPTOR.size
    data_offset += -data_offset % _ALIGN
    table = b""
    data = b""
    for index, (data_type, payload, extra) in enumerate(objects, start=1):
        offset = data_offset + len(data)
        table += _DESCRIPTOR.pack(
            data_type, True, index, 0xF0000001, 0, offset, len(payload), len(payload), modified, modified,
            0, 0, b"object", extra,
        )  # fmt: skip
        data += payload + b"\x00" * (-len(payload) % _ALIGN)
    table += b"\x00" * (descriptors_total * _DESCRIPTOR.size - len(table))
    header = struct.pack(
        "<32s10s3s3s16s8q",
        b"#!/usr/bin/env run-singularity\n",
        b"SIF_MAGIC\x00",
        b"01\x00",
        _ARCH_CODES[arch] + b"\x00",
        uuid.UUID("4f307b4c-58a8-4753-9c0f-21dceefed4a6").bytes,
        modified,
        modified,
        descriptors_total - len(objects),
        descriptors_total,
        descriptors_offset,
        descriptors_total * _DESCRIPTOR.size,
        data_offset,
        len(data),
    )
    blob = header + b"\x00" * (descriptors_offset - len(header)) + table
    blob += b"\x00" * (data_offset - len(blob)) + data
    path.write_bytes(blob)
    return path
