"""Writing an image as a ``docker save`` archive (``docker-archive:``; also ``docker-daemon:``).

skopeo 1.9 stores layers uncompressed (its docker-archive destination asks the copy engine to
decompress, so ``docker load`` can read them) under ``<diff id hex>.tar``. asyncsync does the
decompression itself while streaming each blob to a staging directory, and checks at
``put_manifest`` that every layer decompresses to the diff id the config lists. The archive is
assembled at :meth:`ArchiveDestination.commit` (layers, config, legacy metadata,
``manifest.json``, ``repositories``; see :mod:`.archive`) into a temporary file that is renamed
over the target: as in skopeo, an existing non-empty archive is never modified.

One image per archive, so ``multi_image`` is false and an index is refused; digests are not
preserved (the archive keeps no manifest).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import anyio

from asyncsync.digest import Digest
from asyncsync.errors import DigestMismatchError, LocalStorageError, UsageError
from asyncsync.manifest import (
    DOCKER_V2S2,
    INDEX_TYPES,
    OCI_MANIFEST,
    Descriptor,
    ImageManifest,
    parse_manifest,
)
from asyncsync.reference import ImageName
from asyncsync.transports.base import (
    BlobLocation,
    Capabilities,
    ImageReference,
    ReuseKind,
    ReuseResult,
    TransportContext,
)
from asyncsync.transports.docker_archive.archive import (
    LEGACY_CONFIG_FILE,
    LEGACY_LAYER_FILE,
    LEGACY_VERSION_FILE,
    MANIFEST_FILE,
    REPOSITORIES_FILE,
    archive_manifest,
    config_diff_ids,
    legacy_layers,
    repositories,
    tagged_names,
)
from asyncsync.transports.docker_archive.reference import DockerArchiveReference
from asyncsync.transports.layer_compression import Decompress
from asyncsync.transports.local_files import remove_tree_quietly, write_chunks_atomic, write_file_atomic_sync
from asyncsync.transports.tar_archive import TarEntry, write_tar

CAPABILITIES = Capabilities(
    manifest_types=(DOCKER_V2S2, OCI_MANIFEST), multi_image=False, preserves_digests=False
)

#: Receives the archive's entries at commit and writes them somewhere (a file, the daemon).
Finisher = Callable[[list[TarEntry]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Staged:
    path: str
    #: Digest and size of the stored (uncompressed) content.
    stored: Digest
    size: int


class ArchiveDestination:
    """Stages one image's blobs, then writes the archive through ``finish`` at commit."""

    def __init__(
        self,
        reference: ImageReference,
        tags: list[ImageName],
        staging: str,
        finish: Finisher,
        where: str,
    ) -> None:
        self._reference = reference
        self._tags = tags
        self._staging = staging
        self._finish = finish
        self._where = where
        self._blobs: dict[Digest, _Staged] = {}
        self._entries: list[TarEntry] | None = None

    @property
    def reference(self) -> ImageReference:
        return self._reference

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    async def try_reuse_blob(
        self, blob: Descriptor, candidates: Sequence[BlobLocation] = (), *, known_absent: bool = False
    ) -> ReuseResult | None:
        staged = self._blobs.get(blob.digest)
        return ReuseResult(ReuseKind.EXISTS, blob.size) if staged is not None else None

    async def put_blob(self, blob: Descriptor, chunks: AsyncIterator[bytes]) -> None:
        # Every blob goes through Decompress: layers come out as plain tars, and the config (or
        # an uncompressed layer) passes through unchanged.
        path = os.path.join(self._staging, blob.digest.hex)
        result = await write_chunks_atomic(path, chunks, Decompress(f"{self._where}: blob {blob.digest}"))
        self._blobs[blob.digest] = _Staged(path, result.digest, result.size)

    def _staged(self, digest: Digest) -> _Staged:
        staged = self._blobs.get(digest)
        if staged is None:
            raise LocalStorageError(f"{self._where}: blob {digest} was not written before the manifest")
        return staged

    async def put_manifest(self, raw: bytes, media_type: str, instance: Digest | None = None) -> Digest:
        if instance is not None or media_type in INDEX_TYPES:
            raise UsageError(
                f"{self._where}: a docker archive holds a single image, not a manifest list; "
                "copy one platform (without --all / --multi-arch all)"
            )
        manifest = parse_manifest(raw, media_type)
        if not isinstance(manifest, ImageManifest):
            raise UsageError(
                f"{self._where}: cannot store a {manifest.media_type} manifest in a docker archive"
            )
        config = self._staged(manifest.config.digest)
        layers = [self._staged(layer.digest) for layer in manifest.layers]
        config_bytes = await anyio.to_thread.run_sync(_read, config.path)
        diff_ids = config_diff_ids(config_bytes, self._where)
        stored = [layer.stored for layer in layers]
        if diff_ids != stored:
            raise DigestMismatchError(
                f"{self._where}: the layers decompress to {', '.join(map(str, stored))} but the config "
                f"lists diff ids {', '.join(map(str, diff_ids))}"
            )
        self._entries = self._build_entries(manifest.config.digest, config, layers, config_bytes)
        return Digest.of(raw)

    def _build_entries(
        self, config_digest: Digest, config: _Staged, layers: list[_Staged], config_bytes: bytes
    ) -> list[TarEntry]:
        entries: list[TarEntry] = []
        layer_names: list[str] = []
        written: set[str] = set()
        for layer in layers:
            name = f"{layer.stored.hex}.tar"
            layer_names.append(name)
            if name not in written:
                written.add(name)
                entries.append(TarEntry(name, source=layer.path))
        config_name = f"{config_digest.hex}.json"
        entries.append(TarEntry(config_name, source=config.path))
        legacy = legacy_layers([layer.stored for layer in layers], config_bytes)
        seen: set[str] = set()
        for entry in legacy:
            if entry.id in seen:
                continue
            seen.add(entry.id)
            target = f"../{entry.diff_id.hex}.tar"
            entries.append(TarEntry(f"{entry.id}/{LEGACY_LAYER_FILE}", kind="symlink", target=target, mode=0))
            entries.append(TarEntry(f"{entry.id}/{LEGACY_VERSION_FILE}", data=b"1.0"))
            entries.append(TarEntry(f"{entry.id}/{LEGACY_CONFIG_FILE}", data=entry.json))
        entries.append(TarEntry(MANIFEST_FILE, data=archive_manifest(config_name, self._tags, layer_names)))
        top = legacy[-1].id if legacy else ""
        entries.append(TarEntry(REPOSITORIES_FILE, data=repositories(self._tags if top else [], top)))
        return entries

    async def commit(self) -> None:
        if self._entries is None:
            raise LocalStorageError(f"{self._where}: nothing to commit: no manifest was written")
        await self._finish(self._entries)
        await self.close()  # the staged blobs are no longer needed

    async def close(self) -> None:
        await anyio.to_thread.run_sync(remove_tree_quietly, self._staging)


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _refuse_existing(path: str, where: str) -> None:
    if os.path.isdir(path):
        raise LocalStorageError(f"{where}: {path} is a directory, expected an archive file")
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return
    if size:
        raise LocalStorageError(
            f"{where}: docker-archive doesn't support modifying existing images ({path} exists)"
        )


