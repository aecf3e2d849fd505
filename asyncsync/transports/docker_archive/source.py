"""Reading an image from a ``docker save`` archive (``docker-archive:`` and ``docker-daemon:`` sources).

Like skopeo, the source generates a Docker v2s2 manifest from ``manifest.json`` and the config,
so the manifest digest is not the one the image had in a registry. Layers are served as stored,
never transformed:

* an uncompressed layer (what ``docker save`` and skopeo write) gets its diff id as digest and
  the ``application/vnd.docker.image.rootfs.diff.tar`` media type. (skopeo labels it
  ``...tar.gzip`` and relies on its copy engine to compress; we keep the label truthful, so
  the generated manifest digest differs from ``skopeo inspect``'s; config digest and layer
  digests are the same.)
* a gzip-compressed layer is served as is, with the digest of the compressed file (hashed once
  when the manifest is first generated) and the ``...tar.gzip`` media type.

The archive is indexed in place (:class:`~asyncsync.transports.tar_archive.TarIndex`), never
extracted; blobs stream from their byte ranges.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio

from asyncsync.digest import Digest
from asyncsync.errors import LocalStorageError
from asyncsync.manifest import DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_V2S2, Descriptor
from asyncsync.transports.base import BlobLocation, Capabilities, ImageReference, TransportContext
from asyncsync.transports.docker_archive.archive import (
    MANIFEST_FILE,
    MAX_CONFIG_SIZE,
    MAX_TAR_MANIFEST_SIZE,
    ManifestItem,
    choose_item,
    config_diff_ids,
    go_json,
    parse_archive_manifest,
)
from asyncsync.transports.docker_archive.reference import DockerArchiveReference
from asyncsync.transports.layer_compression import DOCKER_LAYER_TAR, MAGIC_LENGTH, detect
from asyncsync.transports.tar_archive import TarIndex

_CAPABILITIES = Capabilities(ranged_reads=True)


@dataclass(frozen=True, slots=True)
class _Layer:
    member: str
    digest: Digest
    size: int
    media_type: str


def _hash_member(index: TarIndex, member: str) -> Digest:
    resolved = index.resolve(member)
    digest = hashlib.sha256()
    with open(index.path, "rb") as handle:
        handle.seek(resolved.offset)
        remaining = resolved.size
        while remaining:
            data = handle.read(min(remaining, 1024 * 1024))
            if not data:
                raise LocalStorageError(f"{index.what}: member {member!r} is truncated")
            digest.update(data)
            remaining -= len(data)
    return Digest("sha256", digest.hexdigest())


class ArchiveImageSource:
    """One image of an indexed ``docker save`` archive."""

    def __init__(
        self,
        reference: ImageReference,
        index: TarIndex,
        item: ManifestItem,
        tags: list[str],
        where: str,
        owns_index: bool = True,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._reference = reference
        self.index = index
        self.item = item
        self._tags = tags
        self._where = where
        self._owns_index = owns_index
        self._on_close = on_close
        self._lock = anyio.Lock()
        self._manifest: bytes | None = None
        self._config: bytes = b""
        self._config_digest: Digest | None = None
        self._layers: dict[Digest, _Layer] = {}

    @property
    def reference(self) -> ImageReference:
        return self._reference

    @property
    def capabilities(self) -> Capabilities:
        return _CAPABILITIES

    async def _layer(self, member: str, diff_id: Digest) -> _Layer:
        size = self.index.resolve(member).size
        kind = detect(await self.index.read_head(member, MAGIC_LENGTH))
        if kind is None:
            return _Layer(member, diff_id, size, DOCKER_LAYER_TAR)
        if kind == "gzip":
            digest = await anyio.to_thread.run_sync(_hash_member, self.index, member)
            return _Layer(member, digest, size, DOCKER_LAYER_GZIP)
        raise LocalStorageError(
            f"{self._where}: layer {member!r} is {kind}-compressed; only gzip is supported"
        )

    async def _prepare(self) -> bytes:
        async with self._lock:
            if self._manifest is not None:
                return self._manifest
            config = await self.index.read_member(self.item.config, MAX_CONFIG_SIZE)
            diff_ids = config_diff_ids(config, self._where)
            if len(diff_ids) != len(self.item.layers):
                raise LocalStorageError(
                    f"{self._where}: inconsistent layer count: {len(self.item.layers)} in manifest.json, "
                    f"{len(diff_ids)} in the config"
                )
            layers = [await self._layer(m, d) for m, d in zip(self.item.layers, diff_ids, strict=True)]
            self._config = config
            self._config_digest = Digest.of(config)
            self._layers = {layer.digest: layer for layer in layers}
            # Field order and compact form of containers/image's generated manifest.
            document = {
                "schemaVersion": 2,
                "mediaType": DOCKER_V2S2,
                "config": {
                    "mediaType": DOCKER_CONFIG,
                    "size": len(config),
                    "digest": str(self._config_digest),
                },
                "layers": [
                    {"mediaType": layer.media_type, "size": layer.size, "digest": str(layer.digest)}
                    for layer in layers
                ],
            }
            self._manifest = go_json(document)
            return self._manifest

    async def get_manifest(self, instance: Digest | None = None) -> tuple[bytes, str]:
        if instance is not None:
            raise LocalStorageError(f"{self._where}: a docker archive holds no manifest lists")
        return await self._prepare(), DOCKER_V2S2

    @asynccontextmanager
    async def open_blob(self, blob: Descriptor, offset: int = 0) -> AsyncIterator[AsyncIterator[bytes]]:
        await self._prepare()
        if blob.digest == self._config_digest:

            async def config() -> AsyncIterator[bytes]:
                if offset < len(self._config):
                    yield self._config[offset:]

            yield config()
            return
        layer = self._layers.get(blob.digest)
        if layer is None:
            raise LocalStorageError(f"{self._where}: no blob {blob.digest} in this image")
        async with self.index.open_member(layer.member, offset) as chunks:
            yield chunks

    def blob_locations(self) -> Sequence[BlobLocation]:
        return ()

    async def list_tags(self) -> list[str]:
        """Every RepoTags entry in the archive, as ``skopeo list-tags docker-archive:`` prints them."""
        return list(self._tags)

    async def close(self) -> None:
        if self._owns_index:
            self._owns_index = False
            await self.index.close()
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            await on_close()


async def read_items(index: TarIndex, where: str) -> list[ManifestItem]:
    """The ``manifest.json`` items of an indexed archive."""
    return parse_archive_manifest(await index.read_member(MANIFEST_FILE, MAX_TAR_MANIFEST_SIZE), where)


def _archive_path(reference: DockerArchiveReference, where: str) -> str:
    path = os.path.abspath(reference.path)
    if os.path.isdir(path):
        raise LocalStorageError(f"{where}: {path} is a directory, expected a docker archive file")
    return path


async def open_archive_source(reference: DockerArchiveReference, ctx: TransportContext) -> ArchiveImageSource:
    """Open the image ``reference`` selects in its archive (indexed in place, never extracted)."""
    where = str(reference)
    path = await anyio.to_thread.run_sync(_archive_path, reference, where)
    index = await TarIndex.open(path, where)
    try:
        items = await read_items(index, where)
        item = choose_item(items, reference.name, reference.index, where)
        tags = [tag for entry in items for tag in entry.repo_tags]
        return ArchiveImageSource(reference, index, item, tags, where)
    except BaseException:
        await index.close()
        raise
