"""``asyncsync copy`` as a user runs it: a subprocess against real registries, checked with skopeo."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.helpers import skopeo
from tests.helpers.fault_proxy import Fault, FaultProxy
from tests.helpers.images import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    DOCKER_MANIFEST,
    list_tags_sync,
    make_image,
    make_multiarch,
    push_blob_sync,
    push_image_sync,
    push_index_sync,
    push_manifest_sync,
    run_sync,
)
from tests.helpers.registry import RegistryFactory, RegistryServer

ROOT = Path(__file__).resolve().parents[2]
PLAIN = ["--src-tls-verify=false", "--dest-tls-verify=false"]


def asyncsync(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``python -m asyncsync ARGS`` with this checkout on the path; stdout is not a terminal."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "asyncsync", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: ") and "Traceback" not in done.stderr
    return lines[0]


def _creds(server: RegistryServer, side: str) -> list[str]:
    return [f"--{side}-creds={server.username}:{server.password}"] if server.username else []


def test_copy_prints_skopeo_lines_writes_digestfile_and_skopeo_agrees(
    registry_anon: RegistryServer, registry_basic: RegistryServer, tmp_path: Path
) -> None:
    image = make_image("cli-copy", layers=2)
    push_image_sync(registry_anon, "cli/src", "v1", image)
    digestfile = tmp_path / "digest"
    done = asyncsync(
        "copy",
        *PLAIN,
        *_creds(registry_basic, "dest"),
        "--digestfile",
        str(digestfile),
        f"docker://{registry_anon.host}/cli/src:v1",
        f"docker://{registry_basic.host}/cli/dst:v1",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Getting image source signatures"
    # Blobs go concurrently, so their lines come in completion order.
    assert sorted(lines[1:4]) == sorted(
        [f"Copying blob {d[7:19]} done" for d in image.layer_digests]
        + [f"Copying config {image.config_digest[7:19]} done"]
    )
    assert lines[4:] == ["Writing manifest to image destination"]
    assert digestfile.read_text() == image.digest
    assert skopeo.inspect(registry_basic, "cli/dst:v1")["Digest"] == image.digest
    # Interop: skopeo copies what asyncsync wrote into an OCI layout.
    skopeo.skopeo(
        "copy",
        *registry_basic.skopeo_flags("src-"),
        f"docker://{registry_basic.host}/cli/dst:v1",
        f"oci:{tmp_path / 'layout'}:v1",
    )
    assert json.loads((tmp_path / "layout" / "index.json").read_text())["manifests"]


def test_second_copy_skips_and_same_registry_copy_mounts(registry_anon: RegistryServer) -> None:
    image = make_image("cli-mount", layers=1)
    push_image_sync(registry_anon, "cli/mount-src", "v1", image)
    args = ["copy", *PLAIN, f"docker://{registry_anon.host}/cli/mount-src:v1"]
    first = asyncsync(*args, f"docker://{registry_anon.host}/cli/mount-dst:v1")
    assert first.returncode == 0, first.stderr
    layer = image.layer_digests[0][7:19]
    assert f"Copying blob {layer} mounted from cli/mount-src" in first.stdout.splitlines()
    again = asyncsync(*args, f"docker://{registry_anon.host}/cli/mount-dst:v1")
    assert f"Copying blob {layer} skipped: already exists" in again.stdout.splitlines()
    quiet = asyncsync(*args[:1], "-q", *args[1:], f"docker://{registry_anon.host}/cli/mount-quiet:v1")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""


def test_all_copies_the_index(registry_anon: RegistryServer, registry_basic: RegistryServer) -> None:
    index = make_multiarch("cli-all", layers=1)
    push_index_sync(registry_anon, "cli/multi", "v1", index)
    done = asyncsync(
        "copy",
        *PLAIN,
        *_creds(registry_basic, "dest"),
        "--all",
        f"docker://{registry_anon.host}/cli/multi:v1",
        f"docker://{registry_basic.host}/cli/multi:v1",
    )
    assert done.returncode == 0, done.stderr
    assert skopeo.inspect_raw(registry_basic, "cli/multi:v1") == index.manifest


def test_bad_input_gives_one_line_errors(registry_anon: RegistryServer) -> None:
    image = make_image("cli-bad", layers=1)
    push_image_sync(registry_anon, "cli/bad", "v1", image)
    src = f"docker://{registry_anon.host}/cli/bad:v1"
    missing = asyncsync("copy", *PLAIN, f"docker://{registry_anon.host}/cli/absent:v1", f"{src}-copy")
    assert missing.returncode == 1
    assert "image not found" in _one_line_error(missing)
    itself = asyncsync("copy", *PLAIN, src, src)
    assert itself.returncode == 2 and "same image" in _one_line_error(itself)
    v2s1 = asyncsync("copy", *PLAIN, "--format", "v2s1", src, f"{src}-x")
    assert v2s1.returncode == 2 and "schema 1" in _one_line_error(v2s1)
    preserve = asyncsync(
        "copy",
        *PLAIN,
        "--format",
        "oci",
        "--preserve-digests",
        src,
        f"docker://{registry_anon.host}/cli/kept:v1",
    )
    assert preserve.returncode == 2 and "preserve digests" in _one_line_error(preserve)
    unknown = asyncsync("copy", src, "nosuch:thing")
    assert unknown.returncode == 2 and "unknown transport" in _one_line_error(unknown)
    conflicting = asyncsync("copy", *PLAIN, "--all", "--multi-arch", "system", src, f"{src}-y")
    assert conflicting.returncode == 2 and "--all" in _one_line_error(conflicting)
    with pytest.raises(skopeo.SkopeoError):
        skopeo.inspect_raw(registry_anon, "cli/kept:v1")


def test_destination_that_refuses_pushes_says_denied_and_writes_no_tag(
    registry_anon: RegistryServer, make_registry: object
) -> None:
    image = make_image("cli-denied", layers=1)
    push_image_sync(registry_anon, "cli/denied-src", "v1", image)
    readonly = make_registry("token")  # type: ignore[operator]
    assert readonly.token_service is not None
    readonly.token_service.policy = lambda user, scope: ("pull",)
    done = asyncsync(
        "copy",
        *PLAIN,
        *_creds(readonly, "dest"),
        f"docker://{registry_anon.host}/cli/denied-src:v1",
        f"docker://{readonly.host}/cli/denied:v1",
    )
    assert done.returncode == 1
    assert "denied" in _one_line_error(done)
    assert readonly.password is not None and readonly.password not in done.stderr + done.stdout
    assert readonly.count("PUT", r"/v2/cli/denied/manifests/.*") == 0


# ------------------------------------------------------------------------------------ memory


LAYER_SIZE = 200 * 1024 * 1024
BLOCK = 1024 * 1024


def _seed_big_image(server: RegistryServer, repo: str) -> str:
    """Stream a 200 MiB layer into ``repo`` (POST, one streamed PATCH, PUT ?digest=), never holding
    it in memory, then push a config and a manifest for it. Returns the manifest digest."""

    async def upload() -> tuple[str, int]:
        hasher = hashlib.sha256()
        block = os.urandom(BLOCK)

        async def body() -> AsyncIterator[bytes]:
            for index in range(LAYER_SIZE // BLOCK):
                piece = index.to_bytes(8, "big") + block[8:]
                hasher.update(piece)
                yield piece

        async with aiohttp.ClientSession() as http:
            async with http.post(f"{server.url}/v2/{repo}/blobs/uploads/") as response:
                assert response.status == 202
                location = response.headers["Location"]
            async with http.patch(location, data=body()) as response:
                assert response.status == 202, await response.text()
                location = response.headers["Location"]
            digest = "sha256:" + hasher.hexdigest()
            separator = "&" if "?" in location else "?"
            async with http.put(f"{location}{separator}digest={digest}") as response:
                assert response.status == 201, await response.text()
        return digest, LAYER_SIZE

    layer_digest, layer_size = run_sync(upload)
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer_digest]}}
    ).encode()
    push_blob_sync(server, repo, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {
                "mediaType": DOCKER_CONFIG,
                "size": len(config),
                "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
            },
            "layers": [{"mediaType": DOCKER_LAYER, "size": layer_size, "digest": layer_digest}],
        }
    ).encode()
    return push_manifest_sync(server, repo, "big", manifest, DOCKER_MANIFEST)


def test_200_mib_layer_copies_in_under_100_mib_of_memory(make_registry: object) -> None:
    source = make_registry("anon")  # type: ignore[operator]
    destination = make_registry("anon")  # type: ignore[operator]
    digest = _seed_big_image(source, "big/src")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.monotonic()
    # The child reports its own VmHWM at exit: the kernel's ru_maxrss (wait4/getrusage) also
    # counts the pre-exec copy of this pytest process, which is bigger than the copy itself
    # when the whole suite is loaded. VmHWM belongs to the exec'd image only.
    report_peak = (
        "import atexit, runpy, sys\n"
        "def peak():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmHWM:'):\n"
        "            sys.stderr.write('PEAK_KIB ' + line.split()[1] + '\\n')\n"
        "atexit.register(peak)\n"
        "sys.argv[0] = 'asyncsync'\n"
        "runpy.run_module('asyncsync', run_name='__main__')\n"
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            report_peak,
            "copy",
            *PLAIN,
            "--quiet",
            f"docker://{source.host}/big/src:big",
            f"docker://{destination.host}/big/dst:big",
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # wait4 reaps exactly this child and returns its own resource usage (ru_maxrss in KiB on Linux).
    assert process.stderr is not None
    stderr = process.stderr.read().decode()
    process.stderr.close()
    process.wait()
    elapsed = time.monotonic() - started
    assert process.returncode == 0, stderr
    peaks = [int(line.split()[1]) for line in stderr.splitlines() if line.startswith("PEAK_KIB ")]
    assert peaks, stderr
    peak_mib = peaks[-1] / 1024
    print(f"copied 200 MiB in {elapsed:.1f}s, peak RSS {peak_mib:.1f} MiB")
    assert peak_mib < 100, f"peak RSS {peak_mib:.1f} MiB"
    assert skopeo.inspect(destination, "big/dst:big")["Digest"] == digest


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_a_copy_at_once_leaving_no_tag(make_registry: RegistryFactory, signum: int) -> None:
    """A copy waiting on a 50 s Retry-After ends within seconds of SIGTERM or Ctrl-C, with the
    interrupted exit status, one line and no tag at the destination."""
    source, dest = make_registry("anon"), make_registry("anon")
    push_image_sync(source, "team/app", "v1", make_image("copy-signal", layers=2))
    target = f"docker://{dest.host}/team/app:v1"
    with FaultProxy(source.host) as proxy:
        proxy.add_rule(
            Fault.too_many_requests("seconds", delay=50), method="GET", path=r"/v2/.+/blobs/.+", times=0
        )
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "asyncsync",
                "copy",
                *PLAIN,
                f"docker://{proxy.address}/team/app:v1",
                target,
            ],
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while proxy.count("GET", r"/v2/.+/blobs/.+", status=429) == 0:
                assert time.monotonic() < deadline, "the copy never reached a blob"
                assert process.poll() is None, process.communicate()[0].decode()
                time.sleep(0.05)
            time.sleep(0.5)  # inside the Retry-After wait
            signalled = time.monotonic()
            process.send_signal(signum)
            output, _ = process.communicate(timeout=30)
            took = time.monotonic() - signalled
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    text = output.decode(errors="replace")
    assert took < 5, f"exit took {took:.1f}s:\n{text}"
    assert process.returncode == 130, text
    assert "Error: interrupted" in text and "Traceback" not in text
    assert list_tags_sync(dest, "team/app") == []
