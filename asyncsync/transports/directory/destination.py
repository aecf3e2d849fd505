"""Writing an image to a ``dir:`` directory.

As skopeo: the directory is created if missing; an existing non-empty directory is overwritten
only if its ``version`` file says it is an image directory ("not a containers image directory,
don't want to overwrite important data" otherwise). Unlike skopeo, the old image is not wiped
first: blobs and child manifests are written atomically next to it, ``manifest.json`` is
replaced atomically at :meth:`DirDestination.commit`, and only then are the files of the old
image removed. A copy that fails leaves the previous image intact and readable.

``--dest-decompress`` (``SideOptions.decompress``) is done while streaming: each layer is
decompressed (when gzip, bzip2, xz or zstd) on its way to disk, then the manifest is rewritten
with the new layer digests, sizes and media types, and an index with the new child manifest
digests, as skopeo does. ``--dest-compress`` makes the destination one that wants compressed
layers (``Capabilities.compresses_layers``), as containers/image's ``dir:`` does: the copy engine
then compresses uncompressed layers (gzip, or ``--dest-compress-format``) and recompresses layers
compressed otherwise (:mod:`asyncsync.copy.recompress`). Digests change, so the destination then
reports ``preserves_digests=False``.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import anyio
import orjson

from asyncsync.digest import Digest
from asyncsync.errors import DigestMismatchError, LocalStorageError, UsageError
from asyncsync.manifest import Descriptor
from asyncsync.signature.formats import Signature
from asyncsync.transports.base import (
    BlobLocation,
    Capabilities,
    ReuseKind,
    ReuseResult,
    TransportContext,
)
from asyncsync.transports.directory.reference import DirReference
from asyncsync.transports.directory.signatures import write_signatures
from asyncsync.transports.directory.source import MANIFEST_FILE, child_manifest_name
from asyncsync.transports.layer_compression import Decompress, is_layer, uncompressed_media_type
from asyncsync.transports.local_files import (
    TEMP_PREFIX,
    ensure_directory,
    write_bytes_atomic,
    write_chunks_atomic,
    write_file_atomic_sync,
)

VERSION_FILE = "version"
VERSION = b"Directory Transport Version: 1.1\n"
#: Files of a previous image that commit may remove: blobs, child manifests, signatures.
_IMAGE_FILE = re.compile(
    r"^(?:[0-9a-f]{64}|[0-9a-f]{128}|[0-9a-f]{64}\.manifest\.json|(?:[0-9a-f]{64}\.)?signature-[0-9]+)$"
)


@dataclass(frozen=True, slots=True)
class _Stored:
    """A blob stored under a different digest than the source's (compressed or decompressed)."""

    digest: Digest
    size: int
    media_type: str


def _check_existing(root: str, where: str, *, create: bool = True) -> None:
    if not os.path.exists(root):
        if create:
            ensure_directory(root, where)
        return
    if not os.path.isdir(root):
        raise LocalStorageError(f"{where}: {root} exists and is not a directory")
    if not os.listdir(root):
        return
    try:
        with open(os.path.join(root, VERSION_FILE), "rb") as handle:
            version = handle.read(len(VERSION) + 1)
    except OSError:
        version = b""
    if version != VERSION:
        raise LocalStorageError(
            f"{where}: {root} is not a containers image directory, don't want to overwrite important data"
        )


