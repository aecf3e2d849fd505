"""Writing an image as a ``docker save`` archive (``docker-archive:``; also ``docker-daemon:``).

skopeo 1.9 stores layers uncompressed (its docker-archive destination asks the copy engine to
decompress, so ``docker load`` can read them) under ``<diff id hex>.tar``. asyncsync streams
each layer straight into the archive as it arrives, decompressing and hashing it on the way
(:class:`~asyncsync.transports.docker_archive.writer.ArchiveWriter`: a temporary file next to the
target, renamed over it at :meth:`ArchiveDestination.commit`; layers that arrive while another
one is being written are spooled meanwhile). The config is kept in memory (4 MiB at most, as
containers/image) and written at commit with the legacy metadata, ``manifest.json`` and
``repositories`` (see :mod:`.archive`), after :meth:`ArchiveDestination.put_manifest` checked
that every layer decompressed to the diff id the config lists. As in skopeo, an existing
non-empty archive is never modified.

One image per archive, so ``multi_image`` is false and an index is refused; digests are not
preserved (the archive keeps no manifest).
"""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import anyio

from asyncsync.digest import Digest, DigestVerifier
from asyncsync.errors import DigestMismatchError, LocalStorageError, UsageError
from asyncsync.manifest import DOCKER_V2S2, OCI_MANIFEST, Descriptor
from asyncsync.reference import ImageName
from asyncsync.transports.base import BlobLocation, Capabilities, ReuseKind, ReuseResult, TransportContext
from asyncsync.transports.docker_archive.archive import (
    LEGACY_CONFIG_FILE,
    LEGACY_LAYER_FILE,
    LEGACY_VERSION_FILE,
    MANIFEST_FILE,
    MAX_CONFIG_SIZE,
    REPOSITORIES_FILE,
    archive_manifest,
    config_diff_ids,
    legacy_layers,
    repositories,
    single_image_manifest,
    tagged_names,
)
from asyncsync.transports.docker_archive.reference import DockerArchiveReference
from asyncsync.transports.docker_archive.writer import ArchiveWriter, StoredLayer
from asyncsync.transports.layer_compression import CONFIG_TYPES
from asyncsync.transports.local_image import LocalImage, OnLocalImage
from asyncsync.transports.tar_archive import TarEntry

CAPABILITIES = Capabilities(
    manifest_types=(DOCKER_V2S2, OCI_MANIFEST), multi_image=False, preserves_digests=False
)

#: A step run after the archive is published (``docker-daemon:`` loads it) or at close.
Hook = Callable[[], Awaitable[None]]


async def read_config(blob: Descriptor, chunks: AsyncIterator[bytes], where: str) -> bytes:
    """A config blob, verified and held in memory (refused over containers/image's 4 MiB)."""
    what = f"{where}: blob {blob.digest}"
    if blob.size > MAX_CONFIG_SIZE:
        raise LocalStorageError(f"{what}: the config is larger than {MAX_CONFIG_SIZE} bytes")
    verifier = DigestVerifier(blob.digest, blob.size, what)
    data = bytearray()
    async for chunk in chunks:
        verifier.update(chunk)
        data += chunk
        if len(data) > MAX_CONFIG_SIZE:
            raise LocalStorageError(f"{what}: the config is larger than {MAX_CONFIG_SIZE} bytes")
    verifier.finish()
    return bytes(data)


class OneImageArchive(OnLocalImage, ABC):
    """Base of the destinations that write one image as a ``docker save`` archive (this file's
    :class:`ArchiveDestination`, and containers-storage's stream into podman): their capabilities,
    and reuse of no blob but one this destination has already taken (:meth:`_holds`)."""

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    @abstractmethod
    def _holds(self, digest: Digest) -> bool:
        """Whether this destination has already taken the blob ``digest`` (each subclass keeps its record)."""

    async def try_reuse_blob(
        self, blob: Descriptor, candidates: Sequence[BlobLocation] = (), *, known_absent: bool = False
    ) -> ReuseResult | None:
        if self._holds(blob.digest):
            return ReuseResult(ReuseKind.EXISTS, blob.size)
        return None


