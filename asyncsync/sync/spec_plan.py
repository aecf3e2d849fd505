"""The plan of a whole spec (:func:`build_plan`), including entries with a local directory tree
on one side (``from: dir:`` / ``to: dir:``).

A spec without ``dir:`` entries is one registry plan (:func:`~asyncsync.sync.plan.build_registry_plan`).

An air-gapped transfer written as a spec instead of ``sync --src/--dest dir`` flags::

    sync:
      - from: registry.example/team/*     # registry -> tree: one dir: image per tag
        to: dir:/media/usb
        scoped: true                      # optional: registry/team/app:v1 instead of app:v1
      - from: dir:/media/usb              # tree -> registry: every image of the tree
        to: mirror.internal/team/

Planning reuses :mod:`asyncsync.sync.local` as it is:

* a ``to: dir:`` entry is planned by :func:`~asyncsync.sync.plan.build_registry_plan` alone (its
  destination rule names each image by its source reference) and then given its directories
  by :class:`~asyncsync.sync.local.DirTreeDestination` (skopeo's naming, ``scoped`` as the
  entry says);
* a ``from: dir:`` entry is planned by :class:`~asyncsync.sync.local.DirTreeSource` (every
  image directory, pinned by the digest of its ``manifest.json``, named below the entry's
  registry prefix as ``--src dir`` names it), and the entry's tag filter then keeps, per
  destination repository, the images whose tag it selects. A tree that does not exist is a
  plan error at the entry's line, not a load error: the medium may be mounted later.
* a ``to: containers-storage:[SPEC]`` entry (podman's store) is planned like ``to: dir:`` and each
  image then written to ``containers-storage:[SPEC]<its source name>:<tag>``, as ``podman pull``
  names it. containers-storage keeps names by tag, so an image the plan knows by digest only is a
  plan error; a storage specifier that does not parse is one plan error at the entry's line.
* a ``from: containers-storage:[SPEC]REPO`` entry (podman's store to a registry) is planned by
  :func:`~asyncsync.sync.storage_source.plan_storage_source` from the store's image list.

Registry-only entries are planned together exactly as before (one registry plan), so a
mixed spec runs in one pass; an image written twice across the parts (same directory or same
registry reference, different sources) is dropped with a plan error naming both lines.
:func:`build_plan` hands a spec with local entries to :func:`plan_with_local_entries`; every
command (``sync``, ``--dry-run``, ``mirror``) plans through it. It sits above
:mod:`asyncsync.sync.plan` and :mod:`asyncsync.sync.local`, which never import it.
"""

from __future__ import annotations

import posixpath
from dataclasses import replace

from asyncsync.errors import AsyncSyncError, InvalidReferenceError
from asyncsync.specs.model import SyncEntry, SyncSpec
from asyncsync.sync.local import DirTreeDestination, DirTreeSource, drop_conflicts
from asyncsync.sync.plan import (
    DEFAULT_PLAN_CONCURRENCY,
    OnPlanned,
    Plan,
    PlanError,
    PlannedImage,
    SourceLister,
    build_registry_plan,
)
from asyncsync.sync.storage_source import plan_storage_source
from asyncsync.transports.containers_storage.reference import StorageReference, parse_storage_reference


def _prefix(entry: SyncEntry) -> str:
    """The registry prefix (``host/path``) a tree's images are named below."""
    destination = entry.destination
    return (
        posixpath.join(destination.registry, destination.path) if destination.path else destination.registry
    )


def _select_tags(entry: SyncEntry, plan: Plan) -> Plan:
    """``plan`` (of a ``from: dir:`` entry) reduced to the images whose tag ``entry.tags`` selects.

    Tags are selected per destination repository (so ``latest: N`` means N per repository).
    An image named by digest (``app@sha256:...``) has no tag: only an unfiltered entry keeps it.
    An explicit tag no image of the tree has is a plan error.
    """
    tags = entry.tags
    if tags.selects_all:
        return plan
    by_repository: dict[tuple[str, str], list[str]] = {}
    for image in plan.images:
        if image.destination.tag is not None:
            key = (image.destination.registry, image.destination.repository)
            by_repository.setdefault(key, []).append(image.destination.tag)
    selected = {key: set(tags.select(listed)) for key, listed in by_repository.items()}
    kept = [
        image
        for image in plan.images
        if image.destination.tag is not None
        and image.destination.tag in selected[(image.destination.registry, image.destination.repository)]
    ]
    errors = list(plan.errors)
    warnings = list(plan.warnings)
    present = {tag for listed in by_repository.values() for tag in listed}
    for tag, line in tags.tags:
        if tag not in present:
            errors.append(
                PlanError(
                    replace(entry.origin, line=line), f"no image of dir:{entry.source_dir} has tag {tag}"
                )
            )
    if plan.images and not kept and not tags.tags:
        warnings.append(
            PlanError(entry.origin, f"no image of dir:{entry.source_dir} matches {tags.describe()}")
        )
    return Plan(images=tuple(kept), errors=tuple(errors), warnings=tuple(warnings))


