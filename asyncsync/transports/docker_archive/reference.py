"""``docker-archive:PATH[:NAME:TAG|:@N]`` references (an image in a ``docker save`` tar file)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from asyncsync.errors import InvalidReferenceError, UsageError
from asyncsync.reference import ImageName, parse_reference

if TYPE_CHECKING:
    from asyncsync.transports.base import ImageDestination, ImageSource, TransportContext


@dataclass(frozen=True, slots=True)
class DockerArchiveReference:
    """An image in the archive ``path``: selected by ``name`` (tagged), by ``index`` (``@N``,
    sources only), or the only image. As a destination, ``name`` is the tag written."""

    path: str
    name: ImageName | None = None
    index: int | None = None

    @property
    def transport_name(self) -> str:
        return "docker-archive"

    def within_transport(self) -> str:
        if self.name is not None:
            return f"{self.path}:{self.name.familiar_name}:{self.name.tag}"
        if self.index is not None:
            return f"{self.path}:@{self.index}"
        return self.path

    def docker_reference(self) -> ImageName | None:
        return self.name

    def __str__(self) -> str:
        return f"docker-archive:{self.within_transport()}"

    async def new_source(self, ctx: TransportContext) -> ImageSource:
        from asyncsync.transports.docker_archive.source import open_archive_source

        return await open_archive_source(self, ctx)

    async def new_destination(self, ctx: TransportContext) -> ImageDestination:
        from asyncsync.transports.docker_archive.destination import open_archive_destination

        return await open_archive_destination(self, ctx)

    async def delete(self, ctx: TransportContext) -> list[str]:
        raise UsageError(f"{self}: deleting images is not supported for docker-archive: (as in skopeo)")


def parse_tagged_name(text: str, what: str) -> ImageName:
    """A Docker name with a tag (``latest`` added when missing); digests are refused, as in skopeo."""
    name = parse_reference(text, default_tag=True)
    if name.digest is not None:
        raise InvalidReferenceError(f"{what}: digest references are not supported, use NAME:TAG")
    return name


def parse_docker_archive_reference(rest: str) -> DockerArchiveReference:
    """Parse the part after ``docker-archive:``: ``PATH``, ``PATH:NAME[:TAG]`` or ``PATH:@N``."""
    text = f"docker-archive:{rest}"
    path, sep, selector = rest.partition(":")
    if not path:
        raise InvalidReferenceError(f"invalid image name {text!r}: expected docker-archive:PATH[:NAME:TAG]")
    if not sep or not selector:
        return DockerArchiveReference(path)
    if selector.startswith("@"):
        number = selector[1:]
        if not number.isascii() or not number.isdigit():
            raise InvalidReferenceError(f"invalid source index {selector!r} in {text!r}: expected @N, N >= 0")
        return DockerArchiveReference(path, index=int(number))
    return DockerArchiveReference(path, name=parse_tagged_name(selector, text))
