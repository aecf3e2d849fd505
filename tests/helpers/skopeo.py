"""Running the real ``skopeo`` (1.9.x) as a reference client in tests.

Contracts: :func:`skopeo` raises :class:`SkopeoError` (with skopeo's stderr) on a non-zero exit and
:class:`RuntimeError` when skopeo is not installed; it inherits the current environment, so the
``isolated_home`` fixture keeps it away from the real user's auth files. :func:`inspect` adds the TLS and
credential flags a :class:`RegistryServer` needs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

from tests.helpers.registry import RegistryServer

__all__ = ["SkopeoError", "inspect", "inspect_raw", "skopeo", "skopeo_binary"]


class SkopeoError(RuntimeError):
    """skopeo exited non-zero."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(f"skopeo {' '.join(args)} exited {returncode}:\n{stderr.strip()}")
        self.returncode = returncode
        self.stderr = stderr


def skopeo_binary() -> str:
    """Path of ``skopeo``; raises RuntimeError with a fix-it hint when it is missing."""
    found = shutil.which("skopeo")
    if found is None:
        raise RuntimeError("skopeo is not installed; run scripts/setup.sh (apt-get install skopeo)")
    return found


def skopeo(*args: str, timeout: float = 60.0) -> str:
    """Run ``skopeo ARGS`` and return its stdout; raises :class:`SkopeoError` on failure."""
    done = subprocess.run(
        [skopeo_binary(), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise SkopeoError(args, done.returncode, done.stderr)
    return done.stdout


def inspect(server: RegistryServer, reference: str, *extra: str) -> dict[str, Any]:
    """``skopeo inspect docker://HOST/reference`` as parsed JSON (``reference`` is ``repo:tag`` or
    ``repo@digest``)."""
    out = skopeo("inspect", *server.skopeo_flags(), *extra, f"docker://{server.host}/{reference}")
    result: dict[str, Any] = json.loads(out)
    return result


def inspect_raw(server: RegistryServer, reference: str) -> bytes:
    """The raw manifest bytes skopeo fetches for ``reference`` (``skopeo inspect --raw``)."""
    done = subprocess.run(
        [skopeo_binary(), "inspect", "--raw", *server.skopeo_flags(), f"docker://{server.host}/{reference}"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60.0,
        check=False,
    )
    if done.returncode != 0:
        raise SkopeoError(
            ["inspect", "--raw", reference], done.returncode, done.stderr.decode(errors="replace")
        )
    return done.stdout
