"""Soak: a long ``asyncsync sync`` through fault proxies injecting 5-10% mixed faults, then the invariants.

    python tests/reliability/soak.py                      # 120 images (~3,000 requests), about a minute
    python tests/reliability/soak.py --images 400 --fault-rate 0.1 --seed 7

It lives with the reliability tests (not in bench/) because it is built on the test bed: registries,
fault proxy, crawler and image generator of :mod:`tests.helpers`.

It starts two local registries (nothing from the internet), pushes a seeded workload (single-arch Docker
and OCI images, two-platform indexes, layers shared between repositories), and runs the real command,
``python -m asyncsync sync --all`` with chunked uploads, while a
:class:`~tests.helpers.fault_proxy.FaultProxy` on each side fails a seeded ``--fault-rate`` share of the
requests: resets in blob GETs, PATCHes and PUTs, truncated bodies, stalls, 500/502/503/504, 429 with and
without Retry-After, refused mounts, and (rarely) a flipped byte.

Afterwards the destination is crawled (every tag -> manifest -> children -> blob HEADs) and the sync is run
again without faults. It prints a markdown summary and exits 1 when an invariant breaks: a corrupt or
incomplete tag, an image neither complete nor reported failed with a one-line reason, a re-run that does
not converge, a blob uploaded again although it had arrived, or more requests in flight to a registry than
``--max-requests-per-host``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.helpers.crash import uploaded  # noqa: E402
from tests.helpers.crawl import crawl, present_blobs  # noqa: E402
from tests.helpers.fault_proxy import Fault, FaultProxy  # noqa: E402
from tests.helpers.fault_scenarios import BLOB_GET, MANIFEST, UPLOAD, Workload, push_workload  # noqa: E402
from tests.helpers.images import Format, make_image, make_layer, make_multiarch  # noqa: E402
from tests.helpers.registry import RegistryServer, run_registry  # noqa: E402

HOST_LIMIT = 8
SECRETS = ("_state=", "Bearer ", "Basic ", "X-Amz-Signature")


def soak_workload(seed: int, images: int) -> Workload:
    """``images`` images under ``soak/``: a third multi-arch, a third OCI, all on 4 shared base layers."""
    rng = random.Random(f"soak/{seed}")
    bases = [make_layer(f"soak/{seed}/base/{i}", 24 * 1024) for i in range(4)]
    found: Workload = []
    for index in range(images):
        name = f"soak/{seed}/{index}"
        if index % 3 == 2:
            size = rng.choice((8, 40)) * 1024
            found.append((f"soak/multi-{index:04d}", make_multiarch(name, layers=1, layer_size=size)))
            continue
        shared = [bases[rng.randrange(len(bases))]]
        size = rng.choice((4, 16, 48)) * 1024
        fmt: Format = "oci" if index % 3 == 1 else "docker"
        image = make_image(name, layers=1, layer_size=size, fmt=fmt, shared_layers=shared)
        found.append((f"soak/app-{index:04d}", image))
    return found


def add_faults(source: FaultProxy, destination: FaultProxy, rate: float) -> None:
    """Mixed faults summing to about ``rate`` of the requests each side sees (weights per kind)."""
    on_source = [
        (Fault.reset_response(), {"method": "GET", "path": BLOB_GET}, 0.30),
        (Fault.truncate(), {"method": "GET", "path": BLOB_GET}, 0.20),
        (Fault.stall(2), {"method": "GET", "path": BLOB_GET}, 0.05),
        (Fault.flip_byte(), {"method": "GET", "path": BLOB_GET}, 0.02),
        (Fault.error(503), {"method": "GET", "path": MANIFEST}, 0.25),
        (Fault.too_many_requests("seconds", 1), {"method": "GET", "path": MANIFEST}, 0.10),
    ]
    on_destination = [
        (Fault.error(500), {"method": "HEAD"}, 0.15),
        (Fault.error(502), {"method": "POST", "path": UPLOAD}, 0.15),
        (Fault.reset_request(), {"method": "PATCH", "path": UPLOAD}, 0.25),
        (Fault.reset_request(), {"method": "PUT", "path": UPLOAD}, 0.10),
        (Fault.error(503), {"method": "PUT", "path": UPLOAD}, 0.05),
        (Fault.too_many_requests("absent"), {"method": "PUT", "path": MANIFEST}, 0.10),
        (Fault.error(504), {"method": "PUT", "path": MANIFEST}, 0.10),
        (Fault.too_many_requests("date", 1), {"path": r"/v2/.+/tags/list"}, 0.10),
    ]
    for proxy, faults in ((source, on_source), (destination, on_destination)):
        total = sum(weight for _, _, weight in faults)
        for fault, match, weight in faults:
            # Each rule sees only the requests it matches; scale so the side's overall rate is ~rate.
            proxy.add_rule(fault, probability=min(0.5, rate * weight / total * 4), times=0, **match)
    destination.add_rule(Fault.refuse_mount(), method="POST", query="mount=", probability=0.5, times=0)


def run_sync(spec: Path, destination: str, name: str, work: Path) -> int:
    """``asyncsync sync`` as a real process; its report is ``work/NAME.json``, its output ``NAME.log``."""
    args = [sys.executable, "-m", "asyncsync", "sync", "--src", "yaml", "--dest", "docker", "--all"]
    args += ["--dest-tls-verify=false", "--chunk-size", "32KiB", "--retry-times", "6", "-j", "8"]
    args += ["--max-requests-per-host", str(HOST_LIMIT), "--report", str(work / f"{name}.json")]
    with (work / f"{name}.log").open("w") as out:
        done = subprocess.run(
            [*args, str(spec), destination], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    return done.returncode


@dataclass
class SoakResult:
    """What the faulted sync and its re-run did (see :func:`summary` for the invariants)."""

    exit_code: int = 0
    seconds: float = 0.0
    requests: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    peak: int = 0
    expected: dict[str, str] = field(default_factory=dict)
    completed: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    converged: bool = False
    reuploaded: list[str] = field(default_factory=list)


async def soak(
    source: RegistryServer, destination: RegistryServer, images: Workload, work: Path, rate: float, seed: int
) -> SoakResult:
    """Push, sync through faults, crawl, re-sync without faults, crawl again."""
    await push_workload(source, images)
    spec = work / "spec.yaml"
    dest_repos = [f"mirror/{repo.rsplit('/', 1)[1]}" for repo, _ in images]
    pairs = list(zip(dest_repos, images, strict=True))
    result = SoakResult(expected={f"{dest}:v1": image.digest for dest, (_, image) in pairs})
    with FaultProxy(source.host, seed=seed) as src, FaultProxy(destination.host, seed=seed) as dst:
        entry = {"images": {repo: ["v1"] for repo, _ in images}, "tls-verify": False}
        spec.write_text(yaml.safe_dump({src.address: entry}))
        add_faults(src, dst, rate)
        started = time.monotonic()
        target = f"{dst.address}/mirror"
        result.exit_code = await anyio.to_thread.run_sync(run_sync, spec, target, "sync", work)
        result.seconds = time.monotonic() - started
        result.requests = len(src.records()) + len(dst.records())
        result.injected = src.injected() + dst.injected()
        result.peak = max(src.peak_in_flight(), dst.peak_in_flight())
        first = await crawl(destination, dest_repos)
        result.completed, result.corrupt = first.complete(result.expected), first.corrupt_tags()
        present = await present_blobs(destination, [(d, blob) for d, (_, i) in pairs for blob in i.blobs()])
        for proxy in (src, dst):
            proxy.clear_rules()
            proxy.reset()
        again = await anyio.to_thread.run_sync(run_sync, spec, target, "rerun", work)
        result.reuploaded = sorted(set(uploaded(dst.records())) & present)
    final = await crawl(destination, dest_repos)
    report = json.loads((work / "sync.json").read_text())
    result.failed = {r["destination"]: r["reason"] for r in report["images"] if r["outcome"] == "failed"}
    complete = final.complete(result.expected) == sorted(result.expected)
    result.converged = again == 0 and complete and not final.corrupt_tags()
    return result


def _clear(reason: str) -> bool:
    return bool(reason) and "\n" not in reason and not any(secret in reason for secret in SECRETS)


def summary(result: SoakResult, images: int, seed: int) -> tuple[list[str], bool]:
    """The markdown summary and whether every invariant held."""
    clear = [reason for reason in result.failed.values() if _clear(reason)]
    unexplained = len(result.expected) - len(result.completed) - len(result.failed)
    faults = sum(result.injected.values())
    lines = [
        f"Soak (seed {seed}): {images} images, {result.requests} requests through the proxies, {faults} "
        f"faults injected ({faults / max(1, result.requests):.1%}); faulted sync {result.seconds:.0f} s "
        f"(exit {result.exit_code}: 1 when an image failed).",
        "",
        "| Invariant | Value |",
        "|---|---:|",
        f"| images complete and digest-equal after the faulted sync | {len(result.completed)} / {images} |",
        f"| images reported failed with a one-line reason | {len(clear)} |",
        f"| images neither complete nor reported failed | {unexplained} |",
        f"| corrupt or incomplete tags on the destination | {len(result.corrupt)} |",
        f"| peak requests in flight to one registry (limit {HOST_LIMIT}) | {result.peak} |",
        f"| re-run without faults converged (digest-equal) | {'yes' if result.converged else 'NO'} |",
        f"| blobs uploaded again by the re-run although they had arrived | {len(result.reuploaded)} |",
        "",
        "| Fault | Injected |",
        "|---|---:|",
        *(f"| {label} | {count} |" for label, count in sorted(result.injected.items())),
    ]
    if result.failed:
        lines += ["", "Failure reasons (first 5):", *(f"- {r}" for r in list(result.failed.values())[:5])]
    ok = (
        not result.corrupt
        and len(clear) == len(result.failed)
        and unexplained == 0
        and result.converged
        and not result.reuploaded
        and result.peak <= HOST_LIMIT
    )
    return lines, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=120, help="images to sync (default 120)")
    parser.add_argument("--fault-rate", type=float, default=0.07, help="share of requests to fail")
    parser.add_argument("--seed", type=int, default=1, help="seed of the workload and of every fault")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="asyncsync-soak-") as scratch:
        home = Path(scratch) / "home"
        home.mkdir()
        for variable, sub in (("HOME", ""), ("XDG_CACHE_HOME", ".cache"), ("XDG_CONFIG_HOME", ".config")):
            os.environ[variable] = str(home / sub)
        os.environ.pop("REGISTRY_AUTH_FILE", None)
        images = soak_workload(args.seed, args.images)
        with run_registry("anon") as source, run_registry("anon") as destination:
            result = anyio.run(soak, source, destination, images, Path(scratch), args.fault_rate, args.seed)
    lines, ok = summary(result, args.images, args.seed)
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
