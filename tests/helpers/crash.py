"""kill -9 of a running ``asyncsync sync`` at seeded points, then crawl, re-run and compare.

A :class:`KillPoint` names a destination request (method, path, query, which occurrence) and whether
the client dies just *before* it is forwarded (the registry never sees it) or just *after* the
registry answered (the work is done but the client never learns it). The fault proxy in front of the
destination calls SIGKILL on the CLI child (:mod:`tests.helpers.cli_process`) at that moment.

:func:`kill_points` draws at least 20 points from a seed, across blob uploads (start, PATCH, final
PUT, mount), between child manifests and the index, and around the tag PUTs. :func:`run_kill_point`
runs one: a killed sync, a crawl of the destination (no tag may reference anything missing), then a
re-run that must converge to the digest-equal state without uploading again a blob that had arrived.
"""

from __future__ import annotations

import os
import random
import re
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import anyio
import yaml

from tests.helpers import cli_process
from tests.helpers.crawl import crawl, present_blobs
from tests.helpers.fault_proxy import Fault, FaultProxy, RecordedRequest
from tests.helpers.fault_scenarios import UPLOAD, Workload, push_workload
from tests.helpers.images import make_image, make_layer, make_multiarch
from tests.helpers.registry import RegistryServer

MANIFEST = r"/v2/.+/manifests/.+"
DIGEST_MANIFEST = r"/v2/.+/manifests/sha256:[0-9a-f]{64}"
TAG_MANIFEST = r"/v2/.+/manifests/(?!sha256:)[^/]+"
CHUNK = 16 * 1024
FINAL = "digest="  # the query of the PUT that completes an upload


@dataclass(frozen=True)
class KillPoint:
    """Kill the sync at the ``nth`` destination request matching ``method``/``path``/``query``."""

    label: str
    method: str
    path: str
    nth: int
    when: Literal["before", "after"]
    query: str | None = None
    chunked: bool = False


@dataclass
class KillRun:
    """One kill point's outcome (``killed``: the point was reached and the process died of SIGKILL)."""

    point: KillPoint
    killed: bool = False
    corrupt_after_kill: dict[str, list[str]] = field(default_factory=dict)
    rerun_exit: int | None = None
    converged: bool = False
    reuploaded: list[str] = field(default_factory=list)
    rerun_uploads: int = 0
    output: str = ""


def crash_workload(seed: int, prefix: str, layer_size: int = 24 * 1024) -> Workload:
    """Three images: Docker single-arch, a two-platform index, and one sharing the first's layer
    (8 blobs to upload, 1 mount, 2 child manifests, 3 tags): small, so each kill costs little."""
    shared = [make_layer(f"{seed}/crash-shared", layer_size)]
    return [
        (f"{prefix}/docker", make_image(f"{seed}/crash-a", layers=0, shared_layers=shared)),
        (f"{prefix}/multi", make_multiarch(f"{seed}/crash-b", layers=1, layer_size=layer_size)),
        (
            f"{prefix}/shares",
            make_image(f"{seed}/crash-c", layers=1, layer_size=layer_size, shared_layers=shared),
        ),
    ]


def kill_points(seed: int) -> list[KillPoint]:
    """22 points for :func:`crash_workload`, the occurrences drawn from ``seed``."""
    rng = random.Random(f"kill-points/{seed}")
    points = [
        KillPoint("blob upload: POST", "POST", UPLOAD, rng.randint(1, 6), "before"),
        KillPoint("blob upload: POST answered", "POST", UPLOAD, rng.randint(1, 6), "after"),
        KillPoint(
            "destination check: manifest HEAD", "HEAD", r"/v2/.+/manifests/.+", rng.randint(1, 3), "before"
        ),
        KillPoint("blob upload: mount", "POST", UPLOAD, 1, "before", query="mount="),
        KillPoint("blob upload: PATCH", "PATCH", UPLOAD, rng.randint(1, 6), "before", chunked=True),
        KillPoint("blob upload: PATCH answered", "PATCH", UPLOAD, rng.randint(1, 6), "after", chunked=True),
        KillPoint(
            "blob upload: chunked final PUT", "PUT", UPLOAD, rng.randint(1, 6), "after", "digest=", True
        ),
    ]
    for index in range(6):
        when: Literal["before", "after"] = "before" if index % 2 == 0 else "after"
        points.append(
            KillPoint(f"blob upload: final PUT ({when})", "PUT", UPLOAD, rng.randint(1, 7), when, FINAL)
        )
    for nth in (1, 2):
        for when in ("before", "after"):
            points.append(KillPoint(f"child manifest {nth} ({when})", "PUT", DIGEST_MANIFEST, nth, when))
    for nth, when in ((1, "before"), (2, "after"), (3, "before")):
        points.append(KillPoint(f"tag PUT {nth} ({when})", "PUT", TAG_MANIFEST, nth, when))
    points.append(KillPoint("index tag PUT (before)", "PUT", r"/v2/.+/multi/manifests/v1", 1, "before"))
    points.append(KillPoint("index tag PUT (after)", "PUT", r"/v2/.+/multi/manifests/v1", 1, "after"))
    return points


