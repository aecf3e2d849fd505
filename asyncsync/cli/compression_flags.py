"""skopeo's layer-format flags of a destination, declared once as a flag group.

``--dest-compress-format gzip|zstd``, ``--dest-compress-level N``,
``--dest-oci-accept-uncompressed-layers`` and newer skopeo's ``--dest-force-compress-format``
(also spelt ``--force-compression``, podman's name). ``--dest-compress``/``--dest-decompress``
stay with the ``dir:`` flags of ``copy``. What the flags do is in :mod:`asyncsync.copy.recompress`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from asyncsync.cli.flag_groups import FlagGroup, flag_option
from asyncsync.copy.layer_format import LayerCompression
from asyncsync.errors import UsageError

_PANEL = "Layer compression"


@dataclass(frozen=True, slots=True)
class CompressionFlags:
    """The flags as given; :meth:`layer_compression` validates them."""

    format: str | None = None
    #: Text, parsed by :meth:`layer_compression` (click's own error for a non-integer is a box of text).
    level: str | None = None
    force: bool = False
    oci_accept_uncompressed_layers: bool = False

    def layer_compression(self) -> LayerCompression:
        """The validated request; one-line :class:`~asyncsync.errors.UsageError` otherwise."""
        level = None
        if self.level is not None:
            try:
                level = int(self.level.strip())
            except ValueError:
                raise UsageError(f"--dest-compress-level: {self.level!r} is not an integer") from None
        return LayerCompression.parse(self.format, level, self.force)


COMPRESSION_FLAGS: FlagGroup[CompressionFlags] = FlagGroup(
    CompressionFlags,
    (
        flag_option(
            "dest_compress_format",
            Annotated[
                str | None,
                typer.Option(
                    "--dest-compress-format",
                    metavar="FORMAT",
                    help="FORMAT to use for the compression (gzip or zstd): layers compressed otherwise "
                    "are recompressed when pushed to a registry or written to oci:.",
                    rich_help_panel=_PANEL,
                ),
            ],
            None,
        ),
        flag_option(
            "dest_compress_level",
            Annotated[
                str | None,
                typer.Option(
                    "--dest-compress-level",
                    metavar="LEVEL",
                    help="LEVEL to use for the compression (gzip 1-9, default 6; zstd 1-20, default 3).",
                    rich_help_panel=_PANEL,
                ),
            ],
            None,
        ),
        flag_option(
            "dest_force_compress_format",
            Annotated[
                bool,
                typer.Option(
                    "--dest-force-compress-format",
                    "--force-compression",
                    help="Use --dest-compress-format for every layer, even one the destination already "
                    "holds in another compression.",
                    rich_help_panel=_PANEL,
                ),
            ],
            False,
        ),
        flag_option(
            "dest_oci_accept_uncompressed_layers",
            Annotated[
                bool,
                typer.Option(
                    "--dest-oci-accept-uncompressed-layers",
                    help="Allow uncompressed image layers when saving to an OCI image using the 'oci' "
                    "transport. (default is to compress things that aren't compressed)",
                    rich_help_panel=_PANEL,
                ),
            ],
            False,
        ),
    ),
    lambda v: CompressionFlags(
        format=v["dest_compress_format"],
        level=v["dest_compress_level"],
        force=v["dest_force_compress_format"],
        oci_accept_uncompressed_layers=v["dest_oci_accept_uncompressed_layers"],
    ),
)
