"""``asyncsync list-tags docker://HOST/REPO``: the repository's tags as skopeo prints them.

Output is byte-for-byte skopeo's: ``{"Repository": "host/repo", "Tags": [...]}`` through Go's
``json.MarshalIndent`` with a 4-space indent and a final newline; tags in the registry's order,
every ``Link`` page followed.
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
    not_found_as,
    parse_docker_repository,
    password_option,
    registry_token_option,
    retry_delay_option,
    retry_policy,
    retry_times_option,
    tls_verify_option,
    username_option,
)
from asyncsync.gotemplate import GoStruct, go_json
from asyncsync.registry.client import RegistrySession
from asyncsync.registry.tags import list_tags


def tag_list_json(repository: str, tags: list[str]) -> str:
    """skopeo's ``list-tags`` document (without the trailing newline)."""
    return go_json(GoStruct("tagListOutput", {"Repository": repository, "Tags": tags}), indent=4)


@app.command("list-tags", cls=SkopeoCommand)
def list_tags_command(
    repository: Annotated[
        str, typer.Argument(metavar="REPOSITORY-NAME", help="The repository, e.g. docker://host/repo.")
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
    """List the tags of a repository (skopeo-compatible JSON)."""
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
        name = parse_docker_repository(repository, "list-tags")
        options = flags.to_options()
        async with RegistrySession(retry=retry_policy(retry_times, retry_delay)) as session:
            client = session.client(name.registry, options)
            with not_found_as(f"repository docker://{name.name}"):
                tags = await list_tags(client, name.repository)
        typer.echo(tag_list_json(name.name, tags))

    run(main)
