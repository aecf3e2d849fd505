"""Reading filesystem tarballs as an image, the way containers/image's ``tarball/`` package does.

Each file is one layer, in order (containers/image 5.23, skopeo 1.9.3, ``tarball_src.go``):

* a gzip file (its header parses) is an ``application/vnd.oci.image.layer.v1.tar+gzip`` layer whose
  diff id is the digest of the decompressed tar; anything else is served as it is, as
  ``application/vnd.oci.image.layer.v1.tar``, and its diff id is its digest;
* the config is containers/image's, byte for byte (Go field order, compact): created = the newest
  file's modification time, architecture and os of this machine (Go names), an empty ``config``,
  the diff ids, and one history entry per layer (its time, ``ADD file:<diff id hex> in /``,
  ``imported from tarball``);
* the OCI manifest carries no ``mediaType`` field (containers/image leaves it out here).

``-`` reads standard input once, into memory (as containers/image does), with the current time.
Files are read twice at most: once here to digest them, once when a blob is copied.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import zlib
from dataclasses import dataclass

import anyio

from asyncsync.digest import Digest
from asyncsync.errors import LocalStorageError
from asyncsync.manifest import OCI_LAYER, OCI_LAYER_GZIP, host_platform
from asyncsync.transports.docker_archive.archive import go_json
from asyncsync.transports.generated_image import FileLayer, GeneratedImageSource, go_time, oci_manifest
from asyncsync.transports.local_files import opening_errors
from asyncsync.transports.tarball.reference import TarballReference

_CHUNK = 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b\x08"


@dataclass(frozen=True, slots=True)
class _Scanned:
    layer: FileLayer
    diff_id: Digest
    mtime_ns: int


class _Digests:
    """Blob digest and, for gzip input, the digest of the decompressed stream (every member)."""

    def __init__(self, head: bytes, what: str) -> None:
        self.what = what
        self.blob = hashlib.sha256()
        self.size = 0
        self.gzip = head.startswith(_GZIP_MAGIC)
        self.plain = hashlib.sha256() if self.gzip else None
        self._inflate = zlib.decompressobj(wbits=31) if self.gzip else None

    def update(self, data: bytes) -> None:
        self.blob.update(data)
        self.size += len(data)
        while self._inflate is not None and self.plain is not None and data:
            try:
                self.plain.update(self._inflate.decompress(data))
            except zlib.error as exc:
                raise LocalStorageError(f"{self.what}: reading the gzip stream: {exc}") from None
            data = self._inflate.unused_data
            if self._inflate.eof:
                # Go's gzip reader reads concatenated members; skip padding zeros after the last.
                self._inflate = zlib.decompressobj(wbits=31) if data.strip(b"\x00") else None

    def finish(self) -> tuple[Digest, int, Digest]:
        blob = Digest("sha256", self.blob.hexdigest())
        if self.plain is None:
            return blob, self.size, blob
        if self._inflate is not None and not self._inflate.eof:
            raise LocalStorageError(f"{self.what}: reading the gzip stream: unexpected EOF")
        return blob, self.size, Digest("sha256", self.plain.hexdigest())


def _layer(blob: Digest, size: int, gzip: bool, path: str | None, data: bytes | None) -> FileLayer:
    return FileLayer(blob, size, OCI_LAYER_GZIP if gzip else OCI_LAYER, path=path, data=data)


def scan_file(path: str, where: str) -> _Scanned:
    """Digest one layer file (blocking)."""
    what = f"{where}: {path}"
    with opening_errors(f"{what}: error opening for reading"), open(path, "rb") as handle:
        mtime_ns = os.fstat(handle.fileno()).st_mtime_ns
        chunk = handle.read(_CHUNK)
        digests = _Digests(chunk, what)
        while chunk:
            digests.update(chunk)
            chunk = handle.read(_CHUNK)
    blob, size, diff_id = digests.finish()
    return _Scanned(_layer(blob, size, digests.gzip, os.path.abspath(path), None), diff_id, mtime_ns)


def scan_bytes(data: bytes, where: str) -> _Scanned:
    """Digest standard input's bytes (blocking)."""
    digests = _Digests(data[: len(_GZIP_MAGIC)], f"{where}: standard input")
    digests.update(data)
    blob, size, diff_id = digests.finish()
    return _Scanned(_layer(blob, size, digests.gzip, None, data), diff_id, time.time_ns())


def image_config(scanned: list[_Scanned]) -> bytes:
    """containers/image's config for these layers (Go field order, compact)."""
    platform = host_platform()
    newest = max(item.mtime_ns for item in scanned)
    history = [
        {
            "created": go_time(*divmod(item.mtime_ns, 1_000_000_000)),
            "created_by": f"/bin/sh -c #(nop) ADD file:{item.diff_id.hex} in /",
            "comment": "imported from tarball",
        }
        for item in scanned
    ]
    return go_json(
        {
            "created": go_time(*divmod(newest, 1_000_000_000)),
            "architecture": platform.architecture,
            "os": platform.os,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [str(item.diff_id) for item in scanned]},
            "history": history,
        }
    )


def _scan_all(reference: TarballReference, where: str) -> list[_Scanned]:
    scanned = []
    for name in reference.files:
        if name == "-":
            scanned.append(scan_bytes(sys.stdin.buffer.read(), where))
        else:
            scanned.append(scan_file(name, where))
    return scanned


async def open_tarball_source(reference: TarballReference) -> GeneratedImageSource:
    """Digest the files and serve the image they make."""
    where = str(reference)
    scanned = await anyio.to_thread.run_sync(_scan_all, reference, where)
    config = image_config(scanned)
    layers = [item.layer for item in scanned]
    manifest = oci_manifest(config, layers, media_type_field=False)
    return GeneratedImageSource(reference, manifest, config, layers, where)
