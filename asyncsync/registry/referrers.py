"""The OCI 1.1 referrers API: ``GET /v2/<name>/referrers/<digest>[?artifactType=...]``.

A registry with the API answers an image index (``application/vnd.oci.image.index.v1+json``;
some serve it as ``application/json`` or, wrongly, as a Docker manifest list: all three are read)
listing the manifests whose ``subject`` is the digest, possibly over several pages joined by
``Link: <...>; rel="next"`` (read with aiohttp's own Link parser). A registry without it answers
404 (distribution 2.8), 405 or 501: that is a return value (``None``), not an error.

``artifact_type`` asks the registry to filter; registries may ignore it (they say they applied
it in ``OCI-Filters-Applied``), so callers filter again. Bodies are capped like manifests.

:func:`put_referrer` writes a manifest with a ``subject`` by digest and tells whether the
registry answered ``OCI-Subject`` (the spec's way of saying "I indexed it: no fallback tag
needed"): the API is then known from a write the copy makes anyway, without a probe.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from asyncsync.digest import Digest
from asyncsync.errors import ContentError
from asyncsync.manifest import MAX_MANIFEST_SIZE, manifest_digest, referrers_entries
from asyncsync.registry.auth import repository_scope
from asyncsync.registry.client import RegistryClient

#: Statuses that mean "this registry has no referrers API".
NO_API = (404, 405, 501)
#: Pages followed at most (a loop of Links, or a hostile registry).
MAX_PAGES = 100
_ACCEPT = "application/vnd.oci.image.index.v1+json, application/json"


async def list_referrers(
    client: RegistryClient, repository: str, subject: Digest, *, artifact_type: str | None = None
) -> list[Any] | None:
    """Every entry (raw JSON objects) the referrers API lists for ``subject``, all pages followed;
    ``None`` when the registry has no referrers API."""
    query = f"?artifactType={quote(artifact_type, safe='')}" if artifact_type else ""
    what = f"listing referrers of {client.registry}/{repository}@{subject}"
    url: str | None = f"/v2/{repository}/referrers/{subject}{query}"
    entries: list[Any] = []
    pages = 0
    while url is not None:
        pages += 1
        if pages > MAX_PAGES:
            raise ContentError(f"{what}: more than {MAX_PAGES} pages of referrers")
        response = await client.request(
            "GET",
            url,
            scopes=(repository_scope(repository, "pull"),),
            repository=repository,
            headers={"Accept": _ACCEPT},
            ok=(200, *NO_API),
            what=what,
            max_body=MAX_MANIFEST_SIZE,
        )
        if response.status in NO_API:
            return None if pages == 1 else entries
        entries.extend(referrers_entries(response.body, what))
        url = response.next_link
    return entries


#: The header a registry with the referrers API answers a manifest PUT with ``subject`` with.
OCI_SUBJECT = "OCI-Subject"


async def put_referrer(
    client: RegistryClient, repository: str, raw: bytes, media_type: str, digest: Digest
) -> bool:
    """PUT a manifest with a ``subject`` by its digest (bytes unchanged); ``True`` when the registry
    answered ``OCI-Subject`` (it has the referrers API), ``False`` when it did not."""
    if manifest_digest(raw) != digest:
        raise ContentError(f"manifest bytes have digest {manifest_digest(raw)}, not {digest}")
    response = await client.request(
        "PUT",
        f"/v2/{repository}/manifests/{digest}",
        scopes=(repository_scope(repository, "pull", "push"),),
        repository=repository,
        headers={"Content-Type": media_type},
        data=raw,
        ok=(200, 201, 202),
        what=f"writing manifest {client.registry}/{repository}@{digest}",
    )
    return OCI_SUBJECT.lower() in {name.lower() for name in response.headers}
