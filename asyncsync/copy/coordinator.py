"""Run-wide blob coordination: single-flight uploads and the index of known blob locations.

Every copy of a run shares one :class:`BlobCoordinator`:

* :meth:`BlobCoordinator.once` makes the first task that needs a blob on a destination registry
  upload it while the others wait and then get its result (the repository it went to, from
  which they mount). A failed upload lets the next waiter try; a successful one is remembered
  for the rest of the run.
* :meth:`BlobCoordinator.placing` makes one task at a time make a blob present in one
  repository (HEAD, mount or upload); the others of that repository wait for it instead of each
  mounting the blob again.
* :meth:`BlobCoordinator.record` / :meth:`BlobCoordinator.known_locations` remember which
  repositories of a registry hold a blob, as cross-repo mount sources. The index can be
  exported and loaded (the sync command persists it in the user cache directory).
* :meth:`BlobCoordinator.discover` asks a registry-specific locator (:meth:`set_locator`; the
  Harbor API's blob query) for mount sources of a blob the run knows no location of.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from asyncsync.digest import Digest
from asyncsync.errors import AsyncSyncError, InvalidReferenceError
from asyncsync.limits import SingleFlight, SingleFlightStatistics
from asyncsync.transports.base import BlobLocation

T = TypeVar("T")

#: ``locator(digest, size) -> repositories`` of one registry holding the blob (may raise
#: AsyncSyncError; may answer ``[]`` at once for blobs too small to be worth a lookup).
BlobLocator = Callable[[Digest, int], Awaitable[list[str]]]
log = logging.getLogger("asyncsync.copy")

#: Repositories remembered per (registry, digest); the most recent are kept.
MAX_LOCATIONS_PER_BLOB = 8


@dataclass(frozen=True, slots=True)
class BlobCoordinatorStatistics:
    """Single-flight counters: blob uploads per (registry, digest), locator lookups likewise,
    placements per (registry, repository, digest)."""

    uploads: SingleFlightStatistics
    lookups: SingleFlightStatistics
    placements: SingleFlightStatistics


class BlobCoordinator:
    """Single-flight per (destination registry, digest) for uploads and per (registry,
    repository, digest) for placements, and the mount-source index."""

    def __init__(self, max_locations: int = MAX_LOCATIONS_PER_BLOB) -> None:
        self.max_locations = max_locations
        # registry -> digest text -> repositories, most recent last
        self._locations: dict[str, dict[str, list[str]]] = {}
        # (registry, repository, digest) seen present by this run (not loaded from a cache):
        # such a blob needs no HEAD before it is used again in the same repository.
        self._confirmed: set[tuple[str, str, Digest]] = set()
        self._uploads: SingleFlight[tuple[str, Digest], Any] = SingleFlight()
        self._locators: dict[str, BlobLocator] = {}
        self._lookups: SingleFlight[tuple[str, Digest], list[BlobLocation]] = SingleFlight()
        self._placements: SingleFlight[tuple[str, str, Digest], None] = SingleFlight(cache=False)

    def set_locator(self, registry: str, locator: BlobLocator) -> None:
        """Use ``locator`` to find mount sources on ``registry`` for blobs with no known location."""
        self._locators[registry] = locator

    async def discover(self, registry: str, digest: Digest, size: int) -> list[BlobLocation]:
        """Mount candidates for ``digest`` on ``registry`` from its locator; ``[]`` without one.

        The locator is asked at most once per blob and run (concurrent callers wait for that
        answer; a lookup cancelled before it answered is asked again by the next caller); its
        repositories are recorded as candidates, not as confirmed locations. A failing locator
        only costs the mount: it answers ``[]``, never raises.
        """
        locator = self._locators.get(registry)
        if locator is None:
            return []

        async def lookup() -> list[BlobLocation]:
            found: list[BlobLocation] = []
            try:
                for repository in await locator(digest, size):
                    self.record(registry, repository, digest, confirmed=False)
                    found.append(BlobLocation(registry, repository))
            except AsyncSyncError as exc:
                log.debug("no mount source lookup for %s on %s: %s", digest.short, registry, exc)
            return found

        return await self._lookups.do((registry, digest), lookup)

    def known_locations(self, registry: str, digest: Digest) -> list[BlobLocation]:
        """Repositories of ``registry`` known to hold ``digest``, most recently seen first."""
        repos = self._locations.get(registry, {}).get(str(digest), [])
        return [BlobLocation(registry, repo) for repo in reversed(repos)]

    def record(self, registry: str, repository: str, digest: Digest, *, confirmed: bool = True) -> None:
        """Remember that ``registry/repository`` holds ``digest``.

        ``confirmed`` (the default) means this run saw it there (uploaded, mounted or found);
        entries loaded from a persisted index are only mount candidates, never confirmed.
        """
        if confirmed:
            self._confirmed.add((registry, repository, digest))
        repos = self._locations.setdefault(registry, {}).setdefault(str(digest), [])
        if repository in repos:
            repos.remove(repository)
        repos.append(repository)
        del repos[: -self.max_locations]

    def confirmed(self, registry: str, repository: str, digest: Digest) -> bool:
        """Whether this run saw ``digest`` present in ``registry/repository``."""
        return (registry, repository, digest) in self._confirmed

    async def once(self, registry: str, digest: Digest, upload: Callable[[], Awaitable[T]]) -> T:
        """Run ``upload`` unless this run already did for ``(registry, digest)``; share its result.

        Concurrent callers wait for the running one. If it fails, its error goes to its own
        caller and the next waiter runs its own ``upload``. A success is remembered: later
        callers get the same result at once.
        """
        result: T = await self._uploads.do((registry, digest), upload)
        return result

    async def placing(
        self, registry: str, repository: str, digest: Digest, place: Callable[[], Awaitable[None]]
    ) -> None:
        """Run ``place`` (make ``digest`` present in ``registry/repository``) unless another task
        is doing so now; then wait for that one instead.

        The single flight per repository that keeps images of one repository from each
        mounting (or HEADing) the same blob at once. Nothing is remembered here: ``place``
        records its success (:meth:`record`), and callers check :meth:`confirmed` first. A
        failed or cancelled ``place`` lets the next waiter run its own.
        """
        await self._placements.do((registry, repository, digest), place)

    def statistics(self) -> BlobCoordinatorStatistics:
        """The single-flight counters of uploads, locator lookups and placements."""
        return BlobCoordinatorStatistics(
            self._uploads.statistics(), self._lookups.statistics(), self._placements.statistics()
        )

    def export(self) -> dict[str, dict[str, list[str]]]:
        """The location index as plain data (JSON-serialisable), for persisting between runs."""
        return {
            registry: {d: list(repos) for d, repos in blobs.items()}
            for registry, blobs in self._locations.items()
        }

    def load(self, data: dict[str, dict[str, list[str]]]) -> None:
        """Merge an exported index; malformed entries are ignored (a cache must not break a run)."""
        if not isinstance(data, dict):
            return
        for registry, blobs in data.items():
            if not isinstance(registry, str) or not isinstance(blobs, dict):
                continue
            for digest_text, repos in blobs.items():
                try:
                    digest = Digest.parse(digest_text)
                except InvalidReferenceError:
                    continue
                if not isinstance(repos, list):
                    continue
                for repo in repos:
                    if isinstance(repo, str) and repo:
                        self.record(registry, repo, digest, confirmed=False)
