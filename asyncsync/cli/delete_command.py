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
from asyncsync.cli.common import IMAGE_ACCESS_FLAGS, ImageAccess, SkopeoCommand
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
    access: Annotated[ImageAccess, IMAGE_ACCESS_FLAGS],
) -> None:
    """Delete IMAGE-NAME (every tag pointing at the same manifest disappears with it)."""

    async def main() -> None:
        ref = parse_image_name(image)
        async with RegistrySession(retry=access.retry.policy()) as session:
            notes = await ref.delete(access.context(session))
        for note in notes:
            typer.echo(note, err=True)

    run(main)
