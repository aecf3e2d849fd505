"""``docker-archive:`` as a destination: skopeo's layout, decompressed layers, checks, atomicity, layers
streamed concurrently by the copy engine."""

from __future__ import annotations

import gzip
import json
import os
import tarfile
from pathlib import Path

import pytest

from asyncsync.copy import BlobCoordinator, CopyEnvironment, CopyOptions, copy_image
from asyncsync.digest import Digest
from asyncsync.errors import DigestMismatchError, LocalStorageError, UsageError
from asyncsync.limits import BlobLimiter
from asyncsync.manifest import DOCKER_V2S2, parse_manifest
from asyncsync.retry import RetryPolicy
from asyncsync.transports import parse_image_name
from asyncsync.transports.layer_compression import DOCKER_LAYER_TAR
from tests.helpers.images import GeneratedImage, make_image, make_multiarch
from tests.transports.roundtrip import MemorySource, copy_through, read_back, transport_context


def _members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return {m.name: m for m in tar.getmembers()}


def _read(path: Path, name: str) -> bytes:
    with tarfile.open(path) as tar:
        extracted = tar.extractfile(name)
        assert extracted is not None
        return extracted.read()


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", ["docker", "oci"])
async def test_round_trip_stores_plain_layers_named_by_diff_id(
    tmp_path: Path, fmt: str, rng_seed: int
) -> None:
    image = make_image(rng_seed, fmt=fmt)  # type: ignore[arg-type]
    archive = tmp_path / "a.tar"
    async with transport_context(additional_tags=("example.com/extra:two",)) as ctx:
        destination = await parse_image_name(f"docker-archive:{archive}:proj/app:v1").new_destination(ctx)
        assert not destination.capabilities.multi_image and not destination.capabilities.preserves_digests
        await copy_through(MemorySource(image), destination)
        await destination.close()
        source = await parse_image_name(f"docker-archive:{archive}").new_source(ctx)
        found = await read_back(source)
        raw, media_type = await source.get_manifest()
        assert await source.list_tags() == ["docker.io/proj/app:v1", "example.com/extra:two"]
        await source.close()
    assert media_type == DOCKER_V2S2
    assert str(found.configs[0]) == image.config_digest
    assert [str(d) for d in found.layers[0]] == image.diff_ids  # uncompressed: digest = diff id
    # Layers are served uncompressed and labelled so (containers/image labels them gzip).
    assert {layer.media_type for layer in parse_manifest(raw).layers} == {DOCKER_LAYER_TAR}  # type: ignore[union-attr]
    members = _members(archive)
    manifest = json.loads(_read(archive, "manifest.json"))
    assert manifest == [
        {
            "Config": f"{image.config_digest[7:]}.json",
            "RepoTags": ["docker.io/proj/app:v1", "example.com/extra:two"],
            "Layers": [f"{d[7:]}.tar" for d in image.diff_ids],
        }
    ]
    for diff_id, layer in zip(image.diff_ids, image.layers, strict=True):
        assert _read(archive, f"{diff_id[7:]}.tar") == gzip.decompress(layer)
    legacy = [name for name in members if name.endswith("/layer.tar")]
    assert len(legacy) == len(image.layers) and all(members[name].issym() for name in legacy)
    top = json.loads(_read(archive, "repositories"))["docker.io/proj/app"]["v1"]
    assert f"{top}/json" in members
    assert sorted(os.listdir(tmp_path)) == ["a.tar"]


@pytest.mark.anyio
async def test_an_index_is_refused_and_one_platform_is_written(tmp_path: Path, rng_seed: int) -> None:
    index = make_multiarch(rng_seed)
    async with transport_context() as ctx:
        destination = await parse_image_name(f"docker-archive:{tmp_path}/a.tar").new_destination(ctx)
        with pytest.raises(UsageError, match="single image"):
            await destination.put_manifest(index.manifest, index.media_type)
        await copy_through(MemorySource(index), destination)  # the helper copies the first child
        found = await read_back(await parse_image_name(f"docker-archive:{tmp_path}/a.tar").new_source(ctx))
    assert [str(d) for d in found.layers[0]] == index.images[0].diff_ids
    assert json.loads(_read(tmp_path / "a.tar", "manifest.json"))[0]["RepoTags"] == []


@pytest.mark.anyio
async def test_an_existing_archive_is_never_modified(tmp_path: Path, rng_seed: int) -> None:
    archive = tmp_path / "a.tar"
    archive.write_bytes(b"precious")
    async with transport_context() as ctx:
        with pytest.raises(LocalStorageError, match="doesn't support modifying existing images"):
            await parse_image_name(f"docker-archive:{archive}").new_destination(ctx)
        archive.write_bytes(b"")  # an empty file (e.g. made by mktemp) may be written, as in skopeo
        await copy_through(
            MemorySource(make_image(rng_seed)),
            await parse_image_name(f"docker-archive:{archive}").new_destination(ctx),
        )
        with pytest.raises(UsageError, match="source index"):
            await parse_image_name(f"docker-archive:{tmp_path}/b.tar:@0").new_destination(ctx)
    assert archive.stat().st_size > 0


