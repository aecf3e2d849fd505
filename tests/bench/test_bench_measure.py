"""bench.measure: peak RSS (process tree included), CPU time, exit status and the timeout."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.measure import run_measured

MIB = 2**20

# Holds ~60 MiB of touched memory for 0.4 s.
HOLD = "import time; b = bytearray(60 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(0.4)"


def test_peak_rss_and_wall_time_of_a_single_process(tmp_path: Path) -> None:
    m = run_measured([sys.executable, "-c", HOLD], log_path=tmp_path / "log")
    assert m.returncode == 0 and not m.timed_out
    assert m.peak_rss >= 60 * MIB and m.max_single_rss >= 60 * MIB
    assert m.wall_s >= 0.4


def test_concurrent_children_are_summed(tmp_path: Path) -> None:
    parent = (
        "import subprocess, sys\n"
        f"child = subprocess.Popen([sys.executable, '-c', {HOLD!r}])\n"
        f"exec({HOLD!r})\n"
        "child.wait()\n"
    )
    m = run_measured([sys.executable, "-c", parent], log_path=tmp_path / "log")
    assert m.returncode == 0
    assert m.tree_peak_rss >= 120 * MIB  # both processes held 60 MiB at the same time
    assert m.max_single_rss < m.tree_peak_rss == m.peak_rss


def test_cpu_time_exit_status_and_output_capture(tmp_path: Path) -> None:
    script = (
        "import time, sys\n"
        "end = time.process_time() + 0.3\n"
        "while time.process_time() < end: pass\n"
        "print('hi'); sys.exit(3)"
    )
    m = run_measured([sys.executable, "-c", script], log_path=tmp_path / "log")
    assert m.returncode == 3
    assert m.cpu_s >= 0.3
    assert (tmp_path / "log").read_text() == "hi\n"


def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    m = run_measured(["sleep", "30"], log_path=tmp_path / "log", timeout_s=0.2)
    assert m.timed_out and m.returncode == -9
    assert m.wall_s < 5
