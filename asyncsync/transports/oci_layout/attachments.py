"""Attachments in an OCI layout (``oci:``, and ``oci-archive:`` through its staging layout).

A layout holds referrers as manifests among its blobs and the referrers fallback tag
``sha256-<hex>`` (and cosign's ``sha256-<hex>.sig`` ...) as ``index.json`` entries named by
``org.opencontainers.image.ref.name``: the OCI image-layout way of tagging. A layout has no
referrers API. Written tags join ``index.json`` in the same atomic write as the image at
:meth:`LayoutDestination.commit`, so a failed copy leaves no tag behind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asyncsync.digest import Digest
from asyncsync.errors import LocalStorageError
from asyncsync.transports.attachment_store import ReferrerEntry
from asyncsync.transports.oci_layout.layout import REF_NAME, IndexDocument

ReadManifest = Callable[[Digest], Awaitable[tuple[bytes, str]]]


def _tagged(index: IndexDocument, tag: str) -> Digest | None:
    for descriptor in index.descriptors:
        if descriptor.annotations.get(REF_NAME) == tag:
            return descriptor.digest
    return None


class LayoutAttachments:
    """Reader (and, with ``add_tag``, writer) of attachments in one layout.

    ``index`` returns the layout's current ``index.json`` (plus entries pending in this copy, for a
    destination); ``read`` a manifest by digest; ``add_tag`` queues an entry for the commit."""

    holds_referrers = True

    def __init__(
        self,
        key: str,
        index: Callable[[], Awaitable[IndexDocument]],
        read: ReadManifest,
        add_tag: Callable[[dict[str, Any]], None] | None = None,
        write: Callable[[bytes, str, Digest], Awaitable[Digest]] | None = None,
    ) -> None:
        self._key = key
        self._index = index
        self._read = read
        self._add_tag = add_tag
        self._write = write

    @property
    def key(self) -> str:
        return self._key

    @property
    def api_key(self) -> str:
        return self._key

    async def list_tags(self) -> list[str]:
        return (await self._index()).ref_names()

    async def head(self, tag: str) -> Digest | None:
        return _tagged(await self._index(), tag)

    async def get(self, reference: str) -> tuple[bytes, str] | None:
        digest = Digest.parse(reference) if reference.startswith("sha256:") else await self.head(reference)
        if digest is None:
            return None
        try:
            return await self._read(digest)
        except LocalStorageError:
            return None

    async def referrers(
        self, subject: Digest, artifact_type: str | None = None
    ) -> list[ReferrerEntry] | None:
        """A layout has no referrers API: its referrers are found through the fallback tag."""
        return None

    async def put_referrer(self, raw: bytes, media_type: str, digest: Digest) -> bool | None:
        """A manifest among the layout's blobs; a layout has no referrers API to say anything."""
        if self._write is None:
            raise LocalStorageError(f"{self._key}: read-only")
        await self._write(raw, media_type, digest)
        return None

    async def put_tagged(self, tag: str, raw: bytes, media_type: str) -> None:
        if self._write is None or self._add_tag is None:
            raise LocalStorageError(f"{self._key}: read-only")
        digest = await self._write(raw, media_type, Digest.of(raw))
        self._add_tag(
            {"mediaType": media_type, "digest": str(digest), "size": len(raw), "annotations": {REF_NAME: tag}}
        )
