"""Tag and catalog listing, following RFC 8288 ``Link: <...>; rel="next"`` pagination.

``Link`` headers are parsed by aiohttp (``ClientResponse.links``, see
:func:`asyncsync.http.session.next_link`); a relative target is resolved against the page
that named it.
"""

from __future__ import annotations

import orjson

from asyncsync.errors import ContentError
from asyncsync.registry.auth import repository_scope
from asyncsync.registry.client import RegistryClient

MAX_PAGES = 10_000


async def _paginate(
    client: RegistryClient, path: str, key: str, scopes: tuple[str, ...], repository: str | None, what: str
) -> list[str]:
    items: list[str] = []
    url: str | None = path
    pages = 0
    while url is not None and pages < MAX_PAGES:
        pages += 1
        response = await client.request("GET", url, scopes=scopes, repository=repository, what=what)
        try:
            data = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            raise ContentError(f"{what}: registry answered invalid JSON (HTTP 200)") from None
        if not isinstance(data, dict):
            raise ContentError(f"{what}: registry answered an unexpected document (HTTP 200)")
        values = data.get(key) or []
        if not isinstance(values, list):
            raise ContentError(f"{what}: registry answered a non-list {key!r} (HTTP 200)")
        items.extend(str(v) for v in values)
        url = response.next_link
    return items


async def list_tags(client: RegistryClient, repository: str, *, page_size: int | None = None) -> list[str]:
    """All tags of a repository, in the registry's order, following every ``Link`` page.

    ``page_size`` asks for pages of at most that many tags (``?n=``); the registry chooses
    when it is ``None``. Registries that ignore ``n`` still work: pages are followed by ``Link``.
    """
    query = f"?n={page_size}" if page_size is not None and page_size > 0 else ""
    return await _paginate(
        client,
        f"/v2/{repository}/tags/list{query}",
        "tags",
        (repository_scope(repository, "pull"),),
        repository,
        f"listing tags of {client.registry}/{repository}",
    )


async def list_repositories(client: RegistryClient) -> list[str]:
    """All repositories from ``/v2/_catalog`` (often needs admin rights on real registries)."""
    return await _paginate(
        client, "/v2/_catalog", "repositories", ("registry:catalog:*",), None, f"listing {client.registry}"
    )
