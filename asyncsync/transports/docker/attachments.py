"""Attachments in a registry repository (``docker://``): tags, manifests by tag, the referrers API.

Implements :class:`~asyncsync.transports.attachment_store.AttachmentReader` and
:class:`~asyncsync.transports.attachment_store.AttachmentWriter` on top of the Distribution API
functions; a repository that does not exist yet has no tags (``NAME_UNKNOWN`` is an empty list).
"""

from __future__ import annotations

from asyncsync.digest import Digest
from asyncsync.errors import NotFoundError
from asyncsync.registry.client import RegistryClient
from asyncsync.registry.manifests import get_manifest, head_manifest, put_manifest
from asyncsync.registry.referrers import list_referrers, put_referrer
from asyncsync.registry.tags import list_tags
from asyncsync.transports.attachment_store import ReferrerEntry, parse_entries


def _declared_type(raw: bytes, served: str) -> str:
    # Imported here: source.py imports this module's users, not the other way round.
    from asyncsync.transports.docker.source import _media_type

    return _media_type(raw, served)


class RegistryAttachments:
    """Attachment access to ``registry/repository`` through ``client`` (reader and writer)."""

    holds_referrers = True

    def __init__(self, client: RegistryClient, registry: str, repository: str) -> None:
        self.client = client
        self.registry = registry
        self.repository = repository

    @property
    def key(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def api_key(self) -> str:
        return self.registry

    async def list_tags(self) -> list[str]:
        try:
            return await list_tags(self.client, self.repository)
        except NotFoundError:
            return []

    async def head(self, tag: str) -> Digest | None:
        found = await head_manifest(self.client, self.repository, tag)
        return found.digest if found is not None else None

    async def get(self, reference: str) -> tuple[bytes, str] | None:
        try:
            fetched = await get_manifest(self.client, self.repository, reference)
        except NotFoundError:
            return None
        return fetched.raw, _declared_type(fetched.raw, fetched.media_type)

    async def referrers(
        self, subject: Digest, artifact_type: str | None = None
    ) -> list[ReferrerEntry] | None:
        entries = await list_referrers(self.client, self.repository, subject, artifact_type=artifact_type)
        if entries is None:
            return None
        return parse_entries(entries, f"referrers of {self.key}@{subject}")

    async def put_referrer(self, raw: bytes, media_type: str, digest: Digest) -> bool | None:
        return await put_referrer(self.client, self.repository, raw, media_type, digest)

    async def put_tagged(self, tag: str, raw: bytes, media_type: str) -> None:
        await put_manifest(self.client, self.repository, tag, raw, media_type)
