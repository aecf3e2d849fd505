"""skopeo's image flags, shared by ``copy`` and ``sync``: what of a (multi-arch) image is copied, and how.

``--all``, ``--format``, ``--preserve-digests`` and ``--remove-signatures`` (and, for ``copy``,
``--multi-arch``) are declared once here as a flag group; a command receives one
:class:`ImageFlags` and turns it into the copy engine's :class:`~asyncsync.copy.CopyOptions`
(``copy``) or the spec's :class:`~asyncsync.specs.model.CopySettings` (``sync``). Their values are
validated in one place, :meth:`ImageFlags.manifest_format` and :meth:`ImageFlags.multi_arch_mode`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, cast

import typer

from asyncsync.cli.flag_groups import FlagGroup, flag_option
from asyncsync.copy import CopyOptions
from asyncsync.errors import UsageError
from asyncsync.manifest import Platform
from asyncsync.specs.model import CopySettings, ManifestFormat, MultiArch

IMAGE_PANEL = "Image options"


@dataclass(frozen=True, slots=True)
class ImageFlags:
    """The image flags as given (``None``: not given); validated by the methods."""

    all_images: bool = False
    format: str | None = None
    preserve_digests: bool = False
    remove_signatures: bool = False
    multi_arch: str | None = None

    def manifest_format(self) -> ManifestFormat | None:
        """``--format`` (case-insensitive); raises :class:`UsageError` for an unknown or v2s1 format."""
        if self.format is None:
            return None
        fmt = self.format.lower()
        if fmt == "v2s1":
            raise UsageError("--format v2s1: Docker schema 1 is not supported as a destination format")
        if fmt not in ("oci", "v2s2"):
            raise UsageError(f"--format: unknown manifest type {fmt!r} (oci or v2s2)")
        return cast(ManifestFormat, fmt)

    def multi_arch_mode(self) -> MultiArch:
        """``--all`` / ``--multi-arch``; raises :class:`UsageError` when they disagree."""
        if self.all_images and self.multi_arch not in (None, "all"):
            raise UsageError(f"--all and --multi-arch={self.multi_arch} cannot be used together")
        mode = "all" if self.all_images else (self.multi_arch or "system")
        if mode not in ("system", "all", "index-only"):
            raise UsageError(f"--multi-arch: unknown value {mode!r} (system, all or index-only)")
        return cast(MultiArch, mode)

    def copy_options(self, platform: Platform | None) -> CopyOptions:
        """``copy``'s options; ``platform`` is the ``--override-*`` platform (``None``: the host's)."""
        return CopyOptions(
            multi_arch=self.multi_arch_mode(),
            platform=platform,
            format=self.manifest_format(),
            preserve_digests=self.preserve_digests,
            remove_signatures=self.remove_signatures,
        )

    def copy_settings(self, platform: Platform | None, *, skip_existing: bool = False) -> CopySettings:
        """The settings of every image of a skopeo-format or ``--src docker`` sync. A sync keeps
        digests or converts, never both: ``--preserve-digests`` with ``--format`` is refused here."""
        fmt = self.manifest_format()
        if self.preserve_digests and fmt is not None:
            raise UsageError(
                "--preserve-digests and --format cannot be used together: conversion changes digests"
            )
        mode = self.multi_arch_mode()
        return CopySettings(
            multi_arch=mode,
            # --override-*: the one image of a multi-arch image that a sync without --all copies.
            platform=platform if mode == "system" else None,
            format=fmt,
            skip_existing=skip_existing,
        )


_Mode = Literal["copy", "sync"]

_OPTIONS = {
    "multi_arch": flag_option(
        "multi_arch",
        Annotated[
            str | None,
            typer.Option(
                "--multi-arch",
                metavar="system|all|index-only",
                help="For a multi-arch image: copy the host platform's image (system, default), every image "
                "and the index (all), or the index alone (index-only).",
                rich_help_panel=IMAGE_PANEL,
            ),
        ],
        None,
    ),
    "all_images": flag_option(
        "all_images",
        Annotated[
            bool,
            typer.Option(
                "--all",
                "-a",
                help="Copy every image of a multi-arch image, and the index.",
                rich_help_panel=IMAGE_PANEL,
            ),
        ],
        False,
    ),
    "format": flag_option(
        "format",
        Annotated[
            str | None,
            typer.Option(
                "--format",
                "-f",
                metavar="oci|v2s2",
                help="Convert manifests to this type (digests change).",
                rich_help_panel=IMAGE_PANEL,
            ),
        ],
        None,
    ),
    "preserve_digests": flag_option(
        "preserve_digests",
        Annotated[
            bool,
            typer.Option(
                "--preserve-digests",
                help="Fail rather than change any manifest digest.",
                rich_help_panel=IMAGE_PANEL,
            ),
        ],
        False,
    ),
    "remove_signatures": flag_option(
        "remove_signatures",
        Annotated[
            bool,
            typer.Option(
                "--remove-signatures",
                help="Do not copy signatures: lookaside and signature-N ones, and among the attachments "
                "cosign .sig, sigstore bundles, notation; SBOMs and attestations still follow.",
                rich_help_panel=IMAGE_PANEL,
            ),
        ],
        False,
    ),
}


def image_flags(mode: _Mode) -> FlagGroup[ImageFlags]:
    """The image flags of ``copy`` (with ``--multi-arch``) or ``sync`` (without, as skopeo sync)."""
    names = ("remove_signatures", "multi_arch", "all_images", "format", "preserve_digests")
    chosen = tuple(_OPTIONS[name] for name in names if mode == "copy" or name != "multi_arch")
    return FlagGroup(ImageFlags, chosen, lambda values: ImageFlags(**values))


#: ``copy``'s image flags.
COPY_IMAGE_FLAGS: FlagGroup[ImageFlags] = image_flags("copy")
#: ``sync``'s image flags (no ``--multi-arch``: skopeo sync has none).
SYNC_IMAGE_FLAGS: FlagGroup[ImageFlags] = image_flags("sync")
