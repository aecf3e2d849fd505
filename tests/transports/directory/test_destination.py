"""``dir:`` as a destination (and read back): skopeo's files, overwrite rules, atomicity, compression."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

import pytest

from asyncsync.copy import CopyEnvironment, CopyOptions, copy_image
from asyncsync.digest import Digest
from asyncsync.errors import DigestMismatchError, InvalidReferenceError, LocalStorageError, UsageError
from asyncsync.limits import BlobLimiter
from asyncsync.manifest import DOCKER_LAYER_GZIP, OCI_LAYER, parse_manifest
from asyncsync.retry import RetryPolicy
from asyncsync.transports import parse_image_name
from asyncsync.transports.directory.reference import DirReference
from asyncsync.transports.layer_compression import DOCKER_LAYER_TAR
from tests.helpers.images import make_image, make_multiarch
from tests.transports.roundtrip import MemorySource, copy_through, read_back, transport_context

VERSION = "Directory Transport Version: 1.1\n"


def test_reference_is_the_whole_path() -> None:
    assert parse_image_name("dir:/tmp/a:b/c") == DirReference("/tmp/a:b/c")
    assert str(parse_image_name("dir:rel")) == "dir:rel"
    with pytest.raises(InvalidReferenceError):
        parse_image_name("dir:")


@pytest.mark.anyio
async def test_skopeo_file_names_and_round_trip(tmp_path: Path, rng_seed: int) -> None:
    image = make_image(rng_seed)
    target = tmp_path / "image"
    async with transport_context() as ctx:
        await copy_through(MemorySource(image), await parse_image_name(f"dir:{target}").new_destination(ctx))
        found = await read_back(await parse_image_name(f"dir:{target}").new_source(ctx))
    assert str(found.digest) == image.digest
    assert (target / "manifest.json").read_bytes() == image.manifest
    assert (target / "version").read_text() == VERSION
    assert sorted(os.listdir(target)) == sorted(["manifest.json", "version", *(d[7:] for d in image.blobs())])


@pytest.mark.anyio
async def test_multi_arch_children_are_hex_manifest_json(tmp_path: Path, rng_seed: int) -> None:
    index = make_multiarch(rng_seed)
    async with transport_context() as ctx:
        await copy_through(
            MemorySource(index), await parse_image_name(f"dir:{tmp_path}/m").new_destination(ctx)
        )
        found = await read_back(await parse_image_name(f"dir:{tmp_path}/m").new_source(ctx))
    assert str(found.digest) == index.digest
    for child in index.images:
        assert (tmp_path / "m" / f"{child.digest[7:]}.manifest.json").read_bytes() == child.manifest


@pytest.mark.anyio
async def test_overwriting_keeps_the_old_image_until_commit(tmp_path: Path, rng_seed: int) -> None:
    old, new = make_image(f"{rng_seed}/old"), make_image(f"{rng_seed}/new")
    target = tmp_path / "image"
    async with transport_context() as ctx:
        await copy_through(MemorySource(old), await parse_image_name(f"dir:{target}").new_destination(ctx))
        # A copy that fails mid-way: the old image is still whole and readable.
        broken = MemorySource(new)
        broken.blobs[new.config_digest] = b"{}"
        with pytest.raises(DigestMismatchError):
            await copy_through(broken, await parse_image_name(f"dir:{target}").new_destination(ctx))
        assert (
            str((await read_back(await parse_image_name(f"dir:{target}").new_source(ctx))).digest)
            == old.digest
        )
        # A copy that succeeds replaces it and removes the old image's files.
        await copy_through(MemorySource(new), await parse_image_name(f"dir:{target}").new_destination(ctx))
    assert sorted(os.listdir(target)) == sorted(["manifest.json", "version", *(d[7:] for d in new.blobs())])


@pytest.mark.anyio
async def test_a_non_image_directory_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    async with transport_context() as ctx:
        with pytest.raises(LocalStorageError, match="not a containers image directory"):
            await parse_image_name(f"dir:{tmp_path}").new_destination(ctx)
        (tmp_path / "version").write_text("Directory Transport Version: 0.9\n")
        with pytest.raises(LocalStorageError, match="don't want to overwrite"):
            await parse_image_name(f"dir:{tmp_path}").new_destination(ctx)
        (tmp_path / "file").write_text("x")
        with pytest.raises(LocalStorageError, match="not a directory"):
            await parse_image_name(f"dir:{tmp_path}/file").new_destination(ctx)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


@pytest.mark.anyio
async def test_decompress_stores_plain_layers_and_rewrites_the_manifest(
    tmp_path: Path, rng_seed: int
) -> None:
    image = make_image(rng_seed)
    async with transport_context(decompress=True) as ctx:
        destination = await parse_image_name(f"dir:{tmp_path}/d").new_destination(ctx)
        assert not destination.capabilities.preserves_digests
        written = await copy_through(MemorySource(image), destination)
        found = await read_back(await parse_image_name(f"dir:{tmp_path}/d").new_source(ctx))
    manifest = parse_manifest((tmp_path / "d" / "manifest.json").read_bytes())
    assert found.digest == written != Digest.parse(image.digest)
    assert [str(layer.digest) for layer in manifest.layers] == image.diff_ids  # type: ignore[union-attr]
    assert {layer.media_type for layer in manifest.layers} == {DOCKER_LAYER_TAR}  # type: ignore[union-attr]
    assert str(manifest.config.digest) == image.config_digest  # type: ignore[union-attr]
    for layer, compressed in zip(manifest.layers, image.layers, strict=True):  # type: ignore[union-attr]
        assert (tmp_path / "d" / layer.digest.hex).read_bytes() == gzip.decompress(compressed)


@pytest.mark.anyio
async def test_compress_after_decompress_and_an_index_with_new_children(
    tmp_path: Path, rng_seed: int
) -> None:
    index = make_multiarch(rng_seed, fmt="oci")
    async with transport_context(decompress=True) as ctx:
        await copy_through(
            MemorySource(index), await parse_image_name(f"dir:{tmp_path}/plain").new_destination(ctx)
        )
    async with transport_context(compress=True) as ctx:
        plain = await parse_image_name(f"dir:{tmp_path}/plain").new_source(ctx)
        destination = await parse_image_name(f"dir:{tmp_path}/gz").new_destination(ctx)
        # --dest-compress asks the copy engine to compress (Capabilities.compresses_layers).
        assert destination.capabilities.compresses_layers
        env = CopyEnvironment(blob_limiter=BlobLimiter(4), retry=RetryPolicy(attempts=1))
        await copy_image(plain, destination, CopyOptions(multi_arch="all"), env)
        found = await read_back(await parse_image_name(f"dir:{tmp_path}/gz").new_source(ctx))
    top = json.loads((tmp_path / "gz" / "manifest.json").read_bytes())
    assert [Digest.parse(m["digest"]) for m in top["manifests"]] == found.children
    for entry in top["manifests"]:
        child = (tmp_path / "gz" / f"{entry['digest'][7:]}.manifest.json").read_bytes()
        assert (
            entry["size"] == len(child) and "sha256:" + hashlib.sha256(child).hexdigest() == entry["digest"]
        )
        assert {layer["mediaType"] for layer in json.loads(child)["layers"]} == {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        }
    assert found.diff_ids == [image.diff_ids for image in index.images]
    plain_child = json.loads(next((tmp_path / "plain").glob("*.manifest.json")).read_bytes())
    assert {layer["mediaType"] for layer in plain_child["layers"]} == {OCI_LAYER}


@pytest.mark.anyio
async def test_compress_leaves_compressed_layers_alone(tmp_path: Path, rng_seed: int) -> None:
    image = make_image(rng_seed)
    async with transport_context(compress=True) as ctx:
        written = await copy_through(
            MemorySource(image), await parse_image_name(f"dir:{tmp_path}/c").new_destination(ctx)
        )
    assert str(written) == image.digest
    assert {
        layer["mediaType"] for layer in json.loads((tmp_path / "c" / "manifest.json").read_bytes())["layers"]
    } == {DOCKER_LAYER_GZIP}


@pytest.mark.anyio
async def test_compress_and_decompress_together_is_a_usage_error(tmp_path: Path) -> None:
    async with transport_context(compress=True, decompress=True) as ctx:
        with pytest.raises(UsageError, match="cannot be used together"):
            await parse_image_name(f"dir:{tmp_path}").new_destination(ctx)