def _prepare(reference: DockerArchiveReference, where: str) -> tuple[str, str]:
    """The archive's absolute path and a staging directory next to it (blocking)."""
    path = os.path.abspath(reference.path)
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise LocalStorageError(f"{where}: directory {parent} does not exist")
    _refuse_existing(path, where)
    return path, make_staging(parent, os.path.basename(path), where)


async def open_archive_destination(
    reference: DockerArchiveReference, ctx: TransportContext
) -> ArchiveDestination:
    """Open ``docker-archive:PATH[:NAME:TAG]`` for writing; an existing non-empty file is refused."""
    where = str(reference)
    if reference.index is not None:
        raise UsageError(f"{where}: a destination must not contain a source index @{reference.index}")
    tags = tagged_names(reference.name, ctx.options.additional_tags)
    path, staging = await anyio.to_thread.run_sync(_prepare, reference, where)

    def write(entries: list[TarEntry]) -> None:
        _refuse_existing(path, where)  # a concurrent writer may have created it meanwhile
        write_file_atomic_sync(path, lambda out: write_tar(entries, out))

    async def finish(entries: list[TarEntry]) -> None:
        await anyio.to_thread.run_sync(write, entries)

    return ArchiveDestination(reference, tags, staging, finish, where)


def make_staging(parent: str | None, label: str, where: str) -> str:
    """A private staging directory (in ``parent``, or the system temp dir when ``None``)."""
    try:
        return tempfile.mkdtemp(prefix=f".{label}.asyncsync-", dir=parent)
    except OSError as exc:
        raise LocalStorageError(
            f"{where}: cannot create a staging directory: {exc.strerror or exc}"
        ) from None
