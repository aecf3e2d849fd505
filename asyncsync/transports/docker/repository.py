"""What the registry source and destination share: one repository of one registry and its client."""

from __future__ import annotations

from asyncsync.digest import Digest
from asyncsync.registry.client import RegistryClient
from asyncsync.transports.base import TransportContext
from asyncsync.transports.docker.reference import DockerReference


class OnRepository:
    """Base of :class:`~.source.DockerSource` and :class:`~.destination.DockerDestination`.

    ``registry``, ``repository`` and ``client`` (the run's client of that registry, with the
    options the context gives it) are fixed when it is opened; the session, and so the client,
    belongs to the caller.
    """

    def __init__(self, reference: DockerReference, ctx: TransportContext) -> None:
        self._reference = reference
        self._ctx = ctx
        name = reference.name
        self.registry = name.registry
        self.repository = name.repository
        self.client: RegistryClient = ctx.session.client(name.registry, ctx.options.registry)

    @property
    def reference(self) -> DockerReference:
        return self._reference

    def _manifest_reference(self, instance: Digest | None) -> str:
        """What a manifest request names: the child ``instance``, else the reference's tag or digest."""
        return str(instance) if instance is not None else self._reference.name.reference
