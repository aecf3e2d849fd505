"""``oci-archive:`` sources: read in place, compressed archives, hostile archives refused."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from asyncsync.errors import LocalStorageError
from asyncsync.transports import parse_image_name
from tests.helpers.images import make_image
from tests.transports.roundtrip import MemorySource, copy_through, read_back, transport_context


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.mark.anyio
async def test_a_gzip_compressed_archive_is_read(tmp_path: Path, rng_seed: int) -> None:
    image = make_image(rng_seed, fmt="oci")
    async with transport_context() as ctx:
        await copy_through(
            MemorySource(image),
            await parse_image_name(f"oci-archive:{tmp_path}/a.tar:v1").new_destination(ctx),
        )
        (tmp_path / "a.tar.gz").write_bytes(gzip.compress((tmp_path / "a.tar").read_bytes()))
        source = await parse_image_name(f"oci-archive:{tmp_path}/a.tar.gz:v1").new_source(ctx)
        assert str((await read_back(source)).digest) == image.digest
        await source.close()


@pytest.mark.anyio
async def test_an_archive_with_an_escaping_member_is_refused_without_writing(tmp_path: Path) -> None:
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add(tar, "index.json", json.dumps({"schemaVersion": 2, "manifests": []}).encode())
        _add(tar, "../../escaped", b"pwned")
    async with transport_context() as ctx:
        with pytest.raises(LocalStorageError, match=r"'\.\.'"):
            await parse_image_name(f"oci-archive:{archive}").new_source(ctx)
    assert not (tmp_path.parent / "escaped").exists()
    assert not (tmp_path / "escaped").exists()


@pytest.mark.anyio
async def test_an_index_link_leading_outside_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        link = tarfile.TarInfo("index.json")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
        tar.addfile(link)
    async with transport_context() as ctx:
        with pytest.raises(LocalStorageError, match="outside the archive"):
            await parse_image_name(f"oci-archive:{archive}").new_source(ctx)


@pytest.mark.anyio
async def test_missing_file_and_not_a_layout(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "empty.tar", "w") as tar:
        _add(tar, "hello", b"world")
    async with transport_context() as ctx:
        with pytest.raises(LocalStorageError, match="no such file"):
            await parse_image_name(f"oci-archive:{tmp_path}/missing.tar").new_source(ctx)
        with pytest.raises(LocalStorageError, match=r"no index.json"):
            await parse_image_name(f"oci-archive:{tmp_path}/empty.tar").new_source(ctx)
