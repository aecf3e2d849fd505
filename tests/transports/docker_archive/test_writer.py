"""The streaming ``docker save`` writer: layers in call order, spooling while another is written,
failures cut off, duplicates once, memory flat, nothing at the path until finished."""

from __future__ import annotations

import bz2
import errno
import gzip
import hashlib
import lzma
import os
import tarfile
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from asyncsync.digest import Digest
from asyncsync.errors import DigestMismatchError, LocalStorageError
from asyncsync.manifest import DOCKER_LAYER_GZIP, Descriptor
from asyncsync.transports.docker_archive import writer as writer_module
from asyncsync.transports.docker_archive.writer import ArchiveWriter, StoredLayer
from asyncsync.transports.tar_archive import TarEntry
from tests.helpers.images import make_layer

CHUNK = 4096


def _blob(data: bytes) -> Descriptor:
    return Descriptor(DOCKER_LAYER_GZIP, Digest.of(data), len(data))


async def _chunks(
    data: bytes, *, gate: anyio.Event | None = None, fail_after: int | None = None
) -> AsyncIterator[bytes]:
    """``data`` in small chunks, yielding to other tasks between them; waits for ``gate`` before
    the last chunk, raises after ``fail_after`` bytes."""
    for position in range(0, len(data), CHUNK):
        if fail_after is not None and position >= fail_after:
            raise LocalStorageError("the source broke")
        if gate is not None and position + CHUNK >= len(data):
            await gate.wait()
        await anyio.lowlevel.checkpoint()
        yield data[position : position + CHUNK]


