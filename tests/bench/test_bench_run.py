"""bench.run and bench.tools end to end on the small workload.

``asyncsync sync`` may not exist yet, so the asyncsync side is played by a stand-in script that offers the
skopeo-compatible options in its help and hands the sync to skopeo: this exercises the runner's flag
detection, both tool paths, measurement, request counting, verification and the report.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench.registries import Registry
from bench.run import BenchContext, main, run_one
from bench.tools import Tool, ToolUnavailable, asyncsync_tool, skopeo_tool
from bench.workload import Workload

STAND_IN = '''
import os, sys
HELP = """Usage: asyncsync sync [OPTIONS] SOURCE DESTINATION
  --src TEXT   --dest TEXT   --all   --preserve-digests
  {tls}
"""
args = sys.argv[1:]
if args == ["--version"]:
    print("asyncsync stand-in 0"); sys.exit(0)
if args[:1] == ["sync"] and "--help" in args:
    tls = os.environ.get("STAND_IN_TLS", "--src-tls-verify BOOL --dest-tls-verify BOOL")
    print(HELP.format(tls=tls)); sys.exit(0)
if args[:1] == ["sync"]:
    rest = [a for a in args[1:] if not a.startswith("--src-tls-verify")]
    os.execvp("skopeo", ["skopeo", "sync", *rest])
print("Error: No such command", args[:1], file=sys.stderr); sys.exit(2)
'''


@pytest.fixture
def stand_in(tmp_path: Path) -> str:
    script = tmp_path / "asyncsync_stand_in.py"
    script.write_text(STAND_IN)
    return f"{sys.executable} {script}"


def test_flags_follow_what_asyncsync_sync_help_offers(stand_in: str, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = asyncsync_tool(stand_in)
    assert tool.flags == (
        "--all", "--preserve-digests", "--src", "yaml", "--dest", "docker",
        "--src-tls-verify=false", "--dest-tls-verify=false",
    )  # fmt: skip
    monkeypatch.setenv("STAND_IN_TLS", "--dest-tls-verify / --no-dest-tls-verify")
    assert asyncsync_tool(stand_in).flags[-1:] == ("--no-dest-tls-verify",)
    assert tool.version == "asyncsync stand-in 0"
    assert skopeo_tool().command(Path("s.yaml"), "h/m")[-2:] == ["s.yaml", "h/m"]


def test_a_missing_sync_command_is_a_one_line_reason() -> None:
    with pytest.raises(ToolUnavailable, match=r"not available yet \(exit 2\): .*No such command"):
        script = "import sys; print('Error: No such command sync', file=sys.stderr); sys.exit(2)"
        asyncsync_tool(f'{sys.executable} -c "{script}"')


def test_runner_measures_counts_verifies_and_reports_both_tools(stand_in: str, tmp_path: Path) -> None:
    argv = ["--tool", "both", "--asyncsync-cmd", stand_in, "--scale", "small", "--rounds", "1"]
    argv += ["--mode", "full", "--rtt-ms", "0", "--cache-dir", str(tmp_path / "cache")]
    argv += ["--work-dir", str(tmp_path / "work"), "--results-dir", str(tmp_path / "results")]
    assert main(argv) == 0
    (result_file,) = (tmp_path / "results").glob("*.json")
    document = json.loads(result_file.read_text())
    runs = document["runs"]
    assert [r["tool"] for r in runs] == ["asyncsync", "skopeo"]
    for run in runs:
        assert run["ok"] and run["verify"]["ok"] and run["verify"]["tags_checked"] == 10
        assert run["src_requests"]["GET"] > 0 and run["dest_requests"]["PUT"] > 0
        assert run["measurement"]["peak_rss"] > 10 * 2**20
        assert run["registry_cpu_s"] > 0  # the registries worked during the run
    assert "| full | 0 ms | skopeo | 1/1 |" in document["markdown"]


def test_noop_mode_through_proxies_measures_only_the_second_run(
    seeded_source: Registry, small_workload: Workload, tmp_path: Path
) -> None:
    ctx = BenchContext(small_workload, seeded_source, tmp_path)
    result = run_one(ctx, skopeo_tool(), "noop", 2.0, 0)
    assert result.ok, result.error
    assert result.warmup is not None and result.measurement is not None
    assert result.dest_requests.get("PATCH", 0) == 0  # nothing uploaded in the measured run
    assert result.src_proxy is not None and result.src_proxy.connections > 0
    assert result.dest_proxy is not None and result.dest_proxy.connections > 0


def test_a_failing_tool_is_reported_with_an_incomplete_destination(
    seeded_source: Registry, small_workload: Workload, tmp_path: Path
) -> None:
    ctx = BenchContext(small_workload, seeded_source, tmp_path)
    result = run_one(ctx, Tool("broken", ("false",), ()), "full", 0.0, 0)
    assert not result.ok
    assert result.error is not None and "exited 1" in result.error
    assert result.verify is not None and len(result.verify.problems) == 10
