"""Manifest requests: GET/HEAD/PUT/DELETE ``/v2/<repo>/manifests/<reference>``.

Digests are computed locally from the raw bytes; when the reference is a digest the bytes
must match it, whatever the registry's ``Docker-Content-Digest`` says. Bodies are capped at
4 MiB while reading.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass

from asyncsync.digest import Digest
from asyncsync.errors import AsyncSyncError, DigestMismatchError, ManifestError, TransportError
from asyncsync.http.session import Response
from asyncsync.manifest import MANIFEST_ACCEPT, MAX_MANIFEST_SIZE, manifest_digest
from asyncsync.registry.auth import repository_scope
from asyncsync.registry.client import RegistryClient


@dataclass(frozen=True, slots=True)
class ManifestHead:
    """What a HEAD tells: digest (from ``Docker-Content-Digest``), media type and size."""

    digest: Digest | None
    media_type: str
    size: int | None


@dataclass(frozen=True, slots=True)
class FetchedManifest:
    """Raw manifest bytes as served, their media type (Content-Type) and locally computed digest."""

    raw: bytes
    media_type: str
    digest: Digest


def _path(repository: str, reference: str) -> str:
    return f"/v2/{repository}/manifests/{reference}"


def _pinned(reference: str) -> Digest | None:
    return Digest.parse(reference) if ":" in reference else None


def _what(doing: str, client: RegistryClient, repository: str, reference: str) -> str:
    """``reading manifest host/repo:tag`` (``@sha256:...`` for a digest) for messages."""
    return f"{doing} manifest {client.registry}/{repository}:{reference}".replace(":sha256", "@sha256")


def _pull(
    client: RegistryClient,
    method: str,
    repository: str,
    reference: str,
    *,
    accept: str,
    what: str,
    ok: tuple[int, ...] = (200,),
) -> Awaitable[Response]:
    """A GET or HEAD of a manifest (body capped at the manifest size limit), with pull rights."""
    return client.request(
        method,
        _path(repository, reference),
        scopes=(repository_scope(repository, "pull"),),
        repository=repository,
        headers={"Accept": accept},
        ok=ok,
        what=what,
        max_body=MAX_MANIFEST_SIZE,
    )


async def get_manifest(
    client: RegistryClient, repository: str, reference: str, *, accept: str = MANIFEST_ACCEPT
) -> FetchedManifest:
    """GET a manifest by tag or digest; verifies a pinned digest; refuses bodies over 4 MiB."""
    what = _what("reading", client, repository, reference)
    try:
        response = await _pull(client, "GET", repository, reference, accept=accept, what=what)
    except TransportError as exc:
        # Only the manifest body's own cap; an oversized token answer must keep its own message.
        if "response body larger than" in str(exc):
            raise ManifestError(f"{what}: manifest is larger than {MAX_MANIFEST_SIZE} bytes") from None
        raise
    raw = response.body
    digest = manifest_digest(raw)
    pinned = _pinned(reference)
    if pinned is not None and pinned.algorithm == "sha256" and digest != pinned:
        raise DigestMismatchError(f"{what}: manifest content has digest {digest}, not the requested {pinned}")
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    return FetchedManifest(raw, media_type, pinned or digest)


async def head_manifest(client: RegistryClient, repository: str, reference: str) -> ManifestHead | None:
    """HEAD a manifest; ``None`` when it does not exist (404), never raises for absence."""
    what = _what("checking", client, repository, reference)
    response = await _pull(
        client, "HEAD", repository, reference, accept=MANIFEST_ACCEPT, ok=(200, 404), what=what
    )
    if response.status == 404:
        return None
    digest_header = response.headers.get("Docker-Content-Digest")
    try:
        digest = Digest.parse(digest_header) if digest_header else None
    except AsyncSyncError:
        digest = None
    length = response.headers.get("Content-Length")
    return ManifestHead(
        digest=digest,
        media_type=response.headers.get("Content-Type", "").split(";")[0].strip(),
        size=int(length) if length and length.isdigit() else None,
    )


async def put_manifest(
    client: RegistryClient, repository: str, reference: str, raw: bytes, media_type: str
) -> Digest:
    """PUT manifest bytes unchanged under a tag or digest; returns the digest of the bytes."""
    digest = manifest_digest(raw)
    pinned = _pinned(reference)
    if pinned is not None and pinned != digest:
        raise DigestMismatchError(f"manifest bytes have digest {digest}, not {pinned}")
    what = _what("writing", client, repository, reference)
    await client.request(
        "PUT",
        _path(repository, reference),
        scopes=(repository_scope(repository, "pull", "push"),),
        repository=repository,
        headers={"Content-Type": media_type},
        data=raw,
        ok=(200, 201, 202),
        what=what,
    )
    return digest


async def delete_manifest(client: RegistryClient, repository: str, digest: Digest) -> None:
    """DELETE a manifest by digest (registries refuse deletion by tag)."""
    await client.request(
        "DELETE",
        _path(repository, str(digest)),
        scopes=(repository_scope(repository, "delete"),),
        repository=repository,
        ok=(200, 202),
        what=f"deleting {client.registry}/{repository}@{digest}",
    )
