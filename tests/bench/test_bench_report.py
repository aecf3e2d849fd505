"""bench.report: medians, ratios and the PASS/FAIL/n-a verdict of each target."""

from __future__ import annotations

from bench.measure import Measurement
from bench.report import check_targets, render_report, summarize
from bench.run import RunResult
from bench.verify import VerifyReport
from bench.workload import SCALES

MIB = 2**20


def _run(
    tool: str, mode: str, rtt: float, wall: float, requests: int, rss_mib: int = 50, ok: bool = True
) -> RunResult:
    m = Measurement((tool,), 0, wall, rss_mib * MIB, rss_mib * MIB, 0, 1.0, 0.5)
    verify = VerifyReport(tags_checked=200)
    if not ok:
        verify.problems["mirror/app-00:v1.0.0"] = ["blob missing"]
    return RunResult(
        tool,
        mode,
        rtt,
        0,
        m,
        src_requests={"GET": requests // 2},
        dest_requests={"HEAD": requests - requests // 2},
        verify=verify,
    )


def test_targets_pass_fail_and_not_measured() -> None:
    runs = [
        _run("asyncsync", "full", 0.0, 2.0, 2000),
        _run("asyncsync", "full", 0.0, 4.0, 2000),
        _run("asyncsync", "full", 0.0, 3.0, 2000),  # median 3.0
        _run("skopeo", "full", 0.0, 15.0, 5000),  # 5x, requests 0.4x
        _run("asyncsync", "full", 20.0, 10.0, 4000, rss_mib=200),
        _run("skopeo", "full", 20.0, 100.0, 5000),  # 10x, requests 0.8x
        _run("asyncsync", "noop", 20.0, 0.5, 300),
        _run("skopeo", "noop", 20.0, 10.0, 1000),  # 20x, 1.5 requests per tag
    ]
    summaries = summarize(runs, tags=200)
    first = summaries[0]
    assert (first.runs, first.ok_runs, first.wall_s, first.requests_per_tag) == (3, 3, 3.0, 10.0)
    verdicts = {
        t.name: (t.passed, t.detail) for t in check_targets(summaries, all_verified=True, repos_per_tag=0.2)
    }
    assert verdicts["full migration, loopback: >= 3.5x faster"] == (True, "5.0x")
    assert verdicts["full migration, 20 ms RTT: >= 25x faster"] == (False, "10.0x")
    assert verdicts["no-op re-sync, 20 ms RTT: >= 40x faster"] == (False, "20.0x")
    assert verdicts["no-op re-sync, 20 ms RTT: <= 2 requests per tag + 1 tag list per repository"] == (
        True,
        "1.50 per tag (budget 2.20)",
    )
    assert verdicts["full migration requests (RTT 0 ms) <= 0.6x skopeo's"][0] is True
    assert verdicts["full migration requests (RTT 20 ms) <= 0.6x skopeo's"][0] is False
    assert verdicts["asyncsync peak RSS <= 150 MiB"] == (False, "200 MiB")
    report = render_report(summaries, SCALES["full"], [], full_scale=True)
    assert "| full migration, loopback: >= 3.5x faster | PASS | 5.0x |" in report.markdown
    assert (
        "| full | 0 ms | asyncsync | 3/3 | 3.00 s | 1.5 s | 0.0 s | 50 MiB | 2000 | 10.0 |" in report.markdown
    )


def test_a_corrupt_destination_makes_its_scenario_unjudged_and_fails_correctness() -> None:
    runs = [_run("asyncsync", "full", 0.0, 1.0, 100, ok=False), _run("skopeo", "full", 0.0, 9.0, 900)]
    summaries = summarize(runs, tags=200)
    assert summaries[0].ok_runs == 0 and summaries[0].wall_s is None
    verdicts = {t.name: t.passed for t in check_targets(summaries, all_verified=False, repos_per_tag=0.2)}
    assert verdicts["full migration, loopback: >= 3.5x faster"] is None
    assert verdicts["every destination whole and digest-equal"] is False
    assert verdicts["no-op re-sync, 20 ms RTT: >= 40x faster"] is None


def test_the_noop_request_budget_allows_one_tag_list_per_repository() -> None:
    name = "no-op re-sync, 20 ms RTT: <= 2 requests per tag + 1 tag list per repository"
    for requests, passed in ((440, True), (442, False)):
        summaries = summarize([_run("asyncsync", "noop", 20.0, 1.0, requests)], tags=200)
        verdicts = {t.name: t.passed for t in check_targets(summaries, all_verified=True, repos_per_tag=0.2)}
        assert verdicts[name] is passed
