"""Writing an image into a Docker engine (``docker-daemon:`` as a destination).

The image is written as a ``docker save`` archive (the ``docker-archive:`` writer, layers streamed
in as they arrive) in a private temporary directory; :meth:`commit` then streams it to
``POST /images/load``. The daemon thus receives nothing unless the whole copy succeeded. A
destination must be ``NAME:TAG``, as in skopeo; ``--additional-tag`` values are added to the
archive's RepoTags too.
"""

from __future__ import annotations

import os

import anyio

from asyncsync.errors import UsageError
from asyncsync.transports.base import TransportContext
from asyncsync.transports.docker_archive.archive import tagged_names
from asyncsync.transports.docker_archive.destination import ArchiveDestination, make_staging
from asyncsync.transports.docker_archive.writer import ArchiveWriter
from asyncsync.transports.docker_daemon.client import EngineClient
from asyncsync.transports.docker_daemon.reference import DaemonReference
from asyncsync.transports.local_files import remove_tree_quietly
from asyncsync.transports.local_image import LocalImage


async def open_daemon_destination(reference: DaemonReference, ctx: TransportContext) -> ArchiveDestination:
    where = str(reference)
    name = reference.name
    if name is None or name.tag is None or name.digest is not None:
        raise UsageError(f"invalid destination {where}: a docker-daemon: destination must be NAME:TAG")
    tags = tagged_names(name, ctx.options.additional_tags)
    staging = make_staging(None, "docker-daemon", where)
    host = ctx.options.daemon_host
    path = os.path.join(staging, "image.tar")

    async def load() -> None:
        async with EngineClient(host, where) as client:
            await client.load(path)

    async def cleanup() -> None:
        await anyio.to_thread.run_sync(remove_tree_quietly, staging)

    try:
        # Not durable: the archive is read back at once and deleted, an fsync would only cost time.
        writer = await ArchiveWriter.create(path, where, durable=False)
    except BaseException:
        await cleanup()
        raise
    return ArchiveDestination(LocalImage(reference, cleanup), tags, writer, after_commit=load)
