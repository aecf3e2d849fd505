"""The sync plan: every entry expanded into images pinned by digest, before anything is written.

:func:`build_registry_plan` takes a validated :class:`~asyncsync.specs.model.SyncSpec` and a
:class:`SourceLister` and runs in phases, each one bounded by ``limit`` concurrent requests
(``limit`` worker tasks pulling from a list; never one task per item):

1. catalog listings for glob sources, once per (registry, literal prefix);
2. tag listings, once per source repository that needs one (explicit tags need none);
3. tag selection (:class:`~asyncsync.specs.filters.TagFilter`), pure;
4. resolution of every distinct source reference to a digest with one HEAD, so each image
   is later copied by that digest even if the tag moves meanwhile;
5. destination naming, then duplicate detection: two images written to the same destination
   reference from different sources (or with different settings) are both dropped and
   reported with both spec lines; the same source planned twice is kept once.

Failures of one entry (repository not found, listing refused, bad destination name) become
:class:`PlanError` values in :attr:`Plan.errors` (sorted by spec line); the rest of the plan
is still built.
Only bugs raise. The order of :attr:`Plan.images` is deterministic: entries in spec order,
sources in ``from`` order, glob matches sorted, explicit references as written, then digests,
listed tags sorted by text (``latest`` by version).

Skip decisions (:class:`DestinationCheck`, :func:`check_plan`) and ``--dry-run`` lines
(:func:`render_plan`) live in :mod:`asyncsync.sync.decisions`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

import anyio

from asyncsync.copy.attachments.kinds import is_attachment_tag
from asyncsync.digest import Digest
from asyncsync.errors import AsyncSyncError, InvalidReferenceError
from asyncsync.manifest import DOCKER_LIST, DOCKER_V2S2, INDEX_TYPES, OCI_INDEX, OCI_MANIFEST
from asyncsync.reference import ImageName
from asyncsync.specs.model import CopySettings, Origin, SourceSelector, SyncEntry, SyncSpec

if TYPE_CHECKING:
    from asyncsync.transports.base import ImageReference

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_PLAN_CONCURRENCY = 16


@dataclass(frozen=True, slots=True)
class ResolvedManifest:
    """What a HEAD of a source reference tells: the manifest digest and media type."""

    digest: Digest
    media_type: str


class SourceLister(Protocol):
    """Read access to source registries. Absence is a return value; other failures raise
    :class:`~asyncsync.errors.AsyncSyncError` subclasses."""

    async def list_tags(self, registry: str, repository: str) -> list[str]:
        """Every tag of ``registry/repository`` (raises NotFoundError for an unknown repository)."""

    async def list_repositories(self, registry: str, prefix: str) -> list[str]:
        """Repository paths under ``prefix/`` (every repository when ``prefix`` is empty)."""

    async def resolve(self, registry: str, repository: str, reference: str) -> ResolvedManifest | None:
        """Digest and media type of a tag or digest (one HEAD); ``None`` when it does not exist."""


@dataclass(frozen=True, slots=True)
class PlannedImage:
    """One image to copy: ``source`` carries the tag (if any) and is always pinned by digest.

    Registries are the default on both sides. ``source_local``/``destination_local`` put local
    storage in their place (``sync --src dir`` / ``--dest dir``, see :mod:`asyncsync.sync.local`):
    the image is then read from / written to that reference, and ``source``/``destination`` keep
    the Docker reference the image has: a ``dir:`` source has the destination name pinned by
    the digest of its ``manifest.json``; a ``dir:`` destination has the source name.
    ``manifest_pinned`` is false when ``source``'s digest is not a manifest digest (a
    containers-storage source is pinned by its image ID: its manifest is generated on export).
    """

    source: ImageName
    destination: ImageName
    media_type: str
    origin: Origin
    settings: CopySettings
    source_local: ImageReference | None = None
    destination_local: ImageReference | None = None
    manifest_pinned: bool = True

    @property
    def digest(self) -> Digest:
        assert self.source.digest is not None
        return self.source.digest

    @property
    def tag(self) -> str | None:
        return self.source.tag

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    def expected_destination_digest(self) -> Digest | None:
        """The digest the destination will have after the copy, when the copy keeps the manifest
        bytes (no format change, no platform selection out of an index); else ``None``."""
        settings = self.settings
        if not self.manifest_pinned:
            return None
        family = _FORMAT_FAMILY.get(self.media_type)
        if settings.format is not None and family != settings.format:
            return None
        if self.is_index and (settings.multi_arch == "system" or settings.platforms):
            return None
        return self.digest

    def describe_source(self) -> str:
        """``registry/repo:tag (sha256:abcdef012345)`` or ``registry/repo@sha256:...``
        (``dir:PATH (sha256:abcdef012345)`` for a local source)."""
        name = self.source
        if self.source_local is not None:
            return f"{self.source_local} ({self.digest.algorithm}:{self.digest.short})"
        if name.tag is not None:
            return f"{name.name}:{name.tag} ({self.digest.algorithm}:{self.digest.short})"
        return f"{name.name}@{self.digest}"

    def describe_destination(self) -> str:
        """``registry/repo:tag`` (or ``@digest``), or the local reference (``dir:PATH``)."""
        if self.destination_local is not None:
            return str(self.destination_local)
        return str(self.destination)


_FORMAT_FAMILY = {OCI_MANIFEST: "oci", OCI_INDEX: "oci", DOCKER_V2S2: "v2s2", DOCKER_LIST: "v2s2"}

#: Told of a planned image before the plan is complete (a run checks its destination then). The
#: image is final as announced (the plan holds this object), but the plan may still drop it: a
#: destination written twice, a hook's filter. So a listener may read for it, never write; an
#: image is announced at most once, and only by a planner whose images go to registries as built.
OnPlanned = Callable[[PlannedImage], None]


@dataclass(frozen=True, slots=True)
class PlanError:
    """A part of the spec that could not be planned; ``str()`` is ``file:line: message``."""

    origin: Origin
    message: str

    def __str__(self) -> str:
        return f"{self.origin}: {self.message}"


@dataclass(frozen=True, slots=True)
class Plan:
    """The expanded spec: images to copy, errors of the entries that failed, and warnings."""

    images: tuple[PlannedImage, ...]
    errors: tuple[PlanError, ...] = ()
    warnings: tuple[PlanError, ...] = ()
    #: Tag lists the planner fetched, by ``registry/repository``: attachments are found in them
    #: without another request (:mod:`asyncsync.copy.attachments`).
    source_tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


async def bounded_map(
    keys: Sequence[K], call: Callable[[K], Awaitable[V]], limit: int
) -> dict[K, V | AsyncSyncError]:
    """``call`` on every key with at most ``limit`` in flight; an ``AsyncSyncError`` is a result.

    ``limit`` workers share one iterator, so the number of tasks never grows with ``keys``.
    Any other exception is a bug: it cancels the rest and propagates.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    results: dict[K, V | AsyncSyncError] = {}
    iterator = iter(keys)

    async def worker() -> None:
        for key in iterator:
            try:
                results[key] = await call(key)
            except AsyncSyncError as exc:
                results[key] = exc

    async with anyio.create_task_group() as tg:
        for _ in range(min(limit, len(keys))):
            tg.start_soon(worker)
    return results


