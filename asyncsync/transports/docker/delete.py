"""Deleting an image from a registry (``asyncsync delete docker://...``).

The Distribution API deletes manifests by digest only, and deleting a digest untags every tag
that points at it. So, as skopeo does, a tag is first resolved to its digest (a HEAD, falling
back to a GET when the registry does not send ``Docker-Content-Digest``), and before deleting
we look up which *other* tags name the same digest so the user is told what disappears with it.
"""

from __future__ import annotations

import logging

import anyio

from asyncsync.digest import Digest
from asyncsync.errors import NotFoundError, RegistryError
from asyncsync.reference import ImageName
from asyncsync.registry.client import RegistryClient
from asyncsync.registry.manifests import delete_manifest, get_manifest, head_manifest
from asyncsync.registry.tags import list_tags
from asyncsync.transports.base import TransportContext
from asyncsync.transports.docker.reference import DockerReference

log = logging.getLogger("asyncsync.delete")

#: HEAD requests in flight while looking for other tags of the digest (the host limiter caps
#: the total anyway; this keeps a 10,000-tag repository from spawning 10,000 tasks at once).
TAG_LOOKUP_CONCURRENCY = 8


async def resolve_digest(client: RegistryClient, name: ImageName) -> Digest:
    """The manifest digest ``name`` refers to; raises :class:`NotFoundError` when it does not exist."""
    if name.digest is not None:
        head = await head_manifest(client, name.repository, str(name.digest))
        if head is None:
            raise NotFoundError(404, "MANIFEST_UNKNOWN").naming(f"image docker://{name}")
        return name.digest
    head = await head_manifest(client, name.repository, name.reference)
    if head is None:
        raise NotFoundError(404, "MANIFEST_UNKNOWN").naming(f"image docker://{name}")
    if head.digest is not None:
        return head.digest
    # Some registries omit Docker-Content-Digest on HEAD; the bytes decide.
    fetched = await get_manifest(client, name.repository, name.reference)
    return fetched.digest


async def tags_pointing_at(
    client: RegistryClient, repository: str, digest: Digest, *, exclude: str | None = None
) -> list[str]:
    """Tags of ``repository`` whose manifest digest is ``digest`` (sorted), except ``exclude``.

    Tags that vanish while we look are skipped. A registry that refuses to list tags (401/403,
    as some do for the tag list endpoint) yields an empty list rather than an error.
    """
    try:
        tags = await list_tags(client, repository)
    except RegistryError as exc:
        if exc.status in (401, 403, 404):
            log.info("cannot list tags of %s/%s: %s", client.registry, repository, exc)
            return []
        raise
    candidates = [tag for tag in tags if tag != exclude]
    matches: list[str] = []
    limiter = anyio.CapacityLimiter(TAG_LOOKUP_CONCURRENCY)

    async def check(tag: str) -> None:
        async with limiter:
            head = await head_manifest(client, repository, tag)
        if head is not None and head.digest == digest:
            matches.append(tag)

    async with anyio.create_task_group() as group:
        for tag in candidates:
            group.start_soon(check, tag)
    return sorted(matches)


async def delete_image(ref: DockerReference, ctx: TransportContext) -> list[str]:
    """Delete the manifest ``ref`` names; return notes naming the other tags removed with it.

    Contract: the digest is resolved before anything is deleted, a missing image raises
    :class:`NotFoundError` without any DELETE, and the notes list is empty when the named tag
    was the only one pointing at the digest. A registry with deletes disabled answers 405,
    which surfaces as a :class:`RegistryError` ("operation not supported by the registry").
    """
    name = ref.name
    client = ctx.session.client(name.registry, ctx.options.registry)
    digest = await resolve_digest(client, name)
    own_tag = name.tag if name.digest is None else None
    others = await tags_pointing_at(client, name.repository, digest, exclude=own_tag)
    await delete_manifest(client, name.repository, digest)
    notes = []
    for tag in others:
        notes.append(f"tag {name.name}:{tag} also pointed at {digest} and was removed too")
    return notes
