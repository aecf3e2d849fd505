"""Reading archives in place (never extracting) and refusing unsafe members; deterministic writing;
Go-compatible member headers for streaming writers."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest

from asyncsync.errors import LocalStorageError
from asyncsync.transports.tar_archive import (
    BLOCK,
    END_OF_ARCHIVE,
    TarEntry,
    TarIndex,
    member_header,
    padding,
    write_tar,
)


def _tar(path: Path, members: list[tuple[str, str, bytes | str]], *, compress: bool = False) -> Path:
    """members: (name, kind, data-or-linkname) with kind in file/dir/symlink/hardlink/fifo/chr."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                assert isinstance(payload, bytes)
                info.size = len(payload)
                archive.addfile(info, io.BytesIO(payload))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
                "fifo": tarfile.FIFOTYPE,
                "chr": tarfile.CHRTYPE,
            }[kind]
            if isinstance(payload, str):
                info.linkname = payload
            archive.addfile(info)
    data = raw.getvalue()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _exists(path: str) -> bool:
    return os.path.exists(path)


async def _read(index: TarIndex, name: str) -> bytes:
    data = bytearray()
    async with index.open_member(name) as chunks:
        async for chunk in chunks:
            data += chunk
    return bytes(data)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("member", "message"),
    [
        (("../evil", "file", b"x"), "'..'"),
        (("a/../../evil", "file", b"x"), "'..'"),
        (("/etc/evil", "file", b"x"), "absolute"),
        (("link", "symlink", "/etc/passwd"), "absolute"),
        (("dir/link", "symlink", "../../outside"), "outside the archive"),
        (("hard", "hardlink", "../outside"), "'..'"),
        (("hard", "hardlink", "/etc/shadow"), "absolute"),
        (("pipe", "fifo", b""), "FIFOs"),
        (("tty", "chr", b""), "devices"),
    ],
)
async def test_unsafe_members_refuse_the_whole_archive(
    tmp_path: Path, member: tuple[str, str, bytes | str], message: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    archive = _tar(work / "a.tar", [("ok", "file", b"fine"), member])
    before = _tree(tmp_path)
    with pytest.raises(LocalStorageError, match=message) as caught:
        await TarIndex.open(str(archive), "docker-archive:a.tar")
    assert "docker-archive:a.tar" in str(caught.value)
    # Nothing was extracted anywhere: the tree is exactly as before.
    assert _tree(tmp_path) == before
    assert not (tmp_path / "evil").exists()


@pytest.mark.anyio
async def test_links_inside_the_archive_are_followed(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "a.tar",
        [
            ("./layer.tar", "file", b"layer bytes"),
            ("id1/", "dir", b""),
            ("id1/layer.tar", "symlink", "../layer.tar"),
            ("dirlink", "symlink", "id1"),
            ("hard", "hardlink", "layer.tar"),
        ],
    )
    index = await TarIndex.open(str(archive), "t")
    try:
        for name in ("layer.tar", "id1/layer.tar", "dirlink/layer.tar", "hard", "./id1//layer.tar"):
            assert await _read(index, name) == b"layer bytes"
        with pytest.raises(LocalStorageError, match="no member"):
            index.resolve("missing")
        with pytest.raises(LocalStorageError, match="not a regular file"):
            index.resolve("id1")
    finally:
        await index.close()


@pytest.mark.anyio
async def test_symlink_loops_are_refused(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "a.tar", [("a", "symlink", "b"), ("b", "symlink", "a")])
    index = await TarIndex.open(str(archive), "t")
    with pytest.raises(LocalStorageError, match="too many levels"):
        index.resolve("a")


@pytest.mark.anyio
async def test_compressed_archives_are_read_from_a_temporary_copy_removed_on_close(tmp_path: Path) -> None:
    payload = os.urandom(50_000)
    archive = _tar(tmp_path / "a.tar.gz", [("blob", "file", payload)], compress=True)
    index = await TarIndex.open(str(archive), "t")
    temporary = index.path
    assert temporary != str(archive) and _exists(temporary)
    assert await _read(index, "blob") == payload
    assert await index.read_member("blob", 100_000) == payload
    with pytest.raises(LocalStorageError, match="limit"):
        await index.read_member("blob", 10)
    async with index.open_member("blob", offset=49_990) as chunks:
        assert b"".join([c async for c in chunks]) == payload[49_990:]
    await index.close()
    assert not _exists(temporary)


@pytest.mark.anyio
async def test_not_a_tar_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "junk").write_bytes(b"this is not a tar archive at all" * 30)
    with pytest.raises(LocalStorageError, match="not a valid tar"):
        await TarIndex.open(str(tmp_path / "junk"), "t")
    with pytest.raises(LocalStorageError, match="no such file"):
        await TarIndex.open(str(tmp_path / "missing"), "t")


