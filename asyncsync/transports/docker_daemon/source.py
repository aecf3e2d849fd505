"""Reading an image from a Docker engine (``docker-daemon:`` as a source).

As containers/image does, the image is exported with the Engine API (``GET /images/{name}/get``,
the ``docker save`` tar stream) into a private temporary file, which is then read with the
``docker-archive:`` reader; the file is deleted when the source is closed. The manifest is
generated (Docker v2s2), so its digest is not the registry's.
"""

from __future__ import annotations

from asyncsync.transports.base import TransportContext
from asyncsync.transports.docker_archive.archive import ManifestItem, choose_item
from asyncsync.transports.docker_archive.source import ArchiveImageSource, open_exported_archive
from asyncsync.transports.docker_daemon.client import EngineClient
from asyncsync.transports.docker_daemon.reference import DaemonReference


async def open_daemon_source(reference: DaemonReference, ctx: TransportContext) -> ArchiveImageSource:
    where = str(reference)

    async def export(path: str) -> None:
        async with EngineClient(ctx.options.daemon_host, where) as client:
            await client.save(reference.within_transport(), path)

    def choose(items: list[ManifestItem]) -> tuple[ManifestItem, list[str]]:
        # The export holds the requested image; with several items, pick it by tag.
        name = reference.name if len(items) > 1 and reference.name and reference.name.tag else None
        return choose_item(items, name, None, where), [tag for entry in items for tag in entry.repo_tags]

    return await open_exported_archive(reference, where, "asyncsync-daemon-", export, choose)
