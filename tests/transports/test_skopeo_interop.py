"""Local transports against real skopeo 1.9, through ``python -m asyncsync`` as a user runs it.

Both directions for every local transport: skopeo writes from a registry and asyncsync reads and
pushes back with the same digests; asyncsync writes and ``skopeo inspect`` / ``skopeo copy`` read it.
``docker-archive:`` keeps no manifest, so there the config digest and the layers' diff ids are
compared, a ``docker-archive:`` written by asyncsync is byte for byte skopeo's, and the manifest
generated when reading one is the one ``skopeo inspect --raw`` prints but for the layer media type
(skopeo says gzip for uncompressed bytes; we say what the bytes are).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import secrets
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.copy.compression_support import DOCKER_LAYER_GZIP, fetch_blob
from tests.copy.compression_support import diff_id as uncompressed_digest
from tests.helpers.images import (
    GeneratedImage,
    get_manifest_sync,
    make_image,
    make_layer,
    make_multiarch,
    push_image_sync,
    push_index_sync,
    run_sync,
)
from tests.helpers.registry import RegistryServer
from tests.helpers.skopeo import skopeo
from tests.local_support import write_dir_image
from tests.transports.docker_archive.saved import docker_save

ROOT = Path(__file__).resolve().parents[2]
PLAIN = ["--src-tls-verify=false", "--dest-tls-verify=false"]


def asyncsync(*args: str) -> str:
    """Run ``python -m asyncsync ARGS`` and return stdout; fails the test with stderr otherwise."""
    done = subprocess.run(
        [sys.executable, "-m", "asyncsync", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, f"asyncsync {' '.join(args)}: {done.stderr}"
    return done.stdout


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _raw(reference: str) -> bytes:
    return skopeo("inspect", "--raw", reference).encode()


def _registry_manifest(server: RegistryServer, repo: str, ref: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(get_manifest_sync(server, repo, ref)[1])
    return document


def _layer_digests(document: dict[str, Any]) -> list[str]:
    return [layer["digest"] for layer in document["layers"]]


@pytest.fixture
def seeded(registry_anon: RegistryServer, rng_seed: int) -> tuple[str, GeneratedImage, str]:
    """A Docker image and a multi-arch index in a fresh repository; returns (repo, image, index digest)."""
    repo = f"interop-{secrets.token_hex(4)}/app"
    image = make_image(f"{rng_seed}/image")
    push_image_sync(registry_anon, repo, "v1", image)
    index = make_multiarch(f"{rng_seed}/index")
    push_index_sync(registry_anon, repo, "multi", index)
    return repo, image, index.digest


def test_skopeo_writes_asyncsync_reads_and_pushes_the_same_digests(
    registry_anon: RegistryServer, seeded: tuple[str, GeneratedImage, str], tmp_path: Path
) -> None:
    repo, image, index_digest = seeded
    host = registry_anon.host
    source = f"docker://{host}/{repo}"
    targets = {
        "oci": f"oci:{tmp_path}/oci:v1",
        "dir": f"dir:{tmp_path}/dir",
        "oci-archive": f"oci-archive:{tmp_path}/oci.tar:v1",
        "docker-archive": f"docker-archive:{tmp_path}/docker.tar:{repo}:v1",
    }
    for name, target in targets.items():
        skopeo("copy", "--src-tls-verify=false", f"{source}:v1", target)
        back = f"{repo}-back-{name}"
        asyncsync("copy", "-q", *PLAIN, target, f"docker://{host}/{back}:v1")
        pushed = get_manifest_sync(registry_anon, back, "v1")[1]
        if name == "docker-archive":
            # The archive keeps config and uncompressed layers; the manifest is generated and the
            # layers are gzipped on the way up, as skopeo does: decompressed, they are the diff ids.
            document = json.loads(pushed)
            assert document["config"]["digest"] == image.config_digest
            assert {layer["mediaType"] for layer in document["layers"]} == {DOCKER_LAYER_GZIP}
            blobs = [run_sync(partial(fetch_blob, registry_anon, back, d)) for d in _layer_digests(document)]
            assert [uncompressed_digest(blob) for blob in blobs] == image.diff_ids
            listed = json.loads(skopeo("inspect", target))["Layers"]
            assert listed == image.diff_ids
            continue
        # skopeo's own bytes are pushed unchanged (for oci: its Docker->OCI conversion).
        assert _sha(pushed) == _sha(_raw(target)), name
        if name == "oci-archive":  # (inspect of oci: and dir: is covered by tests/cli)
            inspected = json.loads(asyncsync("inspect", target))
            assert inspected["Digest"] == json.loads(skopeo("inspect", target))["Digest"], name
    assert _sha(get_manifest_sync(registry_anon, f"{repo}-back-dir", "v1")[1]) == image.digest
    # A multi-arch image with every instance, through oci: and dir:.
    for name, target in (("oci", f"oci:{tmp_path}/multi-oci:m"), ("dir", f"dir:{tmp_path}/multi-dir")):
        skopeo("copy", "--all", "--src-tls-verify=false", f"{source}:multi", target)
        back = f"{repo}-multi-{name}"
        asyncsync("copy", "-q", "--all", *PLAIN, target, f"docker://{host}/{back}:m")
        pushed = get_manifest_sync(registry_anon, back, "m")[1]
        assert _sha(pushed) == _sha(_raw(target))
        for child in json.loads(pushed)["manifests"]:
            assert _sha(get_manifest_sync(registry_anon, back, child["digest"])[1]) == child["digest"]
    assert _sha(_raw(f"dir:{tmp_path}/multi-dir")) == index_digest


def test_asyncsync_writes_skopeo_reads(
    registry_anon: RegistryServer, seeded: tuple[str, GeneratedImage, str], tmp_path: Path
) -> None:
    repo, image, index_digest = seeded
    host = registry_anon.host
    source = f"docker://{host}/{repo}"
    targets = {
        "oci": f"oci:{tmp_path}/oci:v1",
        "dir": f"dir:{tmp_path}/dir",
        "oci-archive": f"oci-archive:{tmp_path}/oci.tar:v1",
        "docker-archive": f"docker-archive:{tmp_path}/docker.tar:{repo}:v1",
    }
    for name, target in targets.items():
        digestfile = tmp_path / f"{name}.digest"
        asyncsync("copy", "-q", *PLAIN, "--digestfile", str(digestfile), f"{source}:v1", target)
        inspected = json.loads(skopeo("inspect", target))
        assert inspected["Os"] == image.os and inspected["Architecture"] == image.architecture
        back = f"{repo}-skopeo-{name}"
        skopeo("copy", "--dest-tls-verify=false", target, f"docker://{host}/{back}:v1")
        pushed = get_manifest_sync(registry_anon, back, "v1")[1]
        if name == "docker-archive":
            assert inspected["Layers"] == image.diff_ids
            assert json.loads(pushed)["config"]["digest"] == image.config_digest
            continue
        written = digestfile.read_text().strip()
        assert inspected["Digest"] == written == _sha(_raw(target)), name
        assert _sha(pushed) == written, name
    assert _sha(_raw(targets["dir"])) == image.digest  # dir: keeps the registry's bytes
    # The docker-archive (layers streamed in concurrently) is byte for byte skopeo's own.
    skopeo(
        "copy", "--src-tls-verify=false", f"{source}:v1", f"docker-archive:{tmp_path}/skopeo.tar:{repo}:v1"
    )
    assert (tmp_path / "docker.tar").read_bytes() == (tmp_path / "skopeo.tar").read_bytes()
    # A whole multi-arch image into one layout, read back by skopeo instance by instance.
    asyncsync("copy", "-q", "--all", *PLAIN, f"{source}:multi", f"oci:{tmp_path}/multi:m")
    top = json.loads(_raw(f"oci:{tmp_path}/multi:m"))
    for child in top["manifests"]:
        platform = child["platform"]
        chosen = json.loads(
            skopeo("inspect", f"--override-arch={platform['architecture']}", f"oci:{tmp_path}/multi:m")
        )
        assert chosen["Architecture"] == platform["architecture"]  # skopeo found the instance's config
    skopeo("copy", "--all", f"oci:{tmp_path}/multi:m", f"dir:{tmp_path}/from-skopeo")
    assert _sha(_raw(f"dir:{tmp_path}/from-skopeo")) == _sha(_raw(f"oci:{tmp_path}/multi:m"))
    assert index_digest != _sha(_raw(f"oci:{tmp_path}/multi:m"))  # converted to OCI, as skopeo does


def test_docker_archive_reads_and_writes_exactly_as_skopeo(tmp_path: Path, rng_seed: int) -> None:
    """The same layer twice, several layers; archives from skopeo, from asyncsync, and as ``docker
    save`` writes them (uncompressed legacy layout, and compressed layers as some tools write)."""
    shared = make_layer(f"{rng_seed}/shared", 5000)
    image = make_image(f"{rng_seed}/archive", layers=2, shared_layers=[shared, shared])
    source = write_dir_image(tmp_path / "dir", image)
    archives = {name: tmp_path / f"{name}.tar" for name in ("skopeo", "asyncsync", "saved", "saved-gzip")}
    skopeo("copy", "-q", f"dir:{source}", f"docker-archive:{archives['skopeo']}:proj/app:v1")
    asyncsync("copy", "-q", f"dir:{source}", f"docker-archive:{archives['asyncsync']}:proj/app:v1")
    docker_save(archives["saved"], [(image, ["proj/app:v1"])])
    docker_save(archives["saved-gzip"], [(image, ["proj/app:v1"])], compress=gzip.compress)
    assert archives["asyncsync"].read_bytes() == archives["skopeo"].read_bytes()
    for name, archive in archives.items():
        target = f"docker-archive:{archive}"
        raw = _raw(target)
        # skopeo labels the (uncompressed) layers gzip and compresses them when it pushes; we label
        # the bytes we serve. Apart from that string the generated manifests are byte for byte equal.
        gzip_label, plain_label = b"rootfs.diff.tar.gzip", b"rootfs.diff.tar"
        assert asyncsync("inspect", "--raw", target).encode() == raw.replace(gzip_label, plain_label), name
        assert [layer["digest"] for layer in json.loads(raw)["layers"]] == image.diff_ids, name
        ours, theirs = json.loads(asyncsync("inspect", target)), json.loads(skopeo("inspect", target))
        assert ours["Layers"] == theirs["Layers"], name
    # skopeo reads the archive back into an image with the same config and layers.
    skopeo("copy", "-q", f"docker-archive:{archives['asyncsync']}", f"dir:{tmp_path}/back")
    back = json.loads((tmp_path / "back" / "manifest.json").read_bytes())
    assert back["config"]["digest"] == image.config_digest
    for diff_id in image.diff_ids:
        data = (tmp_path / "back" / diff_id.removeprefix("sha256:")).read_bytes()
        assert _sha(data) == diff_id
