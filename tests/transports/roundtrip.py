"""Test helpers for the local transports: an in-memory source, a verifying copy walk, a read-back.

These drive transports through the :mod:`asyncsync.transports.base` interfaces only, without the
copy engine, so a transport can be tested on its own:

* :class:`MemorySource` serves a :class:`~tests.helpers.images.GeneratedImage` or
  ``GeneratedIndex`` from memory, in small chunks (so streaming code sees many chunks).
* :func:`copy_through` walks manifest -> (children) -> blobs -> put, wrapping every blob stream in
  :func:`asyncsync.digest.verified_chunks` exactly as the engine does, then commits.
* :func:`read_back` reads an image back through a source, verifying every manifest and blob
  against its descriptor, and returns what it found (:class:`ReadImage`).
* :func:`transport_context` gives a :class:`TransportContext` with a real registry session.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from asyncsync.digest import Digest, verified_chunks
from asyncsync.manifest import Descriptor, ImageIndex, ImageManifest, manifest_digest, parse_manifest
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.retry import RetryPolicy
from asyncsync.transports.base import (
    BlobLocation,
    Capabilities,
    ImageDestination,
    ImageSource,
    SideOptions,
    TransportContext,
)
from tests.helpers.images import GeneratedImage, GeneratedIndex

CHUNK = 997  # deliberately odd, so chunk boundaries never align with anything


@dataclass(frozen=True, slots=True)
class MemoryReference:
    """The reference of a :class:`MemorySource` (a stand-in; it opens nothing)."""

    label: str = "memory"

    @property
    def transport_name(self) -> str:
        return "memory"

    def within_transport(self) -> str:
        return self.label

    def docker_reference(self) -> None:
        return None

    async def new_source(self, ctx: TransportContext) -> ImageSource:
        raise NotImplementedError

    async def new_destination(self, ctx: TransportContext) -> ImageDestination:
        raise NotImplementedError

    async def delete(self, ctx: TransportContext) -> list[str]:
        raise NotImplementedError


class MemorySource:
    """An ImageSource over a generated image or index."""

    def __init__(self, image: GeneratedImage | GeneratedIndex, label: str = "memory") -> None:
        self.image = image
        self._reference = MemoryReference(label)
        self.blobs: dict[str, bytes] = dict(image.blobs())
        self.children: dict[str, tuple[str, bytes]] = (
            image.manifests() if isinstance(image, GeneratedIndex) else {}
        )
        self.opened: list[str] = []

    @property
    def reference(self) -> MemoryReference:
        return self._reference

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(ranged_reads=True)

    async def get_manifest(self, instance: Digest | None = None) -> tuple[bytes, str]:
        if instance is None:
            return self.image.manifest, self.image.media_type
        media_type, raw = self.children[str(instance)]
        return raw, media_type

    @asynccontextmanager
    async def open_blob(self, blob: Descriptor, offset: int = 0) -> AsyncIterator[AsyncIterator[bytes]]:
        data = self.blobs[str(blob.digest)][offset:]
        self.opened.append(str(blob.digest))

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(data), CHUNK):
                yield data[start : start + CHUNK]

        yield chunks()

    def blob_locations(self) -> Sequence[BlobLocation]:
        return ()

    async def list_tags(self) -> list[str]:
        return []

    async def close(self) -> None:
        return None


async def copy_blob(source: ImageSource, destination: ImageDestination, blob: Descriptor) -> None:
    """Reuse or stream one blob, verified like the engine does."""
    if await destination.try_reuse_blob(blob) is not None:
        return
    async with source.open_blob(blob) as chunks:
        await destination.put_blob(blob, verified_chunks(chunks, blob.digest, blob.size))


async def _copy_manifest(
    source: ImageSource, destination: ImageDestination, raw: bytes, media_type: str, instance: Digest | None
) -> Digest:
    manifest = parse_manifest(raw, media_type)
    if isinstance(manifest, ImageManifest):
        for blob in manifest.blobs():
            await copy_blob(source, destination, blob)
        return await destination.put_manifest(raw, media_type, instance)
    assert isinstance(manifest, ImageIndex)
    if not destination.capabilities.multi_image:
        child = manifest.manifests[0]
        child_raw, child_type = await source.get_manifest(child.digest)
        return await _copy_manifest(source, destination, child_raw, child_type, None)
    for child in manifest.manifests:
        child_raw, child_type = await source.get_manifest(child.digest)
        assert manifest_digest(child_raw) == child.digest
        await _copy_manifest(source, destination, child_raw, child_type, child.digest)
    return await destination.put_manifest(raw, media_type, instance)


async def copy_through(source: ImageSource, destination: ImageDestination, *, commit: bool = True) -> Digest:
    """Copy the image ``source`` reads into ``destination`` (manifest bytes unchanged); returns the
    digest ``put_manifest`` returned for the top manifest."""
    raw, media_type = await source.get_manifest()
    digest = await _copy_manifest(source, destination, raw, media_type, None)
    if commit:
        await destination.commit()
    return digest


@dataclass
class ReadImage:
    """What :func:`read_back` found: the top manifest digest, and per image (one, or each child of an
    index) its config digest and layer digests, plus the sha256 of every layer decompressed."""

    digest: Digest
    media_type: str
    configs: list[Digest] = field(default_factory=list)
    layers: list[list[Digest]] = field(default_factory=list)
    diff_ids: list[list[str]] = field(default_factory=list)
    children: list[Digest] = field(default_factory=list)


async def _read_blob(source: ImageSource, blob: Descriptor) -> bytes:
    data = bytearray()
    async with source.open_blob(blob) as chunks:
        async for chunk in verified_chunks(chunks, blob.digest, blob.size):
            data += chunk
    return bytes(data)


async def _read_image(source: ImageSource, manifest: ImageManifest, into: ReadImage) -> None:
    await _read_blob(source, manifest.config)
    into.configs.append(manifest.config.digest)
    into.layers.append([layer.digest for layer in manifest.layers])
    diff_ids = []
    for layer in manifest.layers:
        data = await _read_blob(source, layer)
        plain = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        diff_ids.append("sha256:" + hashlib.sha256(plain).hexdigest())
    into.diff_ids.append(diff_ids)


async def read_back(source: ImageSource) -> ReadImage:
    """Read and verify the whole image ``source`` names (every child of an index)."""
    raw, media_type = await source.get_manifest()
    manifest = parse_manifest(raw, media_type)
    result = ReadImage(manifest_digest(raw), manifest.media_type)
    if isinstance(manifest, ImageIndex):
        for child in manifest.manifests:
            child_raw, child_type = await source.get_manifest(child.digest)
            assert manifest_digest(child_raw) == child.digest, "child manifest digest mismatch"
            assert len(child_raw) == child.size, "child manifest size mismatch"
            parsed = parse_manifest(child_raw, child_type)
            assert isinstance(parsed, ImageManifest)
            result.children.append(child.digest)
            await _read_image(source, parsed, result)
    else:
        assert isinstance(manifest, ImageManifest)
        await _read_image(source, manifest, result)
    return result


@asynccontextmanager
async def transport_context(**options: object) -> AsyncIterator[TransportContext]:
    """A context with a live :class:`RegistrySession`; ``options`` go to :class:`SideOptions`."""
    registry = options.pop("registry", None) or RegistryOptions()
    async with RegistrySession() as session:
        yield TransportContext(
            session=session,
            options=SideOptions(registry=registry, **options),  # type: ignore[arg-type]
            retry=RetryPolicy(attempts=2, base_delay=0.01),
        )
