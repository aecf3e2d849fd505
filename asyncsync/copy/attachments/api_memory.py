"""Source registries without the referrers API, remembered between runs for a while.

Every run that follows attachments needs to know whether each source registry answers the
referrers API; within a run the first request tells
(:class:`~asyncsync.copy.attachments.state.AttachmentRun`).
On a no-op re-sync that first request is the only one beyond the budget (two requests per tag
and one tag list per repository), so a registry's "no API" answer (404, 405, 501) is kept in
``referrers-api.json`` in the run's state directory and trusted for :data:`NO_API_TTL` seconds:
runs in that window do not ask again. A "has the API" answer is not remembered: such a registry
is asked per image anyway, and the first ask tells.

Why a window and not forever: a registry upgraded to the API stops getting fallback tags from
OCI 1.1 clients, so a stale "no API" would miss new referrers; a window bounds how long. The
file is shared by concurrent runs (:mod:`asyncsync.state_files`); none with ``--no-mount-cache``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from asyncsync.state_files import read_entries, save_merged

API_FILE = "referrers-api.json"
#: Seconds a registry's "no referrers API" answer is trusted without asking again.
NO_API_TTL = 3600
#: Registries kept on save (the most recently asked).
MAX_ENTRIES = 10_000
FORMAT_VERSION = 1


class ReferrersApiMemory:
    """Registry key -> time (epoch seconds) it last answered that it has no referrers API."""

    def __init__(self, directory: Path | None, *, clock: Callable[[], float] = time.time) -> None:
        self.path = directory / API_FILE if directory is not None else None
        self._clock = clock
        entries = read_entries(self.path, FORMAT_VERSION) if self.path is not None else {}
        self._asked = {key: value for key, value in entries.items() if isinstance(value, int)}
        self._changed: dict[str, int] = {}

    def known_without_api(self, registry: str) -> bool:
        """Whether ``registry`` answered "no referrers API" less than :data:`NO_API_TTL` seconds ago."""
        asked = self._asked.get(registry)
        return asked is not None and 0 <= self._clock() - asked < NO_API_TTL

    def learnt(self, registry: str, has_api: bool) -> None:
        """What a request to ``registry`` just told."""
        if has_api:
            self._asked.pop(registry, None)
            self._changed.pop(registry, None)
            # An entry on disk from another run stays until its window ends: harmless, the
            # next run past it asks again.
            return
        self._asked[registry] = self._changed[registry] = int(self._clock())

    def save(self) -> None:
        """Merge what this run learnt into the file (failures ignored: an optimisation)."""
        if self.path is None or not self._changed:
            return
        if save_merged(self.path, FORMAT_VERSION, self._changed, max_entries=MAX_ENTRIES, recency=_recency):
            self._changed.clear()


def _recency(value: object) -> int:
    return value if isinstance(value, int) else 0