class DirDestination:
    """Writes the image into one directory; see the module docstring for atomicity."""

    def __init__(self, reference: DirReference, root: str, compress: bool, decompress: bool) -> None:
        self._reference = reference
        self.root = root
        self._where = str(reference)
        self._decompress = decompress
        self._capabilities = Capabilities(
            ranged_reads=True, preserves_digests=not (compress or decompress), compresses_layers=compress
        )
        #: File names this copy wrote or reused (kept at commit).
        self._kept: set[str] = {VERSION_FILE, MANIFEST_FILE}
        self._blobs: dict[Digest, _Stored] = {}
        self._manifests: dict[Digest, _Stored] = {}
        self._main: bytes | None = None
        self._prepared = False
        self._prepare_lock = anyio.Lock()

    @property
    def reference(self) -> DirReference:
        return self._reference

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def _path(self, name: str) -> str:
        return os.path.join(self.root, name)

    async def _prepare(self) -> None:
        """Create the directory and its ``version`` file at the first write, not at open: a copy
        refused before its first blob (a trust policy) leaves no trace."""
        if self._prepared:
            return
        async with self._prepare_lock:  # concurrent blobs: the first creates, the others wait
            if not self._prepared:
                await anyio.to_thread.run_sync(_prepare, self._reference)
                self._prepared = True

    def _transforms(self, blob: Descriptor) -> bool:
        return self._decompress and is_layer(blob.media_type)

    async def try_reuse_blob(
        self, blob: Descriptor, candidates: Sequence[BlobLocation] = (), *, known_absent: bool = False
    ) -> ReuseResult | None:
        await self._prepare()
        stored = self._blobs.get(blob.digest)
        if stored is not None:
            return ReuseResult(ReuseKind.EXISTS, stored.size)
        if self._transforms(blob):
            return None
        try:
            stat = await anyio.to_thread.run_sync(os.stat, self._path(blob.digest.hex))
        except OSError:
            return None
        if blob.size >= 0 and stat.st_size != blob.size:
            return None
        self._kept.add(blob.digest.hex)
        return ReuseResult(ReuseKind.EXISTS, stat.st_size)

    async def put_blob(self, blob: Descriptor, chunks: AsyncIterator[bytes]) -> None:
        await self._prepare()
        if not self._transforms(blob):
            await write_chunks_atomic(self._path(blob.digest.hex), chunks)
            self._kept.add(blob.digest.hex)
            return
        what = f"{self._where}: layer {blob.digest}"
        transform = Decompress(what)
        # The final name is the digest of what is written; write under a temporary name first.
        staged = self._path(f"{TEMP_PREFIX}{blob.digest.hex}.layer")
        result = await write_chunks_atomic(staged, chunks, transform)
        final = result.digest.hex
        try:
            await anyio.to_thread.run_sync(os.replace, staged, self._path(final))
        except OSError as exc:
            raise LocalStorageError(f"{what}: {exc.strerror or exc}") from None
        self._kept.add(final)
        if transform.changed:
            self._blobs[blob.digest] = _Stored(
                result.digest, result.size, uncompressed_media_type(blob.media_type)
            )

    def _rewrite(self, raw: bytes) -> bytes:
        """The manifest with stored (re-compressed) layers and rewritten children substituted."""
        if not self._blobs and not self._manifests:
            return raw
        data: Any = orjson.loads(raw)
        changed = False
        for key, table in (("layers", self._blobs), ("manifests", self._manifests)):
            for entry in data.get(key) or []:
                stored = None
                if isinstance(entry, dict) and isinstance(entry.get("digest"), str):
                    stored = table.get(Digest.parse(entry["digest"]))
                if stored is not None:
                    updated = {"digest": str(stored.digest), "size": stored.size}
                    if key == "layers":
                        updated["mediaType"] = stored.media_type
                    if any(entry.get(field) != value for field, value in updated.items()):
                        entry.update(updated)
                        changed = True
        return orjson.dumps(data) if changed else raw

    async def put_manifest(self, raw: bytes, media_type: str, instance: Digest | None = None) -> Digest:
        await self._prepare()
        if instance is not None and Digest.of(raw) != instance:
            raise DigestMismatchError(f"{self._where}: manifest for {instance} has digest {Digest.of(raw)}")
        stored = self._rewrite(raw)
        digest = Digest.of(stored)
        if instance is None:
            self._main = stored
            return digest
        name = child_manifest_name(digest)
        await write_bytes_atomic(self._path(name), stored)
        self._kept.add(name)
        if digest != instance:
            # Keyed by both digests: an index may name the child by its old digest (bytes as the
            # source had them) or by the new one this method returned (an engine that already
            # substituted it), and either way its entry needs the stored digest and size.
            self._manifests[instance] = self._manifests[digest] = _Stored(digest, len(stored), media_type)
        return digest

    async def put_signatures(self, signatures: list[Signature], digest: Digest, *, instance: bool) -> None:
        """``signature-N`` files (``<hex>.signature-N`` for an index's child); others go at commit."""
        await self._prepare()
        self._kept.update(await write_signatures(self.root, signatures, digest, instance=instance))

    async def commit(self) -> None:
        """Replace ``manifest.json`` atomically, then remove the files of the previous image."""
        if self._main is None:
            raise LocalStorageError(f"{self._where}: nothing to commit: no manifest was written")
        await self._prepare()
        await write_bytes_atomic(self._path(MANIFEST_FILE), self._main)
        await anyio.to_thread.run_sync(self._remove_stale)

    def _remove_stale(self) -> None:
        for name in os.listdir(self.root):
            if name not in self._kept and _IMAGE_FILE.match(name):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._path(name))

    async def close(self) -> None:
        """Nothing to release: uncommitted files are complete blobs the old manifest ignores."""


def _write_version(out: BinaryIO) -> None:
    out.write(VERSION)


def _prepare(reference: DirReference) -> str:
    """Check or create the directory and write its ``version`` file (blocking); returns its path."""
    root = os.path.abspath(reference.path)
    where = str(reference)
    _check_existing(root, where)
    version_path = os.path.join(root, VERSION_FILE)
    try:
        with open(version_path, "rb") as handle:
            current = handle.read(len(VERSION) + 1)
    except OSError:
        current = b""
    if current != VERSION:
        write_file_atomic_sync(version_path, _write_version)
    return root


def _check_only(reference: DirReference) -> str:
    """What :func:`_prepare` checks, writing nothing (blocking); returns the directory's path."""
    root = os.path.abspath(reference.path)
    _check_existing(root, str(reference), create=False)
    return root


async def open_dir_destination(reference: DirReference, ctx: TransportContext) -> DirDestination:
    """Open ``dir:PATH`` for writing; see the module docstring for what an existing directory needs."""
    options = ctx.options
    if options.compress and options.decompress:
        raise UsageError("--dest-compress and --dest-decompress cannot be used together")
    root = await anyio.to_thread.run_sync(_check_only, reference)
    return DirDestination(reference, root, options.compress, options.decompress)