async def _plan_source_dir(entry: SyncEntry, spec: SyncSpec, lister: SourceLister) -> Plan:
    """The plan of a ``from: dir:`` entry; every problem is a plan error at the entry's line."""
    assert entry.source_dir is not None
    tree = DirTreeSource(entry.source_dir, _prefix(entry), entry.scoped, "", entry.settings)
    try:
        plan = await tree.plan(spec, lister)
    except AsyncSyncError as exc:
        return Plan(images=(), errors=(PlanError(entry.origin, f"reading dir:{entry.source_dir}: {exc}"),))
    # DirTreeSource names the image directory as the origin; the spec line is what a user edits.
    images = tuple(replace(image, origin=entry.origin) for image in plan.images)
    errors = tuple(PlanError(entry.origin, error.message) for error in plan.errors)
    return _select_tags(entry, Plan(images=images, errors=errors, warnings=plan.warnings))


async def _plan_destination_dir(entry: SyncEntry, spec: SyncSpec, lister: SourceLister, limit: int) -> Plan:
    """The plan of a ``to: dir:`` entry: the registry plan of the entry alone, then its directories."""
    plan = await build_registry_plan(replace(spec, entries=(entry,)), lister, limit=limit)
    return DirTreeDestination(entry.destination.path, entry.scoped).assign(plan)


async def _plan_destination_storage(
    entry: SyncEntry, spec: SyncSpec, lister: SourceLister, limit: int
) -> Plan:
    """The plan of a ``to: containers-storage:`` entry: the registry plan, then each image's name."""
    try:
        parse_storage_reference(f"{entry.destination.path}localhost/check:1")
    except InvalidReferenceError as exc:
        return Plan(images=(), errors=(PlanError(entry.origin, str(exc)),))
    plan = await build_registry_plan(replace(spec, entries=(entry,)), lister, limit=limit)
    images: list[PlannedImage] = []
    errors = list(plan.errors)
    for image in plan.images:
        name = image.destination
        if name.tag is None:
            errors.append(
                PlanError(
                    image.origin, f"{image.describe_source()}: containers-storage needs a tag, not a digest"
                )
            )
            continue
        reference = parse_storage_reference(f"{entry.destination.path}{name.name}:{name.tag}")
        assert isinstance(reference, StorageReference)
        images.append(replace(image, destination_local=reference))
    return Plan(images=tuple(images), errors=tuple(errors), warnings=plan.warnings)


async def plan_with_local_entries(
    spec: SyncSpec, lister: SourceLister, *, limit: int = DEFAULT_PLAN_CONCURRENCY
) -> Plan:
    """The plan of a spec with at least one local entry (see the module docstring).

    Images come in spec order of their parts: the registry-only entries first (as one
    :func:`build_registry_plan`), then each local entry in file order. Errors and warnings are sorted by
    spec line.
    """
    registry_entries = tuple(entry for entry in spec.entries if not entry.is_local)
    parts: list[Plan] = []
    if registry_entries:
        parts.append(await build_registry_plan(replace(spec, entries=registry_entries), lister, limit=limit))
    for entry in spec.entries:
        if entry.source_storage is not None:
            parts.append(await plan_storage_source(entry))
        elif entry.source_dir is not None:
            parts.append(await _plan_source_dir(entry, spec, lister))
        elif entry.destination.kind == "dir":
            parts.append(await _plan_destination_dir(entry, spec, lister, limit))
        elif entry.destination.kind == "containers-storage":
            parts.append(await _plan_destination_storage(entry, spec, lister, limit))
    images: list[PlannedImage] = [image for part in parts for image in part.images]
    kept, conflicts = drop_conflicts(images, lambda image: image.describe_destination(), "destination")
    errors = sorted(
        [error for part in parts for error in part.errors] + conflicts, key=lambda error: error.origin.line
    )
    warnings = sorted(
        [warning for part in parts for warning in part.warnings], key=lambda warning: warning.origin.line
    )
    return Plan(images=tuple(kept), errors=tuple(errors), warnings=tuple(warnings))


async def build_plan(
    spec: SyncSpec,
    lister: SourceLister,
    *,
    limit: int = DEFAULT_PLAN_CONCURRENCY,
    on_image: OnPlanned | None = None,
) -> Plan:
    """Expand ``spec`` into a :class:`~asyncsync.sync.plan.Plan`: a registry-only spec as one
    :func:`~asyncsync.sync.plan.build_registry_plan` (which announces its images to ``on_image``
    as they resolve), a spec with ``dir:`` entries by :func:`plan_with_local_entries` (which
    announces none: its images are renamed or dropped after the registry part). A
    :class:`~asyncsync.sync.plan.Planner`."""
    if spec.has_local_entries:
        return await plan_with_local_entries(spec, lister, limit=limit)
    return await build_registry_plan(spec, lister, limit=limit, on_image=on_image)
