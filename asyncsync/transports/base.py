"""The transport interfaces: ImageReference, ImageSource, ImageDestination (as containers/image).

The copy engine depends only on this module. Each transport lives in its own subpackage with
``reference.py``, ``source.py`` and ``destination.py``, and is registered explicitly in
``asyncsync.transports``.

Contracts every implementation keeps:

* ``ImageSource.get_manifest(None)`` returns the manifest the reference names (possibly an
  index); ``get_manifest(digest)`` returns a child manifest of that index, bytes unchanged.
* ``ImageSource.open_blob`` yields the blob's bytes as a stream; it does NOT verify them
  (the copy engine wraps every stream in :func:`asyncsync.digest.verified_chunks`).
* ``ImageDestination.try_reuse_blob`` returns a :class:`ReuseResult` or ``None``; an expected
  "no" (blob absent, mount refused) is ``None``, never an exception.
* ``ImageDestination.put_blob`` consumes the verified stream; if the stream raises, nothing
  is committed and partial data is deleted or abandoned (never visible as the blob).
* Blobs MUST be put before a manifest that references them, child manifests before their
  index, and the tag (``put_manifest(..., instance=None)``) last; ``commit()`` makes a local
  destination's result visible atomically (registries need nothing there).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from asyncsync.digest import Digest
from asyncsync.manifest import Descriptor
from asyncsync.reference import ImageName

if TYPE_CHECKING:
    from asyncsync.limits import BlobLimiter
    from asyncsync.registry.client import RegistryOptions, RegistrySession
    from asyncsync.retry import RetryPolicy
    from asyncsync.signature.formats import Signature
    from asyncsync.signature.registries_d import RegistriesD


@dataclass(frozen=True, slots=True)
class SideOptions:
    """Per-side settings from skopeo's ``--src-*`` / ``--dest-*`` flags.

    ``registry`` applies to ``docker://``; the rest to the local transports that use them.
    """

    registry: RegistryOptions
    shared_blob_dir: str | None = None
    compress: bool = False
    decompress: bool = False
    daemon_host: str | None = None
    additional_tags: tuple[str, ...] = ()
    #: Upload blobs to a registry in chunks of this many bytes (``--chunk-size``); ``None`` = monolithic.
    chunk_size: int | None = None
    #: Blobs larger than this are uploaded in chunks even without ``chunk_size`` (per registry).
    chunked_threshold: int | None = None
    #: ``oci:``/``oci-archive:`` keep uncompressed layers as they are
    #: (``--dest-oci-accept-uncompressed-layers``).
    oci_accept_uncompressed_layers: bool = False
    #: Where registries keep signatures (``--registries.d``); ``None``: the built-in lookaside store.
    registries_d: RegistriesD | None = None


@dataclass(slots=True)
class TransportContext:
    """What a transport may use: the run's registry session, retry policy, blob limiter, options."""

    session: RegistrySession
    options: SideOptions
    retry: RetryPolicy
    blob_limiter: BlobLimiter | None = None


@dataclass(frozen=True, slots=True)
class BlobLocation:
    """Where a blob is known to live: a repository on a registry (a cross-repo mount source)."""

    registry: str
    repository: str


class ReuseKind(Enum):
    EXISTS = "already exists"
    MOUNTED = "mounted"


@dataclass(frozen=True, slots=True)
class ReuseResult:
    """A blob the destination already has (``EXISTS``) or obtained without upload (``MOUNTED``)."""

    kind: ReuseKind
    size: int
    mounted_from: str | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a side can do, for the copy engine's choices."""

    #: The source can resume a broken blob read at an offset (HTTP Range).
    ranged_reads: bool = False
    #: Manifest media types the destination accepts; ``None`` = any.
    manifest_types: tuple[str, ...] | None = None
    #: Destination supports cross-repo mounts (registries).
    mounts: bool = False
    #: Destination can hold an index with its children (not true of docker-archive).
    multi_image: bool = True
    #: Destination stores manifests by digest so digests are preserved.
    preserves_digests: bool = True
    #: The copy engine compresses layers for this destination (containers/image's
    #: ``DesiredLayerCompression() == Compress``: registries and ``oci:``): uncompressed layers get
    #: gzip (or ``--dest-compress-format``), and layers in another format are recompressed to that
    #: format (:mod:`asyncsync.copy.recompress`).
    compresses_layers: bool = False
    #: When a layer's new compression cannot be said in the source's manifest type (zstd in Docker
    #: v2s2) and no ``--format`` was given, the destination takes an OCI manifest instead (a
    #: registry; skopeo tries the OCI type next). Otherwise that is an error.
    oci_fallback: bool = False


