"""The benchmark runner: asyncsync sync vs skopeo sync on one workload, same run, alternating.

``python -m bench.run [--scale full|small] [--tool both|asyncsync|skopeo] [--rounds 3] [--mode full,noop]
[--rtt-ms 0,20]`` (``python bench/run.py`` works too; ``--help`` lists everything).

What one invocation does:

1. Generate (or load from ``bench/.cache``) the workload and seed a source registry with it. The source's
   storage is cached next to the workload, so a re-run only HEADs its tags (``--fresh-source`` seeds a new
   one).
2. For every scenario (each ``--mode`` x each ``--rtt-ms``) and every round, run each tool once, the
   starting tool alternating between rounds, each time against a FRESH destination registry:

   * ``full``: sync into the empty destination and measure that run;
   * ``noop``: sync once (warm-up, not measured), then sync again and measure the second run only.

   With ``--rtt-ms`` > 0 both registries sit behind :mod:`bench.proxy` latency proxies (restarted at the
   same ports between the warm-up and the measured run, so their connection counts are per run); 0 means
   direct loopback.
3. Per measured run: wall time, peak RSS and CPU of the tool's process tree (:mod:`bench.measure`), HTTP
   requests by method from the source's and destination's access logs (truncated just before the run and
   read just after, before verification), the CPU time both registries spent during the run (on a small
   machine they compete with the tool for cores), proxy connection counts, and a verification of the
   destination (:mod:`bench.verify`: every tag present, digest-equal, every blob present with the right
   size).
4. Print progress lines, then the summary and targets as a markdown table (:mod:`bench.report`), and write
   everything as JSON to ``bench/results/<timestamp>.json``.

Exit status: 0 when every run succeeded and verified; 1 when any run failed or left a corrupt or incomplete
destination; 2 for bad options or a missing tool. Targets that FAIL do not change the exit status (they
are measurements, not errors).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # ``python bench/run.py``: make ``bench`` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import Measurement, run_measured
from bench.minimum import minimum_report, minimum_requests
from bench.proxy import ProxyProcess, ProxyStats, start_proxy_process
from bench.push import push_workload
from bench.registries import Registry, start_registry
from bench.report import render_report, summarize, write_results
from bench.tools import Tool, ToolUnavailable, asyncsync_tool, skopeo_tool
from bench.verify import VerifyReport, last_component_under, verify_destination
from bench.workload import CACHE_DIR, Workload, generate, params_from, write_skopeo_yaml

__all__ = ["BenchContext", "RunResult", "main", "run_one", "seed_source"]

DEST_PREFIX = "mirror"
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def log(message: str) -> None:
    """A progress line on stderr (stdout carries the report)."""
    print(message, file=sys.stderr, flush=True)


@dataclass
class RunResult:
    """One measured run of one tool in one scenario."""

    tool: str
    mode: str
    rtt_ms: float
    round: int
    measurement: Measurement | None = None
    warmup: Measurement | None = None
    src_requests: dict[str, int] = field(default_factory=dict)
    dest_requests: dict[str, int] = field(default_factory=dict)
    registry_cpu_s: float = 0.0
    src_proxy: ProxyStats | None = None
    dest_proxy: ProxyStats | None = None
    verify: VerifyReport | None = None
    error: str | None = None
    log_path: str = ""

    @property
    def ok(self) -> bool:
        """The tool exited 0 and the destination verified."""
        return (
            self.error is None
            and self.measurement is not None
            and self.measurement.returncode == 0
            and self.verify is not None
            and self.verify.ok
        )

    @property
    def requests_total(self) -> int:
        """Requests to both registries during the measured run."""
        return sum(self.src_requests.values()) + sum(self.dest_requests.values())

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "tool": self.tool,
            "mode": self.mode,
            "rtt_ms": self.rtt_ms,
            "round": self.round,
            "ok": self.ok,
            "error": self.error,
            "measurement": self.measurement.to_json() if self.measurement else None,
            "warmup": self.warmup.to_json() if self.warmup else None,
            "src_requests": self.src_requests,
            "dest_requests": self.dest_requests,
            "requests_total": self.requests_total,
            "registry_cpu_s": self.registry_cpu_s,
            "src_proxy": self.src_proxy.__dict__ if self.src_proxy else None,
            "dest_proxy": self.dest_proxy.__dict__ if self.dest_proxy else None,
            "verify": self.verify.to_json() if self.verify else None,
            "log": self.log_path,
        }


@dataclass
class BenchContext:
    """What every run shares: the workload, the seeded source registry and where to work."""

    workload: Workload
    source: Registry
    work_dir: Path
    timeout_s: float = 1800.0
    keep: bool = False
    extra_args: dict[str, tuple[str, ...]] = field(default_factory=dict)


def seed_source(workload: Workload, work_dir: Path, *, fresh: bool = False) -> Registry:
    """Start the source registry (cached storage unless ``fresh``) and make it hold the workload."""
    data_dir = None if fresh else workload.root / "source-registry"
    registry = start_registry(work_dir / "source", name="source", data_dir=data_dir)
    try:
        started = time.monotonic()
        stats = asyncio.run(push_workload(workload, registry.url))
        log(
            f"source {registry.host}: {stats.tags_pushed} tags pushed, {stats.tags_skipped} already there "
            f"({stats.bytes_uploaded / 2**20:.1f} MiB uploaded, {time.monotonic() - started:.1f} s)"
        )
        registry.truncate_log()
    except BaseException:
        registry.stop()
        raise
    return registry


@contextlib.contextmanager
def _proxies(
    ctx: BenchContext, dest: Registry, rtt_ms: float, run_dir: Path, ports: tuple[int, int] = (0, 0)
) -> Iterator[tuple[ProxyProcess, ProxyProcess] | None]:
    if rtt_ms <= 0:
        yield None
        return
    src_proxy = start_proxy_process(ctx.source.host, rtt_ms, run_dir / "src-proxy.json", ports[0])
    try:
        dest_proxy = start_proxy_process(dest.host, rtt_ms, run_dir / "dest-proxy.json", ports[1])
    except BaseException:
        src_proxy.stop()
        raise
    try:
        yield src_proxy, dest_proxy
    finally:
        src_proxy.stop()
        dest_proxy.stop()


def run_one(ctx: BenchContext, tool: Tool, mode: str, rtt_ms: float, round_no: int) -> RunResult:
    """One measured run of ``tool`` against a fresh destination (see the module docstring)."""
    result = RunResult(tool.name, mode, rtt_ms, round_no)
    run_dir = ctx.work_dir / f"{mode}-rtt{rtt_ms:g}-r{round_no}-{tool.name}"
    run_dir.mkdir(parents=True, exist_ok=True)
    result.log_path = str(run_dir / "tool.log")
    dest = start_registry(run_dir / "dest", name="dest")
    try:
        ports = (0, 0)
        src_host, dest_host = ctx.source.host, dest.host
        extra = ctx.extra_args.get(tool.name, ())
        if mode == "noop":
            with _proxies(ctx, dest, rtt_ms, run_dir) as proxies:
                if proxies is not None:
                    ports = (proxies[0].port, proxies[1].port)
                    src_host, dest_host = proxies[0].host, proxies[1].host
                spec = write_skopeo_yaml(ctx.workload, src_host, run_dir / "sync.yaml")
                command = tool.command(spec, f"{dest_host}/{DEST_PREFIX}", extra)
                result.warmup = run_measured(
                    command,
                    log_path=run_dir / "warmup.log",
                    env=tool.environment(run_dir),
                    timeout_s=ctx.timeout_s,
                )
            if result.warmup.returncode != 0:
                result.error = (
                    f"warm-up sync exited {result.warmup.returncode} (see {run_dir / 'warmup.log'})"
                )
                return result
        with _proxies(ctx, dest, rtt_ms, run_dir, ports) as proxies:
            if proxies is not None:
                src_host, dest_host = proxies[0].host, proxies[1].host
            spec = write_skopeo_yaml(ctx.workload, src_host, run_dir / "sync.yaml")
            command = tool.command(spec, f"{dest_host}/{DEST_PREFIX}", extra)
            ctx.source.truncate_log()
            dest.truncate_log()
            cpu_before = ctx.source.cpu_seconds() + dest.cpu_seconds()
            result.measurement = run_measured(
                command, log_path=run_dir / "tool.log", env=tool.environment(run_dir), timeout_s=ctx.timeout_s
            )
            result.registry_cpu_s = ctx.source.cpu_seconds() + dest.cpu_seconds() - cpu_before
            result.src_requests = dict(ctx.source.counts())
            result.dest_requests = dict(dest.counts())
            if proxies is not None:
                result.src_proxy, result.dest_proxy = proxies[0].stop(), proxies[1].stop()
        if result.measurement.returncode != 0:
            result.error = f"exited {result.measurement.returncode} (see {result.log_path})"
        mapping = last_component_under(DEST_PREFIX)
        result.verify = asyncio.run(verify_destination(dest.url, ctx.workload.tags, mapping))
        return result
    finally:
        dest.stop()
        if not ctx.keep:
            shutil.rmtree(run_dir / "dest", ignore_errors=True)
            shutil.rmtree(run_dir / "xdg-cache", ignore_errors=True)


def _describe(result: RunResult) -> str:
    m = result.measurement
    head = f"[{result.mode} rtt={result.rtt_ms:g}ms round {result.round + 1}] {result.tool}:"
    if m is None:
        return f"{head} {result.error}"
    verify = result.verify.summary() if result.verify else "not verified"
    status = "" if result.error is None else f" ERROR {result.error};"
    return (
        f"{head}{status} {m.wall_s:.2f} s, {m.peak_rss / 2**20:.0f} MiB, cpu {m.cpu_s:.1f} s, "
        f"{result.requests_total} requests; verify: {verify}"
    )


def _interrupt(_signum: int, _frame: object) -> None:
    """SIGTERM behaves like Ctrl-C, so registries, proxies and the measured tool are stopped."""
    raise KeyboardInterrupt


def _csv(value: str, kind: type[float] | type[str]) -> list[Any]:
    return [kind(part) for part in value.split(",") if part.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=["full", "small"], default="full", help="workload preset")
    parser.add_argument("--seed", type=int, help="workload seed (default 1)")
    parser.add_argument("--repos", type=int, help="override the preset's number of repos")
    parser.add_argument("--tags-per-repo", type=int, help="override the preset's tags per repo")
    parser.add_argument("--tool", choices=["both", "asyncsync", "skopeo"], default="both")
    parser.add_argument("--rounds", type=int, default=3, help="measured runs per tool and scenario")
    parser.add_argument("--mode", default="full,noop", help="comma list of full, noop")
    parser.add_argument("--rtt-ms", default="0,20", help="comma list of added round-trip times (0: direct)")
    parser.add_argument("--asyncsync-cmd", help="how to run asyncsync (default: PATH, else python -m)")
    parser.add_argument("--asyncsync-args", default="", help="extra options for asyncsync sync")
    parser.add_argument("--skopeo-args", default="", help="extra options for skopeo sync")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before a run is killed")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    parser.add_argument(
        "--work-dir", type=Path, help="where runs happen (default: a temp dir in /dev/shm, see --on-disk)"
    )
    parser.add_argument(
        "--on-disk",
        action="store_true",
        help="default work dir on the system temp dir instead of tmpfs (registries then pay for the disk)",
    )
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--keep", action="store_true", help="keep destination registries' data")
    parser.add_argument("--fresh-source", action="store_true", help="seed a new source registry")
    args = parser.parse_args(argv)
    args.modes = _csv(args.mode, str)
    args.rtts = _csv(args.rtt_ms, float)
    if not set(args.modes) <= {"full", "noop"} or not args.modes:
        parser.error("--mode takes a comma list of full, noop")
    if args.rounds < 1 or any(r < 0 for r in args.rtts) or not args.rtts:
        parser.error("--rounds must be >= 1 and --rtt-ms values >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit status (see the module docstring)."""
    args = parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _bench(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _bench(args: argparse.Namespace) -> int:
    params = params_from(args.scale, seed=args.seed, repos=args.repos, tags_per_repo=args.tags_per_repo)
    tools: list[Tool] = []
    try:
        if args.tool in ("both", "asyncsync"):
            tools.append(asyncsync_tool(args.asyncsync_cmd))
        if args.tool in ("both", "skopeo"):
            tools.append(skopeo_tool())
    except ToolUnavailable as exc:
        log(f"error: {exc}")
        return 2
    started = time.time()
    workload = generate(params, args.cache_dir, progress=None)
    log(
        f"workload {params.key()}: {len(workload.tags)} tags in {params.repos} repos, "
        f"{sum(e.platforms for e in workload.tags)} images, "
        f"{workload.total_blob_bytes / 2**20:.1f} MiB of blobs"
    )
    temp_root = _temp_root(args.on_disk)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="asyncsync-bench-", dir=temp_root))
    work_dir.mkdir(parents=True, exist_ok=True)
    storage = _filesystem_type(work_dir)
    log(f"registries' storage: {work_dir} ({storage})")
    source = seed_source(workload, work_dir, fresh=args.fresh_source)
    extra = {
        "asyncsync": tuple(shlex.split(args.asyncsync_args)),
        "skopeo": tuple(shlex.split(args.skopeo_args)),
    }
    ctx = BenchContext(workload, source, work_dir, args.timeout, args.keep, extra)
    results: list[RunResult] = []
    try:
        for mode in args.modes:
            for rtt in args.rtts:
                for round_no in range(args.rounds):
                    order = tools if round_no % 2 == 0 else list(reversed(tools))
                    for tool in order:
                        result = run_one(ctx, tool, mode, rtt, round_no)
                        results.append(result)
                        log(_describe(result))
    except KeyboardInterrupt:
        log("interrupted: reporting the runs finished so far")
    finally:
        source.stop()
    all_ok = bool(results) and all(r.ok for r in results)
    if all_ok and not args.keep and args.work_dir is None:
        shutil.rmtree(work_dir, ignore_errors=True)
    elif not all_ok:
        log(f"some runs failed: their logs are kept in {work_dir}")
    summaries = summarize(results, len(workload.tags))
    verified = bool(results) and all(r.verify is not None and r.verify.ok for r in results)
    report = render_report(summaries, params, tools, full_scale=args.scale == "full", all_verified=verified)
    print(report.markdown)
    minimum = minimum_requests(workload, last_component_under(DEST_PREFIX))
    fresh = [(r.rtt_ms, r.tool, sum(r.dest_requests.values())) for r in results if r.mode == "full" and r.ok]
    print(minimum_report(minimum, fresh))
    path = write_results(
        args.results_dir, started, params, tools, results, summaries, report, storage=storage
    )
    log(f"results written to {path}")
    return 0 if all_ok else 1


def _temp_root(on_disk: bool) -> str | None:
    """``/dev/shm`` unless ``on_disk`` or it is unusable: with registries' storage on tmpfs the bench
    measures the tools, not how a VM's disk journals the registries' many small files (on this
    2-core machine that cost the registries 40-60% more CPU and made runs noisy)."""
    shm = Path("/dev/shm")
    if on_disk or not shm.is_dir() or not os.access(shm, os.W_OK):
        return None
    return str(shm)


def _filesystem_type(path: Path) -> str:
    """The type of the filesystem holding ``path`` (from ``/proc/mounts``), ``unknown`` elsewhere."""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "unknown"
    resolved = str(path.resolve())
    best = ("", "unknown")
    for fields in mounts:
        if len(fields) < 3:
            continue
        mount_point = fields[1]
        inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) > len(best[0]):
            best = (mount_point, fields[2])
    return best[1]


if __name__ == "__main__":
    sys.exit(main())
