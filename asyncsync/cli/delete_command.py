"""``asyncsync delete IMAGE``: delete an image's manifest, as ``skopeo delete``.

A tag is resolved to its digest first (registries delete by digest), and the other tags that
pointed at the same digest - deleted with it - are named on stderr. stdout stays empty, as
skopeo's does.
"""

from __future__ import annotations

from typing import Annotated

import typer

from asyncsync.cli._run import run
from asyncsync.cli.app import app
from asyncsync.cli.common import (
    REGISTRY_FLAGS,
    RETRY_FLAGS,
    RegistryFlags,
    RetryFlags,
    SkopeoCommand,
    transport_context,
)
from asyncsync.cli.compat_flags import LOCAL_STORE_FLAGS, LocalStoreFlags
from asyncsync.cli.flag_groups import with_flag_groups
from asyncsync.registry.client import RegistrySession
from asyncsync.transports import parse_image_name


@app.command("delete", cls=SkopeoCommand)
@with_flag_groups
def delete_command(
    image: Annotated[
        str, typer.Argument(metavar="IMAGE-NAME", help="The image, e.g. docker://host/repo:tag.")
    ],
    *,
    registry: Annotated[RegistryFlags, REGISTRY_FLAGS],
    local: Annotated[LocalStoreFlags, LOCAL_STORE_FLAGS],
    retry_flags: Annotated[RetryFlags, RETRY_FLAGS],
) -> None:
    """Delete IMAGE-NAME (every tag pointing at the same manifest disappears with it)."""

    async def main() -> None:
        ref = parse_image_name(image)
        options = registry.to_options()
        retry = retry_flags.policy()
        async with RegistrySession(retry=retry) as session:
            ctx = transport_context(
                session, options, retry, shared_blob_dir=local.shared_blob_dir, daemon_host=local.daemon_host
            )
            notes = await ref.delete(ctx)
        for note in notes:
            typer.echo(note, err=True)

    run(main)
