"""Run-wide attachment state: tag lists, what each registry can do, and one image's outcome.

:class:`AttachmentRun` lives in the copy environment, one per run (a ``copy`` or a whole sync):

* tag lists per source repository, fetched at most once (single-flight); a sync seeds them with
  the lists its planner already holds, so finding cosign tags and fallback tags costs nothing;
* tag lists per destination repository, fetched at most once (a sync with ``--skip-existing``
  seeds them with the lists its destination check already holds): what a no-op re-sync compares
  the source's attachment tags with, by name;
* the digests a sync planned per source repository (its subjects), so an attachment tag whose
  subject is none of them (an index child's, an attachment's own) can be told apart;
* each subject's walk, once per run and destination: the same digest under two tags, or an index
  child shared by two indexes, is walked once (the later images report its attachments present);
* whether a source registry answers the referrers API (learnt from the first request; a registry
  that does not is never asked again in the run, nor in later runs for a while when the run has a
  :class:`~asyncsync.copy.attachments.api_memory.ReferrersApiMemory`);
* whether a destination registry has the API, detected once per registry.

:class:`AttachmentOutcome` is what one image's walk did, counted in the copy result and reports.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field

from asyncsync.copy.attachments.api_memory import ReferrersApiMemory
from asyncsync.digest import Digest
from asyncsync.limits import KeyedLock, SingleFlight


@dataclass(slots=True)
class AttachmentOutcome:
    """Attachments of one image: copied, already present, left behind (and why), skipped (and why).

    ``left`` are attachments that could not follow because the copy changed their subject's
    digest; ``unsupported`` those the destination cannot hold (``docker-archive:``, ``dir:``, ...);
    ``skipped`` were not wanted (options) or were bad input (a referrer naming another subject,
    a referrers index that is not JSON, a cycle).
    """

    copied: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    #: Lines for ``--dry-run``: what would be copied.
    found: list[str] = field(default_factory=list)

    def repeated(self) -> AttachmentOutcome:
        """This outcome as another image with the same subject sees it: what was copied is present."""
        return AttachmentOutcome(
            copied=[],
            present=[*self.copied, *self.present],
            left=list(self.left),
            unsupported=list(self.unsupported),
            skipped=list(self.skipped),
            found=list(self.found),
        )

    def merge(self, other: AttachmentOutcome) -> None:
        self.copied += other.copied
        self.present += other.present
        self.left += other.left
        self.unsupported += other.unsupported
        self.skipped += other.skipped
        self.found += other.found

    @property
    def empty(self) -> bool:
        return not (self.copied or self.present or self.left or self.unsupported or self.skipped)

    def counts(self) -> dict[str, int]:
        return {
            "copied": len(self.copied),
            "present": len(self.present),
            "left": len(self.left) + len(self.unsupported),
            "skipped": len(self.skipped),
        }

    def as_json(self) -> dict[str, object]:
        return {
            **self.counts(),
            "left_reasons": [*self.left, *self.unsupported],
            "skipped_reasons": list(self.skipped),
        }

    def notes(self, destination: str) -> list[str]:
        """One line for what a destination cannot hold, one per attachment left by a digest change."""
        lines = []
        if self.unsupported:
            lines.append(
                f"{destination} cannot hold attachments: {len(self.unsupported)} left behind "
                f"({', '.join(self.unsupported)})"
            )
        lines += [f"attachment left behind: {reason}" for reason in self.left]
        return lines


#: What identifies one subject's walk: source key, destination key, subject, policy, whether it writes.
WalkKey = tuple[str, str, Digest, Hashable, bool]


class AttachmentRun:
    """See the module docstring. Keys are ``registry/repository`` (tags) and ``registry`` (APIs)."""

    def __init__(self, api_memory: ReferrersApiMemory | None = None) -> None:
        self._tags: SingleFlight[str, frozenset[str]] = SingleFlight()
        self._destination_tags: SingleFlight[str, frozenset[str]] = SingleFlight()
        self._subjects: dict[str, frozenset[str]] = {}
        #: Each subject's walk, once per run (the outcome of the first).
        self.walks: SingleFlight[WalkKey, AttachmentOutcome] = SingleFlight()
        #: Source registries and whether they answered the referrers API.
        self.source_api: dict[str, bool] = {}
        #: Earlier runs' "no API" answers (none: every run asks once).
        self.api_memory = api_memory if api_memory is not None else ReferrersApiMemory(None)
        #: Destination registries and whether they have the referrers API.
        self.destination_api: dict[str, bool] = {}
        #: Held while the first request to a registry finds out about its API (the others wait).
        self.api_locks: KeyedLock[str] = KeyedLock()

    def source_api_known(self, key: str) -> bool | None:
        """Whether source registry ``key`` answers the referrers API, if this run or a recent one
        learnt it; ``None``: ask."""
        known = self.source_api.get(key)
        if known is None and self.api_memory.known_without_api(key):
            known = self.source_api[key] = False
        return known

    def source_api_learnt(self, key: str, has_api: bool) -> None:
        """The first request to source registry ``key`` told whether it answers the referrers API."""
        self.source_api[key] = has_api
        self.api_memory.learnt(key, has_api)

    def seed_tags(self, key: str, tags: Iterable[str]) -> None:
        """Tags a caller already listed (the sync planner): no request will be made for ``key``."""
        self._tags.remember(key, frozenset(tags))

    async def tags(self, key: str, fetch: Callable[[], Awaitable[Iterable[str]]]) -> frozenset[str]:
        """The tags of ``key``, fetched at most once per run."""

        async def listed() -> frozenset[str]:
            return frozenset(await fetch())

        return await self._tags.do(key, listed)

    def seed_destination_tags(self, key: str, tags: Iterable[str]) -> None:
        """Destination tags a caller already listed (``--skip-existing``'s check)."""
        self._destination_tags.remember(key, frozenset(tags))

    async def destination_tags(
        self, key: str, fetch: Callable[[], Awaitable[Iterable[str]]]
    ) -> frozenset[str]:
        """The tags of destination ``key`` as the run first listed them (at most once per run).

        A tag written later in the run is not in it: callers use it to find what is missing
        (then look closer), and a tag in it was there at listing time."""

        async def listed() -> frozenset[str]:
            return frozenset(await fetch())

        return await self._destination_tags.do(key, listed)

    def seed_subjects(self, key: str, digests: Iterable[Digest]) -> None:
        """The digests a sync planned from source repository ``key`` (their hex)."""
        self._subjects[key] = frozenset(digest.hex for digest in digests)

    def subjects(self, key: str) -> frozenset[str]:
        """The planned digests' hex of source repository ``key`` (empty: not a sync, or none)."""
        return self._subjects.get(key, frozenset())
