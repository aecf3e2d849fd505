"""Reading an image from a registry (``docker://`` as a copy source)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing, asynccontextmanager

from asyncsync.digest import Digest
from asyncsync.manifest import ALL_MANIFEST_TYPES, Descriptor, guess_media_type
from asyncsync.registry.blobs import open_blob
from asyncsync.registry.manifests import get_manifest
from asyncsync.registry.tags import list_tags
from asyncsync.signature.formats import Signature
from asyncsync.signature.registries_d import RegistriesD
from asyncsync.transports.base import BlobLocation, Capabilities, TransportContext
from asyncsync.transports.docker.attachments import RegistryAttachments
from asyncsync.transports.docker.reference import DockerReference
from asyncsync.transports.docker.repository import OnRepository
from asyncsync.transports.docker.signatures import read_signatures

_CAPABILITIES = Capabilities(ranged_reads=True)


async def _skip(chunks: AsyncGenerator[bytes, None], count: int) -> AsyncGenerator[bytes, None]:
    """Drop the first ``count`` bytes of ``chunks`` (a restarted GET replaying what was delivered)."""
    async with aclosing(chunks):
        async for chunk in chunks:
            if count >= len(chunk):
                count -= len(chunk)
                continue
            if count:
                chunk, count = chunk[count:], 0
            yield chunk


def _media_type(raw: bytes, served: str) -> str:
    """The served ``Content-Type`` when it names a manifest type, else the type the document declares."""
    if served in ALL_MANIFEST_TYPES:
        return served
    try:
        import orjson

        data = orjson.loads(raw)
    except ValueError:
        return served
    if not isinstance(data, dict):
        return served
    declared = data.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if served and served not in ("application/json", "text/plain", "application/octet-stream"):
        return served
    return guess_media_type(data)


class DockerSource(OnRepository):
    """An image in a registry: manifests by tag or digest, blobs as streamed GETs.

    ``open_blob(blob, offset)`` asks for ``Range: bytes=offset-``; when the server ignores the
    range (answers 200) the GET starts over and the first ``offset`` bytes are dropped, so the
    caller always receives the blob from ``offset`` on.
    """

    def __init__(self, reference: DockerReference, ctx: TransportContext) -> None:
        super().__init__(reference, ctx)
        #: Whether the last resumed GET was honoured with 206 (``None`` until one was asked for).
        self.last_range_honoured: bool | None = None

    @property
    def capabilities(self) -> Capabilities:
        return _CAPABILITIES

    async def get_manifest(self, instance: Digest | None = None) -> tuple[bytes, str]:
        reference = self._manifest_reference(instance)
        fetched = await get_manifest(self.client, self.repository, reference)
        return fetched.raw, _media_type(fetched.raw, fetched.media_type)

    @asynccontextmanager
    async def open_blob(self, blob: Descriptor, offset: int = 0) -> AsyncIterator[AsyncIterator[bytes]]:
        async with open_blob(self.client, self.repository, blob.digest, offset) as stream:
            if offset:
                self.last_range_honoured = stream.ranged
            async with aclosing(_skip(stream.chunks, offset - stream.offset)) as chunks:
                yield chunks

    def blob_locations(self) -> Sequence[BlobLocation]:
        return (BlobLocation(self.registry, self.repository),)

    async def list_tags(self) -> list[str]:
        return await list_tags(self.client, self.repository)

    def attachment_reader(self) -> RegistryAttachments:
        """Tags, manifests by tag and referrers of this repository (for attachments)."""
        return RegistryAttachments(self.client, self.registry, self.repository)

    async def get_signatures(
        self, digest: Digest, *, instance: bool, simple: bool = True, sigstore: bool = True
    ) -> list[Signature]:
        """Lookaside and (when registries.d enables them) sigstore attachment signatures."""
        config = self._ctx.options.registries_d or RegistriesD()
        return await read_signatures(
            self.client, config, self._reference.name, digest, simple=simple, sigstore=sigstore
        )

    async def close(self) -> None:
        """Nothing to release: the registry session belongs to the caller."""
