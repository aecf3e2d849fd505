"""Writing into an OCI layout: atomic blobs, index.json at commit, skopeo's naming rules."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from asyncsync.digest import Digest
from asyncsync.errors import DigestMismatchError, LocalStorageError
from asyncsync.transports import parse_image_name
from asyncsync.transports.local_files import TEMP_PREFIX
from tests.helpers.images import make_image, make_layer, make_multiarch
from tests.transports.roundtrip import MemorySource, copy_through, read_back, transport_context

REF_NAME = "org.opencontainers.image.ref.name"


def _index(layout: Path) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads((layout / "index.json").read_text())["manifests"]
    return entries


def _blob_files(layout: Path) -> set[str]:
    return {p.name for p in (layout / "blobs" / "sha256").iterdir()}


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", ["docker", "oci"])
async def test_round_trip_keeps_every_digest(tmp_path: Path, fmt: str, rng_seed: int) -> None:
    image = make_image(rng_seed, fmt=fmt)  # type: ignore[arg-type]
    reference = parse_image_name(f"oci:{tmp_path}/layout:v1")
    async with transport_context() as ctx:
        destination = await reference.new_destination(ctx)
        written = await copy_through(MemorySource(image), destination)
        await destination.close()
        source = await reference.new_source(ctx)
        found = await read_back(source)
        await source.close()
    assert str(written) == image.digest == str(found.digest)
    assert [str(d) for d in found.layers[0]] == image.layer_digests
    assert str(found.configs[0]) == image.config_digest
    layout = tmp_path / "layout"
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    assert _index(layout) == [
        {
            "mediaType": image.media_type,
            "digest": image.digest,
            "size": image.size,
            "annotations": {REF_NAME: "v1"},
        }
    ]
    assert _blob_files(layout) == {d[7:] for d in [image.digest, *image.blobs()]}


@pytest.mark.anyio
async def test_a_multi_arch_index_is_stored_with_its_children(tmp_path: Path, rng_seed: int) -> None:
    index = make_multiarch(rng_seed, fmt="oci")
    reference = parse_image_name(f"oci:{tmp_path}:all")
    async with transport_context() as ctx:
        destination = await reference.new_destination(ctx)
        await copy_through(MemorySource(index), destination)
        source = await reference.new_source(ctx)
        found = await read_back(source)
    assert str(found.digest) == index.digest
    assert [str(c) for c in found.children] == [i.digest for i in index.images]
    # Only the index gets an index.json entry; children are plain blobs, as skopeo writes them.
    assert [e["digest"] for e in _index(tmp_path)] == [index.digest]


@pytest.mark.anyio
async def test_several_images_share_blobs_and_a_reused_name_moves(tmp_path: Path, rng_seed: int) -> None:
    base = make_layer(f"{rng_seed}/base", 3000)
    first = make_image(f"{rng_seed}/1", shared_layers=[base], fmt="oci")
    second = make_image(f"{rng_seed}/2", shared_layers=[base], fmt="oci")
    async with transport_context() as ctx:
        for image, name in ((first, "a"), (second, "b"), (second, "a")):
            destination = await parse_image_name(f"oci:{tmp_path}:{name}").new_destination(ctx)
            source = MemorySource(image)
            await copy_through(source, destination)
            if (image, name) == (second, "a"):
                assert source.opened == []  # every blob was already in the layout
        listed = await (await parse_image_name(f"oci:{tmp_path}").new_source(ctx)).list_tags()
    entries = _index(tmp_path)
    # skopeo's rule: writing "a" again takes the name off the old entry, which stays unnamed.
    assert [(e["digest"], (e.get("annotations") or {}).get(REF_NAME)) for e in entries] == [
        (first.digest, None),
        (second.digest, "b"),
        (second.digest, "a"),
    ]
    assert listed == ["b", "a"]
    assert Digest.of(base).hex in _blob_files(tmp_path)
    assert len(_blob_files(tmp_path)) == len({first.digest, second.digest, *first.blobs(), *second.blobs()})


@pytest.mark.anyio
async def test_concurrent_copies_into_one_layout_all_land(tmp_path: Path, rng_seed: int) -> None:
    images = [make_image(f"{rng_seed}/{n}", layers=1, fmt="oci") for n in range(6)]
    async with transport_context() as ctx:

        async def copy(number: int) -> None:
            destination = await parse_image_name(f"oci:{tmp_path}:t{number}").new_destination(ctx)
            await copy_through(MemorySource(images[number]), destination)

        async with anyio.create_task_group() as group:
            for number in range(6):
                group.start_soon(copy, number)
    assert sorted((e["annotations"][REF_NAME], e["digest"]) for e in _index(tmp_path)) == sorted(  # type: ignore[index]
        (f"t{n}", images[n].digest) for n in range(6)
    )


@pytest.mark.anyio
async def test_a_corrupt_blob_stream_commits_nothing(tmp_path: Path, rng_seed: int) -> None:
    old = make_image(f"{rng_seed}/old", fmt="oci")
    new = make_image(f"{rng_seed}/new", fmt="oci")
    async with transport_context() as ctx:
        await copy_through(
            MemorySource(old), await parse_image_name(f"oci:{tmp_path}:v1").new_destination(ctx)
        )
        index_before = (tmp_path / "index.json").read_bytes()
        source = MemorySource(new)
        bad_layer = new.layer_digests[0]
        source.blobs[bad_layer] = source.blobs[bad_layer][:-1] + b"!"
        destination = await parse_image_name(f"oci:{tmp_path}:v1").new_destination(ctx)
        with pytest.raises(DigestMismatchError):
            await copy_through(source, destination)
        await destination.close()
    assert (tmp_path / "index.json").read_bytes() == index_before
    assert bad_layer[7:] not in _blob_files(tmp_path)
    assert not [n for n in os.listdir(tmp_path / "blobs" / "sha256") if n.startswith(TEMP_PREFIX)]


@pytest.mark.anyio
async def test_shared_blob_dir_holds_every_blob(tmp_path: Path, rng_seed: int) -> None:
    image = make_image(rng_seed, fmt="oci")
    shared = tmp_path / "shared"
    reference = parse_image_name(f"oci:{tmp_path}/layout:v1")
    async with transport_context(shared_blob_dir=str(shared)) as ctx:
        await copy_through(MemorySource(image), await reference.new_destination(ctx))
        found = await read_back(await reference.new_source(ctx))
    assert str(found.digest) == image.digest
    assert not (tmp_path / "layout" / "blobs").exists()
    assert {p.name for p in (shared / "sha256").iterdir()} == {d[7:] for d in [image.digest, *image.blobs()]}
    async with transport_context() as ctx:
        source = await reference.new_source(ctx)
        with pytest.raises(LocalStorageError, match="no such file"):
            await source.get_manifest()


@pytest.mark.anyio
async def test_a_blobs_symlink_leading_outside_is_refused(tmp_path: Path, rng_seed: int) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    layout = tmp_path / "layout"
    layout.mkdir()
    (layout / "blobs").symlink_to(outside)
    async with transport_context() as ctx:
        destination = await parse_image_name(f"oci:{layout}:v1").new_destination(ctx)
        with pytest.raises(LocalStorageError, match="outside"):
            await copy_through(MemorySource(make_image(rng_seed, fmt="oci")), destination)
    assert list(outside.iterdir()) == []


@pytest.mark.anyio
async def test_a_corrupt_existing_index_is_refused_before_copying(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text(
        '{"schemaVersion": 2, "manifests": [{"digest": "sha256:nope", "size": 1}]}'
    )
    async with transport_context() as ctx:
        with pytest.raises(LocalStorageError, match="refusing the layout"):
            await parse_image_name(f"oci:{tmp_path}:v1").new_destination(ctx)
    (tmp_path / "index.json").unlink()
    (tmp_path / "oci-layout").write_text("not json")
    async with transport_context() as ctx:
        with pytest.raises(LocalStorageError, match="oci-layout"):
            await parse_image_name(f"oci:{tmp_path}:v1").new_destination(ctx)


@pytest.mark.anyio
async def test_commit_without_a_manifest_is_an_error(tmp_path: Path) -> None:
    async with transport_context() as ctx:
        destination = await parse_image_name(f"oci:{tmp_path}:v1").new_destination(ctx)
        with pytest.raises(LocalStorageError, match="nothing to commit"):
            await destination.commit()
    assert not (tmp_path / "index.json").exists()
