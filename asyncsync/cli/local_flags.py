"""skopeo's local-transport flags of ``copy``, declared once as :data:`LOCAL_SIDES`.

``--src/--dest-shared-blob-dir`` (``oci:``), ``--dest-compress``/``--dest-decompress`` (``dir:``),
``--additional-tag`` (``docker-archive:``, ``docker-daemon:``) and ``--src/--dest-daemon-host``
(``docker-daemon:``). A command receives one :class:`LocalSides`; a flag given for a transport it
does not apply to is ignored, as skopeo does, with a one-line warning (:func:`warn_unused`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Annotated, Any

import typer

from asyncsync.cli.common import warn
from asyncsync.cli.flag_groups import FlagGroup, flag_option
from asyncsync.errors import UsageError
from asyncsync.registry.client import RegistryOptions
from asyncsync.transports.base import ImageReference, SideOptions

LOCAL_PANEL = "Local transports"


@dataclass(frozen=True, slots=True)
class LocalFlags:
    """skopeo's local-transport flags for one side of ``copy`` (``--src-*`` or ``--dest-*``), each
    named as the :class:`SideOptions` field it sets.

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
        # Each field of this class is the SideOptions field of the same name (a test holds it so).
        given = {field.name: getattr(self, field.name) for field in fields(self)}
        return SideOptions(registry=registry, chunk_size=chunk_size, **given)

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


@dataclass(frozen=True, slots=True)
class LocalSides:
    """The local-transport flags of both sides of ``copy``."""

    source: LocalFlags
    destination: LocalFlags


def _option(name: str, kind: object, default: object, *spelling: str, metavar: str | None, help: str) -> Any:
    return flag_option(
        name,
        Annotated[kind, typer.Option(*spelling, metavar=metavar, help=help, rich_help_panel=LOCAL_PANEL)],
        default,
    )


def _sides(values: Mapping[str, Any]) -> LocalSides:
    return LocalSides(
        source=LocalFlags(
            shared_blob_dir=values["src_shared_blob_dir"], daemon_host=values["src_daemon_host"]
        ),
        destination=LocalFlags(
            shared_blob_dir=values["dest_shared_blob_dir"],
            daemon_host=values["dest_daemon_host"],
            compress=values["dest_compress"],
            decompress=values["dest_decompress"],
            additional_tags=tuple(values["additional_tag"] or ()),
        ),
    )


_BLOB_DIR = "DIRECTORY to use to share blobs across OCI repositories"

#: ``copy``'s local-transport flags, source then destination.
LOCAL_SIDES: FlagGroup[LocalSides] = FlagGroup(
    LocalSides,
    (
        _option(
            "src_shared_blob_dir",
            str | None,
            None,
            "--src-shared-blob-dir",
            metavar="DIRECTORY",
            help=f"{_BLOB_DIR} (oci: source).",
        ),
        _option(
            "dest_shared_blob_dir",
            str | None,
            None,
            "--dest-shared-blob-dir",
            metavar="DIRECTORY",
            help=f"{_BLOB_DIR} (oci: destination).",
        ),
        _option(
            "dest_compress",
            bool,
            False,
            "--dest-compress",
            metavar=None,
            help="Compress (gzip) uncompressed layers when saving to a dir: destination.",
        ),
        _option(
            "dest_decompress",
            bool,
            False,
            "--dest-decompress",
            metavar=None,
            help="Decompress layers when saving to a dir: destination.",
        ),
        _option(
            "additional_tag",
            list[str] | None,
            None,
            "--additional-tag",
            metavar="NAME:TAG",
            help="An additional tag for a docker-archive: or docker-daemon: destination (repeatable).",
        ),
        _option(
            "src_daemon_host",
            str | None,
            None,
            "--src-daemon-host",
            metavar="HOST",
            help="Use the docker daemon at HOST (docker-daemon: source; default unix:///var/run/docker.sock).",
        ),
        _option(
            "dest_daemon_host",
            str | None,
            None,
            "--dest-daemon-host",
            metavar="HOST",
            help="Use the docker daemon at HOST (docker-daemon: destination).",
        ),
    ),
    _sides,
)
