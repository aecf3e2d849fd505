"""Reading a small blob (an image config) whole into memory: capped, digest-verified, retried.

Large blobs (layers) are streamed by the copy engine; this module is for documents that a
command needs to parse, where holding the bytes is the point. The cap is enforced while
reading, so an oversized or endless answer never fills memory, and the bytes are returned
only after their digest matched: a caller never sees unverified content.
"""

from __future__ import annotations

from asyncsync.digest import Digest, DigestVerifier
from asyncsync.errors import ContentError
from asyncsync.http.errors import read_capped
from asyncsync.registry.auth import repository_scope
from asyncsync.registry.client import RegistryClient

#: containers/image caps config blobs at 4 MiB (iolimits.MaxConfigBodySize); so do we.
MAX_CONFIG_SIZE = 4 * 1024 * 1024


async def get_blob_bytes(
    client: RegistryClient,
    repository: str,
    digest: Digest,
    max_size: int = MAX_CONFIG_SIZE,
    *,
    expected_size: int | None = None,
    what: str = "",
) -> bytes:
    """GET ``/v2/<repository>/blobs/<digest>`` into memory and return the verified bytes.

    Redirects (to storage backends or CDNs) are followed by :meth:`RegistryClient.open`,
    which drops ``Authorization`` when the origin changes. Raises
    :class:`~asyncsync.errors.ContentError` when the blob is larger than ``max_size`` (or
    than ``expected_size``, the descriptor's size, when given) and
    :class:`~asyncsync.errors.DigestMismatchError` when the bytes do not hash to ``digest``.
    Temporary failures are retried with the session's policy; content errors are not.
    """
    what = what or f"reading blob {client.registry}/{repository}@{digest}"
    limit = max_size if expected_size is None or expected_size < 0 else min(max_size, expected_size)

    async def attempt() -> bytes:
        async with client.open(
            "GET",
            f"/v2/{repository}/blobs/{digest}",
            scopes=(repository_scope(repository, "pull"),),
            repository=repository,
            what=what,
        ) as response:
            body, truncated = await read_capped(response, limit)
        if truncated:
            if expected_size is not None and expected_size < max_size:
                raise ContentError(f"{what}: blob is larger than its descriptor's size {expected_size}")
            raise ContentError(f"{what}: blob is larger than the {max_size} byte limit")
        verifier = DigestVerifier(digest, expected_size, what=f"blob in {client.registry}/{repository}")
        verifier.update(body)
        verifier.finish()
        return body

    return await client.session.retrying(attempt, what)
