"""Where big temporary files go: skopeo's global ``--tmpdir`` rule, decided once at the CLI edge.

containers/image (``internal/tmpdir``) puts big temporary files (a SIF's root filesystem, a spooled
layer) in ``--tmpdir`` when given, else ``$TMPDIR``, else ``/var/tmp`` (not ``/tmp``, often a small
tmpfs). :func:`configure` is called once by the CLI with ``--tmpdir``; it also becomes Python's
``tempfile.tempdir``, so every other temporary file of the run follows the flag too.
"""

from __future__ import annotations

import os
import tempfile

from asyncsync.errors import UsageError

_BUILTIN = "/var/tmp"
_configured: str | None = None


def configure(path: str | None) -> None:
    """Use ``path`` (``--tmpdir``) for temporary files; ``None`` restores the defaults.

    Raises :class:`UsageError` when ``path`` is not an existing directory."""
    global _configured
    if path is None:
        _configured = None
        tempfile.tempdir = None
        return
    absolute = os.path.abspath(path)
    if not os.path.isdir(absolute):
        raise UsageError(f"--tmpdir {path}: no such directory")
    _configured = absolute
    tempfile.tempdir = absolute


def configured() -> str | None:
    """The ``--tmpdir`` directory, if one was given."""
    return _configured


def big_files_directory() -> str:
    """``--tmpdir``, else ``$TMPDIR``, else ``/var/tmp`` (containers/image's order)."""
    return _configured or os.environ.get("TMPDIR") or _BUILTIN
