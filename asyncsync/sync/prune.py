"""``--prune``: delete destination tags the spec selects but the source no longer has.

Scope, decided from the spec alone (never from what happens to be in the destination):

* only destination repositories the spec maps a **currently listed** source repository onto
  (``destination_for`` of every entry and source); a repository outside the spec, or whose
  source could not be listed (error, 404, refusal), is never touched;
* in such a repository, a destination tag ``T`` is pruned when some entry mapping onto it
  *selects* the source tag ``S`` it comes from (``T`` = ``S`` + ``tag-suffix``; the entry's
  filters accept ``S`` among the current source tags: include/exclude/semver, an explicit list,
  and ``latest: N`` ranking it with the current tags) and no entry's source has ``S`` any more.
  Tags no entry selects (other filters, other suffixes, hand-pushed tags) are left alone;
* with ``--shard``, only the shard's destination repositories.

Deleting: the Distribution API deletes manifests by digest, which removes *every* tag of that
digest. So a tag is deleted by digest only when no kept tag of the repository points to the
same digest, and no kept index tag lists it as a child; otherwise it is left and the reason is
printed. A registry that can remove a tag alone (Harbor's tag API: a :class:`TagDeleter` given
for its host by the layer that assembles the run) needs no such rule; its 412 for an immutable
tag leaves the tag, with the reason.

``--dry-run`` prints the same decisions first (``prune`` / ``keep`` lines) and deletes nothing.
A real run prunes after the copies, and not at all when the run was stopped early.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from asyncsync.digest import Digest
from asyncsync.errors import AsyncSyncError, ImmutableTagError, InvalidReferenceError
from asyncsync.manifest import INDEX_TYPES, ImageIndex, parse_manifest
from asyncsync.registry.client import RegistryClient
from asyncsync.registry.manifests import delete_manifest, get_manifest, head_manifest
from asyncsync.registry.tags import list_tags
from asyncsync.specs.model import SourceSelector, SyncEntry, SyncSpec
from asyncsync.sync.hooks import RunContext, SyncHooks
from asyncsync.sync.plan import Plan, ResolvedManifest, SourceLister
from asyncsync.sync.report import SyncReport

Action = Literal["prune", "keep", "deleted", "error"]
RepositoryFilter = Callable[[str, str], bool]


class TagDeleter(Protocol):
    """Removes one tag and nothing else (Harbor's tag API), where a registry can: the manifest
    and its other tags stay. Raises :class:`~asyncsync.errors.ImmutableTagError` for a tag the
    registry protects, other :class:`~asyncsync.errors.AsyncSyncError` for other failures."""

    async def __call__(self, client: RegistryClient, repository: str, digest: Digest, tag: str) -> None: ...


@dataclass(frozen=True, slots=True)
class PruneDecision:
    """One destination tag: ``prune`` (would delete), ``deleted``, ``keep`` (left, why) or ``error``."""

    registry: str
    repository: str
    tag: str
    action: Action
    reason: str
    digest: Digest | None = None

    def __str__(self) -> str:
        digest = f" ({self.digest.algorithm}:{self.digest.short})" if self.digest is not None else ""
        return f"{self.action:<7} {self.registry}/{self.repository}:{self.tag}{digest}: {self.reason}"


class RecordingLister:
    """A :class:`SourceLister` wrapper remembering tag and repository listings (prune reuses them)."""

    def __init__(self, inner: SourceLister) -> None:
        self.inner = inner
        self.tags: dict[tuple[str, str], list[str] | AsyncSyncError] = {}
        self.repositories: dict[tuple[str, str], list[str] | AsyncSyncError] = {}

    async def list_tags(self, registry: str, repository: str) -> list[str]:
        try:
            tags = await self.inner.list_tags(registry, repository)
        except AsyncSyncError as exc:
            self.tags[(registry, repository)] = exc
            raise
        self.tags[(registry, repository)] = tags
        return tags

    async def list_repositories(self, registry: str, prefix: str) -> list[str]:
        try:
            found = await self.inner.list_repositories(registry, prefix)
        except AsyncSyncError as exc:
            self.repositories[(registry, prefix)] = exc
            raise
        self.repositories[(registry, prefix)] = found
        return found

    async def resolve(self, registry: str, repository: str, reference: str) -> ResolvedManifest | None:
        return await self.inner.resolve(registry, repository, reference)

    async def cached_tags(self, registry: str, repository: str) -> list[str]:
        known = self.tags.get((registry, repository))
        if isinstance(known, AsyncSyncError):
            raise known
        return known if known is not None else await self.list_tags(registry, repository)

    async def cached_repositories(self, registry: str, prefix: str) -> list[str]:
        known = self.repositories.get((registry, prefix))
        if isinstance(known, AsyncSyncError):
            raise known
        return known if known is not None else await self.list_repositories(registry, prefix)


@dataclass(slots=True)
class _Mapping:
    """One (entry, source repository) mapped onto a destination repository."""

    entry: SyncEntry
    selector: SourceSelector
    repository: str
    source_tags: frozenset[str]


@dataclass(slots=True)
class _Target:
    registry: str
    repository: str
    mappings: list[_Mapping] = field(default_factory=list)

    def prunable(self, tag: str) -> bool:
        selected = False
        for mapping in self.mappings:
            suffix = mapping.entry.tag_suffix
            if suffix and not tag.endswith(suffix):
                continue
            source_tag = tag[: len(tag) - len(suffix)] if suffix else tag
            if source_tag in mapping.source_tags:
                return False  # the source still has it (copied, or not selected: not ours either way)
            listed = sorted(mapping.source_tags | {source_tag})
            if source_tag in mapping.entry.tags.select(listed):
                selected = True
        return selected


async def _targets(
    spec: SyncSpec, lister: RecordingLister, owns: RepositoryFilter
) -> tuple[dict[tuple[str, str], _Target], list[str]]:
    """Destination repositories in scope, with the source mappings onto each; plus notes."""
    targets: dict[tuple[str, str], _Target] = {}
    blocked: set[tuple[str, str]] = set()
    notes: list[str] = []
    for entry in spec.entries:
        if not entry.tags.needs_tag_list and not entry.tags.tags:
            continue  # digests only: no tags to prune
        for selector in entry.sources:
            repositories = [selector.pattern]
            if selector.is_glob:
                try:
                    listed = await lister.cached_repositories(selector.registry, selector.literal_prefix)
                except AsyncSyncError as exc:
                    notes.append(f"note    {selector}: repositories not listed, nothing pruned: {exc}")
                    continue
                repositories = sorted({repo for repo in listed if selector.matches(repo)})
            for repository in repositories:
                try:
                    name = entry.destination_for(selector, repository, tag="latest", digest=None)
                except InvalidReferenceError:
                    continue  # the plan reports the bad name
                key = (name.registry, name.repository)
                if not owns(*key) or key in blocked:
                    continue
                try:
                    tags = await lister.cached_tags(selector.registry, repository)
                except AsyncSyncError as exc:
                    notes.append(
                        f"note    {name.registry}/{name.repository}: source {selector.registry}/{repository} "
                        f"not listed, nothing pruned: {exc}"
                    )
                    # One unlisted source is enough: its tags might be the ones that look gone.
                    blocked.add(key)
                    targets.pop(key, None)
                    continue
                target = targets.setdefault(key, _Target(*key))
                target.mappings.append(_Mapping(entry, selector, repository, frozenset(tags)))
    return targets, notes


async def _decide(target: _Target, ctx: RunContext, tag_only: bool) -> list[PruneDecision]:
    client = ctx.client(target.registry, "dest")
    try:
        existing = await list_tags(client, target.repository)
    except AsyncSyncError as exc:
        if getattr(exc, "status", None) == 404:
            return []
        return [PruneDecision(target.registry, target.repository, "*", "error", f"listing tags: {exc}")]
    prunable = sorted(tag for tag in existing if target.prunable(tag))
    if not prunable:
        return []
    # A tag deleter removes just the tag: only the pruned tags' digests are needed. Elsewhere a
    # manifest DELETE takes every tag of the digest with it, so the kept tags matter too.
    heads: dict[str, tuple[Digest | None, str]] = {}
    for tag in prunable if tag_only else sorted(existing):
        head = await head_manifest(client, target.repository, tag)
        if head is not None:
            heads[tag] = (head.digest, head.media_type)
    reason = "selected by the spec, no longer in the source"
    protected: dict[Digest, str] = {}
    for tag, (digest, media_type) in heads.items():
        if tag_only or tag in prunable or digest is None:
            continue
        protected.setdefault(digest, f"digest also tagged {tag!r}, which is kept")
        if media_type in INDEX_TYPES:
            fetched = await get_manifest(client, target.repository, str(digest))
            index = parse_manifest(fetched.raw, fetched.media_type)
            if isinstance(index, ImageIndex):
                for child in index.manifests:
                    protected.setdefault(child.digest, f"a child of kept index tag {tag!r}")
    decisions = []
    for tag in prunable:
        if tag not in heads:
            continue  # deleted meanwhile
        digest = heads[tag][0]
        if digest is None:
            decisions.append(
                PruneDecision(target.registry, target.repository, tag, "keep", "registry sent no digest")
            )
        elif digest in protected:
            decisions.append(
                PruneDecision(target.registry, target.repository, tag, "keep", protected[digest], digest)
            )
        else:
            decisions.append(PruneDecision(target.registry, target.repository, tag, "prune", reason, digest))
    return decisions


async def plan_prune(
    spec: SyncSpec,
    lister: RecordingLister,
    ctx: RunContext,
    owns: RepositoryFilter,
    tag_deleters: Mapping[str, TagDeleter],
) -> tuple[list[PruneDecision], list[str]]:
    """The prune decisions for every destination repository in scope, and notes about skipped ones.

    ``tag_deleters`` names the hosts that remove a tag alone (see :class:`TagDeleter`)."""
    targets, notes = await _targets(spec, lister, owns)
    decisions: list[PruneDecision] = []
    for key in sorted(targets):
        try:
            decisions += await _decide(targets[key], ctx, key[0] in tag_deleters)
        except AsyncSyncError as exc:
            decisions.append(PruneDecision(key[0], key[1], "*", "error", f"reading the destination: {exc}"))
    return decisions, notes


async def apply_prune(
    decisions: list[PruneDecision], ctx: RunContext, tag_deleters: Mapping[str, TagDeleter]
) -> list[PruneDecision]:
    """Carry out the ``prune`` decisions; each becomes ``deleted``, ``keep`` (412) or ``error``.

    A host in ``tag_deleters`` loses just the tag; elsewhere the manifest is deleted by digest."""
    done: dict[tuple[str, str, Digest], PruneDecision] = {}
    result = []
    for decision in decisions:
        if decision.action != "prune" or decision.digest is None:
            result.append(decision)
            continue
        tag_deleter = tag_deleters.get(decision.registry)
        key = (decision.registry, decision.repository, decision.digest)
        if tag_deleter is None and key in done:
            # The same manifest DELETE already removed this tag too.
            result.append(replace(done[key], tag=decision.tag))
            continue
        client = ctx.client(decision.registry, "dest")
        try:
            if tag_deleter is not None:
                await tag_deleter(client, decision.repository, decision.digest, decision.tag)
            else:
                await delete_manifest(client, decision.repository, decision.digest)
            outcome = replace(decision, action="deleted")
        except ImmutableTagError:
            outcome = replace(decision, action="keep", reason="immutable tag (HTTP 412)")
        except AsyncSyncError as exc:
            outcome = replace(decision, action="error", reason=f"delete failed: {exc}")
        done[key] = outcome
        result.append(outcome)
    return result


class PruneHooks(SyncHooks):
    """``--prune`` in a run: decisions previewed by ``--dry-run``, applied after the copies.

    ``tag_deleters`` (host -> :class:`TagDeleter`) is given by whoever assembles the run's hooks
    for the registries that remove a tag alone (Harbor); sync itself knows no such registry."""

    def __init__(
        self,
        spec: SyncSpec,
        owns: RepositoryFilter | None = None,
        tag_deleters: Mapping[str, TagDeleter] | None = None,
    ) -> None:
        self.spec = spec
        self.tag_deleters: Mapping[str, TagDeleter] = dict(tag_deleters or {})
        self.owns: RepositoryFilter = owns or (lambda registry, repository: True)
        self.lister: RecordingLister | None = None
        self.decisions: list[PruneDecision] = []
        self.notes: list[str] = []
        self.skipped_reason = ""

    def source_lister(self, lister: SourceLister, ctx: RunContext) -> SourceLister:
        self.lister = RecordingLister(lister)
        return self.lister

    async def _plan(self, ctx: RunContext) -> None:
        assert self.lister is not None, "source_lister() is called before any prune step"
        self.decisions, self.notes = await plan_prune(
            self.spec, self.lister, ctx, self.owns, self.tag_deleters
        )

    async def preview(self, plan: Plan, ctx: RunContext) -> list[str]:
        await self._plan(ctx)
        pruned = sum(1 for d in self.decisions if d.action == "prune")
        return [*map(str, self.decisions), *self.notes, f"prune: {pruned} tag(s) to delete"]

    async def after_copy(self, plan: Plan, report: SyncReport, ctx: RunContext) -> None:
        if report.stopped_reason:
            self.skipped_reason = f"not pruned: the run stopped early ({report.stopped_reason})"
            return
        await self._plan(ctx)
        self.decisions = await apply_prune(self.decisions, ctx, self.tag_deleters)

    def summary_lines(self) -> list[str]:
        if self.skipped_reason:
            return [self.skipped_reason]
        deleted = sum(1 for d in self.decisions if d.action == "deleted")
        kept = sum(1 for d in self.decisions if d.action == "keep")
        errors = sum(1 for d in self.decisions if d.action == "error")
        return [
            *map(str, self.decisions),
            *self.notes,
            f"Pruned {deleted} tag(s); left {kept} with a reason; {errors} error(s)",
        ]

    def report_data(self) -> dict[str, Any]:
        return {
            "prune": {
                "skipped": self.skipped_reason,
                "notes": self.notes,
                "tags": [
                    {
                        "destination": f"{d.registry}/{d.repository}:{d.tag}",
                        "action": d.action,
                        "reason": d.reason,
                        "digest": str(d.digest or ""),
                    }
                    for d in self.decisions
                ],
            }
        }

    @property
    def ok(self) -> bool:
        return not any(d.action == "error" for d in self.decisions)
