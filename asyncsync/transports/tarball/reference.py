"""``tarball:FILE[:FILE...]`` references (``-`` is standard input), as containers/image's ``tarball/``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from asyncsync.errors import InvalidReferenceError, UsageError
from asyncsync.transports.local_files import remove_file

if TYPE_CHECKING:
    from asyncsync.reference import ImageName
    from asyncsync.transports.base import ImageDestination, ImageSource, TransportContext

SEPARATOR = ":"


@dataclass(frozen=True, slots=True)
class TarballReference:
    """Layer files in order (``-``: standard input); an image built from them, readable only."""

    files: tuple[str, ...]

    @property
    def transport_name(self) -> str:
        return "tarball"

    def within_transport(self) -> str:
        return SEPARATOR.join(self.files)

    def docker_reference(self) -> ImageName | None:
        return None

    def __str__(self) -> str:
        return f"tarball:{self.within_transport()}"

    async def new_source(self, ctx: TransportContext) -> ImageSource:
        from asyncsync.transports.tarball.source import open_tarball_source

        return await open_tarball_source(self)

    async def new_destination(self, ctx: TransportContext) -> ImageDestination:
        raise UsageError(f'{self}: "tarball:" locations can only be read from, not written to')

    async def delete(self, ctx: TransportContext) -> list[str]:
        """Remove the files (what ``skopeo delete tarball:...`` does); missing ones are fine."""
        await anyio.to_thread.run_sync(self._remove_files)
        return []

    def _remove_files(self) -> None:
        for name in self.files:
            if name == "-":
                continue
            remove_file(name, f"{self}: removing {name!r}")


def parse_tarball_reference(rest: str) -> TarballReference:
    """Parse the part after ``tarball:`` (``:``-separated file names; none may be empty)."""
    files = tuple(rest.split(SEPARATOR))
    if not rest or any(not name for name in files):
        raise InvalidReferenceError(f"invalid image name 'tarball:{rest}': expected tarball:FILE[:FILE...]")
    if files.count("-") > 1:
        raise InvalidReferenceError(f"invalid image name 'tarball:{rest}': standard input can be read once")
    return TarballReference(files)
