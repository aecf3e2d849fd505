"""``sif:`` sources: the layer, config and manifest containers/image makes, checked against skopeo."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from asyncsync.digest import Digest, verified_chunks
from asyncsync.errors import LocalStorageError, UsageError
from asyncsync.manifest import ImageManifest, parse_manifest
from asyncsync.transports import parse_image_name
from asyncsync.transports.base import ImageSource
from tests.helpers.asyncsync_cli import run_cli
from tests.helpers.sif import make_sif
from tests.helpers.skopeo import skopeo
from tests.transports.roundtrip import read_back, transport_context
from tests.transports.sif.test_sif_file import BUSYBOX_SIF


def _dir_image(path: Path) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    manifest = json.loads((path / "manifest.json").read_bytes())
    config = json.loads((path / manifest["config"]["digest"].split(":")[1]).read_bytes())
    layer = (path / manifest["layers"][0]["digest"].split(":")[1]).read_bytes()
    return manifest, config, layer


def _members(layer: bytes) -> list[tuple[Any, ...]]:
    """Every tar member's metadata except ctime and atime (times of the extraction, in pax headers)."""
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        return [
            (m.name, m.mode, m.uid, m.gid, m.uname, m.gname, m.mtime, m.size, m.type, m.linkname,
             {k: v for k, v in m.pax_headers.items() if k not in ("ctime", "atime")})
            for m in tar.getmembers()
        ]  # fmt: skip


async def _read_blob(source: ImageSource, digest: Digest) -> bytes:
    manifest = parse_manifest((await source.get_manifest())[0])
    assert isinstance(manifest, ImageManifest)
    blob = next(d for d in (manifest.config, *manifest.layers) if d.digest == digest)
    data = b""
    async with source.open_blob(blob) as chunks:
        async for chunk in verified_chunks(chunks, blob.digest, blob.size):
            data += chunk
    return data


def _without_layer_digests(config: dict[str, Any]) -> dict[str, Any]:
    config = json.loads(json.dumps(config))
    config["rootfs"]["diff_ids"] = ["-"]
    config["history"][0]["created_by"] = "-"
    return config


def test_busybox_sif_converts_as_skopeo_converts_it(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "skopeo"
    result = run_cli("copy", f"sif:{BUSYBOX_SIF}", f"dir:{ours}")
    assert result.returncode == 0, result.stderr
    skopeo("copy", f"sif:{BUSYBOX_SIF}", f"dir:{theirs}")
    our_manifest, our_config, our_layer = _dir_image(ours)
    their_manifest, their_config, their_layer = _dir_image(theirs)
    # The tar holds the extraction's ctime and atimes: digests differ run to run (skopeo's too).
    assert _members(our_layer) == _members(their_layer)
    assert len(our_layer) == len(their_layer)
    assert _without_layer_digests(our_config) == _without_layer_digests(their_config)
    assert our_config["config"] == {"Cmd": ["bash"]}
    assert our_config["architecture"] == "amd64"
    assert [layer["mediaType"] for layer in our_manifest["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar"
    ]
    assert our_manifest.keys() == their_manifest.keys()
    assert our_manifest["config"]["size"] == their_manifest["config"]["size"]


@pytest.mark.anyio
async def test_a_definition_file_runscript_is_injected(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "hello").write_text("#!/bin/sh\necho hello\n")
    deffile = (
        "Bootstrap: scratch\n%environment\n  # a comment\n  export A=1\n\n"
        "%runscript\n  exec /bin/hello\n%labels\n  x y\n"
    )
    sif = make_sif(tmp_path / "app.sif", root, deffile=deffile, arch="arm64")
    async with transport_context() as ctx:
        source = await parse_image_name(f"sif:{sif}").new_source(ctx)
        try:
            image = await read_back(source)
            config = json.loads(await _read_blob(source, image.configs[0]))
            layer = await _read_blob(source, image.layers[0][0])
        finally:
            await source.close()
    assert image.diff_ids == [[str(image.layers[0][0])]]  # uncompressed: the diff id is the digest
    assert config["architecture"] == "arm64"
    assert config["config"] == {"Cmd": ["/podman/runscript"]}
    assert config["history"][0]["comment"] == "imported from SIF, uuid: 4f307b4c-58a8-4753-9c0f-21dceefed4a6"
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        script = tar.extractfile("./podman/runscript")
        assert script is not None
        assert script.read() == b"#!/bin/bash\nexport A=1\nexec /bin/hello\n"
        assert tar.getmember("./bin/hello").uid == 0


@pytest.mark.anyio
async def test_without_a_root_partition_nothing_is_left_behind(tmp_path: Path) -> None:
    sif = make_sif(tmp_path / "empty.sif", None, deffile="Bootstrap: scratch\n", partition=False)
    spool = tmp_path / "spool"
    spool.mkdir()
    result = run_cli("--tmpdir", str(spool), "copy", f"sif:{sif}", f"dir:{tmp_path / 'out'}")
    assert result.returncode == 1
    assert result.stderr.strip().endswith("looking up rootfs from SIF file: object not found")
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(spool.iterdir()) == []
    assert not (tmp_path / "out").exists()


def test_work_files_go_to_tmpdir_and_are_removed(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    result = run_cli("--tmpdir", str(spool), "inspect", f"sif:{BUSYBOX_SIF}")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["Architecture"] == "amd64"
    assert list(spool.iterdir()) == []


@pytest.mark.anyio
async def test_sif_is_read_only(tmp_path: Path) -> None:
    async with transport_context() as ctx:
        with pytest.raises(UsageError, match="can only be read from"):
            await parse_image_name(f"sif:{tmp_path / 'x.sif'}").new_destination(ctx)


@pytest.mark.anyio
async def test_not_a_sif_file(tmp_path: Path) -> None:
    path = tmp_path / "plain.sif"
    path.write_bytes(b"hello" * 100)
    async with transport_context() as ctx:
        with pytest.raises(LocalStorageError, match="invalid SIF magic"):
            await parse_image_name(f"sif:{path}").new_source(ctx)
