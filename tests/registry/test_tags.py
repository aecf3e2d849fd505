"""Tag listing: Link pagination against a real registry, and malformed answers from a scripted one."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from aiohttp import web

from asyncsync.errors import ContentError, NotFoundError
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.registry.tags import list_tags
from tests.helpers.client_options import options_for
from tests.helpers.fake_registry import Canned, FakeRegistry
from tests.helpers.images import make_image, push_image_sync
from tests.helpers.registry import RegistryServer

JSON = {"Content-Type": "application/json"}


@pytest.mark.anyio
async def test_real_registry_lists_every_tag(any_registry: RegistryServer) -> None:
    repo = f"tags/all-{any_registry.flavour}"
    image = make_image(f"all-{any_registry.flavour}", layers=1, layer_size=128)
    tags = ["a", "b", "c", "d", "e"]
    for tag in tags:
        push_image_sync(any_registry, repo, tag, image)
    async with RegistrySession() as session:
        client = session.client(any_registry.host, options_for(any_registry))
        listed = await list_tags(client, repo, page_size=2)
    # distribution 2.8 ignores ?n= on tags/list (only _catalog paginates) and does not sort.
    assert sorted(listed) == tags


def _paginating(tags: list[str]) -> Callable[[web.Request], Canned]:
    """A tags/list handler that pages like distribution 3: ``n`` per page, ``last`` cursor, relative Link."""

    def handler(request: web.Request) -> Canned:
        size = int(request.query.get("n", "100"))
        last = request.query.get("last", "")
        rest = [t for t in tags if t > last]
        page, more = rest[:size], rest[size:]
        headers = dict(JSON)
        if more:
            headers["Link"] = f'</v2/r/tags/list?n={size}&last={page[-1]}>; rel="next"'
        return Canned(200, json.dumps({"name": "r", "tags": page}).encode(), headers)

    return handler


@pytest.mark.anyio
async def test_pagination_follows_every_link() -> None:
    tags = [f"t{i:02d}" for i in range(7)]
    with FakeRegistry() as fake:
        fake.route("GET", "/v2/r/tags/list", _paginating(tags))
        async with RegistrySession() as session:
            client = session.client(fake.host, RegistryOptions(tls_verify=False))
            assert await list_tags(client, "r", page_size=3) == tags
            assert await list_tags(client, "r") == tags
        pages = [r.path for r in fake.requests if r.path.startswith("/v2/r/")]
    assert pages == [
        "/v2/r/tags/list?n=3",
        "/v2/r/tags/list?n=3&last=t02",
        "/v2/r/tags/list?n=3&last=t05",
        "/v2/r/tags/list",
    ]


@pytest.mark.anyio
async def test_link_headers_are_read_by_aiohttps_parser() -> None:
    """``rel=next`` unquoted beside a ``prev`` link in one header, then an absolute link."""
    pages = {
        "": (["a"], '</v2/r/tags/list?last=z>; rel="prev", </v2/r/tags/list?last=a>; rel=next'),
        "a": (["b"], None),
        "b": (["c"], None),
    }

    def handler(request: web.Request) -> Canned:
        tags, link = pages[request.query.get("last", "")]
        headers = dict(JSON)
        if link is not None:
            headers["Link"] = link
        elif tags == ["b"]:
            headers["Link"] = f'<{request.url.with_query(last="b")}>; rel="next"'
        return Canned(200, json.dumps({"name": "r", "tags": tags}).encode(), headers)

    with FakeRegistry() as fake:
        fake.route("GET", "/v2/r/tags/list", handler)
        async with RegistrySession() as session:
            client = session.client(fake.host, RegistryOptions(tls_verify=False))
            assert await list_tags(client, "r") == ["a", "b", "c"]
        pages_asked = [r.path for r in fake.requests if r.path.startswith("/v2/r/")]
    assert pages_asked == ["/v2/r/tags/list", "/v2/r/tags/list?last=a", "/v2/r/tags/list?last=b"]


@pytest.mark.anyio
async def test_unknown_repository_is_not_found(registry_anon: RegistryServer) -> None:
    async with RegistrySession() as session:
        client = session.client(registry_anon.host, RegistryOptions(tls_verify=False))
        with pytest.raises(NotFoundError) as info:
            await list_tags(client, "tags/never-pushed")
    assert info.value.code == "NAME_UNKNOWN"


@pytest.mark.anyio
async def test_absolute_links_and_null_tags() -> None:
    with FakeRegistry() as fake:
        fake.route(
            "GET",
            "/v2/r/tags/list",
            lambda request: (
                Canned(
                    200,
                    b'{"name":"r","tags":["x"]}',
                    {**JSON, "Link": f'<{fake.url}/v2/r/page2>; rel="next"'},
                )
                if "last" not in request.query
                else Canned(500)
            ),
        )
        fake.route("GET", "/v2/r/page2", Canned(200, b'{"name":"r","tags":null}', JSON))
        async with RegistrySession() as session:
            client = session.client(fake.host, RegistryOptions(tls_verify=False))
            assert await list_tags(client, "r") == ["x"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>oops</html>", "registry answered invalid JSON"),
        (b"[1,2]", "unexpected document"),
        (json.dumps({"tags": "latest"}).encode(), "non-list 'tags'"),
    ],
)
async def test_garbage_answers_are_errors(body: bytes, message: str) -> None:
    with FakeRegistry() as fake:
        fake.route("GET", "/v2/r/tags/list", Canned(200, body, JSON))
        async with RegistrySession() as session:
            client = session.client(fake.host, RegistryOptions(tls_verify=False))
            with pytest.raises(ContentError, match=message) as info:
                await list_tags(client, "r")
    # What the server said (200) rather than an invented 502; not retried: the same bytes would come.
    assert "listing tags of" in str(info.value) and "HTTP 200" in str(info.value)
    assert not info.value.temporary
