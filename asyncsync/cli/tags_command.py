"""``asyncsync list-tags docker://HOST/REPO``: the repository's tags as skopeo prints them.

Output is byte-for-byte skopeo's: ``{"Repository": "host/repo", "Tags": [...]}`` through Go's
``json.MarshalIndent`` with a 4-space indent and a final newline; tags in the registry's order,
every ``Link`` page followed.

Local collections use the same document without ``Repository`` (skopeo's field is
``omitempty`` and it has no repository name for a file):

* ``docker-archive:PATH`` (as skopeo 1.9): every image's ``RepoTags`` entries as written in the
  archive's ``manifest.json``, in archive order; an image without tags is listed as ``@N``
  (its index, usable as ``docker-archive:PATH:@N``). A ``:NAME:TAG``/``:@N`` suffix is ignored.
* ``oci:PATH`` (an asyncsync extension; skopeo 1.9 lists tags only for docker:// and
  docker-archive:): the ``org.opencontainers.image.ref.name`` of every ``index.json`` entry, in
  index order, without duplicates; unnamed entries are not listed. A ``:REF`` suffix is ignored.
"""

from __future__ import annotations

import os
from typing import Annotated

import anyio
import typer

from asyncsync.cli._run import run
from asyncsync.cli.app import app
from asyncsync.cli.common import (
    REGISTRY_FLAGS,
    RETRY_FLAGS,
    RegistryFlags,
    RetryFlags,
    SkopeoCommand,
    not_found_as,
    parse_docker_repository,
)
from asyncsync.cli.flag_groups import with_flag_groups
from asyncsync.errors import InvalidReferenceError, LocalStorageError
from asyncsync.gotemplate import GoStruct, go_json
from asyncsync.registry.client import RegistrySession
from asyncsync.registry.tags import list_tags
from asyncsync.transports import parse_image_name, transport_names
from asyncsync.transports.docker_archive.reference import DockerArchiveReference
from asyncsync.transports.docker_archive.source import read_items
from asyncsync.transports.local_files import DirectoryTree, find_directory
from asyncsync.transports.oci_layout.layout import read_index
from asyncsync.transports.oci_layout.reference import OCIReference
from asyncsync.transports.tar_archive import TarIndex

#: Transports ``list-tags`` reads without a registry.
LOCAL_TAG_TRANSPORTS = ("docker-archive", "oci")


def tag_list_json(repository: str, tags: list[str]) -> str:
    """skopeo's ``list-tags`` document (without the trailing newline); ``Repository`` is
    omitted when empty, as Go's ``omitempty`` does."""
    fields: dict[str, object] = {"Repository": repository} if repository else {}
    fields["Tags"] = tags
    return go_json(GoStruct("tagListOutput", fields), indent=4)


async def archive_tags(reference: DockerArchiveReference) -> list[str]:
    """``RepoTags`` of every image in the archive, ``@N`` for an untagged one (skopeo 1.9's listing)."""
    where = str(reference)
    path = await anyio.to_thread.run_sync(os.path.abspath, reference.path)
    if await anyio.to_thread.run_sync(os.path.isdir, path):
        raise LocalStorageError(f"{where}: {path} is a directory, expected a docker archive file")
    index = await TarIndex.open(path, where)
    try:
        items = await read_items(index, where)
    finally:
        await index.close()
    tags: list[str] = []
    for position, item in enumerate(items):
        tags.extend(item.repo_tags or (f"@{position}",))
    return tags


async def layout_tags(reference: OCIReference) -> list[str]:
    """The ref names of an OCI layout's ``index.json`` entries (unnamed entries are skipped)."""
    where = str(reference)
    root = await find_directory(reference.path, f"{where}: not an OCI layout")
    index = await read_index(DirectoryTree(root, where), where)
    return index.ref_names()


async def local_tags(text: str) -> list[str] | None:
    """The tags of a local collection named ``text``, or ``None`` when it is not one of
    :data:`LOCAL_TAG_TRANSPORTS` (then it must be a ``docker://`` repository)."""
    transport = text.partition(":")[0]
    if transport not in LOCAL_TAG_TRANSPORTS:
        if transport != "docker" and transport in transport_names():
            raise InvalidReferenceError(
                f"unsupported transport {transport!r} for list-tags: "
                "docker://, docker-archive: and oci: work here"
            )
        return None
    reference = parse_image_name(text)
    if isinstance(reference, DockerArchiveReference):
        return await archive_tags(reference)
    assert isinstance(reference, OCIReference)
    return await layout_tags(reference)


@app.command("list-tags", cls=SkopeoCommand)
@with_flag_groups
def list_tags_command(
    repository: Annotated[
        str,
        typer.Argument(
            metavar="REPOSITORY-NAME",
            help="docker://HOST/REPO, docker-archive:PATH or oci:PATH.",
        ),
    ],
    *,
    registry: Annotated[RegistryFlags, REGISTRY_FLAGS],
    retry_flags: Annotated[RetryFlags, RETRY_FLAGS],
) -> None:
    """List the tags of a repository (skopeo-compatible JSON).

    Also lists docker-archive:PATH (RepoTags, @N for an untagged image; as skopeo 1.9) and,
    beyond skopeo 1.9, oci:PATH (the ref names in index.json). Local listings print no
    Repository field.
    """

    async def main() -> None:
        local = await local_tags(repository)
        if local is not None:
            typer.echo(tag_list_json("", local))
            return
        name = parse_docker_repository(repository, "list-tags")
        options = registry.to_options()
        async with RegistrySession(retry=retry_flags.policy()) as session:
            client = session.client(name.registry, options)
            with not_found_as(f"repository docker://{name.name}"):
                tags = await list_tags(client, name.repository)
        typer.echo(tag_list_json(name.name, tags))

    run(main)
