"""Harbor support for a sync run (:class:`HarborHooks`, a :class:`~asyncsync.sync.hooks.SyncHooks`).

For registries declared ``type: harbor`` in the spec:

* **sources**: discovery through the Harbor API (:class:`~asyncsync.harbor.lister.HarborLister`);
* **destinations**: before any copy, every destination project of the plan is checked
  (``HEAD /api/v2.0/projects?project_name=``). Harbor never creates a project on push; the push
  then fails with a bare "unauthorized". A missing project is created when the registry has
  ``create-projects: true`` (or ``--create-projects``), else its images leave the plan with a
  plan error that says so. A project that cannot be created (a robot account may not) does
  the same, with Harbor's answer. A check that Harbor refuses (401/403: some accounts may not
  ask) keeps the images: their pushes tell the rest;
* **dry runs**: a destination project that does not exist yet holds nothing, so its images
  show as "destination absent" (Harbor would answer the HEADs with 401);
* **mounts**: the run's :class:`~asyncsync.copy.BlobCoordinator` asks
  ``/api/v2.0/repositories?q=blob_digest=`` for a blob of at least :data:`MIN_LOOKUP_SIZE`
  bytes the run has no location of, so a layer already somewhere in the target Harbor is
  mounted instead of uploaded (smaller blobs cost less to upload than to look up). The query
  sees the projects the credentials may see; Harbor shows robot accounts public projects only;
* **immutable tags**: an image whose destination tag exists with another digest (the HEAD
  decision "destination digest differs") is checked against its project's tag-immutability
  rules (:mod:`asyncsync.harbor.immutable`, read once per project per run). A tag the rules
  select is skipped as ``immutable``, exactly as Harbor's 412 is reported, before any blob
  request to the destination. Rules that cannot be read (a robot account may not: 401/403)
  or evaluated mean "unknown": the image is copied and Harbor's 412, if it comes, is the
  fallback. Tags that do not exist yet are never checked: an immutable tag can be pushed once.

``--create-projects`` on the command line treats every destination registry as a Harbor with
``create-projects: true`` (a skopeo-format spec cannot declare ``type: harbor``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import replace
from typing import Any

from asyncsync.copy.coordinator import BlobCoordinator
from asyncsync.digest import Digest
from asyncsync.errors import AsyncSyncError, AuthenticationError, PermissionDeniedError
from asyncsync.harbor.api import HarborAPI
from asyncsync.harbor.immutable import ImmutabilityRules, ImmutableRule
from asyncsync.harbor.lister import HarborLister
from asyncsync.limits import SingleFlight
from asyncsync.registry.client import RegistryClient
from asyncsync.specs.model import SyncSpec
from asyncsync.sync.decisions import REASON_DIFFERS, Decision, DestinationChecker
from asyncsync.sync.hooks import RunContext, SyncHooks
from asyncsync.sync.plan import Plan, PlanError, PlannedImage, SourceLister, bounded_map

log = logging.getLogger("asyncsync.harbor")

#: Project checks/creations in flight.
PROJECT_CONCURRENCY = 4
#: Smallest blob worth a mount-source query (a query and a mount are two round trips).
MIN_LOOKUP_SIZE = 256 * 1024


def harbor_hosts(spec: SyncSpec) -> frozenset[str]:
    """Hosts the spec declares ``type: harbor``."""
    return frozenset(r.host for r in spec.registries if r.kind == "harbor")


async def delete_harbor_tag(client: RegistryClient, repository: str, digest: Digest, tag: str) -> None:
    """Remove ``tag`` alone through Harbor's tag API (a :class:`~asyncsync.sync.prune.TagDeleter`):
    the artifact and its other tags stay. Harbor's 412 raises
    :class:`~asyncsync.errors.ImmutableTagError`."""
    await HarborAPI(client).delete_tag(repository, digest, tag)


class HarborHooks(SyncHooks):
    """See the module docstring. ``create_projects`` is ``--create-projects``."""

    def __init__(
        self, spec: SyncSpec, *, create_projects: bool = False, min_lookup_size: int = MIN_LOOKUP_SIZE
    ) -> None:
        self.hosts = harbor_hosts(spec)
        self.create_all = create_projects
        self.creating = frozenset(r.host for r in spec.registries if r.kind == "harbor" and r.create_projects)
        self.min_lookup_size = min_lookup_size
        self.created: list[str] = []
        self.refused: list[str] = []
        # (registry, project) -> exists (or why that could not be checked), as this run found it
        self._known: SingleFlight[tuple[str, str], bool | AsyncSyncError] = SingleFlight()
        #: this run's immutability rules (set by :meth:`destination_immutable` on first use)
        self.immutability: ImmutabilityRules | None = None
        #: images skipped because the rules said their tag is immutable
        self.immutable_by_rule = 0

    def _is_harbor_destination(self, host: str) -> bool:
        return self.create_all or host in self.hosts

    def _creates(self, host: str) -> bool:
        return self.create_all or host in self.creating

    def source_lister(self, lister: SourceLister, ctx: RunContext) -> SourceLister:
        return HarborLister(lister, ctx, self.hosts) if self.hosts else lister

    def _projects(self, plan: Plan) -> dict[tuple[str, str], PlannedImage]:
        """Destination (registry, project) of the plan's Harbor images -> the first image there."""
        projects: dict[tuple[str, str], PlannedImage] = {}
        for image in plan.images:
            dest = image.destination
            if self._is_harbor_destination(dest.registry) and "/" in dest.repository:
                projects.setdefault((dest.registry, dest.repository.split("/", 1)[0]), image)
        return projects

    async def project_exists(self, key: tuple[str, str], ctx: RunContext) -> bool:
        """Whether destination project ``key`` exists; asked once per run (single-flight), and a
        failed check is remembered too (an account that may not ask is not asked per image)."""

        async def check() -> bool | AsyncSyncError:
            try:
                return await HarborAPI(ctx.client(key[0], "dest")).project_exists(key[1])
            except AsyncSyncError as exc:
                return exc

        known = await self._known.do(key, check)
        if isinstance(known, AsyncSyncError):
            raise known
        return known

    async def _existing(
        self, keys: Collection[tuple[str, str]], ctx: RunContext
    ) -> dict[tuple[str, str], bool | AsyncSyncError]:
        async def exists(key: tuple[str, str]) -> bool:
            return await self.project_exists(key, ctx)

        return await bounded_map(sorted(keys), exists, PROJECT_CONCURRENCY)

    def destination_checker(self, checker: DestinationChecker, ctx: RunContext) -> DestinationChecker:
        return _MissingProjects(checker, self, ctx)

    async def preview(self, plan: Plan, ctx: RunContext) -> list[str]:
        lines: list[str] = []
        projects = self._projects(plan)
        for (host, project), found in sorted((await self._existing(projects, ctx)).items()):
            if isinstance(found, AsyncSyncError):
                lines.append(f"note  cannot check Harbor project {host}/{project}: {found}")
            elif not found and self._creates(host):
                lines.append(f"create Harbor project {host}/{project} (missing; create-projects)")
            elif not found:
                lines.append(f"error {projects[(host, project)].origin}: {_missing(host, project)}")
        return lines

    async def before_copy(self, plan: Plan, ctx: RunContext) -> Plan:
        projects = self._projects(plan)
        if not projects:
            return plan
        existing = await self._existing(projects, ctx)
        failed: dict[tuple[str, str], str] = {}
        to_create = []
        for key, found in existing.items():
            if isinstance(found, AuthenticationError | PermissionDeniedError):
                log.info("cannot check Harbor project %s/%s: %s", key[0], key[1], found)
            elif isinstance(found, AsyncSyncError):
                failed[key] = f"checking Harbor project {key[1]!r} on {key[0]}: {found}"
            elif not found and self._creates(key[0]):
                to_create.append(key)
            elif not found:
                failed[key] = _missing(*key)

        async def create(key: tuple[str, str]) -> bool:
            return await HarborAPI(ctx.client(key[0], "dest")).create_project(key[1])

        for key, result in (await bounded_map(to_create, create, PROJECT_CONCURRENCY)).items():
            if isinstance(result, AsyncSyncError):
                failed[key] = (
                    f"Harbor project {key[1]!r} is missing on {key[0]} and could not be created: {result}"
                )
                self.refused.append(f"{key[0]}/{key[1]}")
            else:
                self.created.append(f"{key[0]}/{key[1]}")
                self._known.remember(key, True)
        self.created.sort()
        if not failed:
            return plan
        kept = tuple(
            image
            for image in plan.images
            if (image.destination.registry, image.destination.repository.split("/", 1)[0]) not in failed
        )
        errors = [PlanError(projects[key].origin, message) for key, message in failed.items()]
        merged = tuple(sorted((*plan.errors, *errors), key=lambda error: error.origin.line))
        return replace(plan, images=kept, errors=merged)

    def configure(self, coordinator: BlobCoordinator, ctx: RunContext) -> None:
        for host in sorted(self.hosts):
            coordinator.set_locator(host, _Locator(HarborAPI(ctx.client(host, "dest")), self.min_lookup_size))

    async def destination_immutable(self, image: PlannedImage, decision: Decision, ctx: RunContext) -> bool:
        """``True`` when ``image`` would move an existing tag that its Harbor project's rules
        keep immutable (see the module docstring); ``False`` when not or unknown."""
        dest = image.destination
        if (
            decision.reason != REASON_DIFFERS
            or dest.tag is None
            or not self._is_harbor_destination(dest.registry)
        ):
            return False
        if self.immutability is None:

            async def fetch(registry: str, project: str) -> tuple[ImmutableRule, ...]:
                return await HarborAPI(ctx.client(registry, "dest")).immutable_rules(project)

            self.immutability = ImmutabilityRules(fetch)
        if await self.immutability.immutable(dest.registry, dest.repository, dest.tag) is not True:
            return False
        self.immutable_by_rule += 1
        return True

    def summary_lines(self) -> list[str]:
        return [f"Created Harbor project {name}" for name in self.created]

    def report_data(self) -> dict[str, Any]:
        """``{"harbor": {...}}`` with what happened, or ``{}``: ``created_projects`` and
        ``projects_not_created``; ``immutable_skipped_by_rule`` (images the rules skipped, a
        subset of the report's ``immutable`` skips); ``immutable_rules_unreadable``
        (``registry/project`` whose rules could not be read: those rely on Harbor's 412)."""
        data: dict[str, Any] = {}
        if self.created or self.refused:
            data.update(created_projects=self.created, projects_not_created=sorted(self.refused))
        if self.immutable_by_rule:
            data["immutable_skipped_by_rule"] = self.immutable_by_rule
        unreadable = self.immutability.unreadable if self.immutability is not None else []
        if unreadable:
            data["immutable_rules_unreadable"] = sorted(unreadable)
        return {"harbor": data} if data else {}