def _with_config(image: GeneratedImage, config: bytes) -> MemorySource:
    manifest = json.loads(image.manifest)
    manifest["config"]["digest"] = "sha256:" + Digest.of(config).hex
    manifest["config"]["size"] = len(config)
    raw = json.dumps(manifest).encode()
    source = MemorySource(image)
    source.blobs[manifest["config"]["digest"]] = config
    source.image = type(image)(
        **{**image.__dict__, "manifest": raw, "digest": "sha256:" + Digest.of(raw).hex}
    )
    return source


@pytest.mark.anyio
async def test_layers_that_do_not_match_the_config_diff_ids_are_refused(
    tmp_path: Path, rng_seed: int
) -> None:
    image = make_image(rng_seed)
    config = json.loads(image.config)
    config["rootfs"]["diff_ids"] = list(reversed(config["rootfs"]["diff_ids"]))
    source = _with_config(image, json.dumps(config).encode())
    async with transport_context() as ctx:
        destination = await parse_image_name(f"docker-archive:{tmp_path}/a.tar").new_destination(ctx)
        with pytest.raises(DigestMismatchError, match="diff ids"):
            await copy_through(source, destination)
        await destination.close()
    assert os.listdir(tmp_path) == []


def _engine() -> CopyEnvironment:
    retry = RetryPolicy(attempts=2, base_delay=0.01)
    return CopyEnvironment(blob_limiter=BlobLimiter(8), retry=retry, coordinator=BlobCoordinator())


@pytest.mark.anyio
async def test_the_engine_streams_layers_concurrently_into_the_same_archive(
    tmp_path: Path, rng_seed: int
) -> None:
    image = make_image(rng_seed, layers=5, layer_size=60_000)
    async with transport_context() as ctx:
        one_by_one = await parse_image_name(f"docker-archive:{tmp_path}/a.tar:x/y:1").new_destination(ctx)
        await copy_through(MemorySource(image), one_by_one)  # config first, then each layer in turn
        concurrent = await parse_image_name(f"docker-archive:{tmp_path}/b.tar:x/y:1").new_destination(ctx)
        await copy_image(MemorySource(image), concurrent, CopyOptions(), _engine())
        await concurrent.close()
        found = await read_back(await parse_image_name(f"docker-archive:{tmp_path}/b.tar").new_source(ctx))
    assert found.diff_ids == [image.diff_ids]
    # Members go in put_blob call order, the manifest's: the same bytes either way.
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["a.tar", "b.tar"]


@pytest.mark.anyio
@pytest.mark.parametrize("position", [0, 2, 4])
async def test_a_digest_mismatch_in_a_streamed_layer_leaves_no_archive(
    tmp_path: Path, rng_seed: int, position: int
) -> None:
    image = make_image(rng_seed, layers=5, layer_size=60_000)
    broken = MemorySource(image)
    layer = image.layers[position]
    # Same size, last byte changed: the bytes stream in, only the final check fails.
    broken.blobs[image.layer_digests[position]] = layer[:-1] + bytes([layer[-1] ^ 0xFF])
    async with transport_context() as ctx:
        destination = await parse_image_name(f"docker-archive:{tmp_path}/a.tar:x/y:1").new_destination(ctx)
        with pytest.raises(DigestMismatchError):
            await copy_image(broken, destination, CopyOptions(), _engine())
        await destination.close()
    assert os.listdir(tmp_path) == []


@pytest.mark.anyio
async def test_an_archive_that_appears_meanwhile_is_not_replaced(tmp_path: Path, rng_seed: int) -> None:
    archive = tmp_path / "a.tar"
    async with transport_context() as ctx:
        destination = await parse_image_name(f"docker-archive:{archive}").new_destination(ctx)
        archive.write_bytes(b"written by someone else")
        with pytest.raises(LocalStorageError, match="doesn't support modifying existing images"):
            await copy_through(MemorySource(make_image(rng_seed)), destination)
        await destination.close()
    assert archive.read_bytes() == b"written by someone else"
    assert os.listdir(tmp_path) == ["a.tar"]


@pytest.mark.anyio
async def test_an_artifact_that_is_not_a_container_image_is_refused(tmp_path: Path, rng_seed: int) -> None:
    image = make_image(rng_seed)
    manifest = json.loads(image.manifest)
    manifest["config"]["mediaType"] = "application/vnd.example.artifact.config.v1+json"
    raw = json.dumps(manifest).encode()
    source = MemorySource(image)
    source.image = type(image)(
        **{**image.__dict__, "manifest": raw, "digest": "sha256:" + Digest.of(raw).hex}
    )
    async with transport_context() as ctx:
        destination = await parse_image_name(f"docker-archive:{tmp_path}/a.tar").new_destination(ctx)
        with pytest.raises(UsageError, match="holds container images"):
            await copy_through(source, destination)
        await destination.close()
    assert os.listdir(tmp_path) == []
