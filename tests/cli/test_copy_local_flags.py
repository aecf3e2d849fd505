"""``copy`` and ``inspect`` flags of the local transports, run as a user runs them (in-process CLI).

Each flag is checked by its effect, cross-checked with skopeo 1.9 where skopeo writes the same
thing: ``--dest/--src-shared-blob-dir`` and ``inspect --shared-blob-dir`` (blobs only in the shared
directory, readable by skopeo), ``--dest-decompress``/``--dest-compress`` (layer media types and
digests change; decompression gives skopeo's exact manifest), ``--additional-tag`` (RepoTags of a
``docker-archive:`` as skopeo writes them), ``--src/--dest-daemon-host`` and ``inspect
--daemon-host`` (real podman's Engine API, reached at the given socket).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import secrets
import tarfile
from pathlib import Path

import pytest

from tests.helpers.asyncsync_cli import invoke
from tests.helpers.images import GeneratedImage, make_image
from tests.helpers.podman import PodmanService
from tests.helpers.skopeo import skopeo
from tests.local_support import dir_manifest, write_dir_image

DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@pytest.fixture
def image(rng_seed: int) -> GeneratedImage:
    return make_image(f"{rng_seed}/local-flags", layers=2, layer_size=2048)


def _ok(*args: str) -> str:
    result = invoke(*args)
    assert result.returncode == 0, result.stderr
    return result.out


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_shared_blob_dir_holds_the_blobs_for_copy_and_inspect(image: GeneratedImage, tmp_path: Path) -> None:
    source = write_dir_image(tmp_path / "src", image)
    shared, layout = tmp_path / "shared", tmp_path / "layout"
    _ok("copy", "-q", "--dest-shared-blob-dir", str(shared), f"dir:{source}", f"oci:{layout}:v1")

    stored = {p.name for p in (shared / "sha256").iterdir()}
    assert {digest.removeprefix("sha256:") for digest in image.blobs()} <= stored
    assert not (layout / "blobs").exists() or not any((layout / "blobs").rglob("*[0-9a-f]"))
    # skopeo finds every blob there too, and agrees with our inspect.
    theirs = json.loads(skopeo("inspect", "--shared-blob-dir", str(shared), f"oci:{layout}:v1"))
    ours = json.loads(_ok("inspect", "--shared-blob-dir", str(shared), f"oci:{layout}:v1"))
    assert ours["Digest"] == theirs["Digest"] and ours["Layers"] == theirs["Layers"]
    # Without the flag the layout alone has no config blob to read.
    assert invoke("inspect", f"oci:{layout}:v1").returncode != 0

    back = tmp_path / "back"
    _ok("copy", "-q", "--src-shared-blob-dir", str(shared), f"oci:{layout}:v1", f"dir:{back}")
    assert {p.name for p in back.iterdir()} >= {d.removeprefix("sha256:") for d in image.blobs()}


def test_dest_decompress_and_compress_change_layer_media_types_and_digests(
    image: GeneratedImage, tmp_path: Path
) -> None:
    source = write_dir_image(tmp_path / "src", image)
    plain, packed, theirs = tmp_path / "plain", tmp_path / "packed", tmp_path / "skopeo-plain"
    _ok("copy", "-q", "--dest-decompress", f"dir:{source}", f"dir:{plain}")
    layers = dir_manifest(plain)["layers"]
    assert [layer["mediaType"] for layer in layers] == [DOCKER_LAYER_TAR] * 2
    assert [layer["digest"] for layer in layers] == image.diff_ids
    # skopeo writes the very same manifest for --dest-decompress.
    skopeo("copy", "-q", "--dest-decompress", f"dir:{source}", f"dir:{theirs}")
    assert (plain / "manifest.json").read_bytes() == (theirs / "manifest.json").read_bytes()

    _ok("copy", "-q", "--dest-compress", f"dir:{plain}", f"dir:{packed}")
    layers = dir_manifest(packed)["layers"]
    assert [layer["mediaType"] for layer in layers] == [DOCKER_LAYER_GZIP] * 2
    assert not {layer["digest"] for layer in layers} & set(image.diff_ids)
    for layer, diff_id in zip(layers, image.diff_ids, strict=True):
        data = (packed / layer["digest"].removeprefix("sha256:")).read_bytes()
        assert _sha(data) == layer["digest"] and _sha(gzip.decompress(data)) == diff_id
    # skopeo reads the recompressed image back.
    assert json.loads(skopeo("inspect", f"dir:{packed}"))["Layers"] == [layer["digest"] for layer in layers]

    both = invoke("copy", "-q", "--dest-compress", "--dest-decompress", f"dir:{source}", f"dir:{tmp_path}/x")
    assert both.returncode == 2
    assert "--dest-compress and --dest-decompress cannot be used together" in both.stderr


def test_additional_tags_are_in_the_docker_archive_as_skopeo_writes_them(
    image: GeneratedImage, tmp_path: Path
) -> None:
    source = write_dir_image(tmp_path / "src", image)
    extra = ["--additional-tag", "other/x:2", "--additional-tag", "quay.io/a/b:3"]
    ours, theirs = tmp_path / "ours.tar", tmp_path / "theirs.tar"
    _ok("copy", "-q", *extra, f"dir:{source}", f"docker-archive:{ours}:example.com/app:v1")
    skopeo("copy", "-q", *extra, f"dir:{source}", f"docker-archive:{theirs}:example.com/app:v1")

    def repo_tags(path: Path) -> list[str]:
        with tarfile.open(path) as archive:
            member = archive.extractfile("manifest.json")
            assert member is not None
            tags: list[str] = json.loads(member.read())[0]["RepoTags"]
            return tags

    assert repo_tags(ours) == ["example.com/app:v1", "docker.io/other/x:2", "quay.io/a/b:3"]
    assert repo_tags(ours) == repo_tags(theirs)
    # Ignored (as skopeo does) where it cannot apply, with a warning.
    result = invoke("copy", "-q", *extra[:2], f"dir:{source}", f"dir:{tmp_path}/plain")
    assert result.returncode == 0
    assert "warning: --additional-tag has no effect on dir: destinations (ignored)" in result.stderr


def test_daemon_host_flags_reach_the_given_daemon(
    image: GeneratedImage, tmp_path: Path, podman_service: PodmanService
) -> None:
    source = write_dir_image(tmp_path / "src", image)
    host = podman_service.host  # real podman's Engine API
    name = f"proj/flags-{secrets.token_hex(4)}"
    _ok(
        "copy",
        "-q",
        "--dest-daemon-host",
        host,
        "--additional-tag",
        f"{name}:extra",
        f"dir:{source}",
        f"docker-daemon:{name}:v1",
    )
    stored = podman_service.storage.inspect(f"docker.io/{name}:v1")
    assert stored is not None and f"sha256:{stored['Id']}" == image.config_digest
    assert sorted(stored["RepoTags"]) == [f"docker.io/{name}:extra", f"docker.io/{name}:v1"]
    inspected = json.loads(_ok("inspect", "--daemon-host", host, f"docker-daemon:{name}:v1"))
    assert inspected["Layers"] == image.diff_ids
    back = tmp_path / "back"
    _ok("copy", "-q", "--src-daemon-host", host, f"docker-daemon:{name}:extra", f"dir:{back}")
    assert dir_manifest(back)["config"]["digest"] == image.config_digest
    # Another host is another daemon: nothing listens there.
    missing = invoke("inspect", "--daemon-host", f"unix://{tmp_path}/none.sock", "docker-daemon:proj/app:v1")
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
