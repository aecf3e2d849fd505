"""Local transports under the real copy engine with their side options, and through the CLI.

``--src/--dest-shared-blob-dir``, ``--dest-compress``/``--dest-decompress`` and ``--additional-tag``
are :class:`SideOptions` fields; these tests set them the way the CLI would and run
:func:`asyncsync.copy.copy_image` between local stores and the ``registry_anon`` fixture.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from asyncsync.copy import BlobCoordinator, CopyEnvironment, CopyOptions, CopyResult, copy_image
from asyncsync.errors import DigestMismatchError
from asyncsync.limits import BlobLimiter
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.retry import RetryPolicy
from asyncsync.transports import parse_image_name
from asyncsync.transports.base import SideOptions, TransportContext
from tests.copy.compression_support import diff_id, fetch_blob
from tests.helpers.images import (
    blob_exists_sync,
    get_manifest_sync,
    list_tags_sync,
    make_image,
    make_multiarch,
    push_image_sync,
    push_index_sync,
)
from tests.helpers.registry import RegistryServer
from tests.transports.roundtrip import MemorySource, copy_through, read_back

ROOT = Path(__file__).resolve().parents[2]
RETRY = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05)


class Copier:
    """Runs engine copies between names, with per-side options, in one registry session."""

    def __init__(self, session: RegistrySession) -> None:
        self.session = session
        self.env = CopyEnvironment(blob_limiter=BlobLimiter(4), retry=RETRY, coordinator=BlobCoordinator())

    def context(self, **side: object) -> TransportContext:
        options = SideOptions(registry=RegistryOptions(tls_verify=False), **side)  # type: ignore[arg-type]
        return TransportContext(self.session, options, RETRY, self.env.blob_limiter)

    async def copy(
        self,
        source: str,
        destination: str,
        options: CopyOptions | None = None,
        src: dict[str, object] | None = None,
        dest: dict[str, object] | None = None,
    ) -> CopyResult:
        src_side = await parse_image_name(source).new_source(self.context(**(src or {})))
        try:
            dst_side = await parse_image_name(destination).new_destination(self.context(**(dest or {})))
            try:
                return await copy_image(src_side, dst_side, options or CopyOptions(), self.env)
            finally:
                await dst_side.close()
        finally:
            await src_side.close()


@asynccontextmanager
async def copier() -> AsyncIterator[Copier]:
    async with RegistrySession(retry=RETRY) as session:
        yield Copier(session)


def _repo(label: str) -> str:
    return f"engine-{label}-{secrets.token_hex(4)}/app"


@pytest.mark.anyio
async def test_shared_blob_dirs_on_both_sides(
    registry_anon: RegistryServer, tmp_path: Path, rng_seed: int
) -> None:
    repo = _repo("shared")
    image = make_image(rng_seed, fmt="oci")
    push_image_sync(registry_anon, repo, "v1", image)
    shared = tmp_path / "shared"
    async with copier() as run:
        await run.copy(
            f"docker://{registry_anon.host}/{repo}:v1",
            f"oci:{tmp_path}/a:v1",
            dest={"shared_blob_dir": str(shared)},
        )
        assert not (tmp_path / "a" / "blobs").exists()
        result = await run.copy(
            f"oci:{tmp_path}/a:v1", f"oci:{tmp_path}/b:v1", src={"shared_blob_dir": str(shared)}
        )
        found = await read_back(await parse_image_name(f"oci:{tmp_path}/b:v1").new_source(run.context()))
    assert str(result.digest) == str(found.digest) == image.digest
    assert len(os.listdir(tmp_path / "b" / "blobs" / "sha256")) == len(image.blobs()) + 1


@pytest.mark.anyio
async def test_dest_decompress_of_a_multi_arch_image_keeps_the_index_consistent(
    registry_anon: RegistryServer, tmp_path: Path, rng_seed: int
) -> None:
    repo = _repo("decompress")
    index = make_multiarch(rng_seed)
    push_index_sync(registry_anon, repo, "m", index)
    all_images = CopyOptions(multi_arch="all")
    async with copier() as run:
        await run.copy(
            f"docker://{registry_anon.host}/{repo}:m",
            f"dir:{tmp_path}/plain",
            all_images,
            dest={"decompress": True},
        )
        # read_back checks every child's digest and size against the rewritten index.
        plain = await read_back(await parse_image_name(f"dir:{tmp_path}/plain").new_source(run.context()))
        assert [[str(d) for d in layers] for layers in plain.layers] == [i.diff_ids for i in index.images]
        await run.copy(f"dir:{tmp_path}/plain", f"dir:{tmp_path}/gz", all_images, dest={"compress": True})
        gz = await read_back(await parse_image_name(f"dir:{tmp_path}/gz").new_source(run.context()))
        await run.copy(f"dir:{tmp_path}/gz", f"docker://{registry_anon.host}/{repo}-back:m", all_images)
    assert gz.diff_ids == [image.diff_ids for image in index.images]
    assert len({str(gz.digest), str(plain.digest), index.digest}) == 3  # each rewrite changes the digest
    pushed = json.loads(get_manifest_sync(registry_anon, f"{repo}-back", "m")[1])
    assert [m["digest"] for m in pushed["manifests"]] == [str(c) for c in gz.children]


@pytest.mark.anyio
async def test_a_corrupted_dir_blob_never_reaches_the_registry(
    registry_anon: RegistryServer, tmp_path: Path, rng_seed: int
) -> None:
    repo = _repo("corrupt")
    image = make_image(rng_seed, layer_size=30_000)
    async with copier() as run:
        # Written without the registry, so the registry cannot already hold (or mount) the blob.
        await copy_through(
            MemorySource(image), await parse_image_name(f"dir:{tmp_path}/img").new_destination(run.context())
        )
        layer = tmp_path / "img" / image.layer_digests[0][7:]
        data = bytearray(layer.read_bytes())
        data[100] ^= 0x01
        layer.write_bytes(bytes(data))
        with pytest.raises(DigestMismatchError, match=image.layer_digests[0]):
            await run.copy(f"dir:{tmp_path}/img", f"docker://{registry_anon.host}/{repo}-copy:v1")
        with pytest.raises(DigestMismatchError):
            await run.copy(f"dir:{tmp_path}/img", f"oci:{tmp_path}/layout:v1")
    assert list_tags_sync(registry_anon, f"{repo}-copy") == []
    assert not blob_exists_sync(registry_anon, f"{repo}-copy", image.layer_digests[0])
    assert not (tmp_path / "layout" / "index.json").exists()


@pytest.mark.anyio
async def test_docker_archive_with_additional_tags_and_back(
    registry_anon: RegistryServer, tmp_path: Path, rng_seed: int
) -> None:
    repo = _repo("archive")
    image = make_image(rng_seed)
    push_image_sync(registry_anon, repo, "v1", image)
    archive = tmp_path / "a.tar"
    async with copier() as run:
        await run.copy(
            f"docker://{registry_anon.host}/{repo}:v1",
            f"docker-archive:{archive}:{repo}:v1",
            dest={"additional_tags": ("example.com/other:2",)},
        )
        await run.copy(
            f"docker-archive:{archive}:example.com/other:2", f"docker://{registry_anon.host}/{repo}:back"
        )
    pushed = json.loads(get_manifest_sync(registry_anon, repo, "back")[1])
    assert pushed["config"]["digest"] == image.config_digest
    # The archive stores layers uncompressed; a push compresses them with gzip, as skopeo does,
    # and labels them so. Decompressed, each is the layer the config's diff_ids name.
    gzipped = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    assert {layer["mediaType"] for layer in pushed["layers"]} == {gzipped}
    for layer, expected in zip(pushed["layers"], image.diff_ids, strict=True):
        assert diff_id(await fetch_blob(registry_anon, repo, layer["digest"])) == expected


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asyncsync", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_cli_copy_inspect_delete_and_one_line_errors(
    registry_anon: RegistryServer, tmp_path: Path, rng_seed: int
) -> None:
    repo = _repo("cli")
    image = make_image(rng_seed, fmt="oci")
    push_image_sync(registry_anon, repo, "v1", image)
    layout = tmp_path / "layout"
    done = _cli(
        "copy", "--src-tls-verify=false", f"docker://{registry_anon.host}/{repo}:v1", f"oci:{layout}:v1"
    )
    assert done.returncode == 0, done.stderr
    assert "Writing manifest to image destination" in done.stdout
    inspected = json.loads(_cli("inspect", f"oci:{layout}:v1").stdout)
    assert inspected["Digest"] == image.digest
    done = _cli("delete", f"oci:{layout}:v1")
    assert done.returncode == 0, done.stderr
    assert json.loads((layout / "index.json").read_text())["manifests"] == []
    assert os.listdir(layout / "blobs" / "sha256") == []
    # Bad input: one line on stderr, no traceback, non-zero exit.
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / "index.json").write_text(
        json.dumps({"schemaVersion": 2, "manifests": [{"digest": "sha256:../../etc/passwd", "size": 1}]})
    )
    for args, code in (
        (["inspect", f"oci:{tmp_path}/evil"], 1),
        (["copy", f"docker-archive:{tmp_path}/none.tar:@x", f"dir:{tmp_path}/y"], 2),
        (["delete", f"dir:{tmp_path}/evil"], 2),
    ):
        done = _cli(*args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == code, (args, done.stderr)
        assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in done.stderr, args
