"""Reading an image from a ``docker save`` archive (``docker-archive:`` and ``docker-daemon:`` sources).

Like skopeo, the source generates a Docker v2s2 manifest from ``manifest.json`` and the config,
so the manifest digest is not the one the image had in a registry. The generated manifest has
containers/image's shape (``docker/internal/tarfile/src.go``, skopeo 1.9): compact JSON in Go's
field order, the config's digest and size, and the layers in the config's ``rootfs.diff_ids``
order (a repeated diff id is listed again), each with its diff id as digest and its
uncompressed size, so ``inspect``'s layer list equals skopeo's.

One deliberate difference: the layer media type. containers/image writes
``...rootfs.diff.tar.gzip`` whatever the bytes are, and its copy engine then compresses the
layers when a registry is the destination, which makes the label true there. asyncsync labels
the bytes it serves: ``application/vnd.docker.image.rootfs.diff.tar`` (uncompressed), and its copy
engine compresses such layers for destinations that want them compressed (registries, ``oci:``;
:mod:`asyncsync.copy.recompress`), relabelling them ``...tar.gzip`` as skopeo's push does.
``inspect --raw`` of the archive therefore differs from skopeo's in that string only.

Layers are served uncompressed, always: a layer stored uncompressed (what ``docker save`` and
skopeo write) streams from its byte range in the archive; a gzip, bzip2 or xz-compressed one is
decompressed on the fly, so what is served matches the diff id the copy engine verifies. The
uncompressed size of a compressed layer is found by decompressing it once when the manifest is
first generated (as containers/image does). A diff id listed with several layer files is read
from the first; one file listed for two different diff ids is refused.

The archive is indexed in place (:class:`~asyncsync.transports.tar_archive.TarIndex`), never
extracted; blobs stream from their byte ranges.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass

import anyio

from asyncsync.digest import Digest
from asyncsync.errors import LocalStorageError
from asyncsync.manifest import DOCKER_CONFIG, DOCKER_V2S2, Descriptor
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
from asyncsync.transports.layer_compression import DOCKER_LAYER_TAR, MAGIC_LENGTH, Decompress, detect
from asyncsync.transports.local_files import remove_tree_quietly
from asyncsync.transports.local_image import LocalImage, OnLocalImage
from asyncsync.transports.tar_archive import TarIndex

_CAPABILITIES = Capabilities(ranged_reads=True)
_READ = 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Layer:
    member: str
    #: Uncompressed size: what is served.
    size: int
    #: How the member is stored (``None``: uncompressed).
    compression: str | None


def _decompressed_size(index: TarIndex, member: str, what: str) -> int:
    """Decompress a member to count its bytes (blocking; memory bounded by the decompressor)."""
    resolved = index.resolve(member)
    transform = Decompress(what)
    size = 0
    with open(index.path, "rb") as handle:
        handle.seek(resolved.offset)
        remaining = resolved.size
        while remaining:
            data = handle.read(min(remaining, _READ))
            if not data:
                raise LocalStorageError(f"{index.what}: member {member!r} is truncated")
            remaining -= len(data)
            size += sum(len(piece) for piece in transform(data))
    size += sum(len(piece) for piece in transform(None))
    return size


async def _decompressing(chunks: AsyncIterator[bytes], offset: int, what: str) -> AsyncGenerator[bytes, None]:
    """``chunks`` decompressed in a worker thread, one bounded piece per hop, from ``offset``."""
    transform = Decompress(what)
    skip = offset
    ended = False
    while not ended:
        chunk = await anext(chunks, None)
        ended = chunk is None
        pieces = iter(transform(chunk))
        while (piece := await anyio.to_thread.run_sync(next, pieces, None)) is not None:
            if skip >= len(piece):
                skip -= len(piece)
                continue
            yield piece[skip:] if skip else piece
            skip = 0


class ArchiveImageSource(OnLocalImage):
    """One image of an indexed ``docker save`` archive."""

    def __init__(
        self, image: LocalImage, index: TarIndex, item: ManifestItem, tags: list[str], owns_index: bool = True
    ) -> None:
        super().__init__(image)
        self.index = index
        self.item = item
        self._tags = tags
        self._owns_index = owns_index
        self._lock = anyio.Lock()
        self._manifest: bytes | None = None
        self._config: bytes = b""
        self._config_digest: Digest | None = None
        self._layers: dict[Digest, _Layer] = {}

    @property
    def capabilities(self) -> Capabilities:
        return _CAPABILITIES

    async def _layer(self, member: str) -> _Layer:
        size = self.index.resolve(member).size
        kind = detect(await self.index.read_head(member, MAGIC_LENGTH))
        if kind is None:
            return _Layer(member, size, None)
        what = f"{self._where}: layer {member!r}"
        plain = await anyio.to_thread.run_sync(_decompressed_size, self.index, member, what)
        return _Layer(member, plain, kind)

    async def _known_layers(self, diff_ids: list[Digest]) -> dict[Digest, _Layer]:
        """diff id -> layer file, the first file listed for a diff id (as containers/image)."""
        known: dict[Digest, _Layer] = {}
        files: set[str] = set()
        for member, diff_id in zip(self.item.layers, diff_ids, strict=True):
            if diff_id in known:
                continue  # the same layer twice in one image: either file has the same content
            resolved = self.index.resolve(member).name
            if resolved in files:
                raise LocalStorageError(
                    f"{self._where}: layer file {member!r} is used for two different diff ids"
                )
            files.add(resolved)
            known[diff_id] = await self._layer(member)
        return known

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
            known = await self._known_layers(diff_ids)
            self._config = config
            self._config_digest = Digest.of(config)
            self._layers = known
            # containers/image's generated manifest (field order, compact form, diff ids as digests,
            # uncompressed sizes) with the media type of the bytes served: uncompressed.
            document = {
                "schemaVersion": 2,
                "mediaType": DOCKER_V2S2,
                "config": {
                    "mediaType": DOCKER_CONFIG,
                    "size": len(config),
                    "digest": str(self._config_digest),
                },
                "layers": [
                    {"mediaType": DOCKER_LAYER_TAR, "size": known[diff_id].size, "digest": str(diff_id)}
                    for diff_id in diff_ids
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
        if layer.compression is None:
            async with self.index.open_member(layer.member, offset) as chunks:
                yield chunks
            return
        what = f"{self._where}: layer {layer.member!r}"
        async with (
            self.index.open_member(layer.member) as chunks,
            aclosing(_decompressing(chunks, offset, what)) as plain,
        ):
            yield plain

    def blob_locations(self) -> Sequence[BlobLocation]:
        return ()

    async def list_tags(self) -> list[str]:
        """Every RepoTags entry in the archive, as ``skopeo list-tags docker-archive:`` prints them."""
        return list(self._tags)

    async def close(self) -> None:
        if self._owns_index:
            self._owns_index = False
            await self.index.close()
        await self._image.release()


async def read_items(index: TarIndex, where: str) -> list[ManifestItem]:
    """The ``manifest.json`` items of an indexed archive."""
    return parse_archive_manifest(await index.read_member(MANIFEST_FILE, MAX_TAR_MANIFEST_SIZE), where)


async def open_exported_archive(
    reference: ImageReference,
    where: str,
    prefix: str,
    export: Callable[[str], Awaitable[object]],
    choose: Callable[[list[ManifestItem]], tuple[ManifestItem, list[str]]],
) -> ArchiveImageSource:
    """The image a local engine exports (``docker save``) into a private scratch directory, opened
    as an archive source: ``export(path)`` writes the archive, ``choose(items)`` picks the image and
    the tags to list. The scratch directory is removed when the source closes, or at once on failure."""
    try:
        scratch = tempfile.mkdtemp(prefix=prefix)
    except OSError as exc:
        raise LocalStorageError(f"{where}: cannot create a temporary directory: {exc.strerror}") from None

    async def cleanup() -> None:
        await anyio.to_thread.run_sync(remove_tree_quietly, scratch)

    try:
        path = os.path.join(scratch, "image.tar")
        await export(path)
        index = await TarIndex.open(path, where)
        try:
            item, tags = choose(await read_items(index, where))
        except BaseException:
            await index.close()
            raise
    except BaseException:
        await cleanup()
        raise
    return ArchiveImageSource(LocalImage(reference, cleanup, where=where), index, item, tags)


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
        return ArchiveImageSource(LocalImage(reference), index, item, tags)
    except BaseException:
        await index.close()
        raise