@runtime_checkable
class ImageReference(Protocol):
    """A parsed ``transport:details`` name."""

    @property
    def transport_name(self) -> str: ...

    def within_transport(self) -> str:
        """The part after ``transport:`` (``//host/repo:tag`` for docker)."""

    def docker_reference(self) -> ImageName | None:
        """The Docker reference this names, if any (docker:, and tagged archives)."""

    async def new_source(self, ctx: TransportContext) -> ImageSource: ...

    async def new_destination(self, ctx: TransportContext) -> ImageDestination: ...

    async def delete(self, ctx: TransportContext) -> list[str]:
        """Delete the image; returns human-readable notes (e.g. other tags removed with it)."""


@runtime_checkable
class ImageSource(Protocol):
    """Reads one image (and, for an index, its children)."""

    @property
    def reference(self) -> ImageReference: ...

    @property
    def capabilities(self) -> Capabilities: ...

    async def get_manifest(self, instance: Digest | None = None) -> tuple[bytes, str]:
        """``(raw bytes, media type)`` of the named manifest, or of child ``instance``."""

    def open_blob(
        self, blob: Descriptor, offset: int = 0
    ) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Stream a blob's bytes from ``offset``; unverified (the engine verifies)."""

    def blob_locations(self) -> Sequence[BlobLocation]:
        """Where this source's blobs live, usable as mount sources on the same registry."""

    async def list_tags(self) -> list[str]:
        """Tags of the repository/layout this source reads (for sync expansion)."""

    async def close(self) -> None: ...


@runtime_checkable
class ImageDestination(Protocol):
    """Writes one image. Blobs first, then child manifests, then the index/tag, then commit."""

    @property
    def reference(self) -> ImageReference: ...

    @property
    def capabilities(self) -> Capabilities: ...

    async def try_reuse_blob(
        self, blob: Descriptor, candidates: Sequence[BlobLocation] = (), *, known_absent: bool = False
    ) -> ReuseResult | None:
        """Check presence, then try mounting from ``candidates``; ``None`` if neither worked.

        ``known_absent``: the caller saw the blob absent here moments ago, so the presence
        check may be skipped (a registry saves a HEAD; local stores may ignore it).
        """

    async def put_blob(self, blob: Descriptor, chunks: AsyncIterator[bytes]) -> None:
        """Store a blob from a verified stream; on any error nothing is committed."""

    async def put_manifest(self, raw: bytes, media_type: str, instance: Digest | None = None) -> Digest:
        """Store manifest bytes unchanged: by digest for a child (``instance``), else at the reference."""

    async def commit(self) -> None:
        """Make the written image visible (atomic for local stores; no-op for registries)."""

    async def close(self) -> None: ...


@runtime_checkable
class StreamedBlobDestination(Protocol):
    """A destination that can store a blob whose digest is known only once its stream has ended
    (a layer compressed on the way, uploaded while it is compressed: registries)."""

    async def put_blob_streamed(
        self, chunks: AsyncIterator[bytes], finished: Callable[[], Awaitable[Digest]]
    ) -> int:
        """Store the blob ``chunks`` streams under the digest ``finished`` returns once the stream
        has ended (``finished`` may raise to refuse it); returns its size. On any error nothing
        is committed."""


@runtime_checkable
class BytesBlobDestination(Protocol):
    """A destination that can store a small blob from its bytes in one request (registries: the
    ``PUT`` carries them), cheaper than :meth:`ImageDestination.put_blob`'s stream. For a blob it
    :meth:`wants_bytes` of, the copy engine reads the blob whole and verifies it first."""

    def wants_bytes(self, blob: Descriptor) -> bool:
        """Whether ``blob`` should come as bytes (:meth:`put_blob_bytes`), not as a stream."""

    async def put_blob_bytes(self, blob: Descriptor, data: bytes) -> None:
        """Store ``data``, already verified against ``blob``'s digest and size; on any error
        nothing is committed (:meth:`ImageDestination.put_blob`'s contract)."""


@runtime_checkable
class SignatureSource(Protocol):
    """A source that can list signatures (registries through lookaside/attachments, ``dir:``).

    ``instance`` is true for a child of an index (``dir:`` keeps those apart). ``simple`` /
    ``sigstore`` false: signatures of that kind are not wanted (a registry then does not read
    where they live). An image without signatures gives ``[]``; a store that cannot be read raises.
    """

    async def get_signatures(
        self, digest: Digest, *, instance: bool, simple: bool = True, sigstore: bool = True
    ) -> list[Signature]: ...


@runtime_checkable
class SignatureDestination(Protocol):
    """A destination that can store signatures. MUST be called after the manifest ``digest`` was
    put and before ``commit()``; it replaces the signatures stored for ``digest``."""

    async def put_signatures(
        self, signatures: list[Signature], digest: Digest, *, instance: bool
    ) -> None: ...


@dataclass(slots=True)
class CopyStats:
    """Counters a copy fills in; summed by the sync report."""

    blobs_copied: int = 0
    blobs_existing: int = 0
    blobs_mounted: int = 0
    bytes_uploaded: int = 0
    bytes_reused: int = 0
    manifests_written: int = 0
    notes: list[str] = field(default_factory=list)
