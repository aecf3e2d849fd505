"""Run one command and measure its wall time, peak memory and CPU time, children included.

Contract of :func:`run_measured`: the command runs with stdout and stderr appended to ``log_path``; the
caller's thread polls every ``poll_s`` seconds until it exits, meanwhile summing ``VmRSS`` over the
process and all its live descendants (from ``/proc/<pid>/task/*/children``) and keeping the peak of that
sum, and the largest ``VmHWM`` (a process's own peak since its exec) seen for any of them. On exit
``os.wait4`` gives the user + system CPU time of the process and every descendant it reaped. Its
``ru_maxrss`` is not used: Linux counts the pre-exec copy of the parent (this bench process) in it,
which inflated every tool's figure by the parent's size. :attr:`Measurement.peak_rss` is the larger of
the single-process peak and the tree peak. ``timeout_s`` kills the whole
process group and marks the measurement ``timed_out``; an exception while waiting (e.g. Ctrl-C) kills the
process group too, then propagates.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["Measurement", "process_tree", "run_measured"]


@dataclass(frozen=True)
class Measurement:
    """Figures for one finished command (bytes and seconds)."""

    argv: tuple[str, ...]
    returncode: int
    wall_s: float
    peak_rss: int
    max_single_rss: int
    tree_peak_rss: int
    cpu_user_s: float
    cpu_sys_s: float
    timed_out: bool = False

    @property
    def cpu_s(self) -> float:
        """User + system CPU seconds of the process and its reaped descendants."""
        return self.cpu_user_s + self.cpu_sys_s

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (adds ``cpu_s``)."""
        return {**asdict(self), "cpu_s": self.cpu_s}


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children") as handle:
                found.extend(int(part) for part in handle.read().split())
    return found


def process_tree(pid: int) -> list[int]:
    """``pid`` and every live descendant (breadth first)."""
    tree, frontier = [pid], [pid]
    while frontier:
        nxt: list[int] = []
        for parent in frontier:
            nxt.extend(_children(parent))
        tree.extend(nxt)
        frontier = nxt
    return tree


def _status_bytes(pid: int, field: str) -> int:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0


def _rss_bytes(pid: int) -> int:
    return _status_bytes(pid, "VmRSS:")


def _hwm_bytes(pid: int) -> int:
    """The process's own peak RSS since its exec (unlike ``ru_maxrss``, which also counts the
    pre-exec copy of the parent: a big parent would inflate every child's figure)."""
    return _status_bytes(pid, "VmHWM:")


def run_measured(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout_s: float | None = None,
    poll_s: float = 0.02,
) -> Measurement:
    """Run ``argv`` to completion and measure it (see the module docstring)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        start = time.monotonic()
        process = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
        tree_peak, single, timed_out = 0, 0, False
        try:
            while True:
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                if pid == process.pid:
                    break
                tree = process_tree(process.pid)
                tree_peak = max(tree_peak, sum(_rss_bytes(p) for p in tree))
                single = max(single, *(_hwm_bytes(p) for p in tree))
                if timeout_s is not None and time.monotonic() - start > timeout_s and not timed_out:
                    timed_out = True
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                time.sleep(poll_s)
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM): never leave the measured tool running.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
        wall = time.monotonic() - start
        # os.wait4 reaped the child: tell Popen so it does not wait (or warn) again.
        process.returncode = os.waitstatus_to_exitcode(status)
    return Measurement(
        argv=tuple(argv),
        returncode=process.returncode,
        wall_s=wall,
        peak_rss=max(single, tree_peak),
        max_single_rss=single,
        tree_peak_rss=tree_peak,
        cpu_user_s=usage.ru_utime,
        cpu_sys_s=usage.ru_stime,
        timed_out=timed_out,
    )
