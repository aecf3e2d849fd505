"""``asyncsync copy SOURCE-IMAGE DESTINATION-IMAGE``: skopeo copy, with concurrent blob transfers.

Flags follow skopeo copy (``--src-*`` / ``--dest-*`` registry flags from
:mod:`asyncsync.cli.common`, ``--multi-arch``/``--all``, ``--format``, ``--digestfile``, ...),
including the local-transport flags (:class:`LocalFlags`): ``--src/--dest-shared-blob-dir``
(``oci:``), ``--dest-compress``/``--dest-decompress`` (``dir:``), ``--additional-tag``
(``docker-archive:``, ``docker-daemon:``) and ``--src/--dest-daemon-host`` (``docker-daemon:``).
A local flag given for a transport it does not apply to is ignored, as skopeo does, with a
one-line warning. The layer-format flags (``--dest-compress-format``, ``--dest-compress-level``,
``--dest-force-compress-format``, ``--dest-oci-accept-uncompressed-layers``) come from
:mod:`asyncsync.cli.compression_flags`; ``dir:``'s ``--dest-compress`` writes gzip at level 6.
Progress goes to stdout as skopeo's does: rich bars on a terminal, plain lines otherwise,
nothing with ``--quiet``. Errors are one line on stderr with a non-zero exit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, cast

import typer

from asyncsync.cli._run import run
from asyncsync.cli.app import app
from asyncsync.cli.common import (
    REGISTRY_SIDES,
    RETRY_FLAGS,
    RegistrySides,
    RetryFlags,
    SkopeoCommand,
    warn,
)
from asyncsync.cli.compression_flags import COMPRESSION_FLAGS, CompressionFlags
from asyncsync.cli.copy_view import RichProgress, make_progress
from asyncsync.cli.flag_groups import with_flag_groups
from asyncsync.cli.platform_flags import PLATFORM_FLAGS, PlatformFlags
from asyncsync.copy import (
    BlobCoordinator,
    CopyEnvironment,
    CopyOptions,
    CopyProgress,
    CopyResult,
    copy_image,
)
from asyncsync.errors import LocalStorageError, UsageError
from asyncsync.limits import DEFAULT_COPY_BLOBS_IN_FLIGHT, BlobLimiter, pool_sizes
from asyncsync.manifest import Platform
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.retry import RetryPolicy
from asyncsync.transports import parse_image_name
from asyncsync.transports.base import ImageReference, SideOptions, TransportContext
from asyncsync.units import size_flag

_IMAGE_PANEL = "Image options"
_LOCAL_PANEL = "Local transports"


@dataclass(frozen=True, slots=True)
class LocalFlags:
    """skopeo's local-transport flags for one side of ``copy`` (``--src-*`` or ``--dest-*``).

    ``compress``/``decompress``/``additional_tags`` exist on the destination side only.
    """

    shared_blob_dir: str | None = None
    daemon_host: str | None = None
    compress: bool = False
    decompress: bool = False
    additional_tags: tuple[str, ...] = ()
    oci_accept_uncompressed_layers: bool = False

    def side_options(self, registry: RegistryOptions, chunk_size: int | None = None) -> SideOptions:
        """The :class:`SideOptions` of this side; raises :class:`UsageError` for contradictions."""
        if self.compress and self.decompress:
            raise UsageError("--dest-compress and --dest-decompress cannot be used together")
        return SideOptions(
            registry=registry,
            chunk_size=chunk_size,
            shared_blob_dir=self.shared_blob_dir,
            daemon_host=self.daemon_host,
            compress=self.compress,
            decompress=self.decompress,
            additional_tags=self.additional_tags,
            oci_accept_uncompressed_layers=self.oci_accept_uncompressed_layers,
        )

    def unused(self, transport: str, prefix: str) -> list[str]:
        """The flags given that ``transport`` ignores, spelt as on the command line."""
        given = {
            f"--{prefix}shared-blob-dir": (self.shared_blob_dir is not None, ("oci",)),
            f"--{prefix}daemon-host": (self.daemon_host is not None, ("docker-daemon",)),
            f"--{prefix}compress": (self.compress, ("dir",)),
            f"--{prefix}decompress": (self.decompress, ("dir",)),
            "--additional-tag": (bool(self.additional_tags), ("docker-archive", "docker-daemon")),
            f"--{prefix}oci-accept-uncompressed-layers": (
                self.oci_accept_uncompressed_layers,
                ("oci", "oci-archive"),
            ),
        }
        return [flag for flag, (used, transports) in given.items() if used and transport not in transports]


def warn_unused(flags: LocalFlags, reference: ImageReference, prefix: str) -> None:
    """Warn (one line each) about local flags that ``reference``'s transport ignores, as skopeo
    silently does."""
    transport = reference.transport_name
    for flag in flags.unused(transport, prefix):
        side = "sources" if prefix == "src-" else "destinations"
        warn(f"{flag} has no effect on {transport}: {side} (ignored)")


def copy_options(
    multi_arch: str | None,
    all_images: bool,
    fmt: str | None,
    preserve_digests: bool,
    remove_signatures: bool,
    platform: Platform | None,
) -> CopyOptions:
    """Validated :class:`CopyOptions` from the image flags."""
    if all_images and multi_arch not in (None, "all"):
        raise UsageError(f"--all and --multi-arch={multi_arch} cannot be used together")
    mode = "all" if all_images else (multi_arch or "system")
    if mode not in ("system", "all", "index-only"):
        raise UsageError(f"--multi-arch: unknown value {mode!r} (system, all or index-only)")
    if fmt is not None:
        fmt = fmt.lower()
        if fmt == "v2s1":
            raise UsageError("--format v2s1: Docker schema 1 is not supported as a destination format")
        if fmt not in ("oci", "v2s2"):
            raise UsageError(f"--format: unknown manifest type {fmt!r} (oci or v2s2)")
    return CopyOptions(
        multi_arch=cast(Literal["system", "all", "index-only"], mode),
        platform=platform,
        format=cast(Literal["oci", "v2s2"] | None, fmt),
        preserve_digests=preserve_digests,
        remove_signatures=remove_signatures,
    )


async def run_copy(
    source: str,
    destination: str,
    options: CopyOptions,
    source_registry: RegistryOptions,
    destination_registry: RegistryOptions,
    *,
    retry: RetryPolicy,
    parallel: int,
    chunk_size: int | None,
    progress: CopyProgress,
    source_local: LocalFlags = LocalFlags(),
    destination_local: LocalFlags = LocalFlags(),
) -> CopyResult:
    """Copy ``source`` to ``destination``: the whole ``copy`` command minus flag parsing.

    ``source_local``/``destination_local`` carry the local-transport flags of each side.
    """
    src_ref, dst_ref = parse_image_name(source), parse_image_name(destination)
    src_options = source_local.side_options(source_registry)
    dst_options = destination_local.side_options(destination_registry, chunk_size)
    warn_unused(source_local, src_ref, "src-")
    warn_unused(destination_local, dst_ref, "dest-")
    sizes = pool_sizes(blobs=parallel, default_blobs=DEFAULT_COPY_BLOBS_IN_FLIGHT)
    blob_limiter = BlobLimiter(sizes.blobs)
    limiters = sizes.host_limiters()
    env = CopyEnvironment(
        blob_limiter=blob_limiter, retry=retry, coordinator=BlobCoordinator(), progress=progress
    )
    async with RegistrySession(limiters=limiters, retry=retry) as session:
        src_ctx = TransportContext(session, src_options, retry, blob_limiter)
        dst_ctx = TransportContext(session, dst_options, retry, blob_limiter)
        src = await src_ref.new_source(src_ctx)
        try:
            dst = await dst_ref.new_destination(dst_ctx)
            try:
                if isinstance(progress, RichProgress):
                    with progress:
                        return await copy_image(src, dst, options, env)
                return await copy_image(src, dst, options, env)
            finally:
                await dst.close()
        finally:
            await src.close()
            env.recompressed.close()


@app.command("copy", cls=SkopeoCommand)
@with_flag_groups
def copy_command(
    source: Annotated[str, typer.Argument(metavar="SOURCE-IMAGE", help="e.g. docker://host/repo:tag")],
    destination: Annotated[
        str, typer.Argument(metavar="DESTINATION-IMAGE", help="e.g. docker://host/repo:tag")
    ],
    *,
    registries: Annotated[RegistrySides, REGISTRY_SIDES],
    digestfile: Annotated[
        Path | None,
        typer.Option("--digestfile", metavar="PATH", help="Write the digest of the pushed image to PATH."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Suppress output information when copying images.")
    ] = False,
    image_parallel_copies: Annotated[
        int,
        typer.Option(
            "--image-parallel-copies", metavar="N", min=1, help="Maximum number of blobs copied in parallel."
        ),
    ] = DEFAULT_COPY_BLOBS_IN_FLIGHT,
    remove_signatures: Annotated[
        bool,
        typer.Option(
            "--remove-signatures",
            help="Do not copy signatures (accepted for compatibility: asyncsync copies no signatures yet).",
            rich_help_panel=_IMAGE_PANEL,
        ),
    ] = False,
    multi_arch: Annotated[
        str | None,
        typer.Option(
            "--multi-arch",
            metavar="system|all|index-only",
            help="For a multi-arch image: copy the host platform's image (system, default), every image "
            "and the index (all), or the index alone (index-only).",
            rich_help_panel=_IMAGE_PANEL,
        ),
    ] = None,
    all_images: Annotated[
        bool,
        typer.Option(
            "--all",
            "-a",
            help="Copy every image of a multi-arch image (--multi-arch=all).",
            rich_help_panel=_IMAGE_PANEL,
        ),
    ] = False,
    platform: Annotated[PlatformFlags, PLATFORM_FLAGS],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            metavar="oci|v2s2",
            help="Convert manifests to this type (digests change).",
            rich_help_panel=_IMAGE_PANEL,
        ),
    ] = None,
    preserve_digests: Annotated[
        bool,
        typer.Option(
            "--preserve-digests",
            help="Fail rather than change any manifest digest.",
            rich_help_panel=_IMAGE_PANEL,
        ),
    ] = False,
    chunk_size: Annotated[
        str | None,
        typer.Option(
            "--chunk-size",
            metavar="SIZE",
            help="Upload blobs to the destination registry in chunks of SIZE (e.g. 8MiB), not in one go.",
        ),
    ] = None,
    src_shared_blob_dir: Annotated[
        str | None,
        typer.Option(
            "--src-shared-blob-dir",
            metavar="DIRECTORY",
            help="DIRECTORY to use to share blobs across OCI repositories (oci: source).",
            rich_help_panel=_LOCAL_PANEL,
        ),
    ] = None,
    dest_shared_blob_dir: Annotated[
        str | None,
        typer.Option(
            "--dest-shared-blob-dir",
            metavar="DIRECTORY",
            help="DIRECTORY to use to share blobs across OCI repositories (oci: destination).",
            rich_help_panel=_LOCAL_PANEL,
        ),
    ] = None,
    dest_compress: Annotated[
        bool,
        typer.Option(
            "--dest-compress",
            help="Compress (gzip) uncompressed layers when saving to a dir: destination.",
            rich_help_panel=_LOCAL_PANEL,
        ),
    ] = False,
    dest_decompress: Annotated[
        bool,
        typer.Option(
            "--dest-decompress",
            help="Decompress layers when saving to a dir: destination.",
            rich_help_panel=_LOCAL_PANEL,
        ),
    ] = False,
    additional_tag: Annotated[
        list[str] | None,
        typer.Option(
            "--additional-tag",
            metavar="NAME:TAG",
            help="An additional tag for a docker-archive: or docker-daemon: destination (repeatable).",
            rich_help_panel=_LOCAL_PANEL,
        ),
    ] = None,
    src_daemon_host: Annotated[
        str | None,
        typer.Option(
            "--src-daemon-host",
            metavar="HOST",
            help="Use the docker daemon at HOST (docker-daemon: source; default unix:///var/run/docker.sock).",
            rich_help_panel=_LOCAL_PANEL,
        ),
    ] = None,
    dest_daemon_host: Annotated[
        str | None,
        typer.Option(
            "--dest-daemon-host",
            metavar="HOST",
            help="Use the docker daemon at HOST (docker-daemon: destination).",
            rich_help_panel=_LOCAL_PANEL,
        ),
    ] = None,
    retry_flags: Annotated[RetryFlags, RETRY_FLAGS],
    compression: Annotated[CompressionFlags, COMPRESSION_FLAGS],
) -> None:
    """Copy an image (or a multi-arch image) from SOURCE-IMAGE to DESTINATION-IMAGE."""

    async def main() -> None:
        options = copy_options(
            multi_arch,
            all_images,
            fmt,
            preserve_digests,
            remove_signatures,
            platform.override(),
        )
        options = dataclasses.replace(options, compression=compression.layer_compression())
        result = await run_copy(
            source,
            destination,
            options,
            registries.source.to_options(),
            registries.destination.to_options(),
            retry=retry_flags.policy(),
            parallel=image_parallel_copies,
            chunk_size=size_flag(chunk_size, "--chunk-size") if chunk_size is not None else None,
            progress=make_progress(quiet),
            source_local=LocalFlags(shared_blob_dir=src_shared_blob_dir, daemon_host=src_daemon_host),
            destination_local=LocalFlags(
                shared_blob_dir=dest_shared_blob_dir,
                daemon_host=dest_daemon_host,
                compress=dest_compress,
                decompress=dest_decompress,
                additional_tags=tuple(additional_tag or ()),
                oci_accept_uncompressed_layers=compression.oci_accept_uncompressed_layers,
            ),
        )
        if digestfile is not None:
            try:
                digestfile.write_text(str(result.digest))
            except OSError as exc:
                raise LocalStorageError(f"--digestfile: cannot write {digestfile}: {exc.strerror}") from None

    run(main)
