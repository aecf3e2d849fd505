"""Sync with local storage: ``sync --src dir`` and ``sync --dest dir``, as skopeo does them.

Air-gapped transfers go registry -> directory tree -> (carried over) -> registry. The tree is
skopeo's (:mod:`asyncsync.transports.directory.sync_layout`): one ``dir:`` image per directory.

The sync engine itself stays registry-shaped; local storage enters at two points:

* **Planning.** A :class:`~asyncsync.sync.plan.Planner` replaces
  :func:`~asyncsync.sync.spec_plan.build_plan` for the run.
  :class:`DirTreeDestination` builds the registry plan as usual and then gives every image its
  directory (:attr:`PlannedImage.destination_local`, skopeo's naming via
  :func:`~asyncsync.transports.directory.sync_layout.dir_name_for`). :class:`DirTreeSource`
  walks a tree (:func:`~asyncsync.transports.directory.sync_layout.list_dir_images`), reads each
  ``manifest.json`` (no network) and plans one image per directory with
  :attr:`PlannedImage.source_local` set, named below the destination registry as skopeo names it.
  Two images planned into one place are both dropped with a plan error naming both.
* **Skip decisions.** :func:`local_image_state` tells, without network, what a destination
  directory holds: the digest of its ``manifest.json`` and whether every file that manifest
  references (child manifests, config, layers) is there with its size.
  :class:`~asyncsync.sync.decisions.DestinationCheck` uses it for images with a local
  destination; registry destinations keep their HEAD-only checks.

The copy itself goes through the same bounded pool and ``copy_image`` as registry images, with
``dir:`` references opened where ``docker://`` ones would be. :func:`local_sync` turns the
command line (``--src``/``--dest``, ``--scoped``, ``--append-suffix``) into the spec and planner.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import anyio

from asyncsync.digest import Digest
from asyncsync.errors import AsyncSyncError, InvalidReferenceError, LocalStorageError, UsageError
from asyncsync.manifest import (
    MAX_MANIFEST_SIZE,
    ImageIndex,
    ImageManifest,
    Manifest,
    manifest_digest,
    parse_manifest,
)
from asyncsync.reference import ImageName, parse_reference
from asyncsync.specs.load import load_spec
from asyncsync.specs.model import CopySettings, Origin, SyncSpec
from asyncsync.specs.skopeo import COMMAND_LINE, docker_source_spec
from asyncsync.sync.plan import (
    DEFAULT_PLAN_CONCURRENCY,
    OnPlanned,
    Plan,
    PlanError,
    PlannedImage,
    Planner,
    SourceLister,
    bounded_map,
    build_registry_plan,
)
from asyncsync.transports.containers_storage.reference import StorageReference
from asyncsync.transports.containers_storage.source import stored_image_id
from asyncsync.transports.directory.reference import DirReference
from asyncsync.transports.directory.source import MANIFEST_FILE, child_manifest_name
from asyncsync.transports.directory.sync_layout import DirImage, dir_name_for, list_dir_images
from asyncsync.transports.local_files import read_existing

# ---------------------------------------------------------------------------------- state of a dir


@dataclass(frozen=True, slots=True)
class LocalState:
    """What a destination directory holds: ``digest`` of its ``manifest.json`` (``None``: no
    image) and ``missing``, the first referenced file that is absent or has the wrong size."""

    digest: Digest | None
    missing: str | None = None


def _read_capped(path: str, limit: int) -> bytes | None:
    # A destination path whose parent is a file holds no image either.
    return read_existing(path, limit, absent=(FileNotFoundError, NotADirectoryError))


def _has_file(root: str, name: str, size: int | None) -> bool:
    try:
        stat = os.stat(os.path.join(root, name))
    except OSError:
        return False
    return size is None or stat.st_size == size


def _first_missing(root: str, manifest: Manifest, children: bool) -> str | None:
    """The first file ``manifest`` needs in ``root`` that is absent or of the wrong size."""
    if isinstance(manifest, ImageIndex):
        if not children:
            return None
        for child in manifest.manifests:
            name = child_manifest_name(child.digest)
            raw = _read_capped(os.path.join(root, name), MAX_MANIFEST_SIZE)
            if raw is None or len(raw) != child.size or Digest.of(raw) != child.digest:
                return name
            try:
                parsed = parse_manifest(raw, child.media_type or None, digest=child.digest)
            except AsyncSyncError:
                return name
            missing = _first_missing(root, parsed, children)
            if missing is not None:
                return missing
        return None
    needed: list[tuple[str, int | None]]
    if isinstance(manifest, ImageManifest):
        needed = [(b.digest.hex, b.size) for b in manifest.blobs() if not b.is_foreign]
    else:
        needed = [(digest.hex, None) for digest in manifest.fs_layers]
    for name, size in needed:
        if not _has_file(root, name, size):
            return name
    return None


def dir_image_state(path: str, *, children: bool = True) -> LocalState:
    """The :class:`LocalState` of the ``dir:`` image at ``path`` (blocking; run in a thread).

    ``children=False`` does not require an index's child manifests (an ``index-only`` copy).
    A ``manifest.json`` that cannot be parsed counts as present but incomplete (a copy
    overwrites it); an unreadable directory raises :class:`LocalStorageError`.
    """
    raw = _read_capped(os.path.join(path, MANIFEST_FILE), MAX_MANIFEST_SIZE)
    if raw is None:
        return LocalState(None)
    try:
        digest = manifest_digest(raw)
        manifest = parse_manifest(raw, digest=digest)
    except AsyncSyncError:
        return LocalState(Digest.of(raw), MANIFEST_FILE)
    return LocalState(digest, _first_missing(path, manifest, children))


async def local_image_state(image: PlannedImage) -> LocalState | None:
    """The state of ``image``'s local destination, or ``None`` when it has none this module can
    check: ``dir:`` destinations are checked; a ``containers-storage:`` one only for
    ``skip-existing`` (whether the name is there: podman keeps no manifest digest to compare)."""
    destination = image.destination_local
    if isinstance(destination, StorageReference):
        if not image.settings.skip_existing:
            return None
        image_id = await stored_image_id(destination)
        return LocalState(Digest("sha256", image_id) if image_id is not None else None)
    if not isinstance(destination, DirReference):
        return None
    children = image.settings.multi_arch != "index-only"
    path = destination.path
    return await anyio.to_thread.run_sync(lambda: dir_image_state(os.path.abspath(path), children=children))


# ---------------------------------------------------------------------------------- planning


def drop_conflicts(
    images: list[PlannedImage], key: Callable[[PlannedImage], str], what: str
) -> tuple[list[PlannedImage], list[PlanError]]:
    """Images whose ``key`` (where they are written) is unique; the others become plan errors."""
    by_key: dict[str, list[PlannedImage]] = {}
    for image in images:
        by_key.setdefault(key(image), []).append(image)
    kept: list[PlannedImage] = []
    errors: list[PlanError] = []
    for target, group in by_key.items():
        first = group[0]
        if all((i.source, i.source_local) == (first.source, first.source_local) for i in group):
            kept.append(first)
            continue
        for other in group[1:]:
            errors.append(
                PlanError(
                    other.origin,
                    f"{what} {target} is written twice: by {first.origin} (from {first.describe_source()}) "
                    f"and here (from {other.describe_source()}); neither is copied",
                )
            )
    order = {id(image): position for position, image in enumerate(images)}
    return sorted(kept, key=lambda image: order[id(image)]), errors


@dataclass(frozen=True)
class DirTreeDestination:
    """``sync --dest dir ROOT``: each planned image goes to ``ROOT/<skopeo's name>`` (+ suffix).

    The name is the source's ``registry/repo:tag`` (``@digest`` when untagged) with
    ``scoped``, else its last path component (``app:v1``), as ``skopeo sync`` names it;
    ``append_suffix`` is appended to the directory name.
    """

    root: str
    scoped: bool = False
    append_suffix: str = ""

    def directory_for(self, image: PlannedImage) -> str:
        """The image's directory; raises :class:`LocalStorageError` for a name that is no safe
        relative path, or :class:`InvalidReferenceError` for a suffix on a digest reference."""
        source = image.source
        if source.tag is None and self.append_suffix:
            raise InvalidReferenceError("--append-suffix cannot apply to a digest reference")
        name = ImageName(
            source.registry, source.repository, source.tag, None if source.tag else source.digest
        )
        return os.path.join(self.root, dir_name_for(name, self.scoped)) + self.append_suffix

    def assign(self, plan: Plan) -> Plan:
        """``plan`` with every image's ``destination_local`` set; unnamable or colliding images
        become plan errors."""
        named: list[PlannedImage] = []
        errors = list(plan.errors)
        for image in plan.images:
            try:
                path = self.directory_for(image)
            except (LocalStorageError, InvalidReferenceError) as exc:
                errors.append(PlanError(image.origin, f"no directory for {image.describe_source()}: {exc}"))
                continue
            named.append(replace(image, destination_local=DirReference(path)))
        kept, conflicts = drop_conflicts(named, lambda image: image.describe_destination(), "directory")
        errors.extend(conflicts)
        errors.sort(key=lambda error: error.origin.line)
        return Plan(images=tuple(kept), errors=tuple(errors), warnings=plan.warnings)

    async def plan(self, spec: SyncSpec, lister: SourceLister, *, on_image: OnPlanned | None = None) -> Plan:
        """A :class:`~asyncsync.sync.plan.Planner`: the registry plan, then :meth:`assign`.

        ``spec`` is the source side of ``sync --dest dir`` (skopeo YAML or ``--src docker``),
        which has registry entries only. Announces nothing (``on_image``): :meth:`assign` gives
        each image its directory after planning."""
        return self.assign(await build_registry_plan(spec, lister))


@dataclass(frozen=True, slots=True)
class _Found:
    digest: Digest
    media_type: str


def _read_manifest(image: DirImage) -> _Found:
    raw = _read_capped(os.path.join(image.path, MANIFEST_FILE), MAX_MANIFEST_SIZE)
    if raw is None:
        raise LocalStorageError(f"{MANIFEST_FILE} disappeared")
    try:
        digest = manifest_digest(raw)
        parsed = parse_manifest(raw, digest=digest)
    except AsyncSyncError as exc:
        raise LocalStorageError(f"{MANIFEST_FILE}: {exc}") from None
    return _Found(digest, parsed.media_type)


@dataclass(frozen=True)
class DirTreeSource:
    """``sync --src dir ROOT DEST``: every image directory under ``ROOT`` to ``DEST/<suffix>``.

    ``suffix`` is the image's path below ``ROOT`` (``ROOT``'s own name when ``ROOT`` is the
    image); without ``scoped`` only its last component, as ``skopeo sync`` does. A name
    without tag gets ``latest``. Each image is pinned by the digest of its ``manifest.json``
    (read at planning, no network); plan errors name the directory.
    """

    root: str
    destination: str
    scoped: bool = False
    append_suffix: str = ""
    settings: CopySettings = field(default_factory=CopySettings)

    def destination_for(self, image: DirImage) -> ImageName:
        suffix = image.destination_suffix(self.root, self.scoped)
        text = posixpath.join(self.destination, suffix) + self.append_suffix
        return parse_reference(text, default_tag=True)

    async def plan(self, spec: SyncSpec, lister: SourceLister, *, on_image: OnPlanned | None = None) -> Plan:
        """A :class:`~asyncsync.sync.plan.Planner` ignoring ``spec``, ``lister`` and ``on_image``
        (no registry is read, nothing to announce early); raises :class:`LocalStorageError` when
        ``root`` is not a directory."""
        found = await anyio.to_thread.run_sync(list_dir_images, self.root)
        if not found:
            raise LocalStorageError(f"{self.root}: no image directory (with {MANIFEST_FILE}) found")

        async def read(position: int) -> _Found:
            return await anyio.to_thread.run_sync(_read_manifest, found[position])

        manifests = await bounded_map(list(range(len(found))), read, DEFAULT_PLAN_CONCURRENCY)
        images: list[PlannedImage] = []
        errors: list[PlanError] = []
        for position, image in enumerate(found):
            origin = Origin(image.path, 0)
            where = f"dir:{image.path}"
            manifest = manifests[position]
            if isinstance(manifest, AsyncSyncError):
                errors.append(PlanError(origin, f"reading {where}: {manifest}"))
                continue
            try:
                name = self.destination_for(image)
            except InvalidReferenceError as exc:
                errors.append(PlanError(origin, f"no valid destination for {where}: {exc}"))
                continue
            if name.digest is not None and name.digest != manifest.digest:
                errors.append(
                    PlanError(origin, f"{where} is named {name.digest} but its manifest is {manifest.digest}")
                )
                continue
            images.append(
                PlannedImage(
                    source=replace(name, digest=manifest.digest),
                    destination=name,
                    media_type=manifest.media_type,
                    origin=origin,
                    settings=self.settings,
                    source_local=DirReference(image.path),
                )
            )
        kept, conflicts = drop_conflicts(images, lambda image: str(image.destination), "destination")
        return Plan(images=tuple(kept), errors=tuple(errors + conflicts))


# ---------------------------------------------------------------------------------- command line


@dataclass(frozen=True)
class LocalSync:
    """What ``sync`` runs when a side is local: the spec (registry settings, sources) and planner."""

    spec: SyncSpec
    planner: Planner


@dataclass(frozen=True, slots=True)
class SyncArguments:
    """``sync --src SRC --dest DEST SOURCE [DESTINATION]`` and the flags that shape its names, as
    the local planners (:func:`local_sync`, :func:`~asyncsync.sync.storage_sync.storage_sync`)
    read them."""

    src: str | None
    dest: str | None
    source: str
    destination: str | None
    scoped: bool = False
    append_suffix: str = ""
    settings: CopySettings = field(default_factory=CopySettings)
    prune: bool = False
    create_projects: bool = False


def source_named_spec(args: SyncArguments, types: str) -> SyncSpec:
    """The spec of ``--src yaml|docker`` into a local destination: each image keeps its source
    name (scoped, no suffix), the Docker reference the local copy records. :class:`UsageError`
    for another ``--src`` (``types`` lists the source types the caller accepts)."""
    if args.src == "yaml":
        if not Path(args.source).is_file():
            raise UsageError(f"{args.source}: no such spec file")
        return load_spec(args.source, destination="", scoped=True, settings=args.settings)
    if args.src == "docker":
        return docker_source_spec(args.source, "", scoped=True, settings=args.settings)
    raise UsageError(f"--src {args.src or '(missing)'}: unsupported source type ({types})")


def local_sync(args: SyncArguments) -> LocalSync | None:
    """The run for ``args`` when either side is ``dir``;
    ``None`` when neither is (the registry-only path applies). Raises :class:`UsageError` for
    combinations skopeo refuses too (``dir`` to ``dir``), for a missing argument, and for
    ``--prune`` (a dir side has no tag list to prune by) or ``--create-projects`` into a directory.

    For ``--dest dir`` the spec is built with the source names themselves as destinations
    (scoped, no suffix): that is the Docker reference each directory keeps, and
    :class:`DirTreeDestination` applies the user's ``--scoped``/``--append-suffix`` to the path.
    """
    src, dest, destination = args.src, args.dest, args.destination
    if src != "dir" and dest != "dir":
        return None
    if src == "dir" and dest == "dir":
        raise UsageError("sync from 'dir' to 'dir' is not supported (as in skopeo): copy the tree itself")
    if args.prune:
        raise UsageError(
            "--prune needs registries on both sides; it cannot be used with a dir source or destination"
        )
    if args.create_projects and dest == "dir":
        raise UsageError("--create-projects creates Harbor projects; it cannot be used with --dest dir")
    if destination is None:
        what = "a directory" if dest == "dir" else "a registry host, optionally with a path prefix"
        raise UsageError(f"missing DESTINATION argument ({what})")
    if src == "dir":
        if dest != "docker":
            raise UsageError(f"--dest {dest or '(missing)'}: a dir source syncs to 'docker' only")
        tree = DirTreeSource(args.source, destination, args.scoped, args.append_suffix, args.settings)
        return LocalSync(SyncSpec(file=COMMAND_LINE, kind="command-line", entries=()), tree.plan)
    spec = source_named_spec(args, "yaml, docker or dir")
    return LocalSync(spec, DirTreeDestination(destination, args.scoped, args.append_suffix).plan)
