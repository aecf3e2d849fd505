"""The copy engine's layer (re)compression against real docker-registry processes and oci: layouts.

What skopeo 1.9.3 does is the reference (checked by hand with skopeo 1.9.3, and in
tests/cli/test_copy_compression.py with the real tools): uncompressed layers are gzipped on a
push, ``--dest-compress-format`` recompresses layers compressed otherwise, zstd turns a Docker
v2s2 image into an OCI one on a registry, ``diff_ids`` stay, and a layer the destination already
holds is reused as it is unless the format is forced.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import anyio
import orjson
import pytest

from asyncsync.copy import CopyOptions, CopyResult, copy_image
from asyncsync.copy.layer_format import LayerCompression
from asyncsync.copy.recompress_cache import INDEX_FILE
from asyncsync.copy.run import copy_between
from asyncsync.errors import ContentError, ManifestError
from asyncsync.manifest import DOCKER_LIST, OCI_INDEX
from asyncsync.transports.base import SideOptions
from asyncsync.transports.oci_layout.reference import parse_oci_reference
from tests.copy.compression_support import (
    DOCKER_LAYER_GZIP,
    DOCKER_LAYER_TAR,
    DOCKER_MANIFEST,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    diff_id,
    fetch_blob,
    plain,
    push_relayered,
    relayered,
    zstd,
)
from tests.copy.support import FAST_RETRY, copy_run, ref, registry_options
from tests.helpers.images import (
    blob_exists,
    get_manifest,
    list_tags,
    make_image,
    make_multiarch,
    push_image,
    push_index,
)
from tests.helpers.registry import RegistryServer

pytestmark = pytest.mark.anyio

ZSTD = CopyOptions(compression=LayerCompression("zstd"))


async def _layers(server: RegistryServer, repo: str, tag: str) -> tuple[str, dict]:  # type: ignore[type-arg]
    media_type, raw = await get_manifest(server, repo, tag)
    return media_type, json.loads(raw)


async def test_zstd_push_turns_docker_v2s2_into_oci_with_zstd_layers_and_the_same_diff_ids(
    registry_anon: RegistryServer, registry_basic: RegistryServer
) -> None:
    image = make_image("zstd-push", layers=2, layer_size=60_000)
    await push_image(registry_anon, "zstd/src", "v1", image)
    async with copy_run() as run:
        result = await run.copy(
            ref(registry_anon, "zstd/src:v1"),
            registry_options(registry_anon),
            ref(registry_basic, "zstd/dst:v1"),
            registry_options(registry_basic),
            ZSTD,
        )
    media_type, manifest = await _layers(registry_basic, "zstd/dst", "v1")
    assert media_type == OCI_MANIFEST == result.media_type
    assert manifest["config"]["digest"] == image.config_digest  # config bytes, so diff_ids, unchanged
    assert [layer["mediaType"] for layer in manifest["layers"]] == [OCI_LAYER_ZSTD] * 2
    for layer, expected in zip(manifest["layers"], image.diff_ids, strict=True):
        data = await fetch_blob(registry_basic, "zstd/dst", layer["digest"])
        assert data[:4] == b"\x28\xb5\x2f\xfd" and len(data) == layer["size"]
        assert diff_id(data) == expected
    assert result.stats.blobs_copied == 3


async def test_uncompressed_layers_are_gzipped_on_a_push_and_keep_docker_v2s2(
    registry_anon: RegistryServer, registry_basic: RegistryServer
) -> None:
    image = relayered(
        make_image("plain-push", layers=2, layer_size=30_000), plain, DOCKER_LAYER_TAR, oci=False
    )
    await push_relayered(registry_anon, "plain/src", "v1", image)
    async with copy_run() as run:
        await run.copy(
            ref(registry_anon, "plain/src:v1"),
            registry_options(registry_anon),
            ref(registry_basic, "plain/dst:v1"),
            registry_options(registry_basic),
        )
    media_type, manifest = await _layers(registry_basic, "plain/dst", "v1")
    assert media_type == DOCKER_MANIFEST
    assert [layer["mediaType"] for layer in manifest["layers"]] == [DOCKER_LAYER_GZIP] * 2
    for layer, source in zip(manifest["layers"], image.layer_digests, strict=True):
        data = await fetch_blob(registry_basic, "plain/dst", layer["digest"])
        assert data[:2] == b"\x1f\x8b"
        assert diff_id(data) == source  # an uncompressed layer's digest is its diff_id


async def test_a_layer_shared_by_many_images_is_recompressed_once_per_run(
    registry_anon: RegistryServer, registry_basic: RegistryServer
) -> None:
    base = make_image("shared-base", layers=1, layer_size=40_000).layers[0]
    images = [make_image(f"shared-{n}", layers=1, layer_size=20_000, shared_layers=[base]) for n in range(3)]
    for n, image in enumerate(images):
        await push_image(registry_anon, f"shared/src{n}", "v1", image)
    async with copy_run() as run:
        for n in range(3):
            await run.copy(
                ref(registry_anon, f"shared/src{n}:v1"),
                registry_options(registry_anon),
                ref(registry_basic, f"shared/dst{n}:v1"),
                registry_options(registry_basic),
                ZSTD,
            )
        recompressed = run.env.recompressed.statistics()
    assert recompressed.runs == 4  # the shared layer once, each image's own layer once
    assert recompressed.cached == 2 and recompressed.failures == 0
    digests = {
        json.loads((await get_manifest(registry_basic, f"shared/dst{n}", "v1"))[1])["layers"][0]["digest"]
        for n in range(3)
    }
    assert len(digests) == 1  # every image names the same recompressed blob


async def test_a_layer_the_destination_holds_is_reused_unless_the_format_is_forced(
    registry_anon: RegistryServer,
) -> None:
    image = make_image("force", layers=1, layer_size=30_000)
    await push_image(registry_anon, "force/src", "v1", image)
    async with copy_run() as run:
        for tag, force in (("kept", False), ("forced", True)):
            await run.copy(
                ref(registry_anon, "force/src:v1"),
                registry_options(registry_anon),
                ref(registry_anon, f"force/dst:{tag}"),
                registry_options(registry_anon),
                CopyOptions(compression=LayerCompression("zstd", force=force)),
            )
    # Same registry: skopeo 1.9.3 mounts the gzip layer and keeps the manifest as it was.
    assert (await get_manifest(registry_anon, "force/dst", "kept"))[1] == image.manifest
    media_type, manifest = await _layers(registry_anon, "force/dst", "forced")
    assert media_type == OCI_MANIFEST and manifest["layers"][0]["mediaType"] == OCI_LAYER_ZSTD


async def test_format_v2s2_with_zstd_is_refused_before_any_blob_is_written(
    registry_anon: RegistryServer,
) -> None:
    image = make_image("v2s2-zstd", layers=1, layer_size=10_000)
    await push_image(registry_anon, "v2zstd/src", "v1", image)
    async with copy_run() as run:
        with pytest.raises(ManifestError) as caught:
            await run.copy(
                ref(registry_anon, "v2zstd/src:v1"),
                registry_options(registry_anon),
                ref(registry_anon, "v2zstd/dst:v1"),
                registry_options(registry_anon),
                CopyOptions(format="v2s2", compression=LayerCompression("zstd")),
            )
    assert "zstd compression is not supported for type" in str(caught.value)
    assert not await blob_exists(registry_anon, "v2zstd/dst", image.config_digest)
    assert await list_tags(registry_anon, "v2zstd/dst") == []


async def test_a_corrupt_zstd_layer_fails_the_copy_and_no_tag_is_written(
    registry_anon: RegistryServer,
) -> None:
    image = make_image("corrupt-zstd", layers=2, layer_size=50_000)

    def damaged(layer: bytes) -> bytes:
        data = bytearray(zstd(layer))
        data[len(data) // 2] ^= 0xFF  # the blob's digest is of these bytes: only the frame is bad
        return bytes(data)

    broken = relayered(image, damaged, OCI_LAYER_ZSTD)
    await push_relayered(registry_anon, "corrupt/src", "v1", broken)
    async with copy_run() as run:
        with pytest.raises(ContentError, match="corrupt zstd data"):
            await run.copy(
                ref(registry_anon, "corrupt/src:v1"),
                registry_options(registry_anon),
                ref(registry_anon, "corrupt/dst:v1"),
                registry_options(registry_anon),
                CopyOptions(compression=LayerCompression("gzip", force=True)),
            )
    assert await list_tags(registry_anon, "corrupt/dst") == []


async def test_a_docker_list_with_children_turned_oci_becomes_an_oci_index(
    registry_anon: RegistryServer,
) -> None:
    index = make_multiarch(
        "zstd-list",
        platforms=(("linux", "amd64", None), ("linux", "arm64", "v8")),
        layers=1,
        layer_size=8_000,
    )
    await push_index(registry_anon, "zlist/src", "v1", index)
    async with copy_run() as run:
        result = await run.copy(
            ref(registry_anon, "zlist/src:v1"),
            registry_options(registry_anon),
            ref(registry_anon, "zlist/dst:v1"),
            registry_options(registry_anon),
            CopyOptions(multi_arch="all", compression=LayerCompression("zstd", force=True)),
        )
    assert index.media_type == DOCKER_LIST
    media_type, raw = await get_manifest(registry_anon, "zlist/dst", "v1")
    assert media_type == OCI_INDEX == result.media_type
    for entry in json.loads(raw)["manifests"]:
        assert entry["mediaType"] == OCI_MANIFEST
        child_type, child = await get_manifest(registry_anon, "zlist/dst", entry["digest"])
        assert child_type == OCI_MANIFEST
        assert {layer["mediaType"] for layer in json.loads(child)["layers"]} == {OCI_LAYER_ZSTD}


async def test_oci_layout_compresses_uncompressed_layers_unless_told_to_accept_them(
    registry_anon: RegistryServer, tmp_path: Path
) -> None:
    image = relayered(make_image("oci-plain", layers=2, layer_size=20_000), plain, OCI_LAYER)
    await push_relayered(registry_anon, "ociplain/src", "v1", image)
    async with copy_run() as run:
        for name, accept in (("packed", False), ("plain", True)):
            src = await ref(registry_anon, "ociplain/src:v1").new_source(
                run.context(registry_options(registry_anon))
            )
            dst_ref = parse_oci_reference(f"{tmp_path / 'layout'}:{name}")
            dst = await dst_ref.new_destination(
                run.context(registry_options(registry_anon), oci_accept_uncompressed_layers=accept)
            )
            try:
                await copy_image(src, dst, CopyOptions(), run.env)
            finally:
                await dst.close()
                await src.close()
    index = json.loads((tmp_path / "layout" / "index.json").read_bytes())
    found = {}
    for entry in index["manifests"]:
        manifest = orjson.loads((tmp_path / "layout" / "blobs" / "sha256" / entry["digest"][7:]).read_bytes())
        found[entry["annotations"]["org.opencontainers.image.ref.name"]] = manifest
    assert [layer["mediaType"] for layer in found["packed"]["layers"]] == [OCI_LAYER_GZIP] * 2
    assert found["plain"]["layers"] == json.loads(image.manifest)["layers"]
    for layer, source in zip(found["packed"]["layers"], image.layer_digests, strict=True):
        assert (
            diff_id((tmp_path / "layout" / "blobs" / "sha256" / layer["digest"][7:]).read_bytes()) == source
        )


async def test_preserve_digests_keeps_layers_as_they_are(registry_anon: RegistryServer) -> None:
    image = make_image("preserve", layers=1, layer_size=10_000)
    await push_image(registry_anon, "preserve/src", "v1", image)
    async with copy_run() as run:
        await run.copy(
            ref(registry_anon, "preserve/src:v1"),
            registry_options(registry_anon),
            ref(registry_anon, "preserve/dst:v1"),
            registry_options(registry_anon),
            CopyOptions(preserve_digests=True, compression=LayerCompression("zstd", force=True)),
        )
    assert (await get_manifest(registry_anon, "preserve/dst", "v1"))[1] == image.manifest


async def test_concurrent_copies_share_one_recompression_and_a_second_registry_gets_the_same_bytes(
    registry_anon: RegistryServer, registry_basic: RegistryServer, registry_token: RegistryServer
) -> None:
    base = make_image("flight-base", layers=1, layer_size=40_000).layers[0]
    images = [make_image(f"flight-{n}", layers=1, layer_size=10_000, shared_layers=[base]) for n in range(3)]
    for n, image in enumerate(images):
        await push_image(registry_anon, f"flight/src{n}", "v1", image)
    async with copy_run() as run:

        async def copy(n: int, server: RegistryServer) -> None:
            await run.copy(
                ref(registry_anon, f"flight/src{n}:v1"),
                registry_options(registry_anon),
                ref(server, f"flight/dst{n}:v1"),
                registry_options(server),
                ZSTD,
            )

        async with anyio.create_task_group() as group:
            for n in range(3):
                group.start_soon(copy, n, registry_basic)
        first = run.env.recompressed.statistics()
        # Later, another registry: the spools are gone, so the shared layer is recompressed again
        # and must come out with the digest the run recorded (it is uploaded under that digest).
        await copy(0, registry_token)
        later = run.env.recompressed.statistics()
    assert first.runs == 4 and first.shared + first.cached == 2
    assert later.runs == 4 and later.cached == first.cached + 2
    basic = json.loads((await get_manifest(registry_basic, "flight/dst0", "v1"))[1])
    token = json.loads((await get_manifest(registry_token, "flight/dst0", "v1"))[1])
    assert basic == token
    for layer, expected in zip(token["layers"], images[0].diff_ids, strict=True):
        assert diff_id(await fetch_blob(registry_token, "flight/dst0", layer["digest"])) == expected


async def test_a_push_recompresses_while_uploading_without_a_spool(
    registry_anon: RegistryServer, registry_basic: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Into a registry a layer is compressed and uploaded in one stream (one PATCH, then the PUT
    with the digest learned at the end); a second image sharing it mounts it, recompressing
    nothing. A spool is only for copies that need the bytes again later (not here)."""

    async def no_spool(*args: object, **kwargs: object) -> None:
        raise AssertionError("a push to a registry should not spool a recompressed layer")

    monkeypatch.setattr("asyncsync.copy.recompress.spool_recompressed", no_spool)
    base = make_image("stream-base", layers=1, layer_size=300_000).layers[0]
    images = [make_image(f"stream-{n}", layers=1, layer_size=20_000, shared_layers=[base]) for n in range(2)]
    for n, image in enumerate(images):
        await push_image(registry_anon, f"stream/src{n}", "v1", image)
    registry_basic.reset_log()
    async with copy_run() as run:
        for n in range(2):
            await run.copy(
                ref(registry_anon, f"stream/src{n}:v1"),
                registry_options(registry_anon),
                ref(registry_basic, f"stream/dst{n}:v1"),
                registry_options(registry_basic),
                ZSTD,
            )
        recompressed = run.env.recompressed.statistics()
    assert recompressed.runs == 3 and recompressed.cached == 1  # the shared layer once
    uploads = r"/v2/stream/dst\d/blobs/uploads/.*"
    # dst0: two layers streamed (PATCH each); dst1: its own layer streamed, the shared one mounted.
    assert registry_basic.count("PATCH", uploads, status=202) == 3
    assert registry_basic.count("POST", r"/v2/stream/dst1/blobs/uploads/", status=201) == 1  # the mount
    for n, image in enumerate(images):
        media_type, manifest = await _layers(registry_basic, f"stream/dst{n}", "v1")
        assert media_type == OCI_MANIFEST
        for layer, expected in zip(manifest["layers"], image.diff_ids, strict=True):
            assert layer["mediaType"] == OCI_LAYER_ZSTD
            assert diff_id(await fetch_blob(registry_basic, f"stream/dst{n}", layer["digest"])) == expected


