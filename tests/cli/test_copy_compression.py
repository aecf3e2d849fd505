"""``copy``'s layer-format flags against the real tools: podman and skopeo 1.9.3 read what asyncsync
writes, asyncsync reads what skopeo writes, and bad input is one line with nothing written.

podman runs on a private storage (``--root``/``--runroot`` under the test's directory, vfs driver),
so the machine's image store is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.copy.compression_support import (
    DOCKER_LAYER_GZIP,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    diff_id,
    fetch_blob,
    plain,
    relayered,
    write_oci_layout,
    zstd,
)
from tests.helpers.asyncsync_cli import invoke
from tests.helpers.images import (
    GeneratedImage,
    get_manifest_sync,
    list_tags_sync,
    make_image,
    push_image_sync,
    run_sync,
)
from tests.helpers.registry import RegistryServer
from tests.helpers.skopeo import SkopeoError, skopeo
from tests.local_support import write_dir_image

PLAIN = ("--src-tls-verify=false", "--dest-tls-verify=false")


@pytest.fixture
def image(rng_seed: int) -> GeneratedImage:
    return make_image(f"{rng_seed}/compression", layers=2, layer_size=40_000)


def _ok(*args: str) -> str:
    result = invoke(*args)
    assert result.returncode == 0, result.stderr
    return result.out


def _manifest(server: RegistryServer, repo: str, tag: str) -> tuple[str, dict]:  # type: ignore[type-arg]
    media_type, raw = get_manifest_sync(server, repo, tag)
    return media_type, json.loads(raw)


def _pushed_diff_ids(server: RegistryServer, repo: str, manifest: dict) -> list[str]:  # type: ignore[type-arg]
    return [
        diff_id(run_sync(lambda d=layer["digest"]: fetch_blob(server, repo, d)))
        for layer in manifest["layers"]
    ]


@pytest.fixture
def podman_storage() -> Iterator[Path]:
    """A private podman store; under /tmp with a short name (podman refuses a runroot over 50 characters)."""
    storage = Path(tempfile.mkdtemp(prefix="as-podman-", dir="/tmp"))
    try:
        yield storage
    finally:
        shutil.rmtree(storage, ignore_errors=True)


def _podman(storage: Path, *args: str) -> str:
    command = [
        "podman",
        "--root",
        str(storage / "root"),
        "--runroot",
        str(storage / "run"),
        "--storage-driver",
        "vfs",
        *args,
    ]
    # podman 4 fails on a DOCKER_CONFIG directory without a config.json (the isolated home has none).
    env = {key: value for key, value in os.environ.items() if key != "DOCKER_CONFIG"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_zstd_image_pushed_by_asyncsync_is_pulled_by_podman_and_read_by_skopeo(
    registry_anon: RegistryServer, image: GeneratedImage, tmp_path: Path, rng_seed: int, podman_storage: Path
) -> None:
    repo = f"compress/{rng_seed}"
    push_image_sync(registry_anon, f"{repo}-src", "v1", image)
    # Another registry's copy would mount the gzip layers; --dest-force-compress-format makes them zstd.
    _ok(
        "copy",
        "-q",
        *PLAIN,
        "--dest-compress-format",
        "zstd",
        "--dest-force-compress-format",
        f"docker://{registry_anon.host}/{repo}-src:v1",
        f"docker://{registry_anon.host}/{repo}:zstd",
    )
    media_type, manifest = _manifest(registry_anon, repo, "zstd")
    assert media_type == OCI_MANIFEST
    assert [layer["mediaType"] for layer in manifest["layers"]] == [OCI_LAYER_ZSTD] * 2
    assert _pushed_diff_ids(registry_anon, repo, manifest) == image.diff_ids

    reference = f"{registry_anon.host}/{repo}:zstd"
    _podman(podman_storage, "pull", "-q", "--tls-verify=false", reference)
    inspected = json.loads(_podman(podman_storage, "image", "inspect", reference))[0]
    assert inspected["Id"] == image.config_digest.removeprefix("sha256:")
    assert inspected["RootFS"]["Layers"] == image.diff_ids

    skopeo("copy", "-q", "--src-tls-verify=false", f"docker://{reference}", f"dir:{tmp_path / 'skopeo'}")
    layers = json.loads((tmp_path / "skopeo" / "manifest.json").read_bytes())["layers"]
    assert [
        diff_id((tmp_path / "skopeo" / layer["digest"][7:]).read_bytes()) for layer in layers
    ] == image.diff_ids


def test_copy_records_what_it_recompressed_in_the_user_cache_and_a_rerun_recompresses_nothing(
    registry_anon: RegistryServer, image: GeneratedImage, rng_seed: int, isolated_home: Path
) -> None:
    repo = f"compress/{rng_seed}-recorded"
    push_image_sync(registry_anon, f"{repo}-src", "v1", image)

    def copy(tag: str) -> str:
        return _ok(
            "copy",
            *PLAIN,
            "--dest-compress-format",
            "zstd",
            "--dest-force-compress-format",
            f"docker://{registry_anon.host}/{repo}-src:v1",
            f"docker://{registry_anon.host}/{repo}:{tag}",
        )

    copy("v1")
    index = isolated_home / ".cache" / "asyncsync" / "recompressed.tsv"
    assert len(index.read_text().splitlines()) == 2  # one line per recompressed layer
    second = copy("v2")
    # Both layers are found under their recorded zstd digests: skipped, as skopeo reports reuse.
    assert second.count("skipped: already exists") == 3, second
    assert _manifest(registry_anon, repo, "v1") == _manifest(registry_anon, repo, "v2")


def test_zstd_layout_written_by_skopeo_is_read_back_by_asyncsync(
    registry_anon: RegistryServer, image: GeneratedImage, tmp_path: Path, rng_seed: int
) -> None:
    repo = f"compress/{rng_seed}-skopeo"
    push_image_sync(registry_anon, f"{repo}-src", "v1", image)
    layout = f"oci:{tmp_path / 'layout'}:z"
    skopeo(
        "copy", "-q", "--src-tls-verify=false", "--dest-compress-format", "zstd",
        f"docker://{registry_anon.host}/{repo}-src:v1", layout,
    )  # fmt: skip
    theirs = json.loads(skopeo("inspect", "--raw", layout))
    assert {layer["mediaType"] for layer in theirs["layers"]} == {OCI_LAYER_ZSTD}
    inspected = json.loads(_ok("inspect", layout))
    assert inspected["Layers"] == [layer["digest"] for layer in theirs["layers"]]
    # Unchanged to a registry: skopeo's bytes byte for byte.
    _ok("copy", "-q", *PLAIN, layout, f"docker://{registry_anon.host}/{repo}:asis")
    assert json.loads(get_manifest_sync(registry_anon, repo, "asis")[1]) == theirs
    # Back to gzip: skopeo's zstd frames decompressed, recompressed, same diff ids.
    _ok(
        "copy",
        "-q",
        *PLAIN,
        "--dest-compress-format",
        "gzip",
        "--force-compression",  # the repository holds the zstd layers already (the copy above)
        layout,
        f"docker://{registry_anon.host}/{repo}:gz",
    )
    media_type, manifest = _manifest(registry_anon, repo, "gz")
    assert media_type == OCI_MANIFEST
    assert {layer["mediaType"] for layer in manifest["layers"]} == {OCI_LAYER_GZIP}
    assert _pushed_diff_ids(registry_anon, repo, manifest) == image.diff_ids


def test_docker_archive_pushes_gzip_layers_whose_diff_ids_match(
    registry_anon: RegistryServer, image: GeneratedImage, tmp_path: Path, rng_seed: int
) -> None:
    repo = f"compress/{rng_seed}-archive"
    push_image_sync(registry_anon, f"{repo}-src", "v1", image)
    archive = f"docker-archive:{tmp_path / 'image.tar'}:{repo}:v1"
    skopeo("copy", "-q", "--src-tls-verify=false", f"docker://{registry_anon.host}/{repo}-src:v1", archive)
    _ok("copy", "-q", *PLAIN, archive, f"docker://{registry_anon.host}/{repo}:v1")
    _, manifest = _manifest(registry_anon, repo, "v1")
    assert manifest["config"]["digest"] == image.config_digest
    assert {layer["mediaType"] for layer in manifest["layers"]} == {DOCKER_LAYER_GZIP}
    assert _pushed_diff_ids(registry_anon, repo, manifest) == image.diff_ids
    # skopeo agrees on the config's diff ids of what was pushed.
    config = json.loads(
        skopeo("inspect", "--config", "--tls-verify=false", f"docker://{registry_anon.host}/{repo}:v1")
    )
    assert config["rootfs"]["diff_ids"] == image.diff_ids


@pytest.mark.parametrize(
    ("flags", "message", "code"),
    [
        (("--dest-compress-format", "lz4"), 'cannot find compressor for "lz4"', 2),
        (
            ("--dest-compress-format", "zstd", "--dest-compress-level", "21"),
            "out of range for zstd (1-20)",
            2,
        ),
        (("--dest-compress-level", "10"), "out of range for gzip (1-9)", 2),
        (("--dest-compress-level", "abc"), "--dest-compress-level: 'abc' is not an integer", 2),
        (("--dest-force-compress-format",), "needs --dest-compress-format", 2),
        (
            ("--format", "v2s2", "--dest-compress-format", "zstd"),
            "zstd compression is not supported for type",
            1,
        ),
    ],
)
def test_bad_compression_input_is_one_line_and_nothing_is_written(
    registry_anon: RegistryServer,
    image: GeneratedImage,
    tmp_path: Path,
    rng_seed: int,
    flags: tuple[str, ...],
    message: str,
    code: int,
) -> None:
    repo = f"compress/{rng_seed}-bad"
    push_image_sync(registry_anon, f"{repo}-src", "v1", image)
    result = invoke(
        "copy",
        "-q",
        *PLAIN,
        *flags,
        f"docker://{registry_anon.host}/{repo}-src:v1",
        f"docker://{registry_anon.host}/{repo}:v1",
    )
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert list_tags_sync(registry_anon, repo) == []


def test_a_corrupt_zstd_frame_fails_with_one_line_and_no_tag(
    registry_anon: RegistryServer, image: GeneratedImage, tmp_path: Path, rng_seed: int
) -> None:
    def damaged(layer: bytes) -> bytes:
        data = bytearray(zstd(layer))
        data[len(data) // 2] ^= 0x55
        return bytes(data)

    layout = write_oci_layout(tmp_path / "layout", relayered(image, damaged, OCI_LAYER_ZSTD), "bad")
    repo = f"compress/{rng_seed}-corrupt"
    result = invoke(
        "copy",
        "-q",
        *PLAIN,
        "--dest-compress-format",
        "gzip",
        f"oci:{layout}:bad",
        f"docker://{registry_anon.host}/{repo}:v1",
    )
    assert result.returncode == 1, result.stderr
    assert "corrupt zstd data" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert list_tags_sync(registry_anon, repo) == []
    # Into oci: too: the destination layout gets no index entry.
    result = invoke(
        "copy", "-q", "--dest-compress-format", "gzip", f"oci:{layout}:bad", f"oci:{tmp_path / 'out'}:v1"
    )
    assert result.returncode == 1 and "corrupt zstd data" in result.stderr
    assert not (tmp_path / "out" / "index.json").exists()


def test_zstd_layers_are_decompressed_into_docker_archive_and_dir(
    registry_anon: RegistryServer, image: GeneratedImage, tmp_path: Path, rng_seed: int
) -> None:
    repo = f"compress/{rng_seed}-unzstd"
    push_image_sync(registry_anon, repo, "v1", image)
    layout = f"oci:{tmp_path / 'layout'}:z"
    skopeo(
        "copy", "-q", "--src-tls-verify=false", "--dest-compress-format", "zstd",
        f"docker://{registry_anon.host}/{repo}:v1", layout,
    )  # fmt: skip
    archive = f"docker-archive:{tmp_path / 'image.tar'}:{repo}:v1"
    _ok("copy", "-q", layout, archive)
    assert json.loads(skopeo("inspect", archive))["Layers"] == image.diff_ids
    _ok("copy", "-q", "--dest-decompress", layout, f"dir:{tmp_path / 'plain'}")
    layers = json.loads((tmp_path / "plain" / "manifest.json").read_bytes())["layers"]
    assert [layer["digest"] for layer in layers] == image.diff_ids
    for layer in layers:
        assert diff_id((tmp_path / "plain" / layer["digest"][7:]).read_bytes()) == layer["digest"]


def test_dir_dest_compress_takes_the_format_and_refuses_zstd_in_docker_v2s2(
    image: GeneratedImage, tmp_path: Path
) -> None:
    layout = write_oci_layout(tmp_path / "layout", relayered(image, plain, OCI_LAYER), "plain")
    out = tmp_path / "zstd"
    _ok(
        "copy", "-q", "--dest-compress", "--dest-compress-format", "zstd", f"oci:{layout}:plain", f"dir:{out}"
    )
    layers = json.loads((out / "manifest.json").read_bytes())["layers"]
    assert {layer["mediaType"] for layer in layers} == {OCI_LAYER_ZSTD}
    assert [diff_id((out / layer["digest"][7:]).read_bytes()) for layer in layers] == image.diff_ids
    # A Docker v2s2 image cannot say zstd, and dir: keeps the manifest type: skopeo fails too.
    source = write_dir_image(tmp_path / "v2s2", image)
    flags = ("--dest-compress", "--dest-compress-format", "zstd", f"dir:{source}")
    result = invoke("copy", "-q", *flags, f"dir:{tmp_path / 'refused'}")
    assert result.returncode == 1
    assert "zstd compression is not supported for type" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "refused" / "manifest.json").exists()
    with pytest.raises(SkopeoError, match="zstd compression is not supported for type"):
        skopeo("copy", "-q", *flags, f"dir:{tmp_path / 'skopeo-refused'}")
