"""``docker-archive:`` as a source: docker save layouts, several images, compressed layers, hostile input."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from asyncsync.digest import Digest
from asyncsync.errors import DigestMismatchError, LocalStorageError
from asyncsync.manifest import DOCKER_LAYER_GZIP, parse_manifest
from asyncsync.transports import parse_image_name
from asyncsync.transports.layer_compression import DOCKER_LAYER_TAR
from tests.helpers.images import GeneratedImage, make_image
from tests.transports.roundtrip import read_back, transport_context


def _add(tar: tarfile.TarFile, name: str, data: bytes = b"", link: str | None = None) -> None:
    info = tarfile.TarInfo(name)
    if link is not None:
        info.type, info.linkname = tarfile.SYMTYPE, link
        tar.addfile(info)
        return
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _docker_save(
    path: Path, images: list[tuple[GeneratedImage, list[str]]], *, compressed: bool = False
) -> None:
    """A `docker save`-style archive in the legacy layout: <id>/layer.tar, <config>.json, manifest.json."""
    items = []
    with tarfile.open(path, "w") as tar:
        for number, (image, tags) in enumerate(images):
            layers = []
            for position, (layer, diff_id) in enumerate(zip(image.layers, image.diff_ids, strict=True)):
                directory = f"{number}{position}{diff_id[7:20]}"
                _add(tar, f"{directory}/VERSION", b"1.0")
                _add(tar, f"{directory}/layer.tar", layer if compressed else gzip.decompress(layer))
                layers.append(f"{directory}/layer.tar")
            _add(tar, f"{image.config_digest[7:]}.json", image.config)
            items.append({"Config": f"{image.config_digest[7:]}.json", "RepoTags": tags, "Layers": layers})
        _add(tar, "manifest.json", json.dumps(items).encode())
        _add(tar, "repositories", b"{}")


@pytest.mark.anyio
async def test_docker_save_archive_with_several_images(tmp_path: Path, rng_seed: int) -> None:
    first, second = make_image(f"{rng_seed}/1"), make_image(f"{rng_seed}/2", fmt="oci")
    archive = tmp_path / "save.tar"
    _docker_save(archive, [(first, ["busybox:latest"]), (second, ["example.com/app:2", "app:3"])])
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
async def test_compressed_layers_are_served_as_stored(tmp_path: Path, rng_seed: int) -> None:
    image = make_image(rng_seed)
    archive = tmp_path / "save.tar"
    _docker_save(archive, [(image, [])], compressed=True)
    async with transport_context() as ctx:
        source = await parse_image_name(f"docker-archive:{archive}").new_source(ctx)
        raw, _ = await source.get_manifest()
        found = await read_back(source)
        await source.close()
    manifest = parse_manifest(raw)
    assert [str(layer.digest) for layer in manifest.layers] == image.layer_digests  # type: ignore[union-attr]
    assert {layer.media_type for layer in manifest.layers} == {DOCKER_LAYER_GZIP}  # type: ignore[union-attr]
    assert found.diff_ids[0] == image.diff_ids


@pytest.mark.anyio
async def test_generated_manifest_matches_containers_image_shape(tmp_path: Path, rng_seed: int) -> None:
    image = make_image(rng_seed)
    archive = tmp_path / "save.tar"
    _docker_save(archive, [(image, ["a:b"])])
    async with transport_context() as ctx:
        source = await parse_image_name(f"docker-archive:{archive}:a:b").new_source(ctx)
        raw, _ = await source.get_manifest()
        assert (await source.get_manifest())[0] is raw  # generated once
        with pytest.raises(LocalStorageError, match="no manifest lists"):
            await source.get_manifest(Digest.of(b"x"))
        await source.close()
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
async def test_a_layer_not_matching_its_diff_id_is_detected(tmp_path: Path, rng_seed: int) -> None:
    image = make_image(rng_seed)
    archive = tmp_path / "save.tar"
    config = json.loads(image.config)
    config["rootfs"]["diff_ids"][0] = "sha256:" + "0" * 64
    tampered = type(image)(**{**image.__dict__, "config": json.dumps(config).encode()})
    _docker_save(archive, [(tampered, [])])
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
        _add(
            tar,
            "manifest.json",
            json.dumps([{"Config": "c.json", "RepoTags": [], "Layers": ["x/layer.tar"]}]).encode(),
        )
        _add(tar, "x/layer.tar", link="../../../../etc/passwd")
    inconsistent = tmp_path / "inconsistent.tar"
    with tarfile.open(inconsistent, "w") as tar:
        _add(tar, "c.json", image.config)
        _add(tar, "manifest.json", json.dumps([{"Config": "c.json", "RepoTags": [], "Layers": []}]).encode())
    async with transport_context() as ctx:
        with pytest.raises(LocalStorageError, match="outside the archive"):
            await parse_image_name(f"docker-archive:{escaping}").new_source(ctx)
        source = await parse_image_name(f"docker-archive:{inconsistent}").new_source(ctx)
        with pytest.raises(LocalStorageError, match="inconsistent layer count"):
            await source.get_manifest()
        await source.close()
        with pytest.raises(LocalStorageError, match="is a directory"):
            await parse_image_name(f"docker-archive:{tmp_path}").new_source(ctx)
