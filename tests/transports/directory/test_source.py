"""``dir:`` as a source: reading skopeo's layout, verified child manifests, safe names."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncsync.digest import Digest
from asyncsync.errors import DigestMismatchError, LocalStorageError, UsageError
from asyncsync.manifest import parse_manifest
from asyncsync.transports import parse_image_name
from tests.helpers.images import make_image, make_multiarch
from tests.transports.roundtrip import MemorySource, copy_through, read_back, transport_context


@pytest.mark.anyio
async def test_missing_and_empty_directories(tmp_path: Path) -> None:
    async with transport_context() as ctx:
        with pytest.raises(LocalStorageError, match="no such directory"):
            await parse_image_name(f"dir:{tmp_path}/missing").new_source(ctx)
        source = await parse_image_name(f"dir:{tmp_path}").new_source(ctx)
        with pytest.raises(LocalStorageError, match=r"no manifest.json"):
            await source.get_manifest()
        with pytest.raises(UsageError, match="no tags"):
            await source.list_tags()


@pytest.mark.anyio
async def test_a_corrupted_child_manifest_is_refused(tmp_path: Path, rng_seed: int) -> None:
    index = make_multiarch(rng_seed)
    async with transport_context() as ctx:
        await copy_through(
            MemorySource(index), await parse_image_name(f"dir:{tmp_path}").new_destination(ctx)
        )
        child = Digest.parse(index.images[0].digest)
        path = tmp_path / f"{child.hex}.manifest.json"
        path.write_bytes(path.read_bytes()[:-1] + b" ")
        source = await parse_image_name(f"dir:{tmp_path}").new_source(ctx)
        with pytest.raises(DigestMismatchError, match="corrupt"):
            await source.get_manifest(child)


@pytest.mark.anyio
async def test_a_corrupted_blob_file_is_detected_by_digest(tmp_path: Path, rng_seed: int) -> None:
    image = make_image(rng_seed)
    async with transport_context() as ctx:
        await copy_through(
            MemorySource(image), await parse_image_name(f"dir:{tmp_path}/src").new_destination(ctx)
        )
        layer = tmp_path / "src" / image.layer_digests[1][7:]
        data = bytearray(layer.read_bytes())
        data[len(data) // 2] ^= 0xFF
        layer.write_bytes(bytes(data))
        source = await parse_image_name(f"dir:{tmp_path}/src").new_source(ctx)
        with pytest.raises(DigestMismatchError, match=image.layer_digests[1]):
            await read_back(source)
        destination = await parse_image_name(f"oci:{tmp_path}/dst:v1").new_destination(ctx)
        with pytest.raises(DigestMismatchError):
            await copy_through(source, destination)
    # The corrupt layer never reached the destination, and nothing names the image there.
    assert not (tmp_path / "dst" / "blobs" / "sha256" / image.layer_digests[1][7:]).exists()
    assert not (tmp_path / "dst" / "index.json").exists()


@pytest.mark.anyio
async def test_a_symlinked_blob_leading_outside_is_refused(tmp_path: Path, rng_seed: int) -> None:
    image = make_image(rng_seed)
    async with transport_context() as ctx:
        await copy_through(
            MemorySource(image), await parse_image_name(f"dir:{tmp_path}/img").new_destination(ctx)
        )
        (tmp_path / "secret").write_bytes(b"secret")
        config = tmp_path / "img" / image.config_digest[7:]
        config.unlink()
        config.symlink_to(tmp_path / "secret")
        source = await parse_image_name(f"dir:{tmp_path}/img").new_source(ctx)
        descriptor = parse_manifest(image.manifest).config  # type: ignore[union-attr]
        with pytest.raises(LocalStorageError, match="outside"):
            async with source.open_blob(descriptor):
                pass
