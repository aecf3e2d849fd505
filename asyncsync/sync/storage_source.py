"""Sync out of podman's store: the plan of an entry whose source is containers-storage.

``from: containers-storage:[SPEC]REPO`` in a native spec, or ``sync --src containers-storage
[SPEC]REPO[:TAG] REGISTRY/PREFIX`` (:func:`asyncsync.sync.storage_sync.storage_sync`), reads the
store's image list once (``podman images`` / libpod's ``/images/json``, through
:func:`~asyncsync.transports.containers_storage.engine.find_engine`), and plans one image per
stored name ``registry/repository:tag`` whose repository one of the entry's selectors names
(globs allowed); the entry's tag filter then picks tags per repository, as it picks a registry's
listed tags, and the entry's destination rule names each image, as for a registry source.

Each image is pinned by its image ID: it is read as ``containers-storage:[SPEC]NAME:TAG@ID``, so
a tag moved to another image after planning fails that image instead of copying the other one.
:attr:`~asyncsync.sync.plan.PlannedImage.source` carries the ID as its digest (the config digest,
which a copy keeps); the manifest is generated when podman exports the image, so the destination
digest cannot be predicted (:attr:`~asyncsync.sync.plan.PlannedImage.manifest_pinned` is false) and
an image is copied on every run unless ``skip-existing`` finds its tag (the copy itself reuses the
layers the destination already has). A store that cannot be read, or a specifier that does not
parse, is one plan error at the entry's line.
"""

from __future__ import annotations

from dataclasses import replace

from asyncsync.digest import Digest
from asyncsync.errors import AsyncSyncError, InvalidReferenceError
from asyncsync.manifest import DOCKER_V2S2
from asyncsync.reference import ImageName, parse_reference
from asyncsync.specs.model import SourceSelector, SyncEntry
from asyncsync.sync.plan import Plan, PlanError, PlannedImage
from asyncsync.transports.containers_storage.engine import ImageInfo, close_engine, find_engine
from asyncsync.transports.containers_storage.reference import StorageReference, parse_storage_reference


def _selector_for(entry: SyncEntry, name: ImageName) -> SourceSelector | None:
    """The first of ``entry``'s selectors that names ``name``'s repository."""
    for selector in entry.sources:
        if selector.registry != name.registry:
            continue
        if selector.matches(name.repository) if selector.is_glob else selector.pattern == name.repository:
            return selector
    return None


def _stored_tags(images: list[ImageInfo]) -> dict[tuple[str, str], dict[str, str]]:
    """``(registry, repository) -> {tag: image ID}`` of every tagged name in the store."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for image in images:
        for text in image.names:
            try:
                name = parse_reference(text, default_tag=False)
            except AsyncSyncError:  # a name podman stored that we cannot parse is not copied
                continue
            if name.tag is not None and name.digest is None:
                found.setdefault((name.registry, name.repository), {})[name.tag] = image.image_id
    return found


async def list_storage_images(specifier_text: str, where: str) -> tuple[StorageReference, list[ImageInfo]]:
    """The store named by ``specifier_text`` (``""`` or ``[SPEC]``) and its named images."""
    store = parse_storage_reference(f"{specifier_text}localhost/check:1")
    assert isinstance(store, StorageReference)
    engine = await find_engine(store.specifier, where)
    try:
        return store, await engine.images()
    finally:
        await close_engine(engine)


async def plan_storage_source(entry: SyncEntry) -> Plan:
    """The plan of an entry with ``source_storage`` set (see the module docstring)."""
    assert entry.source_storage is not None
    where = f"containers-storage:{entry.source_storage}"
    try:
        store, images = await list_storage_images(entry.source_storage, where)
    except AsyncSyncError as exc:
        message = str(exc) if where in str(exc) else f"{where}: {exc}"
        return Plan(images=(), errors=(PlanError(entry.origin, message),))
    planned: list[PlannedImage] = []
    errors: list[PlanError] = []
    matched: set[str] = set()  # tags of the repositories the selectors name
    for (registry, repository), tags in sorted(_stored_tags(images).items()):
        selector = _selector_for(entry, ImageName(registry, repository))
        if selector is None:
            continue
        matched.update(tags)
        for tag in entry.tags.select(sorted(tags)):
            if tag not in tags:
                continue  # an explicit tag this repository does not have (reported below if none has)
            source = ImageName(registry, repository, tag)
            try:
                destination = entry.destination_for(selector, repository, tag=tag, digest=None)
            except InvalidReferenceError as exc:
                errors.append(PlanError(entry.origin, f"no valid destination for {source}: {exc}"))
                continue
            image_id = tags[tag]
            planned.append(
                PlannedImage(
                    source=replace(source, digest=Digest("sha256", image_id)),
                    destination=destination,
                    media_type=DOCKER_V2S2,
                    origin=entry.origin,
                    settings=entry.settings,
                    source_local=StorageReference(store.specifier, source, image_id=image_id),
                    manifest_pinned=False,
                )
            )
    for tag, line in entry.tags.tags:
        if tag not in matched:
            errors.append(PlanError(replace(entry.origin, line=line), f"no image in {where} has tag {tag}"))
    for _digest, line in entry.tags.digests:
        errors.append(
            PlanError(
                replace(entry.origin, line=line), f"{where} keeps images by name: select tags, not digests"
            )
        )
    warnings: list[PlanError] = []
    for selector in entry.sources:
        if any(_selector_for(replace(entry, sources=(selector,)), image.source) for image in planned):
            continue
        message = f"no image in {where} matches {selector}"
        if selector.is_glob:
            warnings.append(PlanError(entry.origin, message))
        elif not errors:
            errors.append(PlanError(entry.origin, message))
    return Plan(images=tuple(planned), errors=tuple(errors), warnings=tuple(warnings))
