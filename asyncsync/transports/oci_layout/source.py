"""Reading an image from an OCI layout (``oci:`` as a source; also the reader of ``oci-archive:``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import orjson

from asyncsync.digest import Digest
from asyncsync.manifest import Descriptor, guess_media_type
from asyncsync.transports.base import BlobLocation, Capabilities, TransportContext
from asyncsync.transports.local_files import DirectoryTree, FileTree, find_directory, read_manifest_file
from asyncsync.transports.local_image import LocalImage, OnLocalImage
from asyncsync.transports.oci_layout.attachments import LayoutAttachments
from asyncsync.transports.oci_layout.layout import IndexDocument, blob_name, read_index
from asyncsync.transports.oci_layout.reference import OCIReference

_CAPABILITIES = Capabilities(ranged_reads=True)


def _declared_media_type(raw: bytes, fallback: str) -> str:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return fallback
    if not isinstance(data, dict):
        return fallback
    return fallback if fallback else guess_media_type(data)


class LayoutSource(OnLocalImage):
    """One image of a layout: ``index.json`` is read at open, the image chosen at first use.

    Choosing lazily lets ``list_tags`` work on a layout with several images and no name given.
    Manifests are verified against the digest that names them (the index entry, or the child
    digest); blobs are streamed unverified, as the interface requires (the engine verifies).
    """

    def __init__(
        self,
        image: LocalImage,
        name: str | None,
        tree: FileTree,
        blobs: FileTree,
        shared: bool,
        index: IndexDocument,
    ) -> None:
        super().__init__(image)
        self._name = name
        self._tree = tree
        self._blobs = blobs
        self._shared = shared
        self.index = index
        self._descriptor: Descriptor | None = None

    @property
    def capabilities(self) -> Capabilities:
        return _CAPABILITIES

    def descriptor(self) -> Descriptor:
        """The ``index.json`` entry of the image this source reads."""
        if self._descriptor is None:
            self._descriptor = self.index.find(self._name, self._where)[1]
        return self._descriptor

    async def get_manifest(self, instance: Digest | None = None) -> tuple[bytes, str]:
        if instance is None:
            entry = self.descriptor()
            raw = await read_manifest_file(
                self._blobs, blob_name(entry.digest, self._shared), entry.digest, entry.size
            )
            return raw, _declared_media_type(raw, entry.media_type)
        raw = await read_manifest_file(self._blobs, blob_name(instance, self._shared), instance)
        return raw, _declared_media_type(raw, "")

    @asynccontextmanager
    async def open_blob(self, blob: Descriptor, offset: int = 0) -> AsyncIterator[AsyncIterator[bytes]]:
        async with self._blobs.open_chunks(blob_name(blob.digest, self._shared), offset) as chunks:
            yield chunks

    def blob_locations(self) -> Sequence[BlobLocation]:
        return ()

    async def list_tags(self) -> list[str]:
        """The ref names in ``index.json`` (skopeo 1.9 lists tags only for registries and archives)."""
        return self.index.ref_names()

    def attachment_reader(self) -> LayoutAttachments:
        """Ref names, manifests by name or digest (attachments; a layout has no referrers API)."""

        async def index() -> IndexDocument:
            return self.index

        return LayoutAttachments(self._where, index, self.get_manifest)

    async def close(self) -> None:
        await self._image.release()


async def open_layout_source(reference: OCIReference, ctx: TransportContext) -> LayoutSource:
    """Open ``oci:PATH[:NAME]``; blobs come from ``--src-shared-blob-dir`` when it is set."""
    where = str(reference)
    root = await find_directory(reference.path, f"{where}: not an OCI layout")
    tree = DirectoryTree(root, where)
    shared_dir = ctx.options.shared_blob_dir
    blobs: FileTree = tree
    if shared_dir:
        blobs = DirectoryTree(await find_directory(shared_dir, f"{where}: shared blob dir"), where)
    index = await read_index(tree, where)
    return LayoutSource(LocalImage(reference), reference.name, tree, blobs, bool(shared_dir), index)
