"""Transport registry: ``transport:details`` names to :class:`~asyncsync.transports.base.ImageReference`.

Transports register explicitly below; ``parse_image_name`` splits on the first colon.
"""

from __future__ import annotations

from collections.abc import Callable

from asyncsync.errors import InvalidReferenceError
from asyncsync.transports.base import ImageReference

ReferenceParser = Callable[[str], ImageReference]

_TRANSPORTS: dict[str, ReferenceParser] = {}


def register(name: str, parser: ReferenceParser) -> None:
    """Make ``name:`` names parse with ``parser`` (called with the part after the colon)."""
    _TRANSPORTS[name] = parser


def transport_names() -> list[str]:
    return sorted(_TRANSPORTS)


def parse_image_name(text: str) -> ImageReference:
    """Parse ``docker://host/repo:tag``, ``oci:/path:ref`` and friends.

    Raises :class:`InvalidReferenceError` for an unknown transport or a bad name.
    """
    name, sep, rest = text.partition(":")
    if not sep or not name:
        raise InvalidReferenceError(
            f"invalid image name {text!r}: expected TRANSPORT:NAME, e.g. docker://registry.example/repo:tag"
        )
    parser = _TRANSPORTS.get(name)
    if parser is None:
        known = ", ".join(transport_names())
        raise InvalidReferenceError(
            f"invalid image name {text!r}: unknown transport {name!r} (known: {known})"
        )
    return parser(rest)


def _register_builtin() -> None:
    from asyncsync.transports.containers_storage.reference import parse_storage_reference
    from asyncsync.transports.directory.reference import parse_dir_reference
    from asyncsync.transports.docker.reference import parse_docker_reference
    from asyncsync.transports.docker_archive.reference import parse_docker_archive_reference
    from asyncsync.transports.docker_daemon.reference import parse_daemon_reference
    from asyncsync.transports.oci_archive.reference import parse_oci_archive_reference
    from asyncsync.transports.oci_layout.reference import parse_oci_reference
    from asyncsync.transports.sif.reference import parse_sif_reference
    from asyncsync.transports.tarball.reference import parse_tarball_reference

    register("docker", parse_docker_reference)
    register("oci", parse_oci_reference)
    register("oci-archive", parse_oci_archive_reference)
    register("dir", parse_dir_reference)
    register("docker-archive", parse_docker_archive_reference)
    register("docker-daemon", parse_daemon_reference)
    register("containers-storage", parse_storage_reference)
    register("sif", parse_sif_reference)
    register("tarball", parse_tarball_reference)


_register_builtin()
