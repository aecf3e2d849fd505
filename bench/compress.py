"""Layer compression cost: ``asyncsync copy`` against ``skopeo copy`` compressing the same ~1 GiB image.

Seeds a source registry with one Docker v2s2 image whose 3 layers are *uncompressed* tars (as
``docker-archive:`` serves them) of real files from this machine's ``/usr`` (ELF binaries, text,
already-compressed data: what container layers hold), ~341 MiB each. Then, for each format, each
tool pushes it to a fresh destination registry with ``--dest-compress-format FORMAT`` at the default
level, alternating which tool goes first, ``--rounds`` times. Registries store on tmpfs
(``/dev/shm``), so the figures are the tools' compression, not the disk.

Printed per tool and format (medians): wall time, client CPU seconds (user + system, the tool and
its children), MB/s of uncompressed input per wall second and per CPU second ("per core"), the
compressed size, and peak RSS (VmHWM). Each destination is checked: its config lists the source's
diff ids and every layer has the format's media type. Each asyncsync run gets its own
``XDG_CACHE_HOME``, so no run finds an earlier one's recompressed-layer index.

    python -m bench.compress [--layer-mib 341] [--layers 3] [--rounds 3] [--formats gzip,zstd]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import tarfile
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.measure import Measurement, run_measured
from bench.registries import Registry, running_registry
from bench.tools import asyncsync_base

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
LAYER_TYPES = {
    "gzip": {
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.oci.image.layer.v1.tar+gzip",
    },
    "zstd": {"application/vnd.oci.image.layer.v1.tar+zstd"},
}
MIB = 1024 * 1024
TMPFS = "/dev/shm"


def _files(root: str = "/usr") -> Iterator[Path]:
    """Regular files under ``root`` in a stable order (symlinks and unreadable files skipped)."""
    for directory, subdirs, names in os.walk(root):
        subdirs.sort()
        for name in sorted(names):
            path = Path(directory, name)
            if path.is_file() and not path.is_symlink() and os.access(path, os.R_OK):
                yield path


def make_layers(work: Path, layers: int, layer_mib: int) -> list[Path]:
    """``layers`` uncompressed tars of about ``layer_mib`` MiB each, from consecutive files of /usr."""
    files = _files()
    paths = []
    for index in range(layers):
        path = work / f"layer-{index}.tar"
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
            while path.stat().st_size < layer_mib * MIB:
                source = next(files)
                info = tar.gettarinfo(str(source), arcname=str(source).lstrip("/"))
                info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
                with source.open("rb") as handle:
                    tar.addfile(info, handle)
        paths.append(path)
    return paths


def _sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(MIB):
            hasher.update(block)
    return "sha256:" + hasher.hexdigest()


async def _upload(http: aiohttp.ClientSession, registry: Registry, repo: str, data: bytes | Path) -> str:
    digest = _sha256(data) if isinstance(data, Path) else "sha256:" + hashlib.sha256(data).hexdigest()
    async with http.post(f"{registry.url}/v2/{repo}/blobs/uploads/") as response:
        location = response.headers["Location"]
    separator = "&" if "?" in location else "?"
    if isinstance(data, Path):
        with data.open("rb") as body:
            async with http.put(f"{location}{separator}digest={digest}", data=body) as response:
                status = response.status
    else:
        async with http.put(f"{location}{separator}digest={digest}", data=data) as response:
            status = response.status
    if status != 201:
        raise RuntimeError(f"blob upload failed: HTTP {status}")
    return digest


async def seed(registry: Registry, repo: str, tag: str, layers: list[Path]) -> list[str]:
    """Push the image with uncompressed layers; returns the diff ids (the layer digests)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http:
        digests = [await _upload(http, registry, repo, path) for path in layers]
        config = json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": digests}}
        ).encode()
        config_digest = await _upload(http, registry, repo, config)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST,
                "config": {"mediaType": DOCKER_CONFIG, "size": len(config), "digest": config_digest},
                "layers": [
                    {"mediaType": DOCKER_LAYER_TAR, "size": path.stat().st_size, "digest": digest}
                    for path, digest in zip(layers, digests, strict=True)
                ],
            }
        ).encode()
        async with http.put(
            f"{registry.url}/v2/{repo}/manifests/{tag}",
            data=manifest,
            headers={"Content-Type": DOCKER_MANIFEST},
        ) as response:
            if response.status != 201:
                raise RuntimeError(f"manifest upload failed: HTTP {response.status}")
    return digests


def _get(registry: Registry, path: str, accept: str) -> bytes:
    request = urllib.request.Request(f"{registry.url}{path}", headers={"Accept": accept}, method="GET")
    with urllib.request.urlopen(request, timeout=30) as response:
        data: bytes = response.read()
    return data


