"""Measure ``docker://`` (loopback registry) -> ``docker-archive:``: asyncsync against skopeo, same run.

Not a test (pytest does not collect it): a script for the figures quoted in commit messages.
It seeds a source registry (storage in ``/dev/shm`` when present, so the registry's disk is not
measured) with one image of ``--layers`` layers of ``--layer-mib`` MiB of incompressible bytes
(``bench.copy_big.seed``: gzip streams of stored blocks), then writes it to a fresh archive with
each tool, alternating which goes first, ``--rounds`` times each, and prints wall time and peak
RSS (``bench.measure.run_measured``, children included) per run and the medians. Each archive is
checked: ``skopeo inspect`` lists the image's diff ids, and the member lists of the two tools'
archives are the same set.

    python -m tests.transports.docker_archive.measure_write [--layer-mib 67] [--layers 3] [--rounds 3]

``--asyncsync "CMD"`` measures another build (e.g. ``python -m asyncsync`` with ``PYTHONPATH`` set to
an export of an older commit), for before/after figures on the same machine and load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import tarfile
import tempfile
from pathlib import Path

from bench.copy_big import seed
from bench.measure import Measurement, run_measured
from bench.registries import running_registry
from bench.tools import asyncsync_base

MIB = 1024 * 1024
TOOLS = ("asyncsync", "skopeo")


def _members(path: Path) -> set[tuple[str, int, bytes, str]]:
    with tarfile.open(path) as tar:
        return {(m.name, m.size, m.type, m.linkname) for m in tar}


def _diff_ids(reference: str) -> list[str]:
    done = subprocess.run(
        ["skopeo", "inspect", reference], capture_output=True, text=True, check=True, timeout=120
    )
    layers: list[str] = json.loads(done.stdout)["Layers"]
    return layers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--layer-mib", type=int, default=67)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out-dir", default=None, help="where the archives go (default: system temp)")
    parser.add_argument("--asyncsync", default=None, help="asyncsync command (e.g. another checkout's)")
    args = parser.parse_args(argv)
    base, extra_env = asyncsync_base(args.asyncsync)
    env = {**os.environ, **extra_env}
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    results: dict[str, list[Measurement]] = {tool: [] for tool in TOOLS}
    with (
        tempfile.TemporaryDirectory(prefix="asyncsync-archive-src-", dir=shm) as registry_dir,
        tempfile.TemporaryDirectory(prefix="asyncsync-archive-out-", dir=args.out_dir) as out_dir,
        running_registry(Path(registry_dir), name="source") as source,
    ):
        asyncio.run(seed(source, "big/app", "v1", args.layers, args.layer_mib))
        ref = f"docker://{source.host}/big/app:v1"
        print(f"source {ref}: {args.layers} layers x {args.layer_mib} MiB; archives in {out_dir}")
        listings: dict[str, set[tuple[str, int, bytes, str]]] = {}
        expected: list[str] | None = None
        for round_index in range(args.rounds):
            order = TOOLS if round_index % 2 == 0 else TOOLS[::-1]
            for tool in order:
                archive = Path(out_dir) / f"{tool}-{round_index}.tar"
                target = f"docker-archive:{archive}:big/app:v1"
                command = [*base] if tool == "asyncsync" else ["skopeo"]
                command += ["copy", "--quiet", "--src-tls-verify=false", ref, target]
                log = Path(out_dir) / f"{tool}-{round_index}.log"
                measured = run_measured(command, log_path=log, env=env)
                ok = measured.returncode == 0
                if ok:
                    found = _diff_ids(f"docker-archive:{archive}")
                    expected = expected if expected is not None else found
                    ok = found == expected
                    listings.setdefault(tool, _members(archive))
                    archive.unlink()
                else:
                    print(log.read_text()[-2000:])
                print(
                    f"[round {round_index + 1}] {tool}: {measured.wall_s:.2f} s, "
                    f"CPU {measured.cpu_s:.2f} s, peak RSS {measured.peak_rss / MIB:.0f} MiB, "
                    f"{'ok' if ok else 'FAILED'}"
                )
                if ok:
                    results[tool].append(measured)
        if len(listings) == 2 and listings["asyncsync"] != listings["skopeo"]:
            print("member lists differ:", listings["asyncsync"] ^ listings["skopeo"])
            return 1
    if not all(results.values()):
        print("a tool failed every run; no comparison")
        return 1
    print("\n| tool | runs | median wall | median CPU | peak RSS |\n|---|---|---|---|---|")
    for tool in TOOLS:
        runs = results[tool]
        wall = statistics.median(m.wall_s for m in runs)
        cpu = statistics.median(m.cpu_s for m in runs)
        peak = max(m.peak_rss for m in runs) / MIB
        print(f"| {tool} | {len(runs)} | {wall:.2f} s | {cpu:.2f} s | {peak:.0f} MiB |")
    shutil.rmtree(out_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
