"""Writing an image into an OCI layout (``oci:`` as a destination; also the writer of ``oci-archive:``).

Blobs and manifests go to ``blobs/<alg>/<hex>`` (or the shared blob directory) as soon as they
arrive, each atomically, so a blob file is always complete. ``index.json`` changes only in
:meth:`LayoutDestination.commit`, under the layout lock, after re-reading the current index (so
concurrent copies into one layout all land): a copy that fails before commit leaves at most
unreferenced blobs, never an index entry pointing at an incomplete image.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import orjson

from asyncsync.digest import Digest
from asyncsync.errors import DigestMismatchError, LocalStorageError
from asyncsync.manifest import MAX_MANIFEST_SIZE, OCI_INDEX, OCI_MANIFEST, Descriptor, guess_media_type
from asyncsync.transports.base import (
    BlobLocation,
    Capabilities,
    ImageReference,
    ReuseKind,
    ReuseResult,
    TransportContext,
)
from asyncsync.transports.local_files import (
    absolute_path,
    ensure_directory,
    read_existing,
    safe_path,
    write_bytes_atomic,
    write_chunks_atomic,
)
from asyncsync.transports.oci_layout.attachments import LayoutAttachments
from asyncsync.transports.oci_layout.layout import (
    INDEX_FILE,
    LAYOUT_FILE,
    MAX_INDEX_SIZE,
    REF_NAME,
    IndexDocument,
    check_layout_file,
    layout_lock,
    parse_index,
    write_layout_files,
)
from asyncsync.transports.oci_layout.reference import OCIReference

#: As skopeo: an OCI layout holds OCI manifests; the copy engine converts Docker ones. It also
#: compresses uncompressed layers unless ``--dest-oci-accept-uncompressed-layers`` is given.
_CAPABILITIES = Capabilities(manifest_types=(OCI_MANIFEST, OCI_INDEX), compresses_layers=True)
_CAPABILITIES_UNCOMPRESSED = Capabilities(manifest_types=(OCI_MANIFEST, OCI_INDEX))


class LayoutDestination:
    """Writes one image into the layout at ``root`` and names it ``name`` at commit."""

    def __init__(
        self,
        reference: ImageReference,
        root: str,
        name: str | None,
        blob_root: str,
        shared: bool,
        where: str,
        *,
        accept_uncompressed: bool = False,
    ) -> None:
        self._reference = reference
        self._capabilities = _CAPABILITIES_UNCOMPRESSED if accept_uncompressed else _CAPABILITIES
        self.root = root
        self.name = name
        self._blob_root = blob_root
        self._shared = shared
        self._where = where
        self._pending: dict[str, Any] | None = None
        #: Tags of attachments (fallback tag, cosign tags), added to index.json with the image.
        self._tags: list[dict[str, Any]] = []
        self._committed = False

    @property
    def reference(self) -> ImageReference:
        return self._reference

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def _blob_path(self, digest: Digest) -> str:
        # Digest values are validated on construction, so these components are safe names.
        if self._shared:
            return os.path.join(self._blob_root, digest.algorithm, digest.hex)
        return os.path.join(self._blob_root, "blobs", digest.algorithm, digest.hex)

    def _blob_directory(self, digest: Digest) -> str:
        path = os.path.dirname(self._blob_path(digest))
        if not self._shared:
            # A ``blobs`` symlink leading out of the layout is refused rather than written through.
            safe_path(self.root, f"blobs/{digest.algorithm}", self._where)
        ensure_directory(path, self._where)
        return path

    async def try_reuse_blob(
        self, blob: Descriptor, candidates: Sequence[BlobLocation] = (), *, known_absent: bool = False
    ) -> ReuseResult | None:
        """A blob file of the right size already in the layout is reused (as containers/image does)."""
        try:
            stat = await anyio.to_thread.run_sync(os.stat, self._blob_path(blob.digest))
        except OSError:
            return None
        if blob.size >= 0 and stat.st_size != blob.size:
            return None
        return ReuseResult(ReuseKind.EXISTS, stat.st_size)

    async def put_blob(self, blob: Descriptor, chunks: AsyncIterator[bytes]) -> None:
        await anyio.to_thread.run_sync(self._blob_directory, blob.digest)
        await write_chunks_atomic(self._blob_path(blob.digest), chunks)

    async def put_manifest(self, raw: bytes, media_type: str, instance: Digest | None = None) -> Digest:
        digest = Digest.of(raw)
        if instance is not None and instance != digest:
            raise DigestMismatchError(f"{self._where}: manifest for {instance} has digest {digest}")
        await anyio.to_thread.run_sync(self._blob_directory, digest)
        await write_bytes_atomic(self._blob_path(digest), raw)
        if instance is None:
            entry: dict[str, Any] = {"mediaType": media_type, "digest": str(digest), "size": len(raw)}
            if self.name:
                entry["annotations"] = {REF_NAME: self.name}
            self._pending = entry
        return digest

    async def commit(self) -> None:
        """Add the image to ``index.json`` (re-read under the lock) and write it atomically."""
        if self._pending is None:
            raise LocalStorageError(f"{self._where}: nothing to commit: no manifest was written")
        async with layout_lock(self.root):
            index = await anyio.to_thread.run_sync(self._current_index)
            index.add(self._pending)
            for entry in self._tags:
                index.add(entry)
            await write_layout_files(self.root, index)
        self._committed = True

    def _current_index(self) -> IndexDocument:
        raw = read_existing(os.path.join(self.root, INDEX_FILE), MAX_INDEX_SIZE)
        return parse_index(raw, self._where) if raw is not None else IndexDocument.empty()

    def attachment_writer(self) -> LayoutAttachments:
        """Attachments go into this layout: manifests as blobs, tags as index entries at commit."""

        async def index() -> IndexDocument:
            current = await anyio.to_thread.run_sync(self._current_index)
            for entry in self._tags:
                current.add(dict(entry))
            return current

        async def read(digest: Digest) -> tuple[bytes, str]:
            raw = await anyio.to_thread.run_sync(read_existing, self._blob_path(digest), MAX_MANIFEST_SIZE)
            if raw is None or Digest.of(raw, digest.algorithm) != digest:
                raise LocalStorageError(f"{self._where}: no manifest {digest}")
            try:
                return raw, guess_media_type(orjson.loads(raw))
            except orjson.JSONDecodeError:
                raise LocalStorageError(f"{self._where}: manifest {digest} is not JSON") from None

        return LayoutAttachments(f"oci:{self.root}", index, read, self._tags.append, self.put_manifest)

    async def close(self) -> None:
        """Nothing to release: uncommitted blobs stay as unreferenced files, harmless to readers."""


async def open_layout_destination(reference: OCIReference, ctx: TransportContext) -> LayoutDestination:
    """Open ``oci:PATH[:NAME]`` for writing; create the directory; refuse a corrupt existing layout."""
    where = str(reference)
    root = absolute_path(reference.path)
    return await open_layout_at(
        reference,
        root,
        reference.name,
        ctx.options.shared_blob_dir,
        where,
        accept_uncompressed=ctx.options.oci_accept_uncompressed_layers,
    )


async def open_layout_at(
    reference: ImageReference,
    root: str,
    name: str | None,
    shared_blob_dir: str | None,
    where: str,
    *,
    accept_uncompressed: bool = False,
) -> LayoutDestination:
    """A destination writing into the layout directory ``root`` (shared by ``oci-archive:``)."""
    await anyio.to_thread.run_sync(ensure_directory, root, where)
    layout_raw = await anyio.to_thread.run_sync(
        read_existing, os.path.join(root, LAYOUT_FILE), MAX_INDEX_SIZE
    )
    if layout_raw is not None:
        check_layout_file(layout_raw, where)
    index_raw = await anyio.to_thread.run_sync(read_existing, os.path.join(root, INDEX_FILE), MAX_INDEX_SIZE)
    if index_raw is not None:
        parse_index(index_raw, where)  # refuse to add to a corrupt layout before copying anything
    if shared_blob_dir:
        blob_root = absolute_path(shared_blob_dir)
        await anyio.to_thread.run_sync(ensure_directory, blob_root, where)
        return LayoutDestination(
            reference, root, name, blob_root, True, where, accept_uncompressed=accept_uncompressed
        )
    return LayoutDestination(
        reference, root, name, root, False, where, accept_uncompressed=accept_uncompressed
    )
