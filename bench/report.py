"""Summaries, target checks, the markdown table and the JSON results of a bench run.

Per scenario (mode, RTT) and tool, :func:`summarize` takes the MEDIAN over successful runs of wall time,
CPU time and total requests, and the MAXIMUM peak RSS (a budget must hold in every run). Requests are
counted at both registries (source + destination access logs) and also given per tag and by method (the
method split is the one of the median-wall run). The speed-up ratio of a scenario is skopeo's median wall
time divided by asyncsync's.

Targets (issue 17, which raised issue 4's at 20 ms and set the loopback one to what 2 cores allow),
each judged only when the runs it needs succeeded, else reported as ``n/a``:

* full migration, RTT 0: ratio >= 3.5; full migration, RTT 20 ms: ratio >= 25;
* no-op re-sync, RTT 20 ms: ratio >= 40 and asyncsync makes <= 2 requests per tag plus one tag list
  per repository (the budget the attachments work keeps: a tag list shows attachment tags);
* full migration requests (every measured RTT): asyncsync <= 0.6 x skopeo;
* asyncsync peak RSS <= 150 MiB (maximum over all its runs);
* every measured run of both tools left a whole, digest-equal destination.

On a workload other than the full preset the targets are still computed but labelled indicative.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.workload import WorkloadParams

if TYPE_CHECKING:
    from bench.run import RunResult
    from bench.tools import Tool

__all__ = ["Report", "ToolSummary", "render_report", "summarize", "write_results"]

MIB = 2**20
RSS_BUDGET = 150 * MIB
METHODS = ("GET", "HEAD", "POST", "PATCH", "PUT", "DELETE")


@dataclass
class ToolSummary:
    """One tool in one scenario (medians over successful runs; see the module docstring)."""

    tool: str
    mode: str
    rtt_ms: float
    runs: int
    ok_runs: int
    wall_s: float | None = None
    walls: list[float] = field(default_factory=list)
    cpu_s: float | None = None
    registry_cpu_s: float | None = None
    peak_rss: int | None = None
    requests: int | None = None
    requests_per_tag: float | None = None
    by_method: dict[str, int] = field(default_factory=dict)
    src_requests: int | None = None
    dest_requests: int | None = None
    connections: int | None = None


@dataclass
class Target:
    """One target: ``passed`` is None when it could not be judged."""

    name: str
    passed: bool | None
    detail: str


@dataclass
class Report:
    """The rendered summary: markdown text and the target verdicts."""

    markdown: str
    targets: list[Target]


def summarize(results: list[RunResult], tags: int) -> list[ToolSummary]:
    """One :class:`ToolSummary` per (mode, rtt, tool), in first-run order."""
    groups: dict[tuple[str, float, str], list[RunResult]] = {}
    for result in results:
        groups.setdefault((result.mode, result.rtt_ms, result.tool), []).append(result)
    summaries: list[ToolSummary] = []
    for (mode, rtt, tool), runs in groups.items():
        ok = [r for r in runs if r.ok and r.measurement is not None]
        summary = ToolSummary(tool, mode, rtt, len(runs), len(ok))
        if ok:
            walls = [r.measurement.wall_s for r in ok if r.measurement]
            summary.walls = walls
            median = summary.wall_s = statistics.median(walls)
            summary.cpu_s = statistics.median(r.measurement.cpu_s for r in ok if r.measurement)
            summary.registry_cpu_s = statistics.median(r.registry_cpu_s for r in ok)
            summary.peak_rss = max(r.measurement.peak_rss for r in ok if r.measurement)
            summary.requests = round(statistics.median(r.requests_total for r in ok))
            summary.requests_per_tag = summary.requests / tags if tags else None
            typical = min(ok, key=lambda r: abs(r.measurement.wall_s - median) if r.measurement else 0.0)
            summary.by_method = dict(Counter(typical.src_requests) + Counter(typical.dest_requests))
            summary.src_requests = sum(typical.src_requests.values())
            summary.dest_requests = sum(typical.dest_requests.values())
            if typical.src_proxy and typical.dest_proxy:
                summary.connections = typical.src_proxy.connections + typical.dest_proxy.connections
        summaries.append(summary)
    return summaries


def _find(summaries: list[ToolSummary], mode: str, rtt: float, tool: str) -> ToolSummary | None:
    for s in summaries:
        if (s.mode, s.rtt_ms, s.tool) == (mode, rtt, tool) and s.wall_s is not None and s.ok_runs == s.runs:
            return s
    return None


def _ratio(summaries: list[ToolSummary], mode: str, rtt: float) -> float | None:
    ours, theirs = _find(summaries, mode, rtt, "asyncsync"), _find(summaries, mode, rtt, "skopeo")
    if ours is None or theirs is None or not ours.wall_s or theirs.wall_s is None:
        return None
    return theirs.wall_s / ours.wall_s


def check_targets(summaries: list[ToolSummary], all_verified: bool, *, repos_per_tag: float) -> list[Target]:
    """The issue's targets (see the module docstring); ``repos_per_tag`` sizes the no-op's tag lists."""
    targets: list[Target] = []
    for mode, rtt, goal, label in (
        ("full", 0.0, 3.5, "full migration, loopback: >= 3.5x faster"),
        ("full", 20.0, 25.0, "full migration, 20 ms RTT: >= 25x faster"),
        ("noop", 20.0, 40.0, "no-op re-sync, 20 ms RTT: >= 40x faster"),
    ):
        ratio = _ratio(summaries, mode, rtt)
        detail = "not measured (needs successful runs of both tools)" if ratio is None else f"{ratio:.1f}x"
        targets.append(Target(label, None if ratio is None else ratio >= goal, detail))
    noop = _find(summaries, "noop", 20.0, "asyncsync")
    per_tag = noop.requests_per_tag if noop else None
    budget = 2.0 + repos_per_tag
    targets.append(
        Target(
            "no-op re-sync, 20 ms RTT: <= 2 requests per tag + 1 tag list per repository",
            None if per_tag is None else per_tag <= budget + 1e-9,
            "not measured" if per_tag is None else f"{per_tag:.2f} per tag (budget {budget:.2f})",
        )
    )
    for rtt in sorted({s.rtt_ms for s in summaries if s.mode == "full"}) or [0.0]:
        ours, theirs = _find(summaries, "full", rtt, "asyncsync"), _find(summaries, "full", rtt, "skopeo")
        if ours is None or theirs is None or ours.requests is None or not theirs.requests:
            passed, detail = None, "not measured"
        else:
            share = ours.requests / theirs.requests
            passed, detail = share <= 0.6, f"{ours.requests} vs {theirs.requests} = {share:.2f}x"
        targets.append(Target(f"full migration requests (RTT {rtt:g} ms) <= 0.6x skopeo's", passed, detail))
    rss = [s.peak_rss for s in summaries if s.tool == "asyncsync" and s.peak_rss is not None]
    targets.append(
        Target(
            "asyncsync peak RSS <= 150 MiB",
            None if not rss else max(rss) <= RSS_BUDGET,
            "not measured" if not rss else f"{max(rss) / MIB:.0f} MiB",
        )
    )
    targets.append(
        Target(
            "every destination whole and digest-equal",
            all_verified,
            "all runs verified" if all_verified else "see runs",
        )
    )
    return targets


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{suffix}"


def render_report(
    summaries: list[ToolSummary],
    params: WorkloadParams,
    tools: list[Tool],
    *,
    full_scale: bool,
    all_verified: bool = True,
) -> Report:
    """The markdown block (summary table, ratios, targets) that the README quotes."""
    lines = [
        f"Workload: {params.tag_count} tags in {params.repos} repos (seed {params.seed}); "
        f"{os.cpu_count()} CPUs; {', '.join(t.version or t.name for t in tools)}",
        "",
        "| mode | RTT | tool | runs ok | median wall | CPU | registries' CPU | peak RSS "
        "| requests (src+dest) | per tag | by method | TCP conns |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        methods = ", ".join(f"{m} {s.by_method[m]}" for m in METHODS if s.by_method.get(m))
        rss = None if s.peak_rss is None else s.peak_rss / MIB
        lines.append(
            f"| {s.mode} | {s.rtt_ms:g} ms | {s.tool} | {s.ok_runs}/{s.runs} | {_fmt(s.wall_s, '.2f', ' s')} "
            f"| {_fmt(s.cpu_s, '.1f', ' s')} | {_fmt(s.registry_cpu_s, '.1f', ' s')} "
            f"| {_fmt(rss, '.0f', ' MiB')} | {_fmt(s.requests, 'd')} "
            f"| {_fmt(s.requests_per_tag, '.1f')} | {methods or '—'} | {_fmt(s.connections, 'd')} |"
        )
    scenarios = sorted({(s.mode, s.rtt_ms) for s in summaries})
    ratios = [(m, r, _ratio(summaries, m, r)) for m, r in scenarios]
    if any(ratio is not None for _m, _r, ratio in ratios):
        lines += ["", "| mode | RTT | skopeo / asyncsync wall time |", "|---|---|---|"]
        lines += [f"| {m} | {r:g} ms | {_fmt(ratio, '.1f', 'x')} |" for m, r, ratio in ratios]
    targets = check_targets(summaries, all_verified, repos_per_tag=params.repos / params.tag_count)
    note = "" if full_scale else " (small workload: indicative only, the targets are for the 200-tag run)"
    lines += ["", f"Targets{note}:", "", "| target | result | measured |", "|---|---|---|"]
    for target in targets:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[target.passed]
        lines.append(f"| {target.name} | {verdict} | {target.detail} |")
    return Report("\n".join(lines), targets)


def write_results(
    results_dir: Path,
    started: float,
    params: WorkloadParams,
    tools: list[Tool],
    results: list[RunResult],
    summaries: list[ToolSummary],
    report: Report,
    *,
    storage: str = "unknown",
) -> Path:
    """Write the whole run as JSON to ``results_dir/<timestamp>.json``; returns the path.

    ``storage`` is the filesystem type the registries stored blobs on (``tmpfs``, ``ext4``...)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started))
    document: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "registry_storage": storage,
        },
        "workload": {**asdict(params), "key": params.key()},
        "tools": [{"name": t.name, "argv": [*t.base, "sync", *t.flags], "version": t.version} for t in tools],
        "runs": [r.to_json() for r in results],
        "summary": [asdict(s) for s in summaries],
        "targets": [asdict(t) for t in report.targets],
        "markdown": report.markdown,
    }
    path = results_dir / f"{stamp}.json"
    path.write_text(json.dumps(document, indent=1))
    return path
