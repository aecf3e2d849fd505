"""One big image, registry to registry: ``asyncsync copy`` against ``skopeo copy`` in the same run.

Seeds a local source registry with one image of ~1 GiB in 3 layers (streamed into the registry,
never held in memory; incompressible bytes so neither tool gains from compression), then copies it
to a fresh destination registry with each tool, alternating which goes first, ``--rounds`` pairs,
and prints per pair the wall times and their ratio skopeo / asyncsync, then the medians (wall, client
CPU: user + system of the tool), the median of the pair ratios (robust on a shared machine: both
runs of a pair see about the same load), and peak RSS (from :func:`bench.measure.run_measured`).
Each run also reports the CPU seconds of the source and destination registries and of the rest of
the machine (``/proc/stat`` busy time minus the three), which shows whether the two cores were
the floor and how much other load the run shared them with. The package's bytecode is written
first (:func:`bench.tools.compile_package`), as ``bench.run`` does.
Registries store on tmpfs (``/dev/shm``) unless ``--on-disk``. Each run's destination is checked:
the manifest digest equals the source's. Target (issue 17): median pair ratio >= 1.2, asyncsync
peak RSS <= 100 MiB.

    python -m bench.copy_big [--layer-mib 341] [--layers 3] [--rounds 3] [--on-disk]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import tempfile
import urllib.request
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from bench.measure import Measurement, run_measured
from bench.registries import Registry, running_registry
from bench.tools import asyncsync_base, compile_package

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
BLOCK = 1024 * 1024
MIB = 1024 * 1024
TMPFS = "/dev/shm"


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy since boot (``/proc/stat``)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


async def _stream_layer(
    http: aiohttp.ClientSession, registry: Registry, repo: str, index: int, mib: int
) -> tuple[str, str, int]:
    """Upload a gzip stream of ``mib`` MiB of distinct random bytes (deflate level 0: stored blocks,
    cheap to make, and neither tool gains by recompressing). Returns the blob digest, the
    uncompressed digest (diff id) and the blob size."""
    hasher, diff_hasher = hashlib.sha256(), hashlib.sha256()
    block = os.urandom(BLOCK)
    size = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal size
        gzip = zlib.compressobj(0, zlib.DEFLATED, 31)
        for n in range(mib):
            raw = index.to_bytes(4, "big") + n.to_bytes(4, "big") + block[8:]
            diff_hasher.update(raw)
            piece = gzip.compress(raw) + (gzip.flush() if n == mib - 1 else b"")
            hasher.update(piece)
            size += len(piece)
            yield piece

    async with http.post(f"{registry.url}/v2/{repo}/blobs/uploads/") as response:
        location = response.headers["Location"]
    async with http.patch(location, data=body()) as response:
        location = response.headers["Location"]
    digest = "sha256:" + hasher.hexdigest()
    separator = "&" if "?" in location else "?"
    async with http.put(f"{location}{separator}digest={digest}") as response:
        if response.status != 201:
            raise RuntimeError(f"layer upload failed: HTTP {response.status}")
    return digest, "sha256:" + diff_hasher.hexdigest(), size


async def seed(registry: Registry, repo: str, tag: str, layers: int, layer_mib: int) -> str:
    """Push the big image; returns its manifest digest."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as http:
        uploaded = [await _stream_layer(http, registry, repo, i, layer_mib) for i in range(layers)]
        diff_ids = [diff_id for _, diff_id, _ in uploaded]
        config = json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        ).encode()
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        async with http.post(f"{registry.url}/v2/{repo}/blobs/uploads/") as response:
            location = response.headers["Location"]
        separator = "&" if "?" in location else "?"
        async with http.put(f"{location}{separator}digest={config_digest}", data=config) as response:
            if response.status != 201:
                raise RuntimeError(f"config upload failed: HTTP {response.status}")
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST,
                "config": {"mediaType": DOCKER_CONFIG, "size": len(config), "digest": config_digest},
                "layers": [{"mediaType": DOCKER_LAYER, "size": n, "digest": d} for d, _, n in uploaded],
            }
        ).encode()
        async with http.put(
            f"{registry.url}/v2/{repo}/manifests/{tag}",
            data=manifest,
            headers={"Content-Type": DOCKER_MANIFEST},
        ) as response:
            if response.status != 201:
                raise RuntimeError(f"manifest upload failed: HTTP {response.status}")
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def destination_digest(registry: Registry, repo: str, tag: str) -> str:
    request = urllib.request.Request(
        f"{registry.url}/v2/{repo}/manifests/{tag}", headers={"Accept": DOCKER_MANIFEST}, method="GET"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return "sha256:" + hashlib.sha256(response.read()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.copy_big", description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument(
        "--layer-mib", type=int, default=341, help="size of each layer (default: 3 x 341 MiB)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--on-disk", action="store_true", help="registries in the system temp dir")
    args = parser.parse_args(argv)
    base, extra_env = asyncsync_base()
    compile_package()
    env = {**os.environ, **extra_env}
    results: dict[str, list[Measurement]] = {"asyncsync": [], "skopeo": []}
    registry_cpu: dict[str, list[tuple[float, float, float]]] = {"asyncsync": [], "skopeo": []}
    storage = None if args.on_disk else TMPFS
    pairs: list[float] = []
    with tempfile.TemporaryDirectory(prefix="asyncsync-copy-big-", dir=storage) as tmp:
        work = Path(tmp)
        with running_registry(work / "source", name="source") as source:
            digest = asyncio.run(seed(source, "big/app", "v1", args.layers, args.layer_mib))
            total = args.layers * args.layer_mib
            print(f"source {source.host}: big/app:v1 {digest[:19]} ({args.layers} layers, {total} MiB)")
            for round_index in range(args.rounds):
                order = ["asyncsync", "skopeo"] if round_index % 2 == 0 else ["skopeo", "asyncsync"]
                pair: dict[str, float] = {}
                for tool in order:
                    run_dir = work / f"r{round_index}-{tool}"
                    with running_registry(run_dir / "dest", name="dest") as dest:
                        src, dst = f"docker://{source.host}/big/app:v1", f"docker://{dest.host}/big/app:v1"
                        if tool == "asyncsync":
                            argv = [
                                *base,
                                "copy",
                                "--quiet",
                                "--src-tls-verify=false",
                                "--dest-tls-verify=false",
                            ]
                        else:
                            argv = [
                                "skopeo",
                                "copy",
                                "--quiet",
                                "--src-tls-verify=false",
                                "--dest-tls-verify=false",
                            ]
                        before = (source.cpu_seconds(), dest.cpu_seconds(), machine_busy_seconds())
                        measured = run_measured([*argv, src, dst], log_path=run_dir / "log.txt", env=env)
                        src_cpu = source.cpu_seconds() - before[0]
                        dst_cpu = dest.cpu_seconds() - before[1]
                        others = machine_busy_seconds() - before[2] - measured.cpu_s - src_cpu - dst_cpu
                        ok = measured.returncode == 0 and destination_digest(dest, "big/app", "v1") == digest
                        if not ok:
                            log = (run_dir / "log.txt").read_text()[-2000:]
                            print(f"  exit {measured.returncode}: {log}")
                        print(
                            f"[round {round_index + 1}] {tool}: {measured.wall_s:.2f} s, "
                            f"CPU {measured.cpu_s:.2f} s (registries: source {src_cpu:.2f} s, "
                            f"destination {dst_cpu:.2f} s; other load {max(others, 0.0):.2f} s), "
                            f"peak RSS {measured.peak_rss / MIB:.0f} MiB, {'ok' if ok else 'FAILED'}"
                        )
                        if ok:
                            results[tool].append(measured)
                            registry_cpu[tool].append((src_cpu, dst_cpu, max(others, 0.0)))
                            pair[tool] = measured.wall_s
                if len(pair) == 2:
                    pairs.append(pair["skopeo"] / pair["asyncsync"])
                    print(f"[round {round_index + 1}] skopeo / asyncsync: {pairs[-1]:.2f}x")
    if not results["asyncsync"] or not results["skopeo"]:
        print("a tool failed every run; no comparison")
        return 1
    median = {tool: statistics.median(m.wall_s for m in runs) for tool, runs in results.items()}
    cpu = {tool: statistics.median(m.cpu_s for m in runs) for tool, runs in results.items()}
    peak = {tool: max(m.peak_rss for m in runs) / MIB for tool, runs in results.items()}
    print(
        "\n| tool | runs | median wall | median CPU: client / source registry / destination registry "
        "| other load | peak RSS |\n|---|---|---|---|---|---|"
    )
    for tool in ("asyncsync", "skopeo"):
        src_cpu, dst_cpu, others = (statistics.median(row[i] for row in registry_cpu[tool]) for i in range(3))
        row = (
            tool,
            str(len(results[tool])),
            f"{median[tool]:.2f} s",
            f"{cpu[tool]:.2f} / {src_cpu:.2f} / {dst_cpu:.2f} s",
            f"{others:.2f} s",
            f"{peak[tool]:.0f} MiB",
        )
        print("| " + " | ".join(row) + " |")
    ratio = statistics.median(pairs) if pairs else median["skopeo"] / median["asyncsync"]
    print(
        f"\nskopeo / asyncsync wall time, median of {len(pairs)} pairs: {ratio:.2f}x "
        f"(pairs {', '.join(f'{r:.2f}' for r in pairs)}; target >= 1.2: {'PASS' if ratio >= 1.2 else 'FAIL'})"
    )
    verdict = "PASS" if peak["asyncsync"] <= 100 else "FAIL"
    print(f"asyncsync peak RSS {peak['asyncsync']:.0f} MiB (target <= 100: {verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
