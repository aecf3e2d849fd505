"""``delete oci:PATH[:NAME]``: remove the image's ``index.json`` entry, then its unreferenced blobs.

skopeo 1.9 refuses this ("Deleting images not implemented for oci: images"); newer
containers/image (5.25+, skopeo 1.12+) removes the entry and every blob of the image that no
other entry still references, and never deletes from a shared blob directory (other layouts
may use those blobs). asyncsync does the same, in the crash-safe order: ``index.json`` is
rewritten first (atomically, under the layout lock), blobs are removed afterwards, so an
interruption leaves at worst unreferenced blobs, never an entry pointing at a deleted blob.
When a remaining image's manifest cannot be read, no blob is deleted (a note says why).
"""

from __future__ import annotations

import os

import anyio
import orjson

from asyncsync.digest import Digest
from asyncsync.errors import AsyncSyncError, LocalStorageError
from asyncsync.manifest import Descriptor, ImageIndex, ImageManifest, parse_manifest
from asyncsync.transports.base import TransportContext
from asyncsync.transports.local_files import DirectoryTree, FileTree, find_directory, read_manifest_file
from asyncsync.transports.oci_layout.layout import (
    INDEX_FILE,
    MAX_INDEX_SIZE,
    blob_name,
    layout_lock,
    parse_index,
    write_layout_files,
)
from asyncsync.transports.oci_layout.reference import OCIReference

#: Nesting limit for indexes of indexes while counting references.
_MAX_DEPTH = 8


async def _closure(
    tree: FileTree, shared: bool, descriptor: Descriptor, into: set[Digest], depth: int = 0
) -> None:
    """Add ``descriptor``'s digest and every blob it references (recursively) to ``into``."""
    into.add(descriptor.digest)
    if depth > _MAX_DEPTH:
        raise LocalStorageError(f"indexes nested more than {_MAX_DEPTH} deep")
    raw = await read_manifest_file(tree, blob_name(descriptor.digest, shared), descriptor.digest)
    manifest = parse_manifest(raw, descriptor.media_type or None)
    if isinstance(manifest, ImageIndex):
        for child in manifest.manifests:
            await _closure(tree, shared, child, into, depth + 1)
    elif isinstance(manifest, ImageManifest):
        into.update(blob.digest for blob in manifest.blobs())


def _remove_blob(root: str, digest: Digest) -> bool:
    path = os.path.join(root, "blobs", digest.algorithm, digest.hex)
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


async def delete_image(reference: OCIReference, ctx: TransportContext) -> list[str]:
    """Delete the image ``reference`` names from its layout; returns notes for the user."""
    where = str(reference)
    root = await find_directory(reference.path, f"{where}: not an OCI layout")
    shared_dir = ctx.options.shared_blob_dir
    tree = DirectoryTree(root, where)
    notes: list[str] = []
    async with layout_lock(root):
        raw = await tree.read_bytes(INDEX_FILE, MAX_INDEX_SIZE)
        index = parse_index(raw, where)
        position, descriptor = index.find(reference.name, where)
        index.remove(position)
        await write_layout_files(root, index)
        notes.append(f"removed {descriptor.digest} from {os.path.join(root, INDEX_FILE)}")
        if shared_dir:
            notes.append("blobs in the shared blob directory are kept (other layouts may use them)")
            return notes
        doomed: set[Digest] = set()
        kept: set[Digest] = set()
        try:
            await _closure(tree, False, descriptor, doomed)
            for remaining in index.descriptors:
                await _closure(tree, False, remaining, kept)
        except (AsyncSyncError, orjson.JSONDecodeError) as exc:
            notes.append(f"no blobs deleted: cannot tell which are still in use ({exc})")
            return notes
        unused = sorted(doomed - kept, key=str)
        removed = 0
        for digest in unused:
            if await anyio.to_thread.run_sync(_remove_blob, root, digest):
                removed += 1
        notes.append(f"deleted {removed} blob(s) no other image in the layout uses")
    return notes