async def test_a_corrupt_layer_found_mid_upload_commits_nothing(
    registry_anon: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Output goes out in 16 KiB pieces, so the upload has sent bytes when the damage is read.
    monkeypatch.setattr("asyncsync.copy.recompress_stream.OUT_PIECE", 16 * 1024)
    image = make_image("corrupt-mid", layers=1, layer_size=400_000)

    def damaged(layer: bytes) -> bytes:
        data = bytearray(gzip.compress(layer, mtime=0))
        data[-len(data) // 4] ^= 0xFF  # late in the stream: the upload has started
        return bytes(data)

    broken = relayered(image, damaged, OCI_LAYER_GZIP)
    await push_relayered(registry_anon, "corruptmid/src", "v1", broken)
    registry_anon.reset_log()
    async with copy_run() as run:
        with pytest.raises(ContentError, match="corrupt gzip data"):
            await run.copy(
                ref(registry_anon, "corruptmid/src:v1"),
                registry_options(registry_anon),
                ref(registry_anon, "corruptmid/dst:v1"),
                registry_options(registry_anon),
                CopyOptions(compression=LayerCompression("zstd", force=True)),
            )
    # The config goes in one POST (small blob); no upload of the layer was ever finished with a
    # PUT (the session is cancelled, unless the failure came while its POST was on the way).
    uploads = r"/v2/corruptmid/dst/blobs/uploads/.*"
    assert registry_anon.count("PUT", uploads) == 0
    assert await list_tags(registry_anon, "corruptmid/dst") == []


async def test_a_copy_with_a_state_directory_asks_for_what_an_earlier_copy_recompressed(
    registry_anon: RegistryServer,
    registry_basic: RegistryServer,
    registry_token: RegistryServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``copy_between(state_dir=...)`` (the copy command passes the user cache directory) records
    recompressed layers as a sync does: a re-run asks the destination for each recorded digest
    (HEAD) and recompresses nothing it has; a registry without them gets the layers recompressed
    again while they upload (no spool), with the recorded digests."""
    image = make_image("recorded", layers=2, layer_size=60_000)
    await push_image(registry_anon, "recorded/src", "v1", image)
    source = SideOptions(registry=registry_options(registry_anon))

    async def copy(server: RegistryServer, tag: str) -> CopyResult:
        return await copy_between(
            ref(registry_anon, "recorded/src:v1"),
            ref(server, f"recorded/dst:{tag}"),
            ZSTD,
            source,
            SideOptions(registry=registry_options(server)),
            retry=FAST_RETRY,
            parallel=4,
            state_dir=tmp_path,
        )

    async def no_spool(*args: object, **kwargs: object) -> None:
        raise AssertionError("a recorded layer should not be spooled on its way to a registry")

    monkeypatch.setattr("asyncsync.copy.recompress.spool_recompressed", no_spool)
    first = await copy(registry_basic, "v1")
    assert first.stats.blobs_copied == 3  # two recompressed layers and the config
    assert len((tmp_path / INDEX_FILE).read_text().splitlines()) == 2

    def no_recompression(*args: object, **kwargs: object) -> None:
        raise AssertionError("a layer the destination holds under its recorded digest was recompressed")

    with monkeypatch.context() as patched:
        patched.setattr("asyncsync.copy.recompress.recompressing", no_recompression)
        again = await copy(registry_basic, "v2")
    assert (again.stats.blobs_copied, again.stats.blobs_existing) == (0, 3)
    assert again.digest == first.digest

    elsewhere = await copy(registry_token, "v1")
    assert elsewhere.digest == first.digest and elsewhere.stats.blobs_copied == 3
    assert len((tmp_path / INDEX_FILE).read_text().splitlines()) == 2  # the same results
    manifest = json.loads((await get_manifest(registry_token, "recorded/dst", "v1"))[1])
    for layer, expected in zip(manifest["layers"], image.diff_ids, strict=True):
        assert diff_id(await fetch_blob(registry_token, "recorded/dst", layer["digest"])) == expected
