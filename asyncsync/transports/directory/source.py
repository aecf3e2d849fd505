"""Reading an image from a ``dir:`` directory.

Files (skopeo's format, version 1.1): ``manifest.json`` (the image's manifest or index, bytes as
pulled), ``<hex>.manifest.json`` for each child of an index copied with ``--all``, and one file
per blob named by the hex of its digest (no algorithm prefix). A child manifest is verified
against the digest that names it; blobs are streamed unverified (the copy engine verifies).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from asyncsync.digest import Digest
from asyncsync.errors import LocalStorageError, UsageError
from asyncsync.jsondoc import load_json_object
from asyncsync.manifest import Descriptor, guess_media_type
from asyncsync.signature.formats import Signature, SimpleSignature
from asyncsync.transports.base import BlobLocation, Capabilities, TransportContext
from asyncsync.transports.directory.reference import DirReference
from asyncsync.transports.directory.signatures import read_signatures
from asyncsync.transports.local_files import DirectoryTree, find_directory, read_manifest_file

MANIFEST_FILE = "manifest.json"
_CAPABILITIES = Capabilities(ranged_reads=True)


def child_manifest_name(digest: Digest) -> str:
    return f"{digest.hex}.manifest.json"


def _media_type(raw: bytes, where: str) -> str:
    return guess_media_type(load_json_object(raw, f"{where}: manifest", LocalStorageError))


class DirSource:
    """The image in one ``dir:`` directory."""

    def __init__(self, reference: DirReference, root: str) -> None:
        self._reference = reference
        self.root = root
        self._where = str(reference)
        self._tree = DirectoryTree(root, self._where)

    @property
    def reference(self) -> DirReference:
        return self._reference

    @property
    def capabilities(self) -> Capabilities:
        return _CAPABILITIES

    async def get_manifest(self, instance: Digest | None = None) -> tuple[bytes, str]:
        if instance is None:
            if await self._tree.size(MANIFEST_FILE) is None:
                raise LocalStorageError(f"{self._where}: no image here (no {MANIFEST_FILE})")
            raw = await read_manifest_file(self._tree, MANIFEST_FILE, None)
        else:
            raw = await read_manifest_file(self._tree, child_manifest_name(instance), instance)
        return raw, _media_type(raw, self._where)

    @asynccontextmanager
    async def open_blob(self, blob: Descriptor, offset: int = 0) -> AsyncIterator[AsyncIterator[bytes]]:
        async with self._tree.open_chunks(blob.digest.hex, offset) as chunks:
            yield chunks

    def blob_locations(self) -> Sequence[BlobLocation]:
        return ()

    async def list_tags(self) -> list[str]:
        raise UsageError(
            f"{self._where}: a dir: directory holds one image and has no tags; "
            "to sync a tree of directories use 'sync --src dir'"
        )

    async def get_signatures(
        self, digest: Digest, *, instance: bool, simple: bool = True, sigstore: bool = True
    ) -> list[Signature]:
        """``signature-N`` (or ``<hex>.signature-N`` for an index's child) files (of the kinds asked)."""
        found = await read_signatures(self.root, digest, instance=instance, where=self._where)
        return [s for s in found if (simple if isinstance(s, SimpleSignature) else sigstore)]

    async def close(self) -> None:
        """Nothing to release: files are opened per read."""


async def open_dir_source(reference: DirReference, ctx: TransportContext) -> DirSource:
    root = await find_directory(reference.path, str(reference))
    return DirSource(reference, root)
