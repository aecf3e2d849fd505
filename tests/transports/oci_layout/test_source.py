"""Reading from an OCI layout: image selection, verified manifests, refusal of unsafe layouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asyncsync.digest import Digest
from asyncsync.errors import DigestMismatchError, LocalStorageError
from asyncsync.manifest import Descriptor, parse_manifest
from asyncsync.transports import parse_image_name
from tests.helpers.images import make_image, make_multiarch
from tests.transports.roundtrip import MemorySource, copy_through, read_back, transport_context


async def _write(layout: Path, name: str, seed: object, fmt: str = "oci", layer_size: int = 4096) -> str:
    image = make_image(str(seed), fmt=fmt, layer_size=layer_size)  # type: ignore[arg-type]
    async with transport_context() as ctx:
        await copy_through(
            MemorySource(image), await parse_image_name(f"oci:{layout}:{name}").new_destination(ctx)
        )
    return image.digest


@pytest.mark.anyio
async def test_the_only_image_is_read_without_a_name(tmp_path: Path, rng_seed: int) -> None:
    digest = await _write(tmp_path, "only", rng_seed)
    async with transport_context() as ctx:
        source = await parse_image_name(f"oci:{tmp_path}").new_source(ctx)
        assert str((await read_back(source)).digest) == digest
        assert await source.list_tags() == ["only"]


@pytest.mark.anyio
async def test_choosing_among_several_images(tmp_path: Path, rng_seed: int) -> None:
    first = await _write(tmp_path, "a", f"{rng_seed}/a")
    second = await _write(tmp_path, "b", f"{rng_seed}/b", fmt="docker")
    async with transport_context() as ctx:
        unnamed = await parse_image_name(f"oci:{tmp_path}").new_source(ctx)
        assert await unnamed.list_tags() == ["a", "b"]  # listing works without choosing
        with pytest.raises(LocalStorageError, match=r"more than one image.*a, b"):
            await unnamed.get_manifest()
        for name, digest in (("a", first), ("b", second)):
            source = await parse_image_name(f"oci:{tmp_path}:{name}").new_source(ctx)
            raw, _ = await source.get_manifest()
            assert str(Digest.of(raw)) == digest
        missing = await parse_image_name(f"oci:{tmp_path}:c").new_source(ctx)
        with pytest.raises(LocalStorageError, match="no image named 'c'"):
            await missing.get_manifest()


@pytest.mark.anyio
async def test_a_manifest_not_matching_its_index_entry_is_refused(tmp_path: Path, rng_seed: int) -> None:
    digest = await _write(tmp_path, "v1", rng_seed)
    blob = tmp_path / "blobs" / "sha256" / digest[7:]
    blob.write_bytes(blob.read_bytes()[:-1] + b" ")
    async with transport_context() as ctx:
        source = await parse_image_name(f"oci:{tmp_path}:v1").new_source(ctx)
        with pytest.raises(DigestMismatchError, match="corrupt"):
            await source.get_manifest()


@pytest.mark.anyio
async def test_a_child_manifest_is_verified_against_its_digest(tmp_path: Path, rng_seed: int) -> None:
    index = make_multiarch(rng_seed, fmt="oci")
    async with transport_context() as ctx:
        await copy_through(
            MemorySource(index), await parse_image_name(f"oci:{tmp_path}:m").new_destination(ctx)
        )
        child = Digest.parse(index.images[1].digest)
        (tmp_path / "blobs" / "sha256" / child.hex).write_bytes(index.images[0].manifest)
        source = await parse_image_name(f"oci:{tmp_path}:m").new_source(ctx)
        assert (await source.get_manifest(Digest.parse(index.images[0].digest)))[0] == index.images[
            0
        ].manifest
        with pytest.raises(DigestMismatchError):
            await source.get_manifest(child)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "digest",
    [
        "sha256:../../../../etc/passwd",
        "sha256:" + "A" * 64,
        "../../x",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
    ],
)
async def test_an_index_pointing_outside_the_layout_is_refused(tmp_path: Path, digest: str) -> None:
    (tmp_path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    entry = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 10}
    (tmp_path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    async with transport_context() as ctx:
        with pytest.raises(LocalStorageError, match="refusing the layout"):
            await parse_image_name(f"oci:{tmp_path}").new_source(ctx)


@pytest.mark.anyio
async def test_a_blob_symlink_leading_outside_is_refused(tmp_path: Path, rng_seed: int) -> None:
    image = make_image(rng_seed, fmt="oci")
    await _write(tmp_path / "layout", "v1", rng_seed)
    secret = tmp_path / "secret"
    secret.write_bytes(b"not for you")
    layer = tmp_path / "layout" / "blobs" / "sha256" / image.layer_digests[0][7:]
    layer.unlink()
    layer.symlink_to(secret)
    descriptor = parse_manifest(image.manifest).layers[0]  # type: ignore[union-attr]
    async with transport_context() as ctx:
        source = await parse_image_name(f"oci:{tmp_path}/layout:v1").new_source(ctx)
        with pytest.raises(LocalStorageError, match="outside"):
            async with source.open_blob(descriptor):
                pass


@pytest.mark.anyio
async def test_not_a_layout(tmp_path: Path) -> None:
    async with transport_context() as ctx:
        with pytest.raises(LocalStorageError, match=r"no index.json"):
            await parse_image_name(f"oci:{tmp_path}").new_source(ctx)
        with pytest.raises(LocalStorageError, match="no such directory"):
            await parse_image_name(f"oci:{tmp_path}/missing").new_source(ctx)
        (tmp_path / "index.json").write_text("[]")
        with pytest.raises(LocalStorageError, match="not a JSON object"):
            await parse_image_name(f"oci:{tmp_path}").new_source(ctx)


@pytest.mark.anyio
async def test_blobs_stream_from_an_offset(tmp_path: Path, rng_seed: int) -> None:
    image = make_image(rng_seed, fmt="oci", layer_size=50_000)
    await _write(tmp_path, "v1", rng_seed, layer_size=50_000)
    layer = image.layers[0]
    descriptor = Descriptor(
        "application/vnd.oci.image.layer.v1.tar+gzip", Digest.parse(image.layer_digests[0]), len(layer)
    )
    async with transport_context() as ctx:
        source = await parse_image_name(f"oci:{tmp_path}:v1").new_source(ctx)
        assert source.capabilities.ranged_reads
        async with source.open_blob(descriptor, offset=1000) as chunks:
            assert b"".join([c async for c in chunks]) == layer[1000:]
