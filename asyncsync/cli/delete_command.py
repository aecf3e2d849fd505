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
    RegistryFlags,
    SkopeoCommand,
    authfile_option,
    cert_dir_option,
    creds_option,
    no_creds_option,
    password_option,
    registry_token_option,
    retry_delay_option,
    retry_policy,
    retry_times_option,
    tls_verify_option,
    transport_context,
    username_option,
)
from asyncsync.registry.client import RegistrySession
from asyncsync.transports import parse_image_name


@app.command("delete", cls=SkopeoCommand)
def delete_command(
    image: Annotated[
        str, typer.Argument(metavar="IMAGE-NAME", help="The image, e.g. docker://host/repo:tag.")
    ],
    creds: Annotated[str | None, creds_option()] = None,
    username: Annotated[str | None, username_option()] = None,
    password: Annotated[str | None, password_option()] = None,
    authfile: Annotated[str | None, authfile_option()] = None,
    tls_verify: Annotated[bool, tls_verify_option()] = True,
    cert_dir: Annotated[str | None, cert_dir_option()] = None,
    no_creds: Annotated[bool, no_creds_option()] = False,
    registry_token: Annotated[str | None, registry_token_option()] = None,
    retry_times: Annotated[int | None, retry_times_option()] = None,
    retry_delay: Annotated[str | None, retry_delay_option()] = None,
) -> None:
    """Delete IMAGE-NAME (every tag pointing at the same manifest disappears with it)."""
    flags = RegistryFlags(
        creds=creds,
        username=username,
        password=password,
        authfile=authfile,
        tls_verify=tls_verify,
        cert_dir=cert_dir,
        no_creds=no_creds,
        registry_token=registry_token,
    )

    async def main() -> None:
        ref = parse_image_name(image)
        options = flags.to_options()
        retry = retry_policy(retry_times, retry_delay)
        async with RegistrySession(retry=retry) as session:
            notes = await ref.delete(transport_context(session, options, retry))
        for note in notes:
            typer.echo(note, err=True)

    run(main)
