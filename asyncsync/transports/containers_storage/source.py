"""Reading (and deleting) an image in containers-storage.

A reference is first resolved to one stored image, as containers/image resolves it
(``storage_reference.go`` ``resolveImage``): by image ID when one is given (a truncated ID must
match exactly one image), otherwise by the full normalised name; when both are given the image
must carry a name in the same repository.

Reading: podman exports the image as a ``docker save`` archive (``podman save --format
docker-archive`` / ``GET /libpod/images/{id}/get``), spooled into a private temporary file that is
read with the ``docker-archive:`` reader and deleted when the source is closed. A spool is needed:
the archive's ``manifest.json`` comes last in podman's stream, and the copy engine needs the
manifest before the first blob (containers/image spools ``docker-daemon:`` for the same reason).
As with skopeo reading containers-storage, the manifest is generated from the config (Docker v2s2,
layers uncompressed), so the config digest (the image ID) is kept and the manifest digest is not.

Deleting removes the image with all its names, as containers/image's ``DeleteImage`` does; an
image that containers were created from is refused and left untouched.
"""

from __future__ import annotations

from asyncsync.errors import AsyncSyncError, LocalStorageError
from asyncsync.reference import parse_reference
from asyncsync.transports.base import TransportContext
from asyncsync.transports.containers_storage.engine import (
    ImageInfo,
    LibpodEngine,
    PodmanEngine,
    close_engine,
    describe_names,
    find_engine,
)
from asyncsync.transports.containers_storage.reference import StorageReference
from asyncsync.transports.docker_archive.archive import ManifestItem
from asyncsync.transports.docker_archive.source import ArchiveImageSource, open_exported_archive


def _same_repository(info: ImageInfo, reference: StorageReference) -> bool:
    assert reference.name is not None
    wanted = reference.name.name
    for name in info.names:
        try:
            if parse_reference(name, default_tag=False).name == wanted:
                return True
        except AsyncSyncError:  # a name podman stored that we cannot parse is no match
            continue
    return False


async def _by_prefix(engine: PodmanEngine | LibpodEngine, prefix: str, where: str) -> str | None:
    matches = [image_id for image_id in await engine.image_ids() if image_id.startswith(prefix)]
    if len(matches) > 1:
        raise LocalStorageError(f"{where}: image ID prefix {prefix} is ambiguous ({len(matches)} images)")
    return matches[0] if matches else None


async def resolve_image(
    engine: PodmanEngine | LibpodEngine, reference: StorageReference
) -> tuple[ImageInfo, StorageReference]:
    """The one stored image ``reference`` names, and the reference as resolved (a bare hex name
    that turned out to be an ID prefix becomes that ID); :class:`LocalStorageError` when none."""
    where = str(reference)
    image_id = reference.image_id
    if image_id is None and reference.id_prefix is not None:
        image_id = await _by_prefix(engine, reference.id_prefix, where)
        if image_id is None:
            raise LocalStorageError(f"{where}: no image with an ID starting with {reference.id_prefix}")
    if image_id is None and reference.maybe_id is not None:
        image_id = await _by_prefix(engine, reference.maybe_id, where)
    if image_id is not None:
        info = await engine.inspect(image_id)
        if info is None or info.image_id != image_id:
            raise LocalStorageError(f"{where}: no image with ID {image_id} in {engine.description}")
        if reference.maybe_id is not None:
            return info, StorageReference(reference.specifier, image_id=image_id)
        if reference.name is not None and not _same_repository(info, reference):
            raise LocalStorageError(f"{where}: image {image_id} has no name in {reference.name.name}")
        return info, reference
    assert reference.name is not None
    info = await engine.inspect(str(reference.name))
    if info is None:
        raise LocalStorageError(f"{where}: image not known to {engine.description}")
    return info, reference


async def stored_image_id(reference: StorageReference) -> str | None:
    """The ID of the image ``reference`` names, or ``None`` when the store has none."""
    where = str(reference)
    engine = await find_engine(reference.specifier, where)
    try:
        if reference.name is not None and reference.image_id is None and reference.id_prefix is None:
            info = await engine.inspect(str(reference.name))
            return info.image_id if info is not None else None
        return (await resolve_image(engine, reference))[0].image_id
    finally:
        await close_engine(engine)


async def open_storage_source(reference: StorageReference, ctx: TransportContext) -> ArchiveImageSource:
    """Export the image from podman into a private spool and open it as a docker archive."""
    where = str(reference)
    engine = await find_engine(reference.specifier, where)
    try:
        info, resolved = await resolve_image(engine, reference)

        async def export(path: str) -> int:
            return await engine.save(info.image_id, path)

        def only(items: list[ManifestItem]) -> tuple[ManifestItem, list[str]]:
            if len(items) != 1:
                raise LocalStorageError(f"{where}: podman exported {len(items)} images, expected one")
            return items[0], list(info.names)

        return await open_exported_archive(resolved, where, "asyncsync-storage-", export, only)
    finally:
        await close_engine(engine)


async def delete_storage_image(reference: StorageReference) -> list[str]:
    """Remove the image and every name it has; returns notes naming the other names removed."""
    where = str(reference)
    engine = await find_engine(reference.specifier, where)
    try:
        info, _ = await resolve_image(engine, reference)
        users = await engine.containers_using(info.image_id)
        if users:
            names = ", ".join(user[:12] for user in users)
            raise LocalStorageError(f"{where}: image {info.image_id[:12]} is in use by container(s) {names}")
        await engine.remove(info.image_id)
    finally:
        await close_engine(engine)
    wanted = str(reference.name) if reference.name is not None else None
    others = [name for name in info.names if name != wanted]
    if others:
        return [f"Deleted image {info.image_id[:12]} with its other names too: {describe_names(others)}"]
    return []
