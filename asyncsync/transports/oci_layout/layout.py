"""The OCI image layout on disk: ``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``.

Shared by ``oci:`` and ``oci-archive:``. Semantics follow containers/image (skopeo 1.9):

* An ``index.json`` entry is named by its ``org.opencontainers.image.ref.name`` annotation.
  A reference without a name selects the only entry and is an error when there are several.
* Writing a name that already exists moves the name to the new entry; the old entry stays in
  the index without a name (as skopeo does), so its blobs remain reachable.
* With a shared blob directory (``--src/--dest-shared-blob-dir``) every blob, manifests
  included, lives in ``<shared>/<alg>/<hex>`` instead of ``blobs/<alg>/<hex>``.

Every entry's digest is validated when ``index.json`` is read, so a digest can never name a
path outside the layout; a malformed index is refused with a :class:`LocalStorageError`.
Updates of ``index.json`` are serialised per layout (:func:`layout_lock`: an in-process lock
plus ``flock`` on the layout directory) and written atomically.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import orjson

from asyncsync.digest import Digest
from asyncsync.errors import AsyncSyncError, InvalidReferenceError, LocalStorageError
from asyncsync.jsondoc import load_json_object
from asyncsync.limits import KeyedLock
from asyncsync.manifest import Descriptor
from asyncsync.transports.local_files import FileTree, write_bytes_atomic

LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
LAYOUT_VERSION = "1.0.0"
REF_NAME = "org.opencontainers.image.ref.name"
#: index.json can list thousands of images; still refuse absurd sizes before parsing.
MAX_INDEX_SIZE = 64 * 1024 * 1024
MAX_LAYOUT_FILE_SIZE = 64 * 1024

# containers/image's refRegexp for the image (ref name) part of oci:PATH:REF.
_SEPARATOR = r"(?:[-._:@+]|--)"
_ALNUM = r"(?:[A-Za-z0-9]+)"
_COMPONENT = rf"(?:{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*)"
_REF_NAME_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")


def validate_ref_name(name: str, text: str) -> str:
    """Return ``name`` if it is a valid ref name (as skopeo's ``oci:`` accepts), else raise."""
    if not _REF_NAME_RE.match(name):
        raise InvalidReferenceError(f"invalid image reference {name!r} in {text!r}")
    return name


def blob_name(digest: Digest, shared: bool = False) -> str:
    """The relative name of a blob: ``blobs/<alg>/<hex>``, or ``<alg>/<hex>`` in a shared blob dir."""
    return f"{digest.algorithm}/{digest.hex}" if shared else f"blobs/{digest.algorithm}/{digest.hex}"


@dataclass(slots=True)
class IndexDocument:
    """A parsed ``index.json``: the raw top-level object and its entries (raw dicts + descriptors).

    Raw dicts are kept so rewriting the index preserves fields we do not model (platforms,
    other annotations, top-level annotations).
    """

    document: dict[str, Any]
    entries: list[dict[str, Any]]
    descriptors: list[Descriptor]

    @classmethod
    def empty(cls) -> IndexDocument:
        # skopeo 1.9 writes exactly these two keys for a new layout.
        return cls({"schemaVersion": 2, "manifests": []}, [], [])

    def ref_names(self) -> list[str]:
        """Every entry's ref name, in index order, without duplicates."""
        seen: dict[str, None] = {}
        for descriptor in self.descriptors:
            name = descriptor.annotations.get(REF_NAME)
            if name:
                seen.setdefault(name, None)
        return list(seen)

    def find(self, ref_name: str | None, where: str) -> tuple[int, Descriptor]:
        """The entry ``ref_name`` selects (the only entry when ``ref_name`` is empty)."""
        if not ref_name:
            if len(self.descriptors) == 1:
                return 0, self.descriptors[0]
            if not self.descriptors:
                raise LocalStorageError(f"{where}: the layout's index.json lists no image")
            names = ", ".join(self.ref_names()) or "none named"
            raise LocalStorageError(
                f"{where}: more than one image in the layout, choose one with {where}:NAME ({names})"
            )
        for position, descriptor in enumerate(self.descriptors):
            if descriptor.annotations.get(REF_NAME) == ref_name:
                return position, descriptor
        raise LocalStorageError(f"{where}: no image named {ref_name!r} in the layout's index.json")

    def add(self, entry: dict[str, Any]) -> None:
        """Add an entry with containers/image's rules (see the module docstring)."""
        name = (entry.get("annotations") or {}).get(REF_NAME)
        if name:
            for existing in self.entries:
                annotations = existing.get("annotations")
                if isinstance(annotations, dict) and annotations.get(REF_NAME) == name:
                    del annotations[REF_NAME]
                    if not annotations:
                        del existing["annotations"]
                    break
        for position, existing in enumerate(self.entries):
            annotations = existing.get("annotations") or {}
            if existing.get("digest") == entry["digest"] and not annotations.get(REF_NAME):
                self.entries[position] = entry
                break
        else:
            self.entries.append(entry)
        self.descriptors = [Descriptor.from_json(e, "index.json") for e in self.entries]

    def remove(self, position: int) -> dict[str, Any]:
        removed = self.entries.pop(position)
        self.descriptors.pop(position)
        return removed

    def to_bytes(self) -> bytes:
        document = dict(self.document)
        document["schemaVersion"] = document.get("schemaVersion", 2)
        document["manifests"] = self.entries
        return orjson.dumps(document)


def parse_index(raw: bytes, where: str) -> IndexDocument:
    """Parse and validate ``index.json``; every entry's digest must be valid."""
    document = load_json_object(raw, f"{where}: index.json", LocalStorageError)
    entries = document.get("manifests")
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise LocalStorageError(f"{where}: index.json has no 'manifests' list")
    descriptors = []
    for position, entry in enumerate(entries):
        try:
            descriptors.append(Descriptor.from_json(entry, f"index.json manifests[{position}]"))
        except AsyncSyncError as exc:
            raise LocalStorageError(f"{where}: refusing the layout: {exc}") from None
    return IndexDocument(document, list(entries), descriptors)


async def read_index(tree: FileTree, where: str) -> IndexDocument:
    """Read ``index.json`` from ``tree``; a missing file means this is not an OCI layout."""
    if await tree.size(INDEX_FILE) is None:
        raise LocalStorageError(f"{where}: not an OCI image layout (no index.json)")
    return parse_index(await tree.read_bytes(INDEX_FILE, MAX_INDEX_SIZE), where)


def check_layout_file(raw: bytes, where: str) -> None:
    """Refuse an ``oci-layout`` file that is not ``{"imageLayoutVersion": ...}``."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise LocalStorageError(f"{where}: oci-layout is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("imageLayoutVersion"), str):
        raise LocalStorageError(f"{where}: oci-layout has no imageLayoutVersion")


async def write_layout_files(root: str, index: IndexDocument) -> None:
    """Write ``oci-layout`` (if missing) then ``index.json``, each atomically."""
    layout_path = os.path.join(root, LAYOUT_FILE)
    if not await anyio.to_thread.run_sync(os.path.exists, layout_path):
        await write_bytes_atomic(layout_path, orjson.dumps({"imageLayoutVersion": LAYOUT_VERSION}))
    await write_bytes_atomic(os.path.join(root, INDEX_FILE), index.to_bytes())


#: In-process exclusion per layout (real path); the ``flock`` below excludes other processes.
_LAYOUT_LOCKS: KeyedLock[str] = KeyedLock()


@asynccontextmanager
async def layout_lock(root: str) -> AsyncIterator[None]:
    """Exclusive access to a layout's ``index.json``: within this process and across processes.

    The cross-process part is ``flock`` on the layout directory itself, so no lock file is left
    in the layout.
    """
    key = await anyio.to_thread.run_sync(os.path.realpath, root)
    async with _LAYOUT_LOCKS.hold(key):
        fd = os.open(key, os.O_RDONLY | os.O_DIRECTORY)
        try:
            await anyio.to_thread.run_sync(fcntl.flock, fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