def write_spec(path: Path, source: RegistryServer, images: Workload) -> Path:
    """A skopeo sync YAML naming every workload repository at tag v1 on ``source``."""
    entry: dict[str, object] = {"images": {repo: ["v1"] for repo, _ in images}, "tls-verify": False}
    if source.username is not None:
        entry["credentials"] = {"username": source.username, "password": source.password}
    path.write_text(yaml.safe_dump({source.host: entry}))
    return path


def sync_args(spec: Path, destination: str, *, chunked: bool, report: Path | None = None) -> list[str]:
    args = ["sync", "--src", "yaml", "--dest", "docker", "--all", "--dest-tls-verify=false"]
    args += ["--retry-times", "2", "--retry-delay", "50ms", "-j", "4"]
    if chunked:
        args += ["--chunk-size", str(CHUNK)]
    if report is not None:
        args += ["--report", str(report)]
    return [*args, str(spec), destination]


def uploaded(records: list[RecordedRequest]) -> list[str]:
    """``repo@digest`` of every final upload PUT the registry accepted (201)."""
    found = []
    for record in records:
        match = re.search(r"digest=sha256(?:%3A|:)([0-9a-f]{64})", record.query)
        if record.method == "PUT" and record.status == 201 and match and "/blobs/uploads/" in record.path:
            repo = record.path.split("/blobs/uploads/")[0].removeprefix("/v2/")
            found.append(f"{repo}@sha256:{match.group(1)}")
    return found


async def run_kill_point(
    point: KillPoint, source: RegistryServer, destination: RegistryServer, seed: int, work: Path, prefix: str
) -> KillRun:
    """Run ``point`` (see the module docstring) with its own destination ``prefix``."""
    images = crash_workload(seed, f"{prefix}-src")
    await push_workload(source, images)
    spec = write_spec(work / "spec.yaml", source, images)
    dest_repos = [f"{prefix}/{repo.rsplit('/', 1)[1]}" for repo, _ in images]
    expected = {f"{dest}:v1": image.digest for dest, (_, image) in zip(dest_repos, images, strict=True)}
    run = KillRun(point)
    holder: list[cli_process.CliProcess] = []

    def kill(record: RecordedRequest) -> None:
        os.kill(holder[0].pid, signal.SIGKILL)

    # One proxy (one destination name) for both runs: the re-run must see the same registry the
    # killed run wrote to, as a user re-running the same command does.
    with FaultProxy(destination.host, seed=seed) as proxy:
        proxy.add_rule(
            Fault.on_request(kill, point.when),
            method=point.method,
            path=point.path,
            query=point.query,
            nth=point.nth,
        )
        args = sync_args(spec, f"{proxy.address}/{prefix}", chunked=point.chunked)
        holder.append(cli_process.start(args, directory=work / "killed"))
        code = await anyio.to_thread.run_sync(holder[0].wait, 60)
        run.killed = code == -signal.SIGKILL
        run.output = holder[0].output
        proxy.clear_rules()
        first = await crawl(destination, dest_repos)
        run.corrupt_after_kill = first.problems
        pairs = zip(dest_repos, images, strict=True)
        present = await present_blobs(
            destination, [(d, digest) for d, (_, i) in pairs for digest in i.blobs()]
        )
        proxy.reset()
        again = cli_process.start(args, directory=work / "rerun")
        run.rerun_exit = await anyio.to_thread.run_sync(again.wait, 60)
        run.output += again.output
        uploads = uploaded(proxy.records())
    run.rerun_uploads = len(uploads)
    run.reuploaded = sorted(set(uploads) & present)
    final = await crawl(destination, dest_repos)
    run.converged = (
        run.rerun_exit == 0 and final.complete(expected) == sorted(expected) and not final.corrupt_tags()
    )
    return run


async def run_kill_points(
    points: list[KillPoint],
    source: RegistryServer,
    destination: RegistryServer,
    seed: int,
    work: Path,
    *,
    concurrency: int = 3,
) -> list[KillRun]:
    """Run every point (``concurrency`` at a time, each with its own prefix and proxy), in order."""
    results: list[KillRun | None] = [None] * len(points)
    limiter = anyio.CapacityLimiter(concurrency)

    async def one(index: int, point: KillPoint) -> None:
        async with limiter:
            directory = work / f"point-{index:02d}"
            directory.mkdir(parents=True, exist_ok=True)
            prefix = f"crash{seed % 1_000_000}-{index:02d}"
            results[index] = await run_kill_point(point, source, destination, seed + index, directory, prefix)

    async with anyio.create_task_group() as group:
        for index, point in enumerate(points):
            group.start_soon(one, index, point)
    return [result for result in results if result is not None]


def failures(run: KillRun) -> list[str]:
    """Every broken invariant of one kill run, as text (empty when the run is good)."""
    found = []
    if not run.killed:
        found.append("the kill point was never reached")
    if run.corrupt_after_kill:
        found.append(f"tags reference missing content after the kill: {run.corrupt_after_kill}")
    if run.rerun_exit != 0:
        found.append(f"the re-run exited {run.rerun_exit}")
    if not run.converged:
        found.append("the re-run did not reach the full, digest-equal state")
    if run.reuploaded:
        found.append(f"blobs uploaded again although they had arrived: {run.reuploaded}")
    return found
