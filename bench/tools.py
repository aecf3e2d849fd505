"""How the bench invokes the two tools under test: ``asyncsync sync`` and ``skopeo sync``.

Both get the same skopeo-format YAML spec (registry-keyed, ``tls-verify: false``) and the same destination
``HOST/PREFIX``; both put ``proj/app-NN`` at ``HOST/PREFIX/app-NN`` (skopeo's naming without
``--scoped``).

* skopeo: ``skopeo sync --all --preserve-digests --src yaml --dest docker --dest-tls-verify=false SPEC
  DEST`` (the source's TLS setting comes from the YAML).
* asyncsync: ``asyncsync sync --src yaml --dest docker SPEC DEST`` plus the skopeo-compatible options its
  ``sync --help`` offers: ``--all`` and ``--preserve-digests`` when present (so both tools copy the same
  thing), and TLS verification off for source and destination (``--X-tls-verify=false``, or
  ``--no-X-tls-verify`` if that is how the CLI spells it). :func:`asyncsync_tool` reads the help once and
  raises :class:`ToolUnavailable` with a one-line reason when ``asyncsync sync`` does not exist yet.

The asyncsync executable is ``--asyncsync-cmd`` if given, else ``asyncsync`` on PATH, else
``python -m asyncsync`` with this checkout on ``PYTHONPATH``. Each asyncsync run gets its own
``XDG_CACHE_HOME`` inside the run directory, so a "fresh destination" run cannot profit from a mount
index persisted by an earlier run (skopeo's blob-info cache is keyed by registry host, and every run's
destination has a new port, so it cannot either).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["REPO_ROOT", "Tool", "ToolUnavailable", "asyncsync_tool", "skopeo_tool"]

REPO_ROOT = Path(__file__).resolve().parent.parent


class ToolUnavailable(RuntimeError):
    """The tool cannot run here (not installed, or its ``sync`` command does not exist yet)."""


@dataclass(frozen=True)
class Tool:
    """A tool under test: ``base`` argv, fixed ``flags`` for ``sync``, and environment additions."""

    name: str
    base: tuple[str, ...]
    flags: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    version: str = ""
    per_run_cache: bool = False

    def command(self, spec: Path, dest: str, extra: tuple[str, ...] = ()) -> list[str]:
        """argv syncing ``spec`` (skopeo YAML) to ``dest`` (``HOST/PREFIX``)."""
        return [*self.base, "sync", *self.flags, *extra, str(spec), dest]

    def environment(self, run_dir: Path) -> dict[str, str]:
        """The process environment for one run in ``run_dir``."""
        env = {**os.environ, **self.env}
        if self.per_run_cache:
            env["XDG_CACHE_HOME"] = str(run_dir / "xdg-cache")
        return env


def _capture(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    try:
        done = subprocess.run(argv, capture_output=True, env=env, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")


def skopeo_tool() -> Tool:
    """skopeo as the bench runs it; raises :class:`ToolUnavailable` when it is not installed."""
    binary = shutil.which("skopeo")
    if binary is None:
        raise ToolUnavailable("skopeo is not installed (apt-get install skopeo)")
    _rc, version = _capture([binary, "--version"], dict(os.environ))
    flags = ("--all", "--preserve-digests", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false")
    return Tool("skopeo", (binary,), flags, version=version.strip())


def asyncsync_base(override: str | None = None) -> tuple[tuple[str, ...], dict[str, str]]:
    """The asyncsync argv prefix and environment additions (see the module docstring)."""
    if override:
        return tuple(shlex.split(override)), {}
    found = shutil.which("asyncsync")
    if found is not None:
        return (found,), {}
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return (sys.executable, "-m", "asyncsync"), {"PYTHONPATH": path}


def _reason(text: str) -> str:
    """The most telling line of a failed command's output, without rich's box drawing."""
    lines = [line.strip(" │╭╮╰╯─\t") for line in text.splitlines()]
    lines = [line for line in lines if line and line != "Error"]  # rich's box title
    telling = [line for line in lines if "Error" in line or "No such command" in line]
    return (telling or lines or ["no output"])[-1]


def _has(help_text: str, option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", help_text) is not None


def compile_package() -> None:
    """Write the package's bytecode, as ``pip install`` does for a regular install.

    An editable checkout under ``PYTHONDONTWRITEBYTECODE=1`` (this machine's default) would otherwise
    compile every module from source on every run: 0.2 s of a 0.7 s start-up that no installed copy
    pays. ``compileall`` writes the ``__pycache__`` files regardless of that variable.
    """
    import compileall

    import asyncsync

    compileall.compile_dir(str(Path(asyncsync.__file__).parent), quiet=1)


def asyncsync_tool(override: str | None = None) -> Tool:
    """asyncsync as the bench runs it; raises :class:`ToolUnavailable` if ``asyncsync sync`` is missing."""
    base, env = asyncsync_base(override)
    compile_package()
    # Wide, plain help so option names are never wrapped or styled.
    probe_env = {**os.environ, **env, "COLUMNS": "250", "NO_COLOR": "1", "TERM": "dumb"}
    rc, text = _capture([*base, "sync", "--help"], probe_env)
    if rc != 0 or "--dest" not in text:
        raise ToolUnavailable(f"`{' '.join(base)} sync` is not available yet (exit {rc}): {_reason(text)}")
    flags: list[str] = []
    for option in ("--all", "--preserve-digests"):
        if _has(text, option):
            flags.append(option)
    flags += ["--src", "yaml", "--dest", "docker"]
    for side in ("src", "dest"):
        if _has(text, f"--no-{side}-tls-verify"):
            flags.append(f"--no-{side}-tls-verify")
        elif _has(text, f"--{side}-tls-verify"):
            flags.append(f"--{side}-tls-verify=false")
    _rc, version = _capture([*base, "--version"], probe_env)
    return Tool("asyncsync", base, tuple(flags), env, version.strip(), per_run_cache=True)
