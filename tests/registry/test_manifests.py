"""Manifest GET/HEAD/PUT/DELETE: real round trips, digest pinning, the 4 MiB cap, absence."""

from __future__ import annotations

import hashlib

import pytest

from asyncsync.digest import Digest
from asyncsync.errors import DigestMismatchError, ManifestError, NotFoundError
from asyncsync.manifest import DOCKER_V2S2, MAX_MANIFEST_SIZE
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.registry.manifests import delete_manifest, get_manifest, head_manifest, put_manifest
from tests.helpers.client_options import options_for
from tests.helpers.fake_registry import Canned, FakeRegistry
from tests.helpers.images import make_image, push_image_sync
from tests.helpers.registry import RegistryServer

V2S2 = {"Content-Type": DOCKER_V2S2}


@pytest.mark.anyio
async def test_put_get_head_delete_round_trip(any_registry: RegistryServer) -> None:
    repo = f"manifests/round-{any_registry.flavour}"
    image = make_image(f"round-{any_registry.flavour}", layers=1, layer_size=128)
    push_image_sync(any_registry, repo, "seed", image)  # blobs (and a first tag)
    async with RegistrySession() as session:
        client = session.client(any_registry.host, options_for(any_registry))
        digest = await put_manifest(client, repo, "v2", image.manifest, image.media_type)
        assert str(digest) == image.digest
        fetched = await get_manifest(client, repo, "v2")
        assert (fetched.raw, fetched.media_type, str(fetched.digest)) == (
            image.manifest,
            DOCKER_V2S2,
            image.digest,
        )
        by_digest = await get_manifest(client, repo, image.digest)
        assert by_digest.raw == image.manifest
        head = await head_manifest(client, repo, "v2")
        assert head is not None and str(head.digest) == image.digest and head.media_type == DOCKER_V2S2
        await delete_manifest(client, repo, digest)
        assert await head_manifest(client, repo, "v2") is None
        assert await head_manifest(client, repo, "seed") is None  # deleting a digest untags every tag
        with pytest.raises(NotFoundError) as info:
            await get_manifest(client, repo, "v2")
    assert info.value.code == "MANIFEST_UNKNOWN"


@pytest.mark.anyio
async def test_put_refuses_bytes_that_do_not_match_a_pinned_digest(registry_anon: RegistryServer) -> None:
    image = make_image("pinned-put", layers=1, layer_size=128)
    async with RegistrySession() as session:
        client = session.client(registry_anon.host, RegistryOptions(tls_verify=False))
        with pytest.raises(DigestMismatchError):
            await put_manifest(client, "manifests/pinned", "sha256:" + "0" * 64, image.manifest, DOCKER_V2S2)


@pytest.mark.anyio
async def test_get_by_digest_verifies_the_bytes() -> None:
    served = make_image("served", layers=1, layer_size=64).manifest
    wanted = "sha256:" + hashlib.sha256(b"something else").hexdigest()
    with FakeRegistry() as fake:
        fake.route(
            "GET", f"/v2/r/manifests/{wanted}", Canned(200, served, {**V2S2, "Docker-Content-Digest": wanted})
        )
        async with RegistrySession() as session:
            client = session.client(fake.host, RegistryOptions(tls_verify=False))
            with pytest.raises(DigestMismatchError, match="not the requested"):
                await get_manifest(client, "r", wanted)


@pytest.mark.anyio
async def test_manifest_size_cap() -> None:
    at_cap = b"{" + b" " * (MAX_MANIFEST_SIZE - 2) + b"}"
    with FakeRegistry() as fake:
        fake.route("GET", "/v2/r/manifests/at-cap", Canned(200, at_cap, V2S2))
        fake.route("GET", "/v2/r/manifests/over", Canned(200, at_cap + b" ", V2S2))
        async with RegistrySession() as session:
            client = session.client(fake.host, RegistryOptions(tls_verify=False))
            fetched = await get_manifest(client, "r", "at-cap")
            assert fetched.digest == Digest.of(at_cap)
            with pytest.raises(ManifestError, match="larger than 4194304 bytes"):
                await get_manifest(client, "r", "over")
        # Refused for good: a too-large manifest is not retried.
        assert len([r for r in fake.requests if r.path == "/v2/r/manifests/over"]) == 1


@pytest.mark.anyio
async def test_head_without_digest_header() -> None:
    with FakeRegistry() as fake:
        fake.route("HEAD", "/v2/r/manifests/t", Canned(200, b"{}", V2S2))
        async with RegistrySession() as session:
            client = session.client(fake.host, RegistryOptions(tls_verify=False))
            head = await head_manifest(client, "r", "t")
    assert head is not None and head.digest is None and head.size == 2
