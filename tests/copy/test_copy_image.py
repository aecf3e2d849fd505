"""The copy engine against real docker-registry processes: cross-registry, mounts, auth, multi-arch."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from asyncsync.copy import BlobCoordinator, CopyOptions
from asyncsync.digest import Digest
from asyncsync.errors import UsageError
from asyncsync.manifest import OCI_INDEX, OCI_MANIFEST, Platform
from asyncsync.registry.client import RegistryOptions
from tests.copy.support import ScriptedSource, copy_run, ref, registry_options, serve_scripted
from tests.helpers import skopeo
from tests.helpers.images import (
    blob_exists,
    get_manifest,
    make_image,
    make_multiarch,
    push_image,
    push_index,
)
from tests.helpers.registry import RegistryServer

UPLOADS = r"/v2/{repo}/blobs/uploads/.*"

pytestmark = pytest.mark.anyio


def _uploads(repo: str) -> str:
    return UPLOADS.format(repo=repo)


async def test_copy_between_registries_keeps_bytes_and_digest(
    registry_anon: RegistryServer, registry_basic: RegistryServer
) -> None:
    image = make_image("between", layers=3, layer_size=50_000)
    await push_image(registry_anon, "between/src", "v1", image)
    async with copy_run() as run:
        result = await run.copy(
            ref(registry_anon, "between/src:v1"),
            registry_options(registry_anon),
            ref(registry_basic, "between/dst:v1"),
            registry_options(registry_basic),
        )
    assert str(result.digest) == image.digest
    assert result.stats.blobs_copied == 4
    assert result.stats.bytes_uploaded == sum(len(b) for b in image.blobs().values())
    # skopeo reads back the very bytes that were pushed, so the digest is unchanged.
    assert skopeo.inspect_raw(registry_basic, "between/dst:v1") == image.manifest
    assert skopeo.inspect(registry_basic, "between/dst:v1")["Digest"] == image.digest


async def test_copy_within_one_registry_mounts_instead_of_uploading(registry_anon: RegistryServer) -> None:
    image = make_image("within", layers=2)
    await push_image(registry_anon, "within/src", "v1", image)
    registry_anon.reset_log()
    async with copy_run() as run:
        result = await run.copy(
            ref(registry_anon, "within/src:v1"),
            registry_options(registry_anon),
            ref(registry_anon, "within/dst:v1"),
            registry_options(registry_anon),
        )
    assert result.stats.blobs_mounted == 3 and result.stats.blobs_copied == 0
    # Only a mount answers a POST to the uploads endpoint with 201; a plain upload start is 202.
    assert registry_anon.count("POST", _uploads("within/dst"), status=201) == 3
    assert registry_anon.count("POST", _uploads("within/dst"), status=202) == 0
    assert registry_anon.count("PUT", _uploads("within/dst")) == 0
    assert registry_anon.count("PATCH", _uploads("within/dst")) == 0
    assert registry_anon.count("GET", r"/v2/within/src/blobs/.*") == 0
    assert skopeo.inspect(registry_anon, "within/dst:v1")["Digest"] == image.digest


async def test_copy_through_token_auth_asks_for_mount_scopes(registry_token: RegistryServer) -> None:
    image = make_image("token-mount", layers=1)
    await push_image(registry_token, "tok/src", "v1", image)
    assert registry_token.token_service is not None
    registry_token.token_service.reset()
    registry_token.reset_log()
    async with copy_run() as run:
        result = await run.copy(
            ref(registry_token, "tok/src:v1"),
            registry_options(registry_token),
            ref(registry_token, "tok/dst:v1"),
            registry_options(registry_token),
        )
    assert result.stats.blobs_mounted == 2
    assert registry_token.count("POST", _uploads("tok/dst"), status=201) == 2
    scope_sets = [set(r.scopes) for r in registry_token.token_service.requests if r.status == 200]
    assert {"repository:tok/dst:pull,push", "repository:tok/src:pull"} in scope_sets
    assert skopeo.inspect(registry_token, "tok/dst:v1")["Digest"] == image.digest


async def test_second_copy_mounts_from_where_the_first_uploaded(
    registry_anon: RegistryServer, registry_basic: RegistryServer
) -> None:
    """Across copies of one run the coordinator remembers where a blob went and mounts from there."""
    image = make_image("coord", layers=2)
    await push_image(registry_anon, "coord/src", "v1", image)
    async with copy_run() as run:
        src = ref(registry_anon, "coord/src:v1")
        first = await run.copy(
            src,
            registry_options(registry_anon),
            ref(registry_basic, "coord/a:v1"),
            registry_options(registry_basic),
        )
        second = await run.copy(
            src,
            registry_options(registry_anon),
            ref(registry_basic, "coord/b:v1"),
            registry_options(registry_basic),
        )
        exported = run.env.coordinator.export()
    assert first.stats.blobs_copied == 3
    assert second.stats.blobs_mounted == 3 and second.stats.blobs_copied == 0
    assert exported[registry_basic.host][image.config_digest] == ["coord/a", "coord/b"]


async def test_copy_into_a_local_registry_with_stale_location_uses_202_session(
    registry_anon: RegistryServer, registry_basic: RegistryServer
) -> None:
    """Cross-registry copy with a stale mount candidate: POST ?mount= answers 202 (the real registry
    does this when the ``from`` repository lacks the blob) and that session uploads the blob."""
    image = make_image("stale", layers=1)
    await push_image(registry_anon, "stale/src", "v1", image)
    coordinator = BlobCoordinator()
    for digest in image.blobs():
        coordinator.record(registry_basic.host, "stale/nothing-here", Digest.parse(digest))
    registry_basic.reset_log()
    async with copy_run(coordinator=coordinator) as run:
        result = await run.copy(
            ref(registry_anon, "stale/src:v1"),
            registry_options(registry_anon),
            ref(registry_basic, "stale/dst:v1"),
            registry_options(registry_basic),
        )
    assert result.stats.blobs_copied == 2
    uploads = _uploads("stale/dst")
    # One POST per blob (the refused mount, 202), then the PUT on its session; no fresh POST.
    assert registry_basic.count("POST", uploads, status=202) == 2
    assert registry_basic.count("POST", uploads) == 2
    assert registry_basic.count("PUT", uploads, status=201) == 2
    assert registry_basic.count("DELETE", uploads) == 0
    assert skopeo.inspect(registry_basic, "stale/dst:v1")["Digest"] == image.digest


async def test_multi_arch_all_copies_every_instance_and_the_index(
    registry_anon: RegistryServer, registry_basic: RegistryServer
) -> None:
    index = make_multiarch("all-arch", layers=1)
    await push_index(registry_anon, "multi/src", "v1", index)
    async with copy_run() as run:
        result = await run.copy(
            ref(registry_anon, "multi/src:v1"),
            registry_options(registry_anon),
            ref(registry_basic, "multi/all:v1"),
            registry_options(registry_basic),
            CopyOptions(multi_arch="all"),
        )
    assert str(result.digest) == index.digest
    assert result.stats.manifests_written == 3
    assert skopeo.inspect_raw(registry_basic, "multi/all:v1") == index.manifest
    for image in index.images:
        _, raw = await get_manifest(registry_basic, "multi/all", image.digest)
        assert raw == image.manifest
        for digest in image.blobs():
            assert await blob_exists(registry_basic, "multi/all", digest)


async def test_multi_arch_system_copies_one_instance_and_tags_it(
    registry_anon: RegistryServer, registry_basic: RegistryServer
) -> None:
    index = make_multiarch("sys-arch", layers=1)
    await push_index(registry_anon, "multi/sys", "v1", index)
    arm = next(image for image in index.images if image.architecture == "arm64")
    amd = next(image for image in index.images if image.architecture == "amd64")
    async with copy_run() as run:
        result = await run.copy(
            ref(registry_anon, "multi/sys:v1"),
            registry_options(registry_anon),
            ref(registry_basic, "multi/sys-arm:v1"),
            registry_options(registry_basic),
            CopyOptions(multi_arch="system", platform=Platform("linux", "arm64", "v8")),
        )
    assert str(result.digest) == arm.digest
    assert skopeo.inspect_raw(registry_basic, "multi/sys-arm:v1") == arm.manifest
    for digest in amd.blobs():
        assert not await blob_exists(registry_basic, "multi/sys-arm", digest)


async def test_format_oci_converts_image_and_skopeo_reads_it(
    registry_anon: RegistryServer, registry_basic: RegistryServer
) -> None:
    image = make_image("to-oci", layers=2)
    await push_image(registry_anon, "fmt/src", "v1", image)
    async with copy_run() as run:
        result = await run.copy(
            ref(registry_anon, "fmt/src:v1"),
            registry_options(registry_anon),
            ref(registry_basic, "fmt/oci:v1"),
            registry_options(registry_basic),
            CopyOptions(format="oci"),
        )
    assert str(result.digest) != image.digest and result.media_type == OCI_MANIFEST
    raw = skopeo.inspect_raw(registry_basic, "fmt/oci:v1")
    assert str(Digest.of(raw)) == str(result.digest)
    document = orjson.loads(raw)
    assert document["mediaType"] == OCI_MANIFEST
    assert document["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert {layer["digest"] for layer in document["layers"]} == set(image.layer_digests)
    info = skopeo.inspect(registry_basic, "fmt/oci:v1")
    assert info["Digest"] == str(result.digest)
    assert info["Layers"] == image.layer_digests


async def test_format_oci_with_all_converts_the_index_and_its_instances(
    registry_anon: RegistryServer, registry_basic: RegistryServer
) -> None:
    index = make_multiarch("index-to-oci", layers=1)
    await push_index(registry_anon, "fmt/index", "v1", index)
    async with copy_run() as run:
        result = await run.copy(
            ref(registry_anon, "fmt/index:v1"),
            registry_options(registry_anon),
            ref(registry_basic, "fmt/index-oci:v1"),
            registry_options(registry_basic),
            CopyOptions(multi_arch="all", format="oci"),
        )
    assert result.media_type == OCI_INDEX
    document = orjson.loads(skopeo.inspect_raw(registry_basic, "fmt/index-oci:v1"))
    assert [entry["mediaType"] for entry in document["manifests"]] == [OCI_MANIFEST, OCI_MANIFEST]
    assert {entry["digest"] for entry in document["manifests"]}.isdisjoint(i.digest for i in index.images)
    for entry in document["manifests"]:
        child = orjson.loads(skopeo.inspect_raw(registry_basic, f"fmt/index-oci@{entry['digest']}"))
        assert child["mediaType"] == OCI_MANIFEST


async def test_format_change_with_preserve_digests_is_a_usage_error(
    registry_anon: RegistryServer, registry_basic: RegistryServer
) -> None:
    image = make_image("preserve", layers=1)
    await push_image(registry_anon, "fmt/preserve", "v1", image)
    async with copy_run() as run:
        with pytest.raises(UsageError, match="cannot preserve digests"):
            await run.copy(
                ref(registry_anon, "fmt/preserve:v1"),
                registry_options(registry_anon),
                ref(registry_basic, "fmt/preserve:v1"),
                registry_options(registry_basic),
                CopyOptions(format="oci", preserve_digests=True),
            )
    with pytest.raises(skopeo.SkopeoError):
        skopeo.inspect_raw(registry_basic, "fmt/preserve:v1")


async def test_shared_blob_is_uploaded_once_for_concurrent_instances(
    registry_anon: RegistryServer, registry_basic: RegistryServer
) -> None:
    """Two instances sharing a layer, copied concurrently: one PUT for the shared layer."""
    from tests.helpers.images import make_index, make_layer

    shared = make_layer("shared-layer", 20_000)
    images = [
        make_image(f"shared/{arch}", layers=1, arch=arch, shared_layers=[shared])
        for arch in ("amd64", "arm64")
    ]
    index = make_index(images)
    await push_index(registry_anon, "shared/src", "v1", index)
    registry_basic.reset_log()
    async with copy_run() as run:
        result = await run.copy(
            ref(registry_anon, "shared/src:v1"),
            registry_options(registry_anon),
            ref(registry_basic, "shared/dst:v1"),
            registry_options(registry_basic),
            CopyOptions(multi_arch="all"),
        )
    distinct = len(index.blobs())
    assert result.stats.blobs_copied == distinct
    assert registry_basic.count("PUT", _uploads("shared/dst"), status=201) == distinct
    assert registry_anon.count("GET", r"/v2/shared/src/blobs/.*") >= distinct


async def test_index_only_writes_just_the_index(registry_anon: RegistryServer) -> None:
    index = make_multiarch("index-only", layers=1)
    await push_index(registry_anon, "multi/io-src", "v1", index)
    # Children already at the destination (by digest), as index-only expects.
    for image in index.images:
        await push_image(registry_anon, "multi/io-dst", None, image)
    registry_anon.reset_log()
    async with copy_run() as run:
        result = await run.copy(
            ref(registry_anon, "multi/io-src:v1"),
            registry_options(registry_anon),
            ref(registry_anon, "multi/io-dst:v1"),
            registry_options(registry_anon),
            CopyOptions(multi_arch="index-only"),
        )
    assert str(result.digest) == index.digest
    assert registry_anon.count("PUT", r"/v2/multi/io-dst/manifests/.*") == 1
    assert registry_anon.count(None, r"/v2/multi/io-dst/blobs/.*") == 0


async def test_copy_to_a_tls_registry(registry_anon: RegistryServer, registry_tls: RegistryServer) -> None:
    image = make_image("to-tls", layers=1)
    await push_image(registry_anon, "tls/src", "v1", image)
    async with copy_run() as run:
        result = await run.copy(
            ref(registry_anon, "tls/src:v1"),
            registry_options(registry_anon),
            ref(registry_tls, "tls/dst:v1"),
            registry_options(registry_tls),
        )
    assert str(result.digest) == image.digest
    assert skopeo.inspect(registry_tls, "tls/dst:v1")["Digest"] == image.digest


async def test_foreign_layers_are_not_copied(make_registry: Any) -> None:
    """A layer with ``urls`` and the foreign media type is left out (skopeo does the same); the
    manifest still references it. Served by the scripted source, which never gets asked for it.
    distribution 2.8 refuses layer URLs unless ``validation.manifests.urls.allow`` permits them."""
    registry_anon = make_registry(
        "anon", extra_config={"validation": {"manifests": {"urls": {"allow": ["^https?://"]}}}}
    )
    image = make_image("foreign", layers=1)
    foreign_digest = "sha256:" + "f" * 64
    document = orjson.loads(image.manifest)
    document["layers"].insert(
        0,
        {
            "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            "size": 1234,
            "digest": foreign_digest,
            "urls": ["https://example.invalid/layer.tar.gz"],
        },
    )
    raw = orjson.dumps(document)
    source = ScriptedSource({"v1": (image.media_type, raw)}, image.blobs())
    async with serve_scripted(source), copy_run() as run:
        result = await run.copy(
            ref(source.host, "foreign/src:v1"),
            RegistryOptions(tls_verify=False),
            ref(registry_anon, "foreign/dst:v1"),
            registry_options(registry_anon),
        )
    assert str(result.digest) == str(Digest.of(raw))
    assert foreign_digest not in [digest for digest, _ in source.gets]
    assert result.stats.blobs_copied == 2
    assert any("foreign layer" in note for note in result.stats.notes)
    assert skopeo.inspect_raw(registry_anon, "foreign/dst:v1") == raw