def test_write_tar_is_deterministic_and_readable(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.write_bytes(b"file content")
    entries = [
        TarEntry("dir/", kind="dir", mode=0o755),
        TarEntry("dir/a", source=str(source)),
        TarEntry("b", data=b"bytes"),
        TarEntry("dir/link", kind="symlink", target="../b", mode=0),
    ]
    first, second = io.BytesIO(), io.BytesIO()
    write_tar(entries, first)
    write_tar(entries, second)
    assert first.getvalue() == second.getvalue()
    with tarfile.open(fileobj=io.BytesIO(first.getvalue())) as archive:
        members = {m.name: m for m in archive.getmembers()}
        assert set(members) == {"dir", "dir/a", "b", "dir/link"}
        assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in members.values())
        assert members["dir/link"].linkname == "../b"
        extracted = archive.extractfile("dir/a")
        assert extracted is not None and extracted.read() == b"file content"


def test_member_headers_are_what_go_archive_tar_writes() -> None:
    header = member_header("0123.tar", 10240)
    assert len(header) == BLOCK
    # The fields as Go's USTAR writer fills them (as in skopeo's archives): octal, NUL-terminated,
    # device numbers included; checksum as six digits, NUL, space.
    assert header[100:108] == b"0000444\x00" and header[108:124] == b"0000000\x00" * 2
    assert header[124:136] == b"00000024000\x00" and header[136:148] == b"00000000000\x00"
    assert header[156:157] == b"0" and header[257:265] == b"ustar\x0000"
    assert header[329:345] == b"0000000\x00" * 2 and header[345:] == bytes(BLOCK - 345)
    checksum = sum(header[:148]) + 8 * ord(" ") + sum(header[156:])
    assert header[148:156] == b"%06o\x00 " % checksum
    link = member_header("id/layer.tar", 99, kind="symlink", target="../0123.tar", mode=0)
    assert link[156:157] == b"2" and link[124:136] == b"00000000000\x00" and link[100:108] == b"0000000\x00"


def test_member_headers_read_back_with_long_names_and_huge_sizes() -> None:
    long_name = "d" * 64 + "/" + "e" * 128 + ".json"
    long_target = "../" + "f" * 120
    out = io.BytesIO()
    for name, data in (("a.json", b"{}"), (long_name, b"long")):
        out.write(member_header(name, len(data)) + data + padding(len(data)))
    out.write(member_header("link", kind="symlink", target=long_target, mode=0))
    out.write(END_OF_ARCHIVE)
    assert len(out.getvalue()) % BLOCK == 0
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as archive:
        members = archive.getmembers()
        assert [(m.name, m.size, m.mode, m.mtime) for m in members[:2]] == [
            ("a.json", 2, 0o444, 0),
            (long_name, 4, 0o444, 0),
        ]
        assert members[2].issym() and members[2].linkname == long_target
        extracted = archive.extractfile(long_name)
        assert extracted is not None and extracted.read() == b"long"
    # A layer of 8 GiB or more still has a one-block header (GNU base-256 size), so a writer can
    # reserve it before knowing the size.
    huge = 10 * 1024**3
    header = member_header("0123.tar", huge)
    assert len(header) == BLOCK
    assert tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape").size == huge
