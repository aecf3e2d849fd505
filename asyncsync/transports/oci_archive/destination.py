"""Writing an image to an OCI layout tar (``oci-archive:`` as a destination).

The layout is built in a temporary directory next to the archive; :meth:`commit` tars it into a
temporary file in the same directory, fsyncs it and renames it over ``PATH``, so the archive is
replaced atomically or not at all. As in skopeo, the new archive holds only the written image.
``--dest-shared-blob-dir`` does not apply to archives.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Sequence

import anyio

from asyncsync.digest import Digest
from asyncsync.errors import LocalStorageError
from asyncsync.manifest import Descriptor
from asyncsync.transports.base import (
    BlobLocation,
    Capabilities,
    ImageReference,
    ReuseResult,
    TransportContext,
)
from asyncsync.transports.local_files import remove_tree_quietly, write_file_atomic_sync
from asyncsync.transports.oci_archive.reference import OCIArchiveReference
from asyncsync.transports.oci_layout.attachments import LayoutAttachments
from asyncsync.transports.oci_layout.destination import LayoutDestination, open_layout_at
from asyncsync.transports.tar_archive import TarEntry, write_tar


def layout_entries(root: str) -> list[TarEntry]:
    """The tar entries of a layout directory: directories before their content, names sorted."""
    entries: list[TarEntry] = []
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        relative = os.path.relpath(directory, root)
        prefix = "" if relative == "." else relative.replace(os.sep, "/") + "/"
        if prefix:
            entries.append(TarEntry(prefix, kind="dir", mode=0o755))
        for name in sorted(files):
            entries.append(TarEntry(prefix + name, source=os.path.join(directory, name), mode=0o644))
    return entries


class ArchiveDestination:
    """An :class:`LayoutDestination` on a staging directory, tarred into ``archive`` at commit."""

    def __init__(
        self, reference: ImageReference, layout: LayoutDestination, staging: str, archive: str
    ) -> None:
        self._reference = reference
        self._layout = layout
        self._staging = staging
        self._archive = archive

    @property
    def reference(self) -> ImageReference:
        return self._reference

    @property
    def capabilities(self) -> Capabilities:
        return self._layout.capabilities

    async def try_reuse_blob(
        self, blob: Descriptor, candidates: Sequence[BlobLocation] = (), *, known_absent: bool = False
    ) -> ReuseResult | None:
        return await self._layout.try_reuse_blob(blob, candidates, known_absent=known_absent)

    async def put_blob(self, blob: Descriptor, chunks: AsyncIterator[bytes]) -> None:
        await self._layout.put_blob(blob, chunks)

    async def put_manifest(self, raw: bytes, media_type: str, instance: Digest | None = None) -> Digest:
        return await self._layout.put_manifest(raw, media_type, instance)

    def attachment_writer(self) -> LayoutAttachments:
        """The staging layout's: attachments are tarred with the image."""
        return self._layout.attachment_writer()

    async def commit(self) -> None:
        await self._layout.commit()
        await anyio.to_thread.run_sync(self._write_archive)
        await self.close()  # the staging layout is no longer needed

    async def close(self) -> None:
        await anyio.to_thread.run_sync(remove_tree_quietly, self._staging)

    def _write_archive(self) -> None:
        entries = layout_entries(self._staging)
        write_file_atomic_sync(self._archive, lambda out: write_tar(entries, out))


def _prepare(reference: OCIArchiveReference, where: str) -> tuple[str, str]:
    """The archive's absolute path and a fresh staging directory next to it (blocking)."""
    archive = os.path.abspath(reference.path)
    parent = os.path.dirname(archive)
    if os.path.isdir(archive):
        raise LocalStorageError(f"{where}: {archive} is a directory, expected an archive file")
    if not os.path.isdir(parent):
        raise LocalStorageError(f"{where}: directory {parent} does not exist")
    try:
        staging = tempfile.mkdtemp(prefix=f".{os.path.basename(archive)}.asyncsync-", dir=parent)
    except OSError as exc:
        raise LocalStorageError(
            f"{where}: cannot create a staging directory in {parent}: {exc.strerror}"
        ) from None
    return archive, staging


async def open_archive_destination(
    reference: OCIArchiveReference, ctx: TransportContext
) -> ArchiveDestination:
    """Open ``oci-archive:PATH[:NAME]`` for writing (the archive is replaced at commit)."""
    where = str(reference)
    archive, staging = await anyio.to_thread.run_sync(_prepare, reference, where)
    try:
        layout = await open_layout_at(
            reference,
            staging,
            reference.name,
            None,
            where,
            accept_uncompressed=ctx.options.oci_accept_uncompressed_layers,
        )
    except BaseException:
        remove_tree_quietly(staging)
        raise
    return ArchiveDestination(reference, layout, staging, archive)
