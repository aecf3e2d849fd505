"""The copy engine: one image (or index) from an ImageSource to an ImageDestination.

It depends only on :mod:`asyncsync.transports.base`, so every transport plugs in unchanged.
The order of writes is the commit protocol: blobs (config and layers, concurrently under the
run's blob limiter), then child manifests by digest, then indexes, then the reference (tag),
then ``commit()``. A failure before the last step leaves no tag behind. With a trust
configuration (:mod:`asyncsync.copy.trust`), the policy is asked after the source manifest is
read and before anything is written, and signatures are stored after the manifests, before
``commit()``.
"""

from __future__ import annotations

from asyncsync.copy.attachments.hook import follow_attachments
from asyncsync.copy.attachments.state import AttachmentOutcome
from asyncsync.copy.blobs import BlobCopier
from asyncsync.copy.coordinator import BlobCoordinator
from asyncsync.copy.image import copy_image_manifest, require_image
from asyncsync.copy.index import copy_index
from asyncsync.copy.options import CopyEnvironment, CopyOptions, CopyResult, TrustSettings
from asyncsync.copy.progress import CopyProgress, NullProgress
from asyncsync.copy.trust import admit
from asyncsync.digest import Digest
from asyncsync.errors import NotFoundError, UsageError
from asyncsync.manifest import ImageIndex, ImageManifest, parse_manifest
from asyncsync.transports.base import CopyStats, ImageDestination, ImageReference, ImageSource

__all__ = [
    "BlobCoordinator",
    "CopyEnvironment",
    "CopyOptions",
    "CopyProgress",
    "CopyResult",
    "NullProgress",
    "TrustSettings",
    "copy_image",
]


def _name(reference: ImageReference) -> str:
    return f"{reference.transport_name}:{reference.within_transport()}"


async def copy_image(
    source: ImageSource, destination: ImageDestination, options: CopyOptions, env: CopyEnvironment
) -> CopyResult:
    """Copy the image ``source`` names to ``destination`` and return what was written.

    Raises :class:`UsageError` for a copy onto itself or options that cannot apply (a format
    change with ``preserve_digests``), :class:`~asyncsync.errors.ManifestError` for manifests
    that cannot be copied, :class:`~asyncsync.errors.DigestMismatchError` when content does not
    match its digest (never committed), and registry/transport errors after retries.
    """
    source_name, destination_name = _name(source.reference), _name(destination.reference)
    if source_name == destination_name:
        raise UsageError(f"source and destination are the same image ({source_name})")
    stats = CopyStats()
    copier = BlobCopier(source, destination, env, stats)
    try:
        raw, media_type = await source.get_manifest(None)
    except NotFoundError as exc:
        raise exc.naming(f"reading {source_name}: image") from exc
    env.progress.copy_started(source_name, destination_name)
    manifest = require_image(parse_manifest(raw, media_type), f"{source_name}")
    admission = None
    if env.trust is not None:  # the policy's question, before the first blob is written
        admission = await admit(source, destination, manifest, options, env.trust)
        options = admission.options
    if isinstance(manifest, ImageIndex):
        written, written_type, digest = await copy_index(copier, manifest, options)
    else:
        written, written_type, digest = await copy_image_manifest(copier, manifest, options, instance=False)
    attachments = await _attachments(copier, manifest, written, digest, options, env)
    if admission is not None:
        await admission.store(destination, written, digest)
    await destination.commit()
    env.progress.copy_finished(digest)
    return CopyResult(digest=digest, media_type=written_type, stats=stats, attachments=attachments)


async def _attachments(
    copier: BlobCopier,
    manifest: ImageManifest | ImageIndex,
    written: bytes,
    digest: Digest,
    options: CopyOptions,
    env: CopyEnvironment,
) -> AttachmentOutcome:
    """After the subject is written: what refers to it follows (:mod:`asyncsync.copy.attachments`)."""
    if options.attachments is None:
        return AttachmentOutcome()
    causes = [f"--format {options.format}"] if options.format else []
    if options.compression.format is not None or options.compression.level is not None:
        causes.append("layer recompression")
    if options.platforms or options.multi_arch == "system":
        causes.append("platform selection")
    why = " or ".join(causes) or "conversion for the destination"
    return await follow_attachments(
        copier, manifest, written, digest, options.attachments, env.attachments, why
    )
