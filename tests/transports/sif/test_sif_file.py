"""SIF header and descriptor parsing: the real busybox SIF from skopeo's tests, and broken files."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncsync.errors import LocalStorageError
from asyncsync.transports.sif.sif_file import DATA_DEFFILE, DATA_PARTITION, FS_SQUASH, PART_PRIMSYS, read_sif
from tests.helpers.sif import make_sif

BUSYBOX_SIF = (
    Path(__file__).resolve().parents[2] / "systemtest" / "upstream" / "testdata" / "busybox_latest.sif"
)


def test_the_busybox_sif_header_and_objects() -> None:
    sif = read_sif(str(BUSYBOX_SIF))
    assert (sif.arch, sif.id, sif.modified_at) == (
        "amd64",
        "4f307b4c-58a8-4753-9c0f-21dceefed4a6",
        1627931376,
    )
    rootfs = sif.single(DATA_PARTITION, PART_PRIMSYS)
    assert rootfs is not None
    assert (rootfs.fs_type, rootfs.offset, rootfs.size) == (FS_SQUASH, 45056, 745472)
    deffile = sif.single(DATA_DEFFILE)
    assert deffile is not None
    assert BUSYBOX_SIF.read_bytes()[deffile.offset : deffile.offset + deffile.size].startswith(
        b"BootStrap: docker"
    )


def test_architecture_comes_from_the_header(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    sif = read_sif(str(make_sif(tmp_path / "a.sif", tmp_path / "root", arch="arm64")))
    assert sif.arch == "arm64"


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda data: data[:32] + b"XIF_MAGIC\x00" + data[42:], "invalid SIF magic"),
        (lambda data: data[:32] + b"SIF_MAGIC\x00" + b"02\x00" + data[45:], "incompatible SIF version"),
        (lambda data: data[:100], "not a SIF file"),
        (lambda data: data[:5000], "reading descriptors: unexpected EOF"),
    ],
)
def test_broken_files_are_one_line_errors(tmp_path: Path, mangle: object, message: str) -> None:
    path = tmp_path / "broken.sif"
    path.write_bytes(mangle(BUSYBOX_SIF.read_bytes()))  # type: ignore[operator]
    with pytest.raises(LocalStorageError, match=message) as caught:
        read_sif(str(path))
    assert "\n" not in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(LocalStorageError, match="no such file"):
        read_sif(str(tmp_path / "absent.sif"))