def _with_context(prefix: str, subject: str, error: AsyncSyncError) -> str:
    """``prefix: error``, unless the error already names ``subject`` (registry errors say what failed)."""
    message = str(error)
    return message if subject.replace(":sha256", "@sha256") in message else f"{prefix}: {message}"


@dataclass(frozen=True, slots=True)
class _Candidate:
    entry: SyncEntry
    selector: SourceSelector
    repository: str
    tag: str | None
    digest: Digest | None
    line: int

    @property
    def reference(self) -> str:
        return self.tag if self.tag is not None else str(self.digest)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.selector.registry, self.repository, self.reference)

    @property
    def origin(self) -> Origin:
        return Origin(self.entry.origin.file, self.line)

    def __str__(self) -> str:
        separator = ":" if self.tag is not None else "@"
        return f"{self.selector.registry}/{self.repository}{separator}{self.reference}"


def _planned_image(candidate: _Candidate, found: ResolvedManifest) -> PlannedImage | InvalidReferenceError:
    """The image of a candidate whose reference resolved to ``found`` (pure), or why its
    destination name is invalid."""
    digest = candidate.digest or found.digest
    source = ImageName(candidate.selector.registry, candidate.repository, candidate.tag, digest)
    try:
        destination = candidate.entry.destination_for(
            candidate.selector, candidate.repository, tag=candidate.tag, digest=candidate.digest
        )
    except InvalidReferenceError as exc:
        return exc
    return PlannedImage(source, destination, found.media_type, candidate.origin, candidate.entry.settings)


