"""``tarball:`` sources: one layer per file, containers/image's config and manifest (checked with skopeo)."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from asyncsync.errors import InvalidReferenceError, LocalStorageError, UsageError
from asyncsync.transports import parse_image_name
from tests.helpers.asyncsync_cli import run_cli
from tests.helpers.skopeo import skopeo
from tests.transports.roundtrip import read_back, transport_context


def _tarball(path: Path, files: dict[str, bytes], *, compress: bool = False) -> Path:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_600_000_000
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(raw.getvalue(), mtime=0) if compress else raw.getvalue())
    os.utime(path, ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    return path


def test_plain_and_gzip_tarballs_copy_byte_for_byte_as_skopeo(tmp_path: Path) -> None:
    plain = _tarball(tmp_path / "base.tar", {"etc/os-release": b"ID=test\n"})
    packed = _tarball(tmp_path / "app.tar.gz", {"app/run": b"#!/bin/sh\n"}, compress=True)
    name = f"tarball:{plain}:{packed}"
    result = run_cli("copy", name, f"dir:{tmp_path / 'ours'}")
    assert result.returncode == 0, result.stderr
    skopeo("copy", name, f"dir:{tmp_path / 'skopeo'}")
    ours = sorted(p.name for p in (tmp_path / "ours").iterdir())
    assert ours == sorted(p.name for p in (tmp_path / "skopeo").iterdir())
    for entry in ours:
        assert (tmp_path / "ours" / entry).read_bytes() == (tmp_path / "skopeo" / entry).read_bytes(), entry
    manifest = json.loads((tmp_path / "ours" / "manifest.json").read_bytes())
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
    ]


@pytest.mark.anyio
async def test_diff_ids_are_the_uncompressed_digests(tmp_path: Path) -> None:
    packed = _tarball(tmp_path / "a.tar.gz", {"f": b"x" * 5000}, compress=True)
    async with transport_context() as ctx:
        source = await parse_image_name(f"tarball:{packed}").new_source(ctx)
        try:
            image = await read_back(source)
        finally:
            await source.close()
    assert len(image.layers[0]) == 1
    assert image.diff_ids[0][0] != str(image.layers[0][0])  # gzip: diff id of the plain tar


def test_standard_input_is_a_layer(tmp_path: Path) -> None:
    data = _tarball(tmp_path / "in.tar", {"f": b"stdin\n"}).read_bytes()
    result = run_cli("copy", "tarball:-", f"dir:{tmp_path / 'out'}", stdin=data)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_bytes())
    assert manifest["layers"][0]["size"] == len(data)


def test_a_broken_gzip_file_is_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(gzip.compress(b"a" * 10000)[:40])
    result = run_cli("copy", f"tarball:{broken}", f"dir:{tmp_path / 'out'}")
    assert result.returncode == 1
    assert "reading the gzip stream" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.anyio
async def test_missing_file_read_only_and_bad_names(tmp_path: Path) -> None:
    async with transport_context() as ctx:
        with pytest.raises(LocalStorageError, match="no such file"):
            await parse_image_name(f"tarball:{tmp_path / 'absent.tar'}").new_source(ctx)
        with pytest.raises(UsageError, match="can only be read from"):
            await parse_image_name(f"tarball:{tmp_path / 'x.tar'}").new_destination(ctx)
    for bad in ("tarball:", "tarball:a::b", "tarball:-:-"):
        with pytest.raises(InvalidReferenceError):
            parse_image_name(bad)


def test_delete_removes_the_files_as_skopeo_does(tmp_path: Path) -> None:
    first = _tarball(tmp_path / "a.tar", {"f": b"1"})
    second = _tarball(tmp_path / "b.tar", {"g": b"2"})
    result = run_cli("delete", f"tarball:{first}:{second}")
    assert result.returncode == 0, result.stderr
    assert not first.exists()
    assert not second.exists()
