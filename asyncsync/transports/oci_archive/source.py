"""Reading an image from an OCI layout tar (``oci-archive:`` as a source).

The archive is never extracted: :class:`~asyncsync.transports.tar_archive.TarIndex` indexes its
members (refusing unsafe names and links) and blobs are streamed from their byte ranges, so the
layout reader runs unchanged on top of it. ``--src-shared-blob-dir`` does not apply to archives.
"""

from __future__ import annotations

from asyncsync.transports.base import TransportContext
from asyncsync.transports.local_files import absolute_path
from asyncsync.transports.local_image import LocalImage
from asyncsync.transports.oci_archive.reference import OCIArchiveReference
from asyncsync.transports.oci_layout.layout import read_index
from asyncsync.transports.oci_layout.source import LayoutSource
from asyncsync.transports.tar_archive import TarIndex, TarTree


async def open_archive_source(reference: OCIArchiveReference, ctx: TransportContext) -> LayoutSource:
    """Index the archive and open the image ``reference`` names; closing the source frees the index."""
    where = str(reference)
    index = await TarIndex.open(absolute_path(reference.path), where)
    try:
        tree = TarTree(index, where)
        document = await read_index(tree, where)
    except BaseException:
        await index.close()
        raise
    return LayoutSource(LocalImage(reference, index.close), reference.name, tree, tree, False, document)
