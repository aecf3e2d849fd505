"""Writing an image into containers-storage: a ``docker save`` archive streamed into ``podman load``.

The archive is produced as the copy engine hands over the blobs and goes straight into podman
(``podman load`` on a pipe, or a chunked ``POST /libpod/images/load``): no temporary copy on our
side. Tar members follow one another and a member's header needs its size, so:

* blobs are stored as they are (layers stay compressed: podman's docker-archive reader
  decompresses them, as it does for ``docker load``), so every size is known from the
  descriptor before the first byte;
* one blob at a time writes into the stream (a lock, taken in the order the engine starts
  the blobs); the others wait *before* opening their source stream, so nothing is buffered
  or spooled and no source connection sits idle. This trades parallel downloads for zero
  temporary copies; podman imports the layers one by one in any case;
* ``manifest.json`` (config, layer members in manifest order, RepoTags = the destination's
  fully qualified name) is written at :meth:`commit`, last.

Nothing half-written: podman loads nothing from an archive without ``manifest.json``, and on any
failure (a digest mismatch in the last chunk of a blob, a broken source, cancellation) the load
is aborted (the podman process killed, or the request cancelled) before the archive ends. A
failure in the middle of a member cannot be cut out of a stream, so the destination is then
broken and refuses further blobs (the copy fails; no retry can reuse this stream).

After the load, the image's ID is checked against the config digest (skopeo's and podman's image
ID), and names are checked to be what was asked. podman stores the manifest it generates from the
archive (Docker v2s2, uncompressed layers): the image ID and names are skopeo's, the manifest
digest (``podman images --digests``) is not. One image per destination: ``multi_image`` is false
and digests are not preserved. Attachments (signatures, SBOMs, referrers) cannot go there: the
destination has no ``attachment_writer()``, which is how the copy engine's attachment walk learns
that a destination takes the image alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio

from asyncsync.digest import Digest
from asyncsync.errors import DigestMismatchError, LocalStorageError, UsageError
from asyncsync.manifest import Descriptor
from asyncsync.reference import ImageName
from asyncsync.transports.base import TransportContext
from asyncsync.transports.containers_storage.engine import (
    LibpodEngine,
    LoadStream,
    PodmanEngine,
    close_engine,
    describe_names,
    find_engine,
)
from asyncsync.transports.containers_storage.reference import StorageReference
from asyncsync.transports.docker_archive.archive import (
    MANIFEST_FILE,
    archive_manifest,
    repo_tag,
    single_image_manifest,
    tagged_names,
)
from asyncsync.transports.docker_archive.destination import OneImageArchive
from asyncsync.transports.layer_compression import CONFIG_TYPES
from asyncsync.transports.local_image import LocalImage
from asyncsync.transports.tar_archive import END_OF_ARCHIVE, member_header, padding


def member_name(blob: Descriptor) -> str:
    """The archive member of a blob: ``<hex>.json`` for a config, ``<hex>.tar`` for a layer."""
    suffix = "json" if blob.media_type in CONFIG_TYPES else "tar"
    return f"{blob.digest.hex}.{suffix}"


class StorageDestination(OneImageArchive):
    """One image on its way into containers-storage; see the module docstring."""

    def __init__(self, image: LocalImage, engine: PodmanEngine | LibpodEngine, tags: list[ImageName]) -> None:
        super().__init__(image)
        self._engine = engine
        self._tags = tags
        self._lock = anyio.Lock()
        self._load: LoadStream | None = None
        self._written: dict[Digest, str] = {}
        self._broken: str | None = None
        self._manifest_json: bytes | None = None
        self._config: Digest | None = None
        self._closed = False

    def _holds(self, digest: Digest) -> bool:
        return digest in self._written

    def _check(self) -> None:
        if self._broken is not None:
            raise LocalStorageError(f"{self._where}: the image cannot be loaded any more: {self._broken}")
        if self._closed:
            raise LocalStorageError(f"{self._where}: the destination is closed")

    async def _stream(self) -> LoadStream:
        if self._load is None:
            self._load = await self._engine.open_load()
        return self._load

    async def _fail(self, reason: str) -> None:
        self._broken = reason
        if self._load is not None:
            await self._load.abort()

    async def put_blob(self, blob: Descriptor, chunks: AsyncIterator[bytes]) -> None:
        """Stream the blob into the archive as one member (waiting for the previous member)."""
        async with self._lock:
            self._check()
            if blob.digest in self._written:
                async for _ in chunks:  # verified by the caller's stream; nothing to store twice
                    pass
                return
            name = member_name(blob)
            load = await self._stream()
            try:
                await load.send(member_header(name, blob.size))
                sent = 0
                async for chunk in chunks:
                    sent += len(chunk)
                    if sent > blob.size:
                        raise DigestMismatchError(
                            f"{self._where}: blob {blob.digest} is larger than {blob.size} bytes"
                        )
                    await load.send(chunk)
                if sent != blob.size:
                    raise DigestMismatchError(
                        f"{self._where}: blob {blob.digest} has {sent} bytes, not {blob.size}"
                    )
                await load.send(padding(blob.size))
            except BaseException as exc:
                with anyio.CancelScope(shield=True):
                    await self._fail(f"blob {blob.digest} broke off mid-stream ({type(exc).__name__})")
                raise
            self._written[blob.digest] = name

    async def put_manifest(self, raw: bytes, media_type: str, instance: Digest | None = None) -> Digest:
        manifest = single_image_manifest(raw, media_type, instance, self._where, "containers-storage")
        missing = [b.digest for b in (manifest.config, *manifest.layers) if b.digest not in self._written]
        if missing:
            raise LocalStorageError(f"{self._where}: blob {missing[0]} was not written before the manifest")
        layers = [self._written[layer.digest] for layer in manifest.layers]
        self._manifest_json = archive_manifest(self._written[manifest.config.digest], self._tags, layers)
        self._config = manifest.config.digest
        return Digest.of(raw)

    async def commit(self) -> None:
        """End the archive, wait for podman to load it, and check the ID and names it reports."""
        async with self._lock:
            self._check()
            if self._manifest_json is None or self._config is None:
                raise LocalStorageError(f"{self._where}: nothing to commit: no manifest was written")
            load = await self._stream()
            data = self._manifest_json
            try:
                await load.send(
                    member_header(MANIFEST_FILE, len(data)) + data + padding(len(data)) + END_OF_ARCHIVE
                )
                loaded = await load.finish()
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._fail("the load failed")
                raise
            self._load = None
            self._closed = True
        wanted = [repo_tag(tag) for tag in self._tags]
        if sorted(set(loaded)) != sorted(wanted):
            raise LocalStorageError(
                f"{self._where}: podman loaded {describe_names(loaded)}, expected {describe_names(wanted)}"
            )
        info = await self._engine.inspect(wanted[0])
        if info is None or info.image_id != self._config.hex:
            found = info.image_id if info is not None else "nothing"
            raise LocalStorageError(
                f"{self._where}: {wanted[0]} is {found} after the load, expected image ID {self._config.hex}"
            )
        await close_engine(self._engine)

    async def close(self) -> None:
        self._closed = True
        with anyio.CancelScope(shield=True):
            if self._load is not None:
                load, self._load = self._load, None
                await load.abort()
            await close_engine(self._engine)


async def open_storage_destination(reference: StorageReference, ctx: TransportContext) -> StorageDestination:
    """Open ``containers-storage:[spec]NAME[:TAG]`` for writing (podman is found now, started later)."""
    where = str(reference)
    name = reference.name
    if name is None or reference.image_id is not None or reference.id_prefix is not None:
        raise UsageError(
            f"invalid destination {where}: a containers-storage destination must be NAME[:TAG] "
            "(the image ID is the config digest)"
        )
    if name.digest is not None:
        raise UsageError(
            f"invalid destination {where}: a containers-storage destination must be NAME[:TAG]; "
            "a digest cannot be kept (podman stores the manifest it generates from the archive)"
        )
    # skopeo's --additional-tag applies to docker-archive:/docker-daemon: only (the CLI warns).
    tags = tagged_names(name, ())
    engine = await find_engine(reference.specifier, where)
    return StorageDestination(LocalImage(reference), engine, tags)
