"""``oci:PATH[:NAME]`` references (an image in an OCI layout directory)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from asyncsync.errors import InvalidReferenceError
from asyncsync.transports.oci_layout.layout import validate_ref_name

if TYPE_CHECKING:
    from asyncsync.reference import ImageName
    from asyncsync.transports.base import ImageDestination, ImageSource, TransportContext


def split_path_and_name(rest: str, transport: str) -> tuple[str, str | None]:
    """Split ``PATH[:NAME]`` on the first colon, as containers/image does on Unix.

    A path therefore cannot contain a colon; an empty path is refused; the name, when given,
    must match the OCI ref-name grammar.
    """
    text = f"{transport}:{rest}"
    path, sep, name = rest.partition(":")
    if not path:
        raise InvalidReferenceError(f"invalid image name {text!r}: expected {transport}:PATH[:NAME]")
    if sep and name:
        validate_ref_name(name, text)
    return path, name or None


@dataclass(frozen=True, slots=True)
class OCIReference:
    """An image in the OCI layout at ``path``, named ``name`` in its ``index.json``.

    Without a name, a source reads the layout's only image and a destination adds an unnamed
    entry (as skopeo does).
    """

    path: str
    name: str | None = None

    @property
    def transport_name(self) -> str:
        return "oci"

    def within_transport(self) -> str:
        return f"{self.path}:{self.name}" if self.name else self.path

    def docker_reference(self) -> ImageName | None:
        return None

    def __str__(self) -> str:
        return f"oci:{self.within_transport()}"

    async def new_source(self, ctx: TransportContext) -> ImageSource:
        from asyncsync.transports.oci_layout.source import open_layout_source

        return await open_layout_source(self, ctx)

    async def new_destination(self, ctx: TransportContext) -> ImageDestination:
        from asyncsync.transports.oci_layout.destination import open_layout_destination

        return await open_layout_destination(self, ctx)

    async def delete(self, ctx: TransportContext) -> list[str]:
        from asyncsync.transports.oci_layout.delete import delete_image

        return await delete_image(self, ctx)


def parse_oci_reference(rest: str) -> OCIReference:
    """Parse the part after ``oci:``."""
    path, name = split_path_and_name(rest, "oci")
    return OCIReference(path, name)
