"""Running the ``asyncsync`` command line in tests: as a real subprocess or in-process.

* :func:`run_cli` runs ``python -m asyncsync ARGS`` from the repository root (real exit codes,
  real stderr, nothing shared with the test process); about 0.7 s per call.
* :func:`invoke` runs the Typer app in-process with ``typer.testing.CliRunner`` (fast); stdout is
  bytes-exact, stderr is separate. It imports ``asyncsync`` (unlike the rest of ``tests.helpers``).

Both return a :class:`CliResult`. The environment is the test's (so the ``isolated_home`` fixture
keeps the real user's auth files out), plus ``extra_env``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["REPO_ROOT", "CliResult", "invoke", "run_cli"]

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass(frozen=True, slots=True)
class CliResult:
    """Exit code, stdout (bytes, exact) and stderr (text)."""

    returncode: int
    stdout: bytes
    stderr: str

    @property
    def out(self) -> str:
        """stdout decoded as UTF-8."""
        return self.stdout.decode()

    @property
    def all_output(self) -> str:
        """stdout and stderr together, for "never printed" checks."""
        return self.stdout.decode(errors="replace") + self.stderr


def run_cli(
    *args: str, stdin: bytes | None = None, extra_env: Mapping[str, str] | None = None, timeout: float = 60.0
) -> CliResult:
    """``python -m asyncsync ARGS`` in a subprocess; stdin is empty unless given (never a TTY)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra_env or {})
    done = subprocess.run(
        [sys.executable, "-m", "asyncsync", *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=timeout,
        check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr.decode(errors="replace"))


def invoke(*args: str, stdin: str | None = None) -> CliResult:
    """Run the app in-process with Typer's ``CliRunner`` (no ``--debug``: logging is process-wide)."""
    from typer.testing import CliRunner

    from asyncsync.cli.app import _register_commands, app

    _register_commands()
    result = CliRunner().invoke(app, list(args), input=stdin, catch_exceptions=False)
    return CliResult(result.exit_code, result.stdout_bytes, result.stderr)
