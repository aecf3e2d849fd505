"""``docker://host/repo[:tag|@digest]`` references."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from asyncsync.errors import InvalidReferenceError
from asyncsync.reference import ImageName, parse_reference

if TYPE_CHECKING:
    from asyncsync.transports.base import ImageDestination, ImageSource, TransportContext


@dataclass(frozen=True, slots=True)
class DockerReference:
    """An image in a registry. ``name`` always has a tag or a digest."""

    name: ImageName

    @property
    def transport_name(self) -> str:
        return "docker"

    def within_transport(self) -> str:
        return f"//{self.name}"

    def docker_reference(self) -> ImageName:
        return self.name

    def __str__(self) -> str:
        return f"docker://{self.name}"

    async def new_source(self, ctx: TransportContext) -> ImageSource:
        from asyncsync.transports.docker.source import DockerSource

        return DockerSource(self, ctx)

    async def new_destination(self, ctx: TransportContext) -> ImageDestination:
        from asyncsync.transports.docker.destination import DockerDestination

        return DockerDestination(self, ctx)

    async def delete(self, ctx: TransportContext) -> list[str]:
        from asyncsync.transports.docker.delete import delete_image

        return await delete_image(self, ctx)


def parse_docker_reference(rest: str) -> DockerReference:
    """Parse the part after ``docker:``; it must start with ``//`` as in skopeo."""
    if not rest.startswith("//"):
        raise InvalidReferenceError(
            f"invalid docker reference {'docker:' + rest!r}: must start with docker://"
        )
    return DockerReference(parse_reference(rest[2:], default_tag=True))
