"""``asyncsync copy SOURCE-IMAGE DESTINATION-IMAGE``: skopeo copy, with concurrent blob transfers.

Flags follow skopeo copy, each set declared once as a flag group: the ``--src-*`` / ``--dest-*``
registry flags (:mod:`asyncsync.cli.common`), the image flags ``--multi-arch``/``--all``,
``--format``, ``--preserve-digests`` (:mod:`asyncsync.cli.image_flags`), ``--override-*``
(:mod:`asyncsync.cli.platform_flags`), the local-transport flags (:mod:`asyncsync.cli.local_flags`)
the layer-format flags (``--dest-compress-format``, ``--dest-compress-level``,
``--dest-force-compress-format``, ``--dest-oci-accept-uncompressed-layers``;
:mod:`asyncsync.cli.compression_flags`) and :data:`COPY_FLAGS` below (``--digestfile``,
``--quiet``, ``--image-parallel-copies``, ``--chunk-size``); ``dir:``'s ``--dest-compress``
compresses with the layer-format flags too.
The signing flags and the trust policy: :mod:`asyncsync.cli.trust_flags`.
Progress goes to stdout as skopeo's does (:mod:`asyncsync.cli.copy_view`): rich bars on a
terminal, plain lines otherwise, nothing with ``--quiet``. Errors are one line on stderr with a
non-zero exit. The run itself is :func:`asyncsync.copy.run.copy_between`; it keeps the index of
recompressed layers in the user cache directory, as ``sync`` does (skopeo's copy keeps the same
knowledge in its blob-info cache), so a re-run asks the destination for a layer's recompressed
digest before recompressing it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import typer

from asyncsync.cli._run import run, until_signal
from asyncsync.cli.app import app
from asyncsync.cli.attachment_flags import ATTACHMENT_FLAGS, AttachmentFlags
from asyncsync.cli.common import (
    REGISTRY_SIDES,
    RETRY_FLAGS,
    ChunkSizeFlag,
    RegistrySides,
    RetryFlags,
    SkopeoCommand,
    chunk_size_flag,
    shown,
    warn,
)
from asyncsync.cli.compat_flags import COPY_COMPAT_FLAGS, CopyCompatFlags
from asyncsync.cli.compression_flags import COMPRESSION_FLAGS, CompressionFlags
from asyncsync.cli.copy_view import make_progress
from asyncsync.cli.flag_groups import FlagGroup, flag_option, with_flag_groups
from asyncsync.cli.image_flags import COPY_IMAGE_FLAGS, ImageFlags
from asyncsync.cli.local_flags import LOCAL_SIDES, LocalSides, warn_unused
from asyncsync.cli.platform_flags import PLATFORM_FLAGS, PlatformFlags
from asyncsync.cli.trust_flags import SIGN_FLAGS, SignFlags, close_trust, registries_d, trust_settings
from asyncsync.copy import CopyOptions, CopyResult, TrustSettings
from asyncsync.copy.destination_state import default_mount_index_dir
from asyncsync.copy.run import copy_between
from asyncsync.errors import ContentError, LocalStorageError
from asyncsync.limits import DEFAULT_COPY_BLOBS_IN_FLIGHT
from asyncsync.transports import parse_image_name
from asyncsync.transports.base import ImageReference, SideOptions


@dataclass(frozen=True, slots=True)
class CopyFlags(ChunkSizeFlag):
    """``copy``'s own flags as given (``--chunk-size``: :meth:`~ChunkSizeFlag.chunk_bytes`)."""

    digestfile: Path | None = None
    quiet: bool = False
    image_parallel_copies: int = DEFAULT_COPY_BLOBS_IN_FLIGHT

    def write_digest(self, result: CopyResult) -> None:
        """``--digestfile``: the digest of what was pushed; a write failure is a one-line error."""
        if self.digestfile is None:
            return
        try:
            self.digestfile.write_text(str(result.digest))
        except OSError as exc:
            raise LocalStorageError(f"--digestfile: cannot write {self.digestfile}: {exc.strerror}") from None


