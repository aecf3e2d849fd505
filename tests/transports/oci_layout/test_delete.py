"""``delete oci:``: the index entry goes, then the blobs no other image uses (never shared blobs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asyncsync.digest import Digest
from asyncsync.errors import LocalStorageError
from asyncsync.transports import parse_image_name
from tests.helpers.images import make_image, make_layer, make_multiarch
from tests.transports.roundtrip import MemorySource, copy_through, read_back, transport_context


def _blobs(layout: Path) -> set[str]:
    return {"sha256:" + p.name for p in (layout / "blobs" / "sha256").iterdir()}


@pytest.mark.anyio
async def test_delete_removes_the_entry_and_only_unshared_blobs(tmp_path: Path, rng_seed: int) -> None:
    base = make_layer(f"{rng_seed}/base", 2000)
    keep = make_image(f"{rng_seed}/keep", shared_layers=[base], fmt="oci")
    drop = make_image(f"{rng_seed}/drop", shared_layers=[base], fmt="oci")
    multi = make_multiarch(f"{rng_seed}/multi", fmt="oci")
    async with transport_context() as ctx:
        for image, name in ((keep, "keep"), (drop, "drop"), (multi, "multi")):
            await copy_through(
                MemorySource(image), await parse_image_name(f"oci:{tmp_path}:{name}").new_destination(ctx)
            )
        notes = await parse_image_name(f"oci:{tmp_path}:drop").delete(ctx)
        assert any("deleted 4 blob(s)" in note for note in notes), notes  # manifest, config, 2 layers
        names = json.loads((tmp_path / "index.json").read_text())["manifests"]
        assert [n["annotations"]["org.opencontainers.image.ref.name"] for n in names] == ["keep", "multi"]
        expected = {keep.digest, *keep.blobs(), multi.digest, *multi.blobs(), *multi.manifests()}
        assert _blobs(tmp_path) == expected  # base stays
        assert (
            str((await read_back(await parse_image_name(f"oci:{tmp_path}:keep").new_source(ctx))).digest)
            == keep.digest
        )
        await parse_image_name(f"oci:{tmp_path}:multi").delete(ctx)
        assert _blobs(tmp_path) == {keep.digest, *keep.blobs()}
        with pytest.raises(LocalStorageError, match="no image named 'multi'"):
            await parse_image_name(f"oci:{tmp_path}:multi").delete(ctx)


@pytest.mark.anyio
async def test_blobs_are_kept_when_another_image_cannot_be_read(tmp_path: Path, rng_seed: int) -> None:
    first = make_image(f"{rng_seed}/1", fmt="oci")
    second = make_image(f"{rng_seed}/2", fmt="oci")
    async with transport_context() as ctx:
        for image, name in ((first, "a"), (second, "b")):
            await copy_through(
                MemorySource(image), await parse_image_name(f"oci:{tmp_path}:{name}").new_destination(ctx)
            )
        (tmp_path / "blobs" / "sha256" / Digest.parse(second.digest).hex).unlink()
        before = _blobs(tmp_path)
        notes = await parse_image_name(f"oci:{tmp_path}:a").delete(ctx)
    assert any("no blobs deleted" in note for note in notes)
    assert _blobs(tmp_path) == before


@pytest.mark.anyio
async def test_shared_blob_dir_blobs_are_never_deleted(tmp_path: Path, rng_seed: int) -> None:
    image = make_image(rng_seed, fmt="oci")
    shared = tmp_path / "shared"
    async with transport_context(shared_blob_dir=str(shared)) as ctx:
        reference = parse_image_name(f"oci:{tmp_path}/layout:v1")
        await copy_through(MemorySource(image), await reference.new_destination(ctx))
        before = sorted(p.name for p in (shared / "sha256").iterdir())
        notes = await reference.delete(ctx)
    assert any("shared blob directory are kept" in note for note in notes)
    assert sorted(p.name for p in (shared / "sha256").iterdir()) == before
    assert json.loads((tmp_path / "layout" / "index.json").read_text())["manifests"] == []
