"""Source discovery through the Harbor API: a :class:`~asyncsync.sync.plan.SourceLister` wrapper.

``/v2/_catalog`` needs a Harbor system administrator; the project API does not. For hosts
declared ``type: harbor`` in the spec, :class:`HarborLister`

* lists repositories of a glob source with ``/api/v2.0/projects/{p}/repositories`` (the first
  component of the glob's literal prefix is the project; an empty prefix walks every project
  the credentials may see);
* lists tags with the artifacts API (``with_tag=true``), which also tells each tag's manifest
  digest and media type: :meth:`resolve` answers those tags from that listing, so a Harbor
  source costs one request per page of artifacts instead of one HEAD per tag;
* passes everything else (other hosts, digests, tags it has not listed) to the wrapped lister.

Results are cached per lister (one plan), so concurrent callers for the same project or
repository share one listing.
"""

from __future__ import annotations

from collections.abc import Collection

from asyncsync.errors import AsyncSyncError
from asyncsync.harbor.api import HarborAPI, HarborArtifact
from asyncsync.limits import SingleFlight
from asyncsync.sync.hooks import RunContext
from asyncsync.sync.plan import ResolvedManifest, SourceLister, bounded_map

#: Projects listed at once when a glob has no literal prefix.
PROJECT_CONCURRENCY = 4


#: Harbor's accessory types for cosign's tag attachments, and the tag suffix cosign gives each.
_COSIGN_ACCESSORIES = {"signature.cosign": "sig", "attestation.cosign": "att", "sbom.cosign": "sbom"}


def cosign_tags(artifact: HarborArtifact) -> list[str]:
    """The tags of ``artifact``'s cosign accessories (``sha256-<hex>.sig`` ...): Harbor lists them
    under their subject, not as tags, yet cosign (and the attachment walk) find them by tag."""
    subject = artifact.digest
    return [
        f"{subject.algorithm}-{subject.hex}.{_COSIGN_ACCESSORIES[a.type]}"
        for a in artifact.accessories
        if a.type in _COSIGN_ACCESSORIES
    ]


class HarborLister:
    """Harbor API discovery for ``hosts``; ``inner`` serves every other request."""

    def __init__(self, inner: SourceLister, ctx: RunContext, hosts: Collection[str]) -> None:
        self.inner = inner
        self.ctx = ctx
        self.hosts = frozenset(hosts)
        self._projects: SingleFlight[tuple[str, str], list[str]] = SingleFlight()
        self._artifacts: SingleFlight[tuple[str, str], list[HarborArtifact]] = SingleFlight()
        # (registry, repository, tag) -> what the artifacts listing said about the tag
        self._tagged: dict[tuple[str, str, str], ResolvedManifest] = {}

    def api(self, registry: str) -> HarborAPI:
        return HarborAPI(self.ctx.client(registry, "source"))

    async def _project_repositories(self, registry: str, project: str) -> list[str]:
        return await self._projects.do(
            (registry, project), lambda: self.api(registry).list_repositories(project)
        )

    async def list_repositories(self, registry: str, prefix: str) -> list[str]:
        if registry not in self.hosts:
            return await self.inner.list_repositories(registry, prefix)
        prefix = prefix.strip("/")
        if prefix:
            project = prefix.split("/", 1)[0]
            repositories = await self._project_repositories(registry, project)
            return [repo for repo in repositories if repo.startswith(prefix + "/")]
        projects = await self.api(registry).list_projects()

        async def one(project: str) -> list[str]:
            return await self._project_repositories(registry, project)

        listed = await bounded_map(projects, one, PROJECT_CONCURRENCY)
        found: list[str] = []
        for project in projects:
            result = listed[project]
            if isinstance(result, AsyncSyncError):
                raise result
            found.extend(result)
        return sorted(found)

    async def _list_artifacts(self, registry: str, repository: str) -> list[HarborArtifact]:
        return await self._artifacts.do(
            (registry, repository), lambda: self.api(registry).list_artifacts(repository)
        )

    async def list_tags(self, registry: str, repository: str) -> list[str]:
        if registry not in self.hosts:
            return await self.inner.list_tags(registry, repository)
        artifacts = await self._list_artifacts(registry, repository)
        accessories = {a.digest for artifact in artifacts for a in artifact.accessories}
        tags: set[str] = set()
        for artifact in artifacts:
            # An accessory (signature, SBOM) is an attachment of its subject, never an image of its
            # own, whether or not this Harbor lists it among the artifacts too.
            if artifact.digest in accessories:
                continue
            tags.update(cosign_tags(artifact))
            for tag in artifact.tags:
                tags.add(tag)
                if artifact.media_type:
                    self._tagged[(registry, repository, tag)] = ResolvedManifest(
                        artifact.digest, artifact.media_type
                    )
        return sorted(tags)

    async def resolve(self, registry: str, repository: str, reference: str) -> ResolvedManifest | None:
        known = self._tagged.get((registry, repository, reference))
        if known is not None:
            return known
        return await self.inner.resolve(registry, repository, reference)