def _members(path: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(path) as tar:
        found = []
        for member in tar:
            extracted = tar.extractfile(member)
            assert extracted is not None
            found.append((member.name, extracted.read()))
        return found


def _name(plain: bytes) -> str:
    return hashlib.sha256(plain).hexdigest() + ".tar"


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    # Many batches per layer, so that layers interleave inside these small tests.
    monkeypatch.setattr(writer_module, "BATCH", 2 * CHUNK)


def _layers(count: int, size: int = 40_000) -> list[bytes]:
    return [make_layer(f"writer/{number}", size) for number in range(count)]


@pytest.fixture
def moved(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Lengths of spooled data copied into the archive."""
    lengths: list[int] = []
    copy = writer_module._copy_range

    def spy(source: int, target: int, length: int, target_offset: int) -> None:
        lengths.append(length)
        copy(source, target, length, target_offset)

    monkeypatch.setattr(writer_module, "_copy_range", spy)
    return lengths


@pytest.mark.anyio
async def test_concurrent_layers_are_written_in_call_order_and_decompressed(
    tmp_path: Path, moved: list[int]
) -> None:
    layers = _layers(3)
    plain = [gzip.decompress(layer) for layer in layers]
    layers.append(lzma.compress(b"x" * 30_000))  # other compressions, and none, are welcome too
    layers.append(bz2.compress(b"y" * 30_000))
    layers.append(b"plain tar bytes " * 2000)
    plain += [b"x" * 30_000, b"y" * 30_000, layers[-1]]
    path = tmp_path / "a.tar"
    writer = await ArchiveWriter.create(str(path), "t")
    stored: dict[int, StoredLayer] = {}

    async def put(number: int) -> None:
        stored[number] = await writer.put_layer(_blob(layers[number]), _chunks(layers[number]))

    async with anyio.create_task_group() as group:
        for number in range(len(layers)):
            group.start_soon(put, number)
    assert not path.exists()  # nothing at the path before finish
    await writer.finish([TarEntry("manifest.json", data=b"[]")])
    writer.abandon()
    assert _members(path) == [(_name(data), data) for data in plain] + [("manifest.json", b"[]")]
    for number, data in enumerate(plain):
        assert stored[number] == StoredLayer(Digest.of(data), len(data))
    assert os.listdir(tmp_path) == ["a.tar"]  # spools are anonymous files
    assert moved and all(moved)  # the layers behind the first one were spooled meanwhile


@pytest.mark.anyio
async def test_a_layer_that_ends_while_queued_returns_at_once(tmp_path: Path, moved: list[int]) -> None:
    first, second = _layers(2)
    path = tmp_path / "a.tar"
    writer = await ArchiveWriter.create(str(path), "t")
    gate = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(writer.put_layer, _blob(first), _chunks(first, gate=gate))
        await anyio.sleep(0.01)
        # The head is still open: the second layer spools, returns, and is moved in later.
        with anyio.fail_after(5):
            await writer.put_layer(_blob(second), _chunks(second))
        gate.set()
    await writer.finish([])
    assert [name for name, _ in _members(path)] == [
        _name(gzip.decompress(first)),
        _name(gzip.decompress(second)),
    ]
    assert moved == [len(gzip.decompress(second))]  # spooled whole, moved in after the first


@pytest.mark.anyio
@pytest.mark.parametrize("failing", [0, 1])
async def test_a_failed_layer_leaves_nothing_and_the_others_complete(tmp_path: Path, failing: int) -> None:
    """``failing`` 0: the layer writing into the archive fails midway (its bytes are cut off);
    1: a queued, spooling layer fails. Either way the others land whole, and a retry works."""
    layers = _layers(3)
    path = tmp_path / "a.tar"
    writer = await ArchiveWriter.create(str(path), "t")

    async def put(number: int) -> None:
        fail_after = 20_000 if number == failing else None
        if number == failing:
            with pytest.raises(LocalStorageError, match="the source broke"):
                await writer.put_layer(_blob(layers[number]), _chunks(layers[number], fail_after=fail_after))
        else:
            await writer.put_layer(_blob(layers[number]), _chunks(layers[number]))

    async with anyio.create_task_group() as group:
        for number in range(3):
            group.start_soon(put, number)
    await writer.put_layer(_blob(layers[failing]), _chunks(layers[failing]))  # the engine's retry
    await writer.finish([])
    expected = [number for number in range(3) if number != failing] + [failing]
    assert _members(path) == [
        (_name(gzip.decompress(layers[n])), gzip.decompress(layers[n])) for n in expected
    ]


@pytest.mark.anyio
async def test_a_digest_mismatch_at_the_very_end_cuts_the_member_off(tmp_path: Path) -> None:
    good, compressed = _layers(2)
    bad = gzip.decompress(compressed)  # plain: every byte goes into the archive before the check
    tampered = bad[:-1] + bytes([bad[-1] ^ 1])  # same size; only the digest check at the end fails
    path = tmp_path / "a.tar"
    writer = await ArchiveWriter.create(str(path), "t")
    with pytest.raises(DigestMismatchError):
        await writer.put_layer(_blob(bad), _chunks(tampered))
    too_long = good + b"\x00"
    with pytest.raises(DigestMismatchError, match="more than the expected"):
        await writer.put_layer(_blob(good), _chunks(too_long))
    await writer.put_layer(_blob(good), _chunks(good))
    await writer.finish([])
    assert [name for name, _ in _members(path)] == [_name(gzip.decompress(good))]


@pytest.mark.anyio
async def test_the_same_diff_id_twice_is_written_once(tmp_path: Path) -> None:
    (layer,) = _layers(1)
    plain = gzip.decompress(layer)
    path = tmp_path / "a.tar"
    writer = await ArchiveWriter.create(str(path), "t")
    async with anyio.create_task_group() as group:
        group.start_soon(writer.put_layer, _blob(layer), _chunks(layer))
        group.start_soon(writer.put_layer, _blob(plain), _chunks(plain))
    assert await writer.put_layer(_blob(plain), _chunks(plain)) == StoredLayer(Digest.of(plain), len(plain))
    await writer.finish([])
    assert _members(path) == [(_name(plain), plain)]


@pytest.mark.anyio
async def test_abandon_and_misuse(tmp_path: Path) -> None:
    (layer,) = _layers(1)
    path = tmp_path / "a.tar"
    writer = await ArchiveWriter.create(str(path), "t")
    gate = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(writer.put_layer, _blob(layer), _chunks(layer, gate=gate))
        await anyio.sleep(0.01)
        with pytest.raises(LocalStorageError, match="still being written"):
            await writer.finish([])
        gate.set()
    writer.abandon()
    writer.abandon()
    assert os.listdir(tmp_path) == []
    with pytest.raises(LocalStorageError, match="already closed"):
        await writer.put_layer(_blob(layer), _chunks(layer))

    refusing = await ArchiveWriter.create(str(path), "t")

    def refuse() -> None:
        raise LocalStorageError("target appeared")

    with pytest.raises(LocalStorageError, match="target appeared"):
        await refusing.finish([], before_rename=refuse)
    refusing.abandon()
    assert os.listdir(tmp_path) == []


def _pseudo_random(size: int) -> Callable[[], AsyncIterator[bytes]]:
    block = hashlib.sha512(b"seed").digest() * (CHUNK // 64)

    async def chunks() -> AsyncIterator[bytes]:
        for number in range(size // len(block)):
            yield number.to_bytes(8, "big") + block[8:]

    return chunks


@pytest.mark.anyio
async def test_memory_stays_flat_whatever_the_layer_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "BATCH", 256 * 1024)
    size = 24 * 1024 * 1024
    chunks = _pseudo_random(size)
    digest = hashlib.sha256()
    async for chunk in chunks():
        digest.update(chunk)
    blob = Descriptor(DOCKER_LAYER_GZIP, Digest("sha256", digest.hexdigest()), size)
    writer = await ArchiveWriter.create(str(tmp_path / "a.tar"), "t")
    tracemalloc.start()
    try:
        gate = anyio.Event()
        async with anyio.create_task_group() as group:
            # Two at once: one streams into the archive, the other spools.
            group.start_soon(writer.put_layer, blob, _gated(chunks(), gate))
            await anyio.lowlevel.checkpoint()
            stored = await writer.put_layer(blob, chunks())
            gate.set()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    await writer.finish([])
    assert stored.size == size
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes for a {size} byte layer"
    assert (tmp_path / "a.tar").stat().st_size == 512 + size + 1024


async def _gated(chunks: AsyncIterator[bytes], gate: anyio.Event) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        yield chunk
    await gate.wait()


@pytest.mark.parametrize("error", [errno.EXDEV, errno.ENOSYS, errno.EINVAL])
def test_spools_are_copied_without_copy_file_range_where_it_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: int
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "spool").write_bytes(data)
    (tmp_path / "archive").write_bytes(b"head")

    def refuse(*args: object) -> int:
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(writer_module, "_COPY_CHUNK", 1024 * 1024)
    monkeypatch.setattr(os, "copy_file_range", refuse)
    source = os.open(tmp_path / "spool", os.O_RDONLY)
    target = os.open(tmp_path / "archive", os.O_RDWR)
    try:
        writer_module._copy_range(source, target, len(data), 4)
    finally:
        os.close(source)
        os.close(target)
    assert (tmp_path / "archive").read_bytes() == b"head" + data
