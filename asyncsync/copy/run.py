"""One copy run (``asyncsync copy``): the run-wide objects of a single copy, then :func:`copy_image`.

The CLI parses names and flags and renders progress; :func:`copy_between` owns what a run needs:
the blob limiter and the per-host request limiters (sized by :func:`asyncsync.limits.pool_sizes`),
the registry session and one transport context per side.
"""

from __future__ import annotations

from pathlib import Path

from asyncsync.copy import copy_image
from asyncsync.copy.attachments import AttachmentRun
from asyncsync.copy.attachments.api_memory import ReferrersApiMemory
from asyncsync.copy.coordinator import BlobCoordinator
from asyncsync.copy.options import CopyEnvironment, CopyOptions, CopyResult, TrustSettings
from asyncsync.copy.progress import CopyProgress, NullProgress
from asyncsync.copy.recompress_cache import RecompressCache
from asyncsync.limits import DEFAULT_COPY_BLOBS_IN_FLIGHT, BlobLimiter, pool_sizes
from asyncsync.registry.client import RegistrySession
from asyncsync.retry import RetryPolicy
from asyncsync.transports.base import ImageReference, SideOptions, TransportContext


async def copy_between(
    source: ImageReference,
    destination: ImageReference,
    options: CopyOptions,
    source_side: SideOptions,
    destination_side: SideOptions,
    *,
    retry: RetryPolicy,
    parallel: int,
    progress: CopyProgress | None = None,
    trust: TrustSettings | None = None,
    state_dir: Path | None = None,
) -> CopyResult:
    """Copy ``source`` to ``destination`` with ``parallel`` blobs in flight; closes both ends.

    ``trust`` is the policy and signers (:mod:`asyncsync.copy.trust`); ``None`` checks nothing.
    ``state_dir`` (the user cache directory, as a sync's) keeps the recompressed layers' index
    (:mod:`asyncsync.copy.recompress_cache`): a copy asks the destination for a layer an earlier
    run recompressed before recompressing it, and which source registries recently had no
    referrers API (:mod:`~asyncsync.copy.attachments.api_memory`); ``None`` keeps nothing."""
    sizes = pool_sizes(blobs=parallel, default_blobs=DEFAULT_COPY_BLOBS_IN_FLIGHT)
    blob_limiter = BlobLimiter(sizes.blobs)
    limiters = sizes.host_limiters()
    env = CopyEnvironment(
        blob_limiter=blob_limiter,
        retry=retry,
        coordinator=BlobCoordinator(),
        progress=progress or NullProgress(),
        recompressed=RecompressCache(state_dir),
        trust=trust,
        attachments=AttachmentRun(ReferrersApiMemory(state_dir)),
    )
    async with RegistrySession(limiters=limiters, retry=retry) as session:
        src = await source.new_source(TransportContext(session, source_side, retry, blob_limiter))
        try:
            dst = await destination.new_destination(
                TransportContext(session, destination_side, retry, blob_limiter)
            )
            try:
                return await copy_image(src, dst, options, env)
            finally:
                await dst.close()
        finally:
            await src.close()
            env.recompressed.close()
            env.attachments.api_memory.save()
