"""``sif:PATH`` references: a SIF file, readable only (as in skopeo)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from asyncsync.errors import InvalidReferenceError, UsageError

if TYPE_CHECKING:
    from asyncsync.reference import ImageName
    from asyncsync.transports.base import ImageDestination, ImageSource, TransportContext


@dataclass(frozen=True, slots=True)
class SifReference:
    """The SIF file at ``path`` (as given: relative paths are relative to the working directory)."""

    path: str

    @property
    def transport_name(self) -> str:
        return "sif"

    def within_transport(self) -> str:
        return self.path

    def docker_reference(self) -> ImageName | None:
        return None

    def __str__(self) -> str:
        return f"sif:{self.path}"

    async def new_source(self, ctx: TransportContext) -> ImageSource:
        from asyncsync.transports.sif.source import open_sif_source

        return await open_sif_source(self)

    async def new_destination(self, ctx: TransportContext) -> ImageDestination:
        raise UsageError(f'{self}: "sif:" locations can only be read from, not written to')

    async def delete(self, ctx: TransportContext) -> list[str]:
        raise UsageError(f"{self}: deleting images is not implemented for sif: images")


def parse_sif_reference(rest: str) -> SifReference:
    """Parse the part after ``sif:`` (a file path)."""
    if not rest:
        raise InvalidReferenceError("invalid image name 'sif:': a SIF file path is required")
    return SifReference(rest)