COPY_FLAGS: FlagGroup[CopyFlags] = FlagGroup(
    CopyFlags,
    (
        flag_option(
            "digestfile",
            Annotated[
                Path | None,
                typer.Option(
                    "--digestfile", metavar="PATH", help="Write the digest of the pushed image to PATH."
                ),
            ],
            None,
        ),
        flag_option(
            "quiet",
            Annotated[
                bool, typer.Option("--quiet", "-q", help="Suppress output information when copying images.")
            ],
            False,
        ),
        flag_option(
            "image_parallel_copies",
            Annotated[
                int,
                typer.Option(
                    "--image-parallel-copies",
                    metavar="N",
                    min=1,
                    help="Maximum number of blobs copied in parallel.",
                ),
            ],
            DEFAULT_COPY_BLOBS_IN_FLIGHT,
        ),
        chunk_size_flag(),
    ),
    lambda values: CopyFlags(**values),
)


def report_attachments(result: CopyResult, destination: str, options: CopyOptions) -> None:
    """One line per attachment left behind (on stderr); with ``--attachments-strict`` those left by a
    digest change fail the command (the image itself is copied)."""
    outcome = result.attachments
    for line in outcome.notes(destination):
        warn(line)
    if outcome.left and options.attachments is not None and options.attachments.strict:
        raise ContentError(
            f"--attachments-strict: {len(outcome.left)} attachment(s) left behind (the image was copied)"
        )


def _sides(
    registries: RegistrySides,
    local: LocalSides,
    compression: CompressionFlags,
    flags: CopyFlags,
    source: ImageReference,
    destination: ImageReference,
) -> tuple[SideOptions, SideOptions]:
    """The source and destination :class:`SideOptions` of a copy from the registry and local flags;
    warns about local flags that the named transports do not use."""
    chunk_size = flags.chunk_bytes()
    signatures = registries_d()
    source_side = replace(local.source.side_options(registries.source.to_options()), registries_d=signatures)
    destination_local = replace(
        local.destination, oci_accept_uncompressed_layers=compression.oci_accept_uncompressed_layers
    )
    destination_side = replace(
        destination_local.side_options(registries.destination.to_options(), chunk_size),
        registries_d=signatures,
    )
    warn_unused(local.source, source, "src-")
    warn_unused(destination_local, destination, "dest-")
    return source_side, destination_side


@app.command("copy", cls=SkopeoCommand)
@with_flag_groups
def copy_command(
    source: Annotated[str, typer.Argument(metavar="SOURCE-IMAGE", help="e.g. docker://host/repo:tag")],
    destination: Annotated[
        str, typer.Argument(metavar="DESTINATION-IMAGE", help="e.g. docker://host/repo:tag")
    ],
    *,
    registries: Annotated[RegistrySides, REGISTRY_SIDES],
    flags: Annotated[CopyFlags, COPY_FLAGS],
    image: Annotated[ImageFlags, COPY_IMAGE_FLAGS],
    platform: Annotated[PlatformFlags, PLATFORM_FLAGS],
    local: Annotated[LocalSides, LOCAL_SIDES],
    retry_flags: Annotated[RetryFlags, RETRY_FLAGS],
    compression: Annotated[CompressionFlags, COMPRESSION_FLAGS],
    attachment_flags: Annotated[AttachmentFlags, ATTACHMENT_FLAGS],
    sign: Annotated[SignFlags, SIGN_FLAGS],
    compat: Annotated[CopyCompatFlags, COPY_COMPAT_FLAGS],
) -> None:
    """Copy an image (or a multi-arch image) from SOURCE-IMAGE to DESTINATION-IMAGE."""

    async def main() -> None:
        compat.check()
        trust = trust_settings(sign)  # the policy and signers first: a bad one is reported before any I/O
        try:
            await copy(trust)
        finally:
            close_trust(trust)

    async def copy(trust: TrustSettings) -> None:
        options = replace(
            image.copy_options(platform.override()),
            compression=compression.layer_compression(),
            attachments=attachment_flags.policy(image.remove_signatures),
        )
        src_ref, dst_ref = parse_image_name(source), parse_image_name(destination)
        source_side, destination_side = _sides(registries, local, compression, flags, src_ref, dst_ref)
        progress = make_progress(flags.quiet)
        copying = copy_between(
            src_ref, dst_ref, options, source_side, destination_side,
            retry=retry_flags.policy(), parallel=flags.image_parallel_copies, progress=progress, trust=trust,
            state_dir=default_mount_index_dir(),
        )  # fmt: skip
        result = await until_signal(shown(progress, copying))
        flags.write_digest(result)
        report_attachments(result, destination, options)

    run(main)