class _Planner:
    def __init__(
        self, spec: SyncSpec, lister: SourceLister, limit: int, on_image: OnPlanned | None = None
    ) -> None:
        self.spec = spec
        self.lister = lister
        self.limit = limit
        self.on_image = on_image
        self.errors: list[PlanError] = []
        self.warnings: list[PlanError] = []
        self.listed: dict[str, tuple[str, ...]] = {}

    def fail(self, origin: Origin, message: str) -> None:
        self.errors.append(PlanError(origin, message))

    async def repositories(self) -> list[tuple[SyncEntry, SourceSelector, list[str]]]:
        globs = sorted(
            {(s.registry, s.literal_prefix) for e in self.spec.entries for s in e.sources if s.is_glob}
        )

        async def catalog(key: tuple[str, str]) -> list[str]:
            return await self.lister.list_repositories(*key)

        catalogs = await bounded_map(globs, catalog, self.limit)
        result = []
        for entry in self.spec.entries:
            for selector in entry.sources:
                origin = Origin(entry.origin.file, selector.line)
                if not selector.is_glob:
                    result.append((entry, selector, [selector.pattern]))
                    continue
                listing = catalogs[(selector.registry, selector.literal_prefix)]
                if isinstance(listing, AsyncSyncError):
                    self.fail(origin, f"listing repositories for {selector}: {listing}")
                    continue
                matched = sorted({repo for repo in listing if selector.matches(repo)})
                if not matched:
                    self.fail(origin, f"{selector} matches no repository")
                result.append((entry, selector, matched))
        return result

    async def candidates(self, repos: list[tuple[SyncEntry, SourceSelector, list[str]]]) -> list[_Candidate]:
        wanted = sorted({(s.registry, r) for e, s, rs in repos if e.tags.needs_tag_list for r in rs})

        async def tags(key: tuple[str, str]) -> list[str]:
            return await self.lister.list_tags(*key)

        listings = await bounded_map(wanted, tags, self.limit)
        candidates: list[_Candidate] = []
        for entry, selector, repositories in repos:
            for repository in repositories:
                origin = Origin(entry.origin.file, selector.line)
                listed: list[str] = []
                if entry.tags.needs_tag_list:
                    listing = listings[(selector.registry, repository)]
                    if isinstance(listing, AsyncSyncError):
                        subject = f"{selector.registry}/{repository}"
                        self.fail(origin, _with_context(f"listing tags of {subject}", subject, listing))
                        continue
                    self.listed[f"{selector.registry}/{repository}"] = tuple(listing)
                    # Attachment tags (sha256-<hex>, .sig/.att/.sbom) are not images: they follow
                    # their subjects (or stay behind with --attachments=false).
                    listed = [tag for tag in listing if not is_attachment_tag(tag)]
                    if not listed:
                        self.warnings.append(
                            PlanError(origin, f"{selector.registry}/{repository} has no tags")
                        )
                explicit = {tag: line for tag, line in entry.tags.tags}
                selected = entry.tags.select(listed)
                for tag in selected:
                    line = explicit.get(tag, selector.line)
                    candidates.append(_Candidate(entry, selector, repository, tag, None, line))
                if listed and not selected and not entry.tags.digests:
                    self.warnings.append(
                        PlanError(
                            origin,
                            f"no tag of {selector.registry}/{repository} matches {entry.tags.describe()}",
                        )
                    )
                for digest, line in entry.tags.digests:
                    candidates.append(_Candidate(entry, selector, repository, None, digest, line))
        return candidates

    async def images(self, candidates: list[_Candidate]) -> list[tuple[_Candidate, PlannedImage]]:
        by_key: dict[tuple[str, str, str], list[int]] = {}
        for index, candidate in enumerate(candidates):
            by_key.setdefault(candidate.key, []).append(index)
        # Each candidate's image (or why it has none), built once: announced as soon as its
        # reference resolves (on_image), kept in candidate order below.
        built: dict[int, PlannedImage | InvalidReferenceError] = {}

        def build(index: int, found: ResolvedManifest) -> PlannedImage | InvalidReferenceError:
            if index not in built:
                built[index] = _planned_image(candidates[index], found)
            return built[index]

        async def resolve(key: tuple[str, str, str]) -> ResolvedManifest | None:
            found = await self.lister.resolve(*key)
            if found is not None and self.on_image is not None:
                for index in by_key[key]:
                    image = build(index, found)
                    if isinstance(image, PlannedImage):
                        self.on_image(image)
            return found

        resolved = await bounded_map(list(by_key), resolve, self.limit)
        planned: list[tuple[_Candidate, PlannedImage]] = []
        for index, candidate in enumerate(candidates):
            found = resolved[candidate.key]
            if isinstance(found, AsyncSyncError):
                self.fail(candidate.origin, _with_context(f"resolving {candidate}", str(candidate), found))
                continue
            if found is None:
                self.fail(candidate.origin, f"{candidate} not found")
                continue
            image = build(index, found)
            if isinstance(image, InvalidReferenceError):
                self.fail(candidate.origin, f"no valid destination for {candidate}: {image}")
                continue
            planned.append((candidate, image))
        return planned

    def deduplicate(self, planned: list[tuple[_Candidate, PlannedImage]]) -> list[PlannedImage]:
        by_destination: dict[str, list[PlannedImage]] = {}
        for _, image in planned:
            by_destination.setdefault(str(image.destination), []).append(image)
        conflicting: set[str] = set()
        for destination, images in by_destination.items():
            first = images[0]
            for other in images[1:]:
                same = (other.source, other.settings) == (first.source, first.settings)
                if not same:
                    conflicting.add(destination)
                    self.fail(
                        other.origin,
                        f"destination {destination} is written twice: by {first.origin} "
                        f"(from {first.describe_source()}) and here (from {other.describe_source()}); "
                        "neither is copied",
                    )
        seen: set[str] = set()
        result = []
        for _, image in planned:
            key = str(image.destination)
            if key in conflicting or key in seen:
                continue
            seen.add(key)
            result.append(image)
        return result


