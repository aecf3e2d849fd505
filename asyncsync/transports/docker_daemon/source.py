"""Reading an image from a Docker engine (``docker-daemon:`` as a source).

As containers/image does, the image is exported with the Engine API (``GET /images/{name}/get``,
the ``docker save`` tar stream) into a private temporary file, which is then read with the
``docker-archive:`` reader; the file is deleted when the source is closed. The manifest is
generated (Docker v2s2), so its digest is not the registry's.
"""

from __future__ import annotations

import os
import tempfile

import anyio

from asyncsync.errors import LocalStorageError
from asyncsync.transports.base import TransportContext
from asyncsync.transports.docker_archive.archive import choose_item
from asyncsync.transports.docker_archive.source import ArchiveImageSource, read_items
from asyncsync.transports.docker_daemon.client import EngineClient
from asyncsync.transports.docker_daemon.reference import DaemonReference
from asyncsync.transports.local_files import remove_tree_quietly
from asyncsync.transports.tar_archive import TarIndex


async def open_daemon_source(reference: DaemonReference, ctx: TransportContext) -> ArchiveImageSource:
    where = str(reference)
    try:
        scratch = tempfile.mkdtemp(prefix="asyncsync-daemon-")
    except OSError as exc:
        raise LocalStorageError(f"{where}: cannot create a temporary directory: {exc.strerror}") from None

    async def cleanup() -> None:
        await anyio.to_thread.run_sync(remove_tree_quietly, scratch)

    try:
        path = os.path.join(scratch, "image.tar")
        async with EngineClient(ctx.options.daemon_host, where) as client:
            await client.save(reference.within_transport(), path)
        index = await TarIndex.open(path, where)
        try:
            items = await read_items(index, where)
            # The export holds the requested image; with several items, pick it by tag.
            name = reference.name if len(items) > 1 and reference.name and reference.name.tag else None
            item = choose_item(items, name, None, where)
            tags = [tag for entry in items for tag in entry.repo_tags]
        except BaseException:
            await index.close()
            raise
    except BaseException:
        await cleanup()
        raise
    return ArchiveImageSource(reference, index, item, tags, where, on_close=cleanup)
