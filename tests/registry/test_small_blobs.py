"""get_blob_bytes: a capped, verified GET of a small blob (image configs), redirects included."""

from __future__ import annotations

import pytest

from asyncsync.digest import Digest
from asyncsync.errors import ContentError, DigestMismatchError, NotFoundError
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.registry.small_blobs import get_blob_bytes
from tests.helpers.client_options import options_for
from tests.helpers.fake_registry import Canned, FakeRegistry
from tests.helpers.images import make_image, push_image_sync
from tests.helpers.registry import RegistryServer

BLOB = b'{"architecture": "amd64", "os": "linux"}'
DIGEST = Digest.of(BLOB)


@pytest.mark.anyio
async def test_reads_a_config_from_every_flavour(any_registry: RegistryServer) -> None:
    repo = f"blobs/config-{any_registry.flavour}"
    image = make_image(f"config-{any_registry.flavour}", layers=1, layer_size=64)
    push_image_sync(any_registry, repo, "v1", image)
    async with RegistrySession() as session:
        client = session.client(any_registry.host, options_for(any_registry))
        data = await get_blob_bytes(
            client, repo, Digest.parse(image.config_digest), expected_size=len(image.config)
        )
    assert data == image.config


@pytest.mark.anyio
async def test_missing_blob_is_not_found(registry_anon: RegistryServer) -> None:
    async with RegistrySession() as session:
        client = session.client(registry_anon.host, RegistryOptions(tls_verify=False))
        with pytest.raises(NotFoundError):
            await get_blob_bytes(client, "blobs/none", DIGEST)


@pytest.mark.anyio
async def test_wrong_bytes_and_oversize_are_refused() -> None:
    with FakeRegistry() as fake:
        fake.route("GET", f"/v2/r/blobs/{DIGEST}", Canned(200, b'{"os": "evil"}'))
        fake.route("GET", f"/v2/big/blobs/{DIGEST}", Canned(200, b"x" * 2048))
        async with RegistrySession() as session:
            client = session.client(fake.host, RegistryOptions(tls_verify=False))
            with pytest.raises(DigestMismatchError, match="content digest is"):
                await get_blob_bytes(client, "r", DIGEST)
            with pytest.raises(ContentError, match="larger than the 1024 byte limit"):
                await get_blob_bytes(client, "big", DIGEST, 1024)
            with pytest.raises(ContentError, match="larger than its descriptor's size 100"):
                await get_blob_bytes(client, "big", DIGEST, expected_size=100)


@pytest.mark.anyio
async def test_redirect_is_followed_without_the_registry_credentials() -> None:
    with FakeRegistry() as storage, FakeRegistry() as registry:
        storage.route("GET", "/store/blob", Canned(200, BLOB))
        registry.route(
            "GET",
            f"/v2/r/blobs/{DIGEST}",
            Canned(307, b"", {"Location": f"{storage.url}/store/blob?sig=s3cret"}),
        )
        async with RegistrySession() as session:
            client = session.client(registry.host, RegistryOptions(tls_verify=False, registry_token="tok"))
            assert await get_blob_bytes(client, "r", DIGEST) == BLOB
        (to_registry,) = [r for r in registry.requests if r.path.startswith("/v2/r/")]
        (to_storage,) = storage.requests
    assert to_registry.headers.get("Authorization") == "Bearer tok"
    assert "Authorization" not in to_storage.headers
    assert to_storage.path == "/store/blob?sig=s3cret"