async def build_registry_plan(
    spec: SyncSpec,
    lister: SourceLister,
    *,
    limit: int = DEFAULT_PLAN_CONCURRENCY,
    on_image: OnPlanned | None = None,
) -> Plan:
    """Expand ``spec`` into a :class:`Plan` (see the module docstring for phases and ordering).

    ``on_image`` hears of each image as soon as its source reference is resolved, while the rest
    are still resolving (in the order they resolve; see :data:`OnPlanned`).

    For entries whose sources are registries, whatever their destination rule; a spec with
    ``dir:`` entries is planned by :func:`asyncsync.sync.spec_plan.build_plan`, which calls this
    for its registry parts."""
    planner = _Planner(spec, lister, limit, on_image)
    repositories = await planner.repositories()
    candidates = await planner.candidates(repositories)
    planned = await planner.images(candidates)
    images = planner.deduplicate(planned)
    # Report in spec order, whichever phase found the problem.
    errors = tuple(sorted(planner.errors, key=lambda error: error.origin.line))
    warnings = tuple(sorted(planner.warnings, key=lambda warning: warning.origin.line))
    return Plan(images=tuple(images), errors=errors, warnings=warnings, source_tags=planner.listed)


class Planner(Protocol):
    """What builds a run's plan: :func:`~asyncsync.sync.spec_plan.build_plan`, or a local side's
    planner (``sync --src dir``). A planner may announce images early through ``on_image`` (see
    :data:`OnPlanned`); one that never does is still a planner."""

    def __call__(
        self, spec: SyncSpec, lister: SourceLister, *, on_image: OnPlanned | None = None
    ) -> Awaitable[Plan]: ...
