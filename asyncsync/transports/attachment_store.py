"""What a transport offers for attachments (referrers and cosign tags), beside the image interfaces.

The copy engine copies an attachment's blobs and manifest through the ordinary
:class:`~asyncsync.transports.base.ImageSource` / :class:`~asyncsync.transports.base.ImageDestination`
(``get_manifest(digest)``, ``open_blob``, ``put_manifest(..., instance=digest)``). What those
cannot say lives here: the tags of the repository, a manifest by tag, the referrers API, and
writing a tag that is not the image's own reference. A source or destination that can take part
has an ``attachment_reader()`` / ``attachment_writer()`` method (checked with the runtime
protocols below); one without it (``docker-daemon:``, ``docker-archive:``, ...) gets the image
alone.

Contracts:

* Absence is a return value (``None``), never an exception; other failures raise the error tree.
* ``AttachmentReader.referrers`` returns ``None`` when the source has no referrers API (then the
  fallback tag ``sha256-<hex>`` is read instead), else every entry, all pages followed.
* ``AttachmentWriter.put_tagged`` writes manifest bytes unchanged under a tag, after the caller has
  written everything they reference (the commit rule: nothing points at what is not there yet).
* ``AttachmentWriter.referrers`` answers for the destination: ``None`` when it has no referrers
  API (then the caller maintains the fallback tag), else what it lists for the subject.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, cast, runtime_checkable

from asyncsync.digest import Digest
from asyncsync.manifest import Descriptor


@dataclass(frozen=True, slots=True)
class ReferrerEntry:
    """One entry of a referrers index: its descriptor, ``artifactType`` and the raw JSON object."""

    descriptor: Descriptor
    artifact_type: str
    raw: dict[str, Any] = field(hash=False, compare=False)

    @property
    def digest(self) -> Digest:
        return self.descriptor.digest


class AttachmentReader(Protocol):
    """Read access to the attachments next to a source image (one repository or layout)."""

    @property
    def key(self) -> str:
        """``registry/repository`` (or the layout path): tag lists are cached run-wide by it."""

    @property
    def api_key(self) -> str:
        """The registry (or layout): whether the referrers API exists is remembered by it."""

    async def list_tags(self) -> list[str]:
        """Every tag of the repository (one listing; callers cache it)."""

    async def head(self, tag: str) -> Digest | None:
        """The digest a tag names, ``None`` when absent."""

    async def get(self, reference: str) -> tuple[bytes, str] | None:
        """``(raw, media type)`` of a manifest by tag or digest, ``None`` when absent."""

    async def referrers(
        self, subject: Digest, artifact_type: str | None = None
    ) -> list[ReferrerEntry] | None:
        """Entries of the referrers API for ``subject``; ``None`` without such an API.

        ``artifact_type`` asks the source to filter (it may not: callers filter again)."""


class AttachmentWriter(Protocol):
    """Write access for attachments at a destination (one repository or layout)."""

    @property
    def key(self) -> str:
        """``registry/repository`` (or the layout path): the run lists its tags once by it."""

    @property
    def api_key(self) -> str:
        """The registry (or layout): whether the referrers API exists is detected once per key."""

    @property
    def holds_referrers(self) -> bool:
        """Whether manifests with a ``subject`` (and the fallback tag) can be stored here."""

    async def list_tags(self) -> list[str]:
        """Every tag of the repository (empty when it does not exist yet)."""

    async def head(self, tag: str) -> Digest | None:
        """The digest a tag names, ``None`` when absent."""

    async def get(self, reference: str) -> tuple[bytes, str] | None:
        """``(raw, media type)`` of a manifest by tag or digest, ``None`` when absent."""

    async def put_referrer(self, raw: bytes, media_type: str, digest: Digest) -> bool | None:
        """Write a manifest with a ``subject`` by digest (what it references written first); whether
        the destination said it indexed the subject (``OCI-Subject``), ``None`` where nothing can say."""

    async def referrers(self, subject: Digest) -> list[ReferrerEntry] | None:
        """What the destination's referrers API lists for ``subject``; ``None`` without the API."""

    async def put_tagged(self, tag: str, raw: bytes, media_type: str) -> None:
        """Write manifest bytes unchanged under ``tag`` (everything it references written first)."""


@runtime_checkable
class HasAttachmentReader(Protocol):
    def attachment_reader(self) -> AttachmentReader: ...


@runtime_checkable
class HasAttachmentWriter(Protocol):
    def attachment_writer(self) -> AttachmentWriter: ...


def reader_of(source: object) -> AttachmentReader | None:
    """``source.attachment_reader()`` when its transport has one, else ``None``."""
    if not _implements(type(source), HasAttachmentReader):
        return None
    return cast(HasAttachmentReader, source).attachment_reader()


def writer_of(destination: object) -> AttachmentWriter | None:
    """``destination.attachment_writer()`` when its transport has one, else ``None``."""
    if not _implements(type(destination), HasAttachmentWriter):
        return None
    return cast(HasAttachmentWriter, destination).attachment_writer()


#: (class, protocol) -> whether the class has the protocol's methods. typing's isinstance() against
#: a runtime protocol walks the protocol's attributes on every call (about 0.1 ms; two calls per
#: image of a no-op re-sync with attachments), so each class is checked once.
_IMPLEMENTS: dict[tuple[type, type], bool] = {}


def _implements(cls: type, protocol: type) -> bool:
    found = _IMPLEMENTS.get((cls, protocol))
    if found is None:
        found = _IMPLEMENTS[(cls, protocol)] = issubclass(cls, protocol)
    return found


def parse_entries(entries: list[Any], where: str) -> list[ReferrerEntry]:
    """The entries of a referrers index (from the API or a fallback tag) as :class:`ReferrerEntry`.

    Raises :class:`~asyncsync.errors.ManifestError` (one line) for an entry that is not a
    descriptor; ``artifactType`` is optional (empty when absent).
    """
    parsed = []
    for position, entry in enumerate(entries):
        descriptor = Descriptor.from_json(entry, f"{where}: manifests[{position}]")
        artifact_type = entry.get("artifactType") if isinstance(entry, dict) else None
        parsed.append(
            ReferrerEntry(descriptor, artifact_type if isinstance(artifact_type, str) else "", dict(entry))
        )
    return parsed
