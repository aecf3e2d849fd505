"""The plan's registry access over :mod:`asyncsync.registry`: one class for both sides.

:class:`RegistryLister` implements :class:`~asyncsync.sync.plan.SourceLister` and
:class:`~asyncsync.sync.decisions.DestinationChecker` with a run's
:class:`~asyncsync.registry.client.RegistrySession`. Use one instance per side (source,
destination), each with its own options per host (credentials, TLS), as ``--src-*`` and
``--dest-*`` flags and the spec's ``registries`` give them.

Request budget: ``resolve`` and ``head`` are one HEAD each (a GET only if a registry omits
``Docker-Content-Digest``, which distribution, Harbor and Quay all send); ``list_tags`` and
``tags`` follow pagination; the catalog is fetched once per registry and filtered by prefix
locally (``/v2/_catalog`` has no prefix filter), single-flight across concurrent callers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from asyncsync.digest import Digest
from asyncsync.errors import NotFoundError
from asyncsync.limits import SingleFlight
from asyncsync.manifest import MANIFEST_ACCEPT
from asyncsync.registry.client import RegistryClient, RegistryOptions, RegistrySession
from asyncsync.registry.manifests import get_manifest, head_manifest
from asyncsync.registry.tags import list_repositories, list_tags
from asyncsync.sync.plan import ResolvedManifest

OptionsFor = Callable[[str], RegistryOptions]


class RegistryLister:
    """Source listing/resolution and destination checks against real registries.

    ``options`` gives the :class:`RegistryOptions` for a registry host: a mapping (hosts not in
    it get ``default``) or a callable. Errors are the registry package's
    :class:`~asyncsync.errors.AsyncSyncError` subclasses; absence is ``None`` / ``[]`` where the
    protocols say so.
    """

    def __init__(
        self,
        session: RegistrySession,
        options: Mapping[str, RegistryOptions] | OptionsFor | None = None,
        *,
        default: RegistryOptions | None = None,
    ) -> None:
        self.session = session
        fallback = default or RegistryOptions()
        if options is None:
            self._options: OptionsFor = lambda host: fallback
        elif callable(options):
            self._options = options
        else:
            table = dict(options)
            self._options = lambda host: table.get(host, fallback)
        self._catalogs: SingleFlight[str, list[str]] = SingleFlight()

    def client(self, registry: str) -> RegistryClient:
        return self.session.client(registry, self._options(registry))

    # -- SourceLister --------------------------------------------------------------------------

    async def list_tags(self, registry: str, repository: str) -> list[str]:
        return await list_tags(self.client(registry), repository)

    async def list_repositories(self, registry: str, prefix: str) -> list[str]:
        catalog = await self._catalogs.do(registry, lambda: list_repositories(self.client(registry)))
        if not prefix:
            return list(catalog)
        start = prefix.rstrip("/") + "/"
        return [repo for repo in catalog if repo.startswith(start)]

    async def resolve(self, registry: str, repository: str, reference: str) -> ResolvedManifest | None:
        client = self.client(registry)
        head = await head_manifest(client, repository, reference)
        if head is None:
            return None
        pinned = Digest.parse(reference) if ":" in reference else None
        if head.digest is not None and head.media_type:
            return ResolvedManifest(pinned or head.digest, head.media_type)
        # A registry that omits the digest or type on HEAD: the body tells both (and is verified).
        try:
            fetched = await get_manifest(client, repository, reference, accept=MANIFEST_ACCEPT)
        except NotFoundError:
            return None
        return ResolvedManifest(fetched.digest, fetched.media_type)

    # -- DestinationChecker --------------------------------------------------------------------

    async def head(self, registry: str, repository: str, reference: str) -> Digest | None:
        # A HEAD without a digest header reads as "absent": the image is copied, never wrongly skipped.
        head = await head_manifest(self.client(registry), repository, reference)
        return head.digest if head is not None else None

    async def tags(self, registry: str, repository: str) -> list[str]:
        try:
            return await list_tags(self.client(registry), repository)
        except NotFoundError:
            return []

    async def repository_exists(self, registry: str, repository: str) -> bool:
        try:
            await list_tags(self.client(registry), repository)
        except NotFoundError:
            return False
        return True
