"""``oci-archive:PATH[:NAME]`` references (an image in a tar file of an OCI layout)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from asyncsync.errors import UsageError
from asyncsync.transports.oci_layout.reference import split_path_and_name

if TYPE_CHECKING:
    from asyncsync.reference import ImageName
    from asyncsync.transports.base import ImageDestination, ImageSource, TransportContext


@dataclass(frozen=True, slots=True)
class OCIArchiveReference:
    """An image named ``name`` in the OCI layout archived in the tar file ``path``.

    As in skopeo, writing replaces the whole archive with a layout holding just this image.
    """

    path: str
    name: str | None = None

    @property
    def transport_name(self) -> str:
        return "oci-archive"

    def within_transport(self) -> str:
        return f"{self.path}:{self.name}" if self.name else self.path

    def docker_reference(self) -> ImageName | None:
        return None

    def __str__(self) -> str:
        return f"oci-archive:{self.within_transport()}"

    async def new_source(self, ctx: TransportContext) -> ImageSource:
        from asyncsync.transports.oci_archive.source import open_archive_source

        return await open_archive_source(self, ctx)

    async def new_destination(self, ctx: TransportContext) -> ImageDestination:
        from asyncsync.transports.oci_archive.destination import open_archive_destination

        return await open_archive_destination(self, ctx)

    async def delete(self, ctx: TransportContext) -> list[str]:
        raise UsageError(f"{self}: deleting images is not supported for oci-archive: (as in skopeo)")


def parse_oci_archive_reference(rest: str) -> OCIArchiveReference:
    """Parse the part after ``oci-archive:``."""
    path, name = split_path_and_name(rest, "oci-archive")
    return OCIArchiveReference(path, name)