class ArchiveDestination(OneImageArchive):
    """Streams one image's layers into an :class:`ArchiveWriter`; the rest is written at commit.

    ``before_rename`` runs (blocking, in a worker thread) just before the archive is renamed into
    place; ``after_commit`` runs once it is published; ``on_close`` runs when the destination is
    closed, after the writer's temporary files are gone.
    """

    def __init__(
        self,
        image: LocalImage,
        tags: list[ImageName],
        writer: ArchiveWriter,
        *,
        before_rename: Callable[[], None] | None = None,
        after_commit: Hook | None = None,
    ) -> None:
        super().__init__(image)
        self._tags = tags
        self._writer = writer
        self._before_rename = before_rename
        self._after_commit = after_commit
        self._layers: dict[Digest, StoredLayer] = {}
        self._configs: dict[Digest, bytes] = {}
        self._members: list[TarEntry] | None = None

    def _holds(self, digest: Digest) -> bool:
        return digest in self._layers or digest in self._configs

    async def put_blob(self, blob: Descriptor, chunks: AsyncIterator[bytes]) -> None:
        """An image config is kept in memory; anything else streams into the archive as a layer."""
        if blob.media_type in CONFIG_TYPES:
            self._configs[blob.digest] = await read_config(blob, chunks, self._where)
        else:
            self._layers[blob.digest] = await self._writer.put_layer(blob, chunks)

    def _stored(self, blob: Descriptor) -> StoredLayer:
        stored = self._layers.get(blob.digest)
        if stored is None:
            raise LocalStorageError(f"{self._where}: blob {blob.digest} was not written before the manifest")
        return stored

    async def put_manifest(self, raw: bytes, media_type: str, instance: Digest | None = None) -> Digest:
        manifest = single_image_manifest(raw, media_type, instance, self._where, "a docker archive")
        config = self._configs.get(manifest.config.digest)
        if config is None:
            raise LocalStorageError(
                f"{self._where}: config {manifest.config.digest} was not written before the manifest"
            )
        layers = [self._stored(layer) for layer in manifest.layers]
        diff_ids = config_diff_ids(config, self._where)
        stored = [layer.diff_id for layer in layers]
        if diff_ids != stored:
            raise DigestMismatchError(
                f"{self._where}: the layers decompress to {', '.join(map(str, stored))} but the config "
                f"lists diff ids {', '.join(map(str, diff_ids))}"
            )
        self._members = self._metadata(manifest.config.digest, config, layers)
        return Digest.of(raw)

    def _metadata(self, config_digest: Digest, config: bytes, layers: list[StoredLayer]) -> list[TarEntry]:
        """Config, legacy layer directories, manifest.json and repositories, in skopeo's order."""
        config_name = f"{config_digest.hex}.json"
        members = [TarEntry(config_name, data=config)]
        legacy = legacy_layers([layer.diff_id for layer in layers], config)
        seen: set[str] = set()
        for entry in legacy:
            if entry.id in seen:
                continue
            seen.add(entry.id)
            target = f"../{entry.diff_id.hex}.tar"
            members.append(TarEntry(f"{entry.id}/{LEGACY_LAYER_FILE}", kind="symlink", target=target, mode=0))
            members.append(TarEntry(f"{entry.id}/{LEGACY_VERSION_FILE}", data=b"1.0"))
            members.append(TarEntry(f"{entry.id}/{LEGACY_CONFIG_FILE}", data=entry.json))
        layer_names = [layer.member for layer in layers]
        members.append(TarEntry(MANIFEST_FILE, data=archive_manifest(config_name, self._tags, layer_names)))
        top = legacy[-1].id if legacy else ""
        members.append(TarEntry(REPOSITORIES_FILE, data=repositories(self._tags if top else [], top)))
        return members

    async def commit(self) -> None:
        if self._members is None:
            raise LocalStorageError(f"{self._where}: nothing to commit: no manifest was written")
        await self._writer.finish(self._members, self._before_rename)
        if self._after_commit is not None:
            await self._after_commit()
        await self.close()

    async def close(self) -> None:
        self._writer.abandon()
        await self._image.release()


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


def _target(reference: DockerArchiveReference, where: str) -> str:
    """The archive's absolute path, checked: its directory exists and it is absent or empty (blocking)."""
    path = os.path.abspath(reference.path)
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise LocalStorageError(f"{where}: directory {parent} does not exist")
    _refuse_existing(path, where)
    return path


async def open_archive_destination(
    reference: DockerArchiveReference, ctx: TransportContext
) -> ArchiveDestination:
    """Open ``docker-archive:PATH[:NAME:TAG]`` for writing; an existing non-empty file is refused."""
    where = str(reference)
    if reference.index is not None:
        raise UsageError(f"{where}: a destination must not contain a source index @{reference.index}")
    tags = tagged_names(reference.name, ctx.options.additional_tags)
    path = await anyio.to_thread.run_sync(_target, reference, where)
    writer = await ArchiveWriter.create(path, where)
    # A concurrent writer may have created the file meanwhile: checked again before the rename.
    return ArchiveDestination(
        LocalImage(reference), tags, writer, before_rename=lambda: _refuse_existing(path, where)
    )


def make_staging(parent: str | None, label: str, where: str) -> str:
    """A private staging directory (in ``parent``, or the system temp dir when ``None``)."""
    try:
        return tempfile.mkdtemp(prefix=f".{label}.asyncsync-", dir=parent)
    except OSError as exc:
        raise LocalStorageError(
            f"{where}: cannot create a staging directory: {exc.strerror or exc}"
        ) from None
