"""Safe paths, atomic writes and lazy reads of asyncsync.transports.local_files."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asyncsync.digest import Digest, verified_chunks
from asyncsync.errors import DigestMismatchError, LocalStorageError
from asyncsync.transports.local_files import (
    TEMP_PREFIX,
    DirectoryTree,
    open_chunks,
    read_existing,
    read_manifest_file,
    safe_path,
    write_bytes_atomic,
    write_chunks_atomic,
)


@pytest.mark.parametrize("name", ["/etc/passwd", "../x", "a/../../x", "a/..", "", ".", "a\x00b"])
def test_safe_path_refuses_escaping_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(LocalStorageError):
        safe_path(str(tmp_path), name)


def test_safe_path_refuses_a_symlink_leading_outside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "blobs").symlink_to(outside)
    with pytest.raises(LocalStorageError, match="outside"):
        safe_path(str(root), "blobs/sha256/abc")


def test_safe_path_accepts_names_and_symlinks_inside(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert safe_path(str(tmp_path), "./a//b") == str(tmp_path / "a" / "b")
    assert safe_path(str(tmp_path), "link/file") == str(tmp_path / "link" / "file")


async def _chunks(*parts: bytes, fail: bool = False) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    if fail:
        raise DigestMismatchError("bad stream")


@pytest.mark.anyio
async def test_write_chunks_atomic_writes_and_hashes(tmp_path: Path) -> None:
    target = tmp_path / "blob"
    result = await write_chunks_atomic(str(target), _chunks(b"hello ", b"world"))
    assert target.read_bytes() == b"hello world"
    assert result.size == 11
    assert result.digest == Digest.of(b"hello world")
    assert os.listdir(tmp_path) == ["blob"]


@pytest.mark.anyio
async def test_a_failed_stream_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "blob"
    target.write_bytes(b"old")
    with pytest.raises(DigestMismatchError):
        await write_chunks_atomic(str(target), _chunks(b"new data", fail=True))
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["blob"]


@pytest.mark.anyio
async def test_a_verified_stream_with_wrong_content_is_never_renamed_into_place(tmp_path: Path) -> None:
    data = b"x" * 10_000
    wrong = Digest.of(b"something else")
    target = tmp_path / wrong.hex
    with pytest.raises(DigestMismatchError):
        await write_chunks_atomic(
            str(target), verified_chunks(_chunks(data[:5000], data[5000:]), wrong, 10_000)
        )
    assert not target.exists()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(TEMP_PREFIX)]


@pytest.mark.anyio
async def test_write_into_a_missing_directory_is_a_local_storage_error(tmp_path: Path) -> None:
    with pytest.raises(LocalStorageError, match="No such file"):
        await write_bytes_atomic(str(tmp_path / "missing" / "f"), b"x")


@pytest.mark.anyio
async def test_open_chunks_reads_ranges_lazily(tmp_path: Path) -> None:
    path = tmp_path / "f"
    data = os.urandom(3 * 1024 * 1024 + 17)
    path.write_bytes(data)
    got = bytearray()
    sizes = []
    async with open_chunks(str(path), offset=10, length=2 * 1024 * 1024) as chunks:
        async for chunk in chunks:
            got += chunk
            sizes.append(len(chunk))
    assert bytes(got) == data[10 : 10 + 2 * 1024 * 1024]
    assert max(sizes) <= 1024 * 1024
    with pytest.raises(LocalStorageError, match="no such file"):
        async with open_chunks(str(tmp_path / "missing")):
            pass


@pytest.mark.anyio
async def test_read_manifest_file_refuses_bytes_that_do_not_match_the_digest(tmp_path: Path) -> None:
    tree = DirectoryTree(str(tmp_path), "dir:test")
    (tmp_path / "m").write_bytes(b'{"schemaVersion":2}')
    good = Digest.of(b'{"schemaVersion":2}')
    assert await read_manifest_file(tree, "m", good, 19) == b'{"schemaVersion":2}'
    with pytest.raises(DigestMismatchError, match="corrupt"):
        await read_manifest_file(tree, "m", Digest.of(b"other"))
    with pytest.raises(DigestMismatchError, match="size"):
        await read_manifest_file(tree, "m", good, 20)


def test_read_existing_reads_returns_none_when_absent_and_refuses_over_the_limit(tmp_path: Path) -> None:
    small = tmp_path / "index.json"
    small.write_bytes(b"12345")
    assert read_existing(str(small), 5) == b"12345"
    assert read_existing(str(tmp_path / "absent"), 5) is None
    with pytest.raises(LocalStorageError, match="larger than the 4 byte limit"):
        read_existing(str(small), 4)


def test_read_existing_treats_only_the_named_errors_as_absent(tmp_path: Path) -> None:
    below_a_file = str(tmp_path / "file" / "manifest.json")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(LocalStorageError, match="Not a directory"):
        read_existing(below_a_file, 10)
    assert read_existing(below_a_file, 10, absent=(FileNotFoundError, NotADirectoryError)) is None
