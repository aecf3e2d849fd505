"""delete_image: tag -> digest resolution, naming the other tags removed, absence and pinned digests."""

from __future__ import annotations

import pytest

from asyncsync.errors import NotFoundError
from asyncsync.reference import parse_reference
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.retry import RetryPolicy
from asyncsync.transports.base import SideOptions, TransportContext
from asyncsync.transports.docker.delete import delete_image
from asyncsync.transports.docker.reference import DockerReference
from tests.helpers.client_options import options_for
from tests.helpers.fake_registry import Canned, FakeRegistry
from tests.helpers.images import list_tags_sync, make_image, push_image_sync
from tests.helpers.registry import RegistryServer


def _ref(server_host: str, text: str) -> DockerReference:
    return DockerReference(parse_reference(f"{server_host}/{text}"))


def _ctx(session: RegistrySession, options: RegistryOptions) -> TransportContext:
    return TransportContext(session=session, options=SideOptions(registry=options), retry=RetryPolicy())


@pytest.mark.anyio
async def test_delete_tag_names_the_other_tags(any_registry: RegistryServer) -> None:
    repo = f"delete/shared-{any_registry.flavour}"
    shared = make_image(f"shared-{any_registry.flavour}", layers=1, layer_size=64)
    other = make_image(f"other-{any_registry.flavour}", layers=1, layer_size=64)
    for tag in ("v1", "latest", "stable"):
        digest = push_image_sync(any_registry, repo, tag, shared)
    push_image_sync(any_registry, repo, "other", other)
    async with RegistrySession() as session:
        notes = await delete_image(
            _ref(any_registry.host, f"{repo}:v1"), _ctx(session, options_for(any_registry))
        )
    assert notes == [
        f"tag {any_registry.host}/{repo}:latest also pointed at {digest} and was removed too",
        f"tag {any_registry.host}/{repo}:stable also pointed at {digest} and was removed too",
    ]
    assert list_tags_sync(any_registry, repo) == ["other"]


@pytest.mark.anyio
async def test_delete_by_digest_and_only_tag(registry_anon: RegistryServer) -> None:
    repo = "delete/by-digest"
    digest = push_image_sync(registry_anon, repo, "only", make_image("by-digest", layers=1, layer_size=64))
    options = RegistryOptions(tls_verify=False)
    async with RegistrySession() as session:
        notes = await delete_image(_ref(registry_anon.host, f"{repo}@{digest}"), _ctx(session, options))
    assert notes == [f"tag {registry_anon.host}/{repo}:only also pointed at {digest} and was removed too"]
    assert list_tags_sync(registry_anon, repo) == []
    single = push_image_sync(registry_anon, repo, "solo", make_image("solo", layers=1, layer_size=64))
    assert single
    async with RegistrySession() as session:
        assert await delete_image(_ref(registry_anon.host, f"{repo}:solo"), _ctx(session, options)) == []


@pytest.mark.anyio
async def test_missing_image_is_not_found_and_nothing_is_deleted(registry_anon: RegistryServer) -> None:
    repo = "delete/missing"
    push_image_sync(registry_anon, repo, "keep", make_image("keep", layers=1, layer_size=64))
    registry_anon.reset_log()
    async with RegistrySession() as session:
        ctx = _ctx(session, RegistryOptions(tls_verify=False))
        with pytest.raises(NotFoundError, match="not found"):
            await delete_image(_ref(registry_anon.host, f"{repo}:absent"), ctx)
        with pytest.raises(NotFoundError, match="not found"):
            await delete_image(_ref(registry_anon.host, f"{repo}@sha256:{'0' * 64}"), ctx)
    assert registry_anon.count("DELETE", r".*") == 0
    assert list_tags_sync(registry_anon, repo) == ["keep"]


@pytest.mark.anyio
async def test_head_without_digest_falls_back_to_get_and_tag_list_refusal_is_tolerated() -> None:
    image = make_image("fallback", layers=1, layer_size=64)
    with FakeRegistry() as fake:
        fake.route(
            "HEAD", "/v2/r/manifests/t", Canned(200, image.manifest, {"Content-Type": image.media_type})
        )
        fake.route(
            "GET", "/v2/r/manifests/t", Canned(200, image.manifest, {"Content-Type": image.media_type})
        )
        fake.route("GET", "/v2/r/tags/list", Canned(403, b'{"errors":[{"code":"DENIED","message":"no"}]}'))
        fake.route("DELETE", f"/v2/r/manifests/{image.digest}", Canned(202))
        async with RegistrySession() as session:
            notes = await delete_image(
                _ref(fake.host, "r:t"), _ctx(session, RegistryOptions(tls_verify=False))
            )
        methods = [(r.method, r.path) for r in fake.requests if r.path.startswith("/v2/r/")]
    assert notes == []
    assert methods == [
        ("HEAD", "/v2/r/manifests/t"),
        ("GET", "/v2/r/manifests/t"),
        ("GET", "/v2/r/tags/list"),
        ("DELETE", f"/v2/r/manifests/{image.digest}"),
    ]
