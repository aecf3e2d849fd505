"""``docker-daemon:NAME:TAG`` / ``NAME@DIGEST`` / ``sha256:<image id>`` references (as skopeo)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from asyncsync.digest import Digest
from asyncsync.errors import InvalidReferenceError, UsageError
from asyncsync.reference import ImageName, parse_reference

if TYPE_CHECKING:
    from asyncsync.transports.base import ImageDestination, ImageSource, TransportContext


@dataclass(frozen=True, slots=True)
class DaemonReference:
    """An image in a Docker engine: a name with a tag or digest, or an image id (source only)."""

    name: ImageName | None = None
    image_id: Digest | None = None

    @property
    def transport_name(self) -> str:
        return "docker-daemon"

    def within_transport(self) -> str:
        if self.image_id is not None:
            return str(self.image_id)
        assert self.name is not None
        text = self.name.familiar_name
        if self.name.tag is not None:
            text += f":{self.name.tag}"
        if self.name.digest is not None:
            text += f"@{self.name.digest}"
        return text

    def docker_reference(self) -> ImageName | None:
        return self.name

    def __str__(self) -> str:
        return f"docker-daemon:{self.within_transport()}"

    async def new_source(self, ctx: TransportContext) -> ImageSource:
        from asyncsync.transports.docker_daemon.source import open_daemon_source

        return await open_daemon_source(self, ctx)

    async def new_destination(self, ctx: TransportContext) -> ImageDestination:
        from asyncsync.transports.docker_daemon.destination import open_daemon_destination

        return await open_daemon_destination(self, ctx)

    async def delete(self, ctx: TransportContext) -> list[str]:
        raise UsageError(f"{self}: deleting images is not supported for docker-daemon: (as in skopeo)")


def parse_daemon_reference(rest: str) -> DaemonReference:
    """Parse the part after ``docker-daemon:`` with containers/image's rules.

    ``sha256:<64 hex>`` is an image id; other names need an explicit tag or digest (not both);
    the repository name ``sha256`` is reserved for ids.
    """
    text = f"docker-daemon:{rest}"
    if not rest:
        raise InvalidReferenceError(f"invalid image name {text!r}: expected docker-daemon:NAME:TAG")
    algorithm, sep, hex_part = rest.partition(":")
    if sep and algorithm in ("sha256", "sha512") and "/" not in hex_part and len(hex_part) in (64, 128):
        digest = Digest.parse(rest)
        if digest.algorithm != "sha256":
            raise InvalidReferenceError(f"invalid {text!r}: only sha256 image ids are accepted")
        return DaemonReference(image_id=digest)
    name = parse_reference(rest, default_tag=False)
    if name.familiar_name == "sha256":
        raise InvalidReferenceError(
            f"invalid {text!r}: the sha256 repository name is reserved for (non-shortened) image ids"
        )
    if name.tag is None and name.digest is None:
        raise InvalidReferenceError(f"invalid {text!r}: the reference has neither a tag nor a digest")
    if name.tag is not None and name.digest is not None:
        raise InvalidReferenceError(
            f"invalid {text!r}: references with both a tag and a digest are not supported"
        )
    return DaemonReference(name=name)
