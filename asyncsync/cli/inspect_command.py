"""``asyncsync inspect IMAGE``: skopeo's inspect (JSON, ``--raw``, ``--config``, ``--format``).

For ``docker://`` the registry is read directly (manifest, config blob, tag list); any other
transport is read through its :class:`~asyncsync.transports.base.ImageSource`. For an index the
config-derived fields describe the platform image (host platform unless overridden) while
``Digest`` and ``--raw`` are those of the index itself, as in skopeo.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

import typer

from asyncsync.cli._run import run
from asyncsync.cli.app import app
from asyncsync.cli.common import IMAGE_ACCESS_FLAGS, ImageAccess, SkopeoCommand, not_found_as, warn
from asyncsync.cli.flag_groups import with_flag_groups
from asyncsync.cli.platform_flags import PLATFORM_FLAGS, PlatformFlags
from asyncsync.digest import Digest, DigestVerifier
from asyncsync.errors import ContentError, ManifestError, RegistryError, UsageError
from asyncsync.inspect import (
    InspectInfo,
    ResolvedImage,
    inspect_image,
    inspect_schema1,
    render_config,
    resolve_image,
    with_reference,
)
from asyncsync.manifest import Descriptor, ImageManifest, Platform
from asyncsync.registry.client import RegistryClient, RegistrySession
from asyncsync.registry.manifests import get_manifest
from asyncsync.registry.small_blobs import MAX_CONFIG_SIZE, get_blob_bytes
from asyncsync.registry.tags import list_tags
from asyncsync.transports import parse_image_name
from asyncsync.transports.base import ImageReference, ImageSource
from asyncsync.transports.docker.reference import DockerReference


@dataclass(frozen=True, slots=True)
class InspectRequest:
    """What the user asked ``inspect`` for."""

    image: str
    raw: bool
    config: bool
    fmt: str | None
    no_tags: bool
    platform: Platform


class _DockerImage:
    """Manifest and config access for a ``docker://`` reference."""

    def __init__(self, client: RegistryClient, ref: DockerReference) -> None:
        self.client = client
        self.ref = ref

    async def manifest(self, instance: Digest | None) -> tuple[bytes, str]:
        name = self.ref.name
        if instance is None:
            with not_found_as(f"image {self.ref}"):
                fetched = await get_manifest(self.client, name.repository, name.reference)
        else:
            fetched = await get_manifest(self.client, name.repository, str(instance))
        return fetched.raw, fetched.media_type

    async def config(self, descriptor: Descriptor) -> bytes:
        return await get_blob_bytes(
            self.client, self.ref.name.repository, descriptor.digest, expected_size=descriptor.size
        )

    async def repo_tags(self) -> list[str]:
        try:
            return await list_tags(self.client, self.ref.name.repository)
        except RegistryError as exc:
            # Some registries refuse the tag list (401/403) but serve manifests; skopeo goes on.
            if exc.status not in (401, 403):
                raise
            warn("registry disallows tag list retrieval; skipping")
            return []


class _SourceImage:
    """Manifest and config access through any transport's :class:`ImageSource`."""

    def __init__(self, source: ImageSource) -> None:
        self.source = source

    async def manifest(self, instance: Digest | None) -> tuple[bytes, str]:
        return await self.source.get_manifest(instance)

    async def config(self, descriptor: Descriptor) -> bytes:
        if descriptor.size > MAX_CONFIG_SIZE:
            raise ContentError(f"config blob {descriptor.digest} is larger than {MAX_CONFIG_SIZE} bytes")
        verifier = DigestVerifier(descriptor.digest, descriptor.size, what="config blob")
        chunks: list[bytes] = []
        async with self.source.open_blob(descriptor) as stream:
            async for chunk in stream:
                verifier.update(chunk)  # raises as soon as the size is exceeded
                chunks.append(chunk)
        verifier.finish()
        return b"".join(chunks)