class _Locator:
    """The mount-source query of one destination Harbor, for blobs worth it."""

    def __init__(self, api: HarborAPI, min_size: int) -> None:
        self.api = api
        self.min_size = min_size

    async def __call__(self, digest: Digest, size: int) -> list[str]:
        if size < self.min_size:
            return []
        return await self.api.repositories_with_blob(digest)


class _MissingProjects:
    """Destination checks that know a Harbor project which does not exist holds nothing."""

    def __init__(self, inner: DestinationChecker, hooks: HarborHooks, ctx: RunContext) -> None:
        self.inner = inner
        self.hooks = hooks
        self.ctx = ctx

    async def _missing(self, registry: str, repository: str) -> bool:
        if not self.hooks._is_harbor_destination(registry) or "/" not in repository:
            return False
        try:
            return not await self.hooks.project_exists((registry, repository.split("/", 1)[0]), self.ctx)
        except AsyncSyncError:
            return False  # cannot tell: the registry's own answer will

    async def head(self, registry: str, repository: str, reference: str) -> Digest | None:
        if await self._missing(registry, repository):
            return None
        return await self.inner.head(registry, repository, reference)

    async def tags(self, registry: str, repository: str) -> list[str]:
        if await self._missing(registry, repository):
            return []
        return await self.inner.tags(registry, repository)

    async def repository_exists(self, registry: str, repository: str) -> bool:
        if await self._missing(registry, repository):
            return False
        return await self.inner.repository_exists(registry, repository)


def _missing(host: str, project: str) -> str:
    return (
        f"Harbor project {project!r} does not exist on {host}; Harbor does not create projects on "
        "push (its refusal reads 'unauthorized'): create it, or set 'create-projects: true' "
        "(or --create-projects)"
    )
