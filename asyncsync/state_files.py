"""Small JSON files in a run's state directory, shared safely by concurrent runs.

:func:`read_json` and :func:`write_json` are the plain document: reading never fails (a missing or
damaged file is ``None``), writing renames a temporary file over the old one, so a crash or a
concurrent run leaves the old or the new file, never a torn one.

A memory is one file ``{"version": N, "entries": {key: value}}``: a missing, damaged or
other-version file is an empty memory (memories are optimisations; losing one costs requests,
never correctness). Saving merges this run's changed entries into what is on disk at that moment
(another run may have saved meanwhile).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson


def read_json(path: Path) -> Any:
    """The JSON document at ``path``; ``None`` when it is missing or damaged."""
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None


def write_json(path: Path, document: Any) -> bool:
    """Write ``document`` to ``path`` through a temporary file renamed over it. ``False`` when it
    could not be written (no temporary file is left behind)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(orjson.dumps(document))
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        return False
    return True


def read_entries(path: Path, version: int) -> dict[str, Any]:
    """The entries of the memory at ``path``; empty when it is missing, damaged or of another ``version``."""
    data = read_json(path)
    if not isinstance(data, dict) or data.get("version") != version:
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def save_merged(
    path: Path,
    version: int,
    changed: Mapping[str, Any],
    *,
    max_entries: int,
    recency: Callable[[Any], int],
) -> bool:
    """Merge ``changed`` into the memory at ``path`` (:func:`write_json`); keep the ``max_entries``
    entries with the highest ``recency``. ``False`` when the file could not be written (the
    caller keeps its changes for a later save)."""
    merged = read_entries(path, version)
    merged.update(changed)
    if len(merged) > max_entries:
        newest = sorted(merged.items(), key=lambda item: recency(item[1]), reverse=True)
        merged = dict(newest[:max_entries])
    return write_json(path, {"version": version, "entries": merged})