@contextmanager
def _naming(image: str) -> Iterator[None]:
    """Prefix content errors about the config (which know no image name) with the image."""
    try:
        yield
    except ManifestError as exc:
        raise ManifestError(f"{image}: {exc}") from None


async def _config_of(reader: _DockerImage | _SourceImage, resolved: ResolvedImage) -> bytes:
    image = resolved.image
    if not isinstance(image, ImageManifest):
        raise ManifestError("schema 1 images have no config blob; use inspect without --config")
    return await reader.config(image.config)


async def _inspect(
    reader: _DockerImage | _SourceImage, request: InspectRequest, name: str, tags: bool
) -> None:
    if request.raw and not request.config:
        raw, _ = await reader.manifest(None)
        typer.echo(raw, nl=False)
        return
    resolved = await resolve_image(reader.manifest, request.platform, name=request.image)
    if request.config:
        config = await _config_of(reader, resolved)
        if request.raw:
            typer.echo(config, nl=False)
        else:
            with _naming(request.image):
                typer.echo(render_config(config, request.fmt), nl=False)
        return
    with _naming(request.image):
        if isinstance(resolved.image, ImageManifest):
            info: InspectInfo = inspect_image(resolved.image, await _config_of(reader, resolved))
        else:
            info = inspect_schema1(resolved.image)
    repo_tags: list[str] = []
    if tags and isinstance(reader, _DockerImage):
        repo_tags = await reader.repo_tags()
    info = with_reference(info, name=name, digest=resolved.digest, repo_tags=repo_tags)
    typer.echo(info.render(request.fmt), nl=False)


async def inspect_reference(ref: ImageReference, request: InspectRequest, access: ImageAccess) -> None:
    """Print what ``request`` asks about ``ref``; the whole ``inspect`` command minus flag parsing.

    ``access.local`` holds skopeo's ``--shared-blob-dir`` (``oci:``) and ``--daemon-host``
    (``docker-daemon:``); other transports ignore them.
    """
    async with RegistrySession(retry=access.retry.policy()) as session:
        ctx = access.context(session)  # flags are validated before anything is read
        if isinstance(ref, DockerReference):
            client = session.client(ref.name.registry, ctx.options.registry)
            await _inspect(_DockerImage(client, ref), request, ref.name.name, not request.no_tags)
            return
        source = await ref.new_source(ctx)
        try:
            docker_name = ref.docker_reference()
            await _inspect(_SourceImage(source), request, docker_name.name if docker_name else "", False)
        finally:
            await source.close()


@app.command("inspect", cls=SkopeoCommand)
@with_flag_groups
def inspect_command(
    image: Annotated[
        str, typer.Argument(metavar="IMAGE-NAME", help="The image, e.g. docker://host/repo:tag.")
    ],
    *,
    raw: Annotated[
        bool, typer.Option("--raw", help="Output the raw manifest (or config with --config).")
    ] = False,
    config: Annotated[bool, typer.Option("--config", help="Output the image configuration.")] = False,
    fmt: Annotated[
        str | None,
        typer.Option("--format", "-f", metavar="TEMPLATE", help="Format the output with a Go template."),
    ] = None,
    no_tags: Annotated[
        bool, typer.Option("--no-tags", "-n", help="Do not list the repository's tags in the output.")
    ] = False,
    platform: Annotated[PlatformFlags, PLATFORM_FLAGS],
    access: Annotated[ImageAccess, IMAGE_ACCESS_FLAGS],
) -> None:
    """Return low-level information about IMAGE-NAME (skopeo-compatible JSON)."""
    request = InspectRequest(
        image=image,
        raw=raw,
        config=config,
        fmt=fmt,
        no_tags=no_tags,
        platform=platform.wanted(),
    )

    async def main() -> None:
        if raw and fmt:
            raise UsageError("raw output does not support the --format option")
        ref = parse_image_name(image)
        await inspect_reference(ref, request, access)

    run(main)
