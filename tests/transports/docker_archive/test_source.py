"""``docker-archive:`` as a source: docker save layouts, several images, compressed layers, containers/image's
generated manifest, hostile input."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from asyncsync.digest import Digest
from asyncsync.errors import ContentError, DigestMismatchError, LocalStorageError
from asyncsync.manifest import ImageManifest, parse_manifest
from asyncsync.transports import parse_image_name
from asyncsync.transports.layer_compression import DOCKER_LAYER_TAR
from tests.helpers.images import make_image
from tests.transports.docker_archive.saved import add_member, docker_save
from tests.transports.roundtrip import read_back, transport_context


@pytest.mark.anyio
async def test_docker_save_archive_with_several_images(tmp_path: Path, rng_seed: int) -> None:
    first, second = make_image(f"{rng_seed}/1"), make_image(f"{rng_seed}/2", fmt="oci")
    archive = tmp_path / "save.tar"
    docker_save(archive, [(first, ["busybox:latest"]), (second, ["example.com/app:2", "app:3"])])
    async with transport_context() as ctx:
        for text, image in (
            (f"docker-archive:{archive}:busybox", first),
            (f"docker-archive:{archive}:example.com/app:2", second),
            (f"docker-archive:{archive}:docker.io/library/app:3", second),
            (f"docker-archive:{archive}:@0", first),
            (f"docker-archive:{archive}:@1", second),
        ):
            source = await parse_image_name(text).new_source(ctx)
            found = await read_back(source)
            assert str(found.configs[0]) == image.config_digest, text
            assert [str(d) for d in found.layers[0]] == image.diff_ids, text
            assert await source.list_tags() == ["busybox:latest", "example.com/app:2", "app:3"]
            await source.close()
        with pytest.raises(LocalStorageError, match="holds 2 images"):
            await parse_image_name(f"docker-archive:{archive}").new_source(ctx)
        with pytest.raises(LocalStorageError, match="not found"):
            await parse_image_name(f"docker-archive:{archive}:nope:1").new_source(ctx)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "compress", [gzip.compress, lzma.compress, bz2.compress], ids=["gzip", "xz", "bzip2"]
)
async def test_compressed_layers_are_served_decompressed_by_diff_id(
    tmp_path: Path, rng_seed: int, compress: Callable[[bytes], bytes]
) -> None:
    image = make_image(rng_seed)
    archive = tmp_path / "save.tar"
    docker_save(archive, [(image, [])], compress=compress)
    plain = [gzip.decompress(layer) for layer in image.layers]
    async with transport_context() as ctx:
        source = await parse_image_name(f"docker-archive:{archive}").new_source(ctx)
        raw, _ = await source.get_manifest()
        found = await read_back(source)
        manifest = parse_manifest(raw)
        assert isinstance(manifest, ImageManifest)
        # As containers/image: digest = diff id, uncompressed size; the media type of the bytes served.
        assert [str(layer.digest) for layer in manifest.layers] == image.diff_ids
        assert [layer.size for layer in manifest.layers] == [len(data) for data in plain]
        assert {layer.media_type for layer in manifest.layers} == {DOCKER_LAYER_TAR}
        assert found.diff_ids[0] == image.diff_ids
        # A resumed read starts at an offset of the uncompressed stream.
        async with source.open_blob(manifest.layers[1], offset=1000) as chunks:
            assert b"".join([chunk async for chunk in chunks]) == plain[1][1000:]
        async with source.open_blob(manifest.layers[1], offset=len(plain[1])) as chunks:
            assert [chunk async for chunk in chunks] == []
        await source.close()


@pytest.mark.anyio
async def test_generated_manifest_matches_containers_image_shape(tmp_path: Path, rng_seed: int) -> None:
    first = make_image(f"{rng_seed}/first", layers=1)
    # The same layer twice in one image: containers/image lists its diff id twice.
    image = make_image(rng_seed, layers=1, shared_layers=[first.layers[0], first.layers[0]])
    archive = tmp_path / "save.tar"
    docker_save(archive, [(image, ["a:b"])])
    async with transport_context() as ctx:
        source = await parse_image_name(f"docker-archive:{archive}:a:b").new_source(ctx)
        raw, _ = await source.get_manifest()
        assert (await source.get_manifest())[0] is raw  # generated once
        with pytest.raises(LocalStorageError, match="no manifest lists"):
            await source.get_manifest(Digest.of(b"x"))
        found = await read_back(source)
        await source.close()
    assert found.diff_ids[0] == image.diff_ids
    layers = ",".join(
        f'{{"mediaType":"{DOCKER_LAYER_TAR}","size":{len(gzip.decompress(layer))},"digest":"{diff_id}"}}'
        for layer, diff_id in zip(image.layers, image.diff_ids, strict=True)
    )
    assert raw.decode() == (
        '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
        f'"config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{len(image.config)},'
        f'"digest":"{image.config_digest}"}},"layers":[{layers}]}}'
    )


@pytest.mark.anyio
async def test_layer_files_that_cannot_be_served_are_refused(tmp_path: Path, rng_seed: int) -> None:
    image = make_image(rng_seed, layers=2)
    config = image.config_digest[7:] + ".json"
    shared = tmp_path / "shared.tar"  # one file for two different diff ids
    zstd = tmp_path / "zstd.tar"
    for path, layers in ((shared, ["l.tar", "./l.tar"]), (zstd, ["z.tar", "l.tar"])):
        with tarfile.open(path, "w") as tar:
            add_member(tar, "l.tar", gzip.decompress(image.layers[0]))
            add_member(tar, "z.tar", b"\x28\xb5\x2f\xfd" + b"\x00" * 64)
            add_member(tar, config, image.config)
            add_member(tar, "manifest.json", json.dumps([{"Config": config, "Layers": layers}]).encode())
    async with transport_context() as ctx:
        # zstd layers are decompressed like the others; these 64 zero bytes are no zstd frame.
        for path, message in (
            (shared, "used for two different diff ids"),
            (zstd, "z.tar': (corrupt|truncated) zstd data"),
        ):
            source = await parse_image_name(f"docker-archive:{path}").new_source(ctx)
            with pytest.raises((LocalStorageError, ContentError), match=message):
                await source.get_manifest()
            await source.close()


@pytest.mark.anyio
async def test_a_layer_not_matching_its_diff_id_is_detected(tmp_path: Path, rng_seed: int) -> None:
    image = make_image(rng_seed)
    archive = tmp_path / "save.tar"
    config = json.loads(image.config)
    config["rootfs"]["diff_ids"][0] = "sha256:" + "0" * 64
    tampered = type(image)(**{**image.__dict__, "config": json.dumps(config).encode()})
    docker_save(archive, [(tampered, [])])
    async with transport_context() as ctx:
        source = await parse_image_name(f"docker-archive:{archive}").new_source(ctx)
        with pytest.raises(DigestMismatchError):
            await read_back(source)
        await source.close()


@pytest.mark.anyio
async def test_hostile_and_broken_archives(tmp_path: Path, rng_seed: int) -> None:
    image = make_image(rng_seed, layers=1)
    escaping = tmp_path / "escaping.tar"
    with tarfile.open(escaping, "w") as tar:
        add_member(
            tar,
            "manifest.json",
            json.dumps([{"Config": "c.json", "RepoTags": [], "Layers": ["x/layer.tar"]}]).encode(),
        )
        add_member(tar, "x/layer.tar", link="../../../../etc/passwd")
    inconsistent = tmp_path / "inconsistent.tar"
    with tarfile.open(inconsistent, "w") as tar:
        add_member(tar, "c.json", image.config)
        add_member(
            tar, "manifest.json", json.dumps([{"Config": "c.json", "RepoTags": [], "Layers": []}]).encode()
        )
    async with transport_context() as ctx:
        with pytest.raises(LocalStorageError, match="outside the archive"):
            await parse_image_name(f"docker-archive:{escaping}").new_source(ctx)
        source = await parse_image_name(f"docker-archive:{inconsistent}").new_source(ctx)
        with pytest.raises(LocalStorageError, match="inconsistent layer count"):
            await source.get_manifest()
        await source.close()
        with pytest.raises(LocalStorageError, match="is a directory"):
            await parse_image_name(f"docker-archive:{tmp_path}").new_source(ctx)
