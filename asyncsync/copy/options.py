"""The copy engine's value types: options, the run-wide environment, and the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from asyncsync.copy.attachments.kinds import AttachmentPolicy
from asyncsync.copy.attachments.state import AttachmentOutcome, AttachmentRun
from asyncsync.copy.coordinator import BlobCoordinator
from asyncsync.copy.destination_state import DestinationState
from asyncsync.copy.layer_format import LayerCompression
from asyncsync.copy.progress import CopyProgress, NullProgress
from asyncsync.copy.recompress_cache import RecompressCache
from asyncsync.digest import Digest
from asyncsync.limits import BlobLimiter
from asyncsync.manifest import Platform
from asyncsync.reference import ImageName
from asyncsync.retry import RetryPolicy
from asyncsync.signature.evaluate import PolicyContext
from asyncsync.signature.signing import Signer
from asyncsync.transports.base import CopyStats

MultiArch = Literal["system", "all", "index-only"]
ManifestFormat = Literal["oci", "v2s2"]


@dataclass(frozen=True)
class CopyOptions:
    """What to copy and how (skopeo copy's image options).

    ``multi_arch`` applies when the source is an index: ``system`` copies the one instance for
    ``platform`` (default: this host's) and tags it, ``all`` copies every instance and the index,
    ``index-only`` copies the index alone. ``format`` converts image manifests (and indexes) to
    OCI or Docker v2s2; ``preserve_digests`` forbids any change of manifest bytes.
    ``attachments`` (``None``: off) makes what refers to the image follow it (referrers, cosign
    tags; see :mod:`asyncsync.copy.attachments`); the commands turn it on by default.
    ``remove_signatures`` drops signatures among them (``attachments.remove_signatures``).
    ``remove_signatures`` also stops carrying lookaside/``signature-N`` signatures (new ones are still made).
    ``platforms`` (with ``all``) keeps only the instances of those platforms: the index is
    rewritten without the others, so its digest changes (a sync spec's ``platforms:``).
    ``compression`` is the layer compression asked for (``--dest-compress-format`` and friends;
    :mod:`asyncsync.copy.recompress`).
    """

    multi_arch: MultiArch = "system"
    platform: Platform | None = None
    platforms: tuple[Platform, ...] = ()
    format: ManifestFormat | None = None
    preserve_digests: bool = False
    remove_signatures: bool = False
    compression: LayerCompression = field(default_factory=LayerCompression)
    attachments: AttachmentPolicy | None = None


@dataclass(frozen=True)
class TrustSettings:
    """A run's trust configuration, built once at the edge.

    ``policy`` ``None`` checks nothing (a library caller that wants no policy); the CLI always
    sets one (``--insecure-policy`` is a policy that accepts anything). ``sign_identity``
    replaces the destination reference in new signatures.
    """

    policy: PolicyContext | None = None
    signers: tuple[Signer, ...] = ()
    sign_identity: ImageName | None = None


@dataclass
class CopyEnvironment:
    """What every copy of a run shares: the blob limiter, retry policy, coordinator and progress.

    ``destinations`` knows which destination repositories were new to the run (see
    :mod:`asyncsync.copy.destination_state`); the default knows nothing and changes nothing.
    ``trust`` is the run's policy and signers (:mod:`asyncsync.copy.trust`); ``None`` checks
    nothing and carries no signatures.
    """

    blob_limiter: BlobLimiter
    retry: RetryPolicy
    coordinator: BlobCoordinator = field(default_factory=BlobCoordinator)
    progress: CopyProgress = field(default_factory=NullProgress)
    destinations: DestinationState = field(default_factory=DestinationState)
    #: Layers recompressed in this run, by (source digest, format, level).
    recompressed: RecompressCache = field(default_factory=RecompressCache)
    attachments: AttachmentRun = field(default_factory=AttachmentRun)
    trust: TrustSettings | None = None


@dataclass
class CopyResult:
    """``digest``/``media_type`` of the top-level manifest written at the destination."""

    digest: Digest
    media_type: str
    stats: CopyStats
    attachments: AttachmentOutcome = field(default_factory=AttachmentOutcome)