def check(registry: Registry, repo: str, tag: str, diff_ids: list[str], fmt: str) -> int:
    """The destination's compressed size; raises when the image is not what it should be: the
    config must list the source's diff ids (skopeo re-encodes it when it converts to OCI, so its
    digest may differ) and every layer must have the format's media type."""
    manifest = json.loads(_get(registry, f"/v2/{repo}/manifests/{tag}", f"{DOCKER_MANIFEST}, {OCI_MANIFEST}"))
    config = json.loads(_get(registry, f"/v2/{repo}/blobs/{manifest['config']['digest']}", "*/*"))
    if config["rootfs"]["diff_ids"] != diff_ids:
        raise RuntimeError("the config's diff ids changed")
    kinds = {layer["mediaType"] for layer in manifest["layers"]}
    if not kinds <= LAYER_TYPES[fmt]:
        raise RuntimeError(f"layers not {fmt}: {sorted(kinds)}")
    return sum(int(layer["size"]) for layer in manifest["layers"])


@dataclass
class Run:
    measurement: Measurement
    compressed: int


def _row(tool: str, fmt: str, runs: list[Run], plain: int) -> str:
    wall = statistics.median(r.measurement.wall_s for r in runs)
    cpu = statistics.median(r.measurement.cpu_s for r in runs)
    peak = max(r.measurement.peak_rss for r in runs) / MIB
    size = statistics.median(r.compressed for r in runs) / MIB
    mb = plain / 1e6
    return (
        f"| {fmt} | {tool} | {len(runs)} | {wall:.1f} s | {cpu:.1f} s | {mb / wall:.0f} MB/s | "
        f"{mb / cpu:.0f} MB/s | {size:.0f} MiB ({plain / MIB / size:.2f}x) | {peak:.0f} MiB |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compress", description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument(
        "--layer-mib", type=int, default=341, help="size of each layer (default: 3 x 341 MiB)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--formats", default="gzip,zstd")
    args = parser.parse_args(argv)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    base, extra_env = asyncsync_base()
    env = {**os.environ, **extra_env}
    results: dict[tuple[str, str], list[Run]] = {}
    parent = TMPFS if os.path.isdir(TMPFS) else None
    with tempfile.TemporaryDirectory(prefix="asyncsync-compress-", dir=parent) as tmp:
        work = Path(tmp)
        layers = make_layers(work, args.layers, args.layer_mib)
        plain = sum(path.stat().st_size for path in layers)
        with running_registry(work / "source", name="source") as source:
            diff_ids = asyncio.run(seed(source, "big/app", "v1", layers))
            for path in layers:
                path.unlink()  # the registry has them; keep tmpfs free
            print(
                f"source {source.host}: big/app:v1, {args.layers} uncompressed layers, {plain / MIB:.0f} MiB"
            )
            src = f"docker://{source.host}/big/app:v1"
            for round_index in range(args.rounds):
                for fmt in formats:
                    order = ["asyncsync", "skopeo"] if round_index % 2 == 0 else ["skopeo", "asyncsync"]
                    for tool in order:
                        run_dir = work / f"r{round_index}-{fmt}-{tool}"
                        with running_registry(run_dir / "dest", name="dest") as dest:
                            command = [*base, "copy"] if tool == "asyncsync" else ["skopeo", "copy"]
                            command += [
                                "--quiet",
                                "--src-tls-verify=false",
                                "--dest-tls-verify=false",
                                "--dest-compress-format",
                                fmt,
                                src,
                                f"docker://{dest.host}/big/app:v1",
                            ]
                            # Each asyncsync run starts without an earlier run's recompressed-layer
                            # index (as a fresh skopeo cannot reuse at a fresh destination either).
                            run_env = {**env, "XDG_CACHE_HOME": str(run_dir / "cache")}
                            measured = run_measured(command, log_path=run_dir / "log.txt", env=run_env)
                            try:
                                if measured.returncode != 0:
                                    raise RuntimeError((run_dir / "log.txt").read_text()[-2000:])
                                compressed = check(dest, "big/app", "v1", diff_ids, fmt)
                            except RuntimeError as exc:
                                print(f"[round {round_index + 1}] {fmt} {tool}: FAILED: {exc}")
                                continue
                        results.setdefault((tool, fmt), []).append(Run(measured, compressed))
                        print(
                            f"[round {round_index + 1}] {fmt} {tool}: {measured.wall_s:.1f} s wall, "
                            f"{measured.cpu_s:.1f} s CPU, {compressed / MIB:.0f} MiB, "
                            f"peak RSS {measured.peak_rss / MIB:.0f} MiB"
                        )
    print(
        "\n| format | tool | runs | wall (median) | client CPU | MB/s (wall) | MB/s per core (CPU) "
        "| compressed | peak RSS |\n|---|---|---|---|---|---|---|---|---|"
    )
    for fmt in formats:
        for tool in ("asyncsync", "skopeo"):
            runs = results.get((tool, fmt), [])
            if runs:
                print(_row(tool, fmt, runs, plain))
    return 0 if all(results.get((t, f)) for t in ("asyncsync", "skopeo") for f in formats) else 1


if __name__ == "__main__":
    raise SystemExit(main())
