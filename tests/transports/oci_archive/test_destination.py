"""``oci-archive:`` written through a staging layout and replaced atomically; read back in place."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from asyncsync.errors import DigestMismatchError, LocalStorageError
from asyncsync.transports import parse_image_name
from asyncsync.transports.oci_archive.reference import OCIArchiveReference
from tests.helpers.images import GeneratedImage, GeneratedIndex, make_image, make_multiarch
from tests.transports.roundtrip import MemorySource, copy_through, read_back, transport_context


def test_reference() -> None:
    assert parse_image_name("oci-archive:/tmp/a.tar:v1") == OCIArchiveReference("/tmp/a.tar", "v1")
    assert str(parse_image_name("oci-archive:a.tar")) == "oci-archive:a.tar"


@pytest.mark.anyio
async def test_round_trip_of_an_image_and_an_index(tmp_path: Path, rng_seed: int) -> None:
    images: list[GeneratedImage | GeneratedIndex] = [
        make_image(rng_seed, fmt="oci"),
        make_multiarch(rng_seed, fmt="oci"),
    ]
    for number, image in enumerate(images):
        archive = tmp_path / f"a{number}.tar"
        async with transport_context() as ctx:
            destination = await parse_image_name(f"oci-archive:{archive}:v1").new_destination(ctx)
            await copy_through(MemorySource(image), destination)
            await destination.close()
            source = await parse_image_name(f"oci-archive:{archive}").new_source(ctx)
            found = await read_back(source)
            assert await source.list_tags() == ["v1"]
            await source.close()
        assert str(found.digest) == image.digest
        with tarfile.open(archive) as tar:
            names = tar.getnames()
        assert {"oci-layout", "index.json", "blobs", "blobs/sha256"} <= set(names)
        assert {f"blobs/sha256/{d[7:]}" for d in image.blobs()} <= set(names)
    # Nothing but the archives is left next to them (the staging directories are gone).
    assert sorted(os.listdir(tmp_path)) == ["a0.tar", "a1.tar"]


@pytest.mark.anyio
async def test_writing_replaces_the_archive_as_skopeo_does(tmp_path: Path, rng_seed: int) -> None:
    archive = tmp_path / "a.tar"
    first, second = make_image(f"{rng_seed}/1", fmt="oci"), make_image(f"{rng_seed}/2", fmt="oci")
    async with transport_context() as ctx:
        await copy_through(
            MemorySource(first), await parse_image_name(f"oci-archive:{archive}:one").new_destination(ctx)
        )
        await copy_through(
            MemorySource(second), await parse_image_name(f"oci-archive:{archive}:two").new_destination(ctx)
        )
        source = await parse_image_name(f"oci-archive:{archive}").new_source(ctx)
        assert await source.list_tags() == ["two"]
        await source.close()


@pytest.mark.anyio
async def test_a_failed_copy_leaves_the_old_archive_untouched(tmp_path: Path, rng_seed: int) -> None:
    archive = tmp_path / "a.tar"
    old, new = make_image(f"{rng_seed}/old", fmt="oci"), make_image(f"{rng_seed}/new", fmt="oci")
    async with transport_context() as ctx:
        await copy_through(
            MemorySource(old), await parse_image_name(f"oci-archive:{archive}:v1").new_destination(ctx)
        )
        # (commit removed the staging directory even though close() was not called)
        before = archive.read_bytes()
        broken = MemorySource(new)
        broken.blobs[new.layer_digests[0]] = b"garbage"
        destination = await parse_image_name(f"oci-archive:{archive}:v1").new_destination(ctx)
        with pytest.raises(DigestMismatchError):
            await copy_through(broken, destination)
        await destination.close()
    assert archive.read_bytes() == before
    assert os.listdir(tmp_path) == ["a.tar"]


@pytest.mark.anyio
async def test_bad_destinations(tmp_path: Path) -> None:
    async with transport_context() as ctx:
        with pytest.raises(LocalStorageError, match="is a directory"):
            await parse_image_name(f"oci-archive:{tmp_path}").new_destination(ctx)
        with pytest.raises(LocalStorageError, match="does not exist"):
            await parse_image_name(f"oci-archive:{tmp_path}/no/such/a.tar").new_destination(ctx)
