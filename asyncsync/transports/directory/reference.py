"""``dir:PATH`` references (skopeo's directory format: one image per directory)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from asyncsync.errors import InvalidReferenceError, UsageError

if TYPE_CHECKING:
    from asyncsync.reference import ImageName
    from asyncsync.transports.base import ImageDestination, ImageSource, TransportContext


@dataclass(frozen=True, slots=True)
class DirReference:
    """The image stored in the directory ``path`` (the whole text after ``dir:``, colons included)."""

    path: str

    @property
    def transport_name(self) -> str:
        return "dir"

    def within_transport(self) -> str:
        return self.path

    def docker_reference(self) -> ImageName | None:
        return None

    def __str__(self) -> str:
        return f"dir:{self.path}"

    async def new_source(self, ctx: TransportContext) -> ImageSource:
        from asyncsync.transports.directory.source import open_dir_source

        return await open_dir_source(self, ctx)

    async def new_destination(self, ctx: TransportContext) -> ImageDestination:
        from asyncsync.transports.directory.destination import open_dir_destination

        return await open_dir_destination(self, ctx)

    async def delete(self, ctx: TransportContext) -> list[str]:
        raise UsageError(
            f"{self}: deleting images is not supported for dir: (as in skopeo); remove the directory"
        )


def parse_dir_reference(rest: str) -> DirReference:
    """Parse the part after ``dir:``; any non-empty path is accepted, as in skopeo."""
    if not rest:
        raise InvalidReferenceError("invalid image name 'dir:': expected dir:PATH")
    return DirReference(rest)
