"""One sync's run-wide objects and the work done per image with them (:class:`SyncRun`).

``sync.engine`` creates one :class:`SyncRun` per run (or dry run) and hands each planned image
to :meth:`SyncRun.process` from a pool worker: decide copy or skip with HEADs only
(``decisions.DestinationCheck``), then ``copy_image`` by the digest the plan resolved, retried once
more at image level for a temporary failure; every outcome becomes an :class:`ImageResult`, so one
failed image never stops the others.

The run-wide objects, each created exactly once: the :class:`~asyncsync.limits.BlobLimiter`, the
:class:`~asyncsync.copy.BlobCoordinator` (single-flight per destination blob and the mount-source
index, loaded from and saved to the state directory), the upload journal, the recompression cache,
the attachments' run state and the memory of digests a platform selection wrote.

With signers (``--sign-by``, ``--sign-by-sigstore-private-key``), an image skipped because the
destination has its digest is signed there unless it already carries a signature by each signer
(:func:`~asyncsync.copy.trust.sign_present`; skopeo's sync re-copies and re-signs everything).
A ``--skip-existing`` skip (whatever the tag holds) and a ``dir:`` destination are not signed.
Local storage's planned images (``dir:`` references) are opened in place of ``docker://`` ones.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from asyncsync.copy import BlobCoordinator, CopyEnvironment, CopyOptions, copy_image
from asyncsync.copy.attachments import AttachmentOutcome, AttachmentPolicy, AttachmentRun
from asyncsync.copy.attachments.api_memory import ReferrersApiMemory
from asyncsync.copy.attachments.hook import (
    follow_existing,
    follow_platform_skipped,
    follow_skipped,
    preview_image,
)
from asyncsync.copy.blobs import BlobCopier
from asyncsync.copy.destination_state import DestinationState
from asyncsync.copy.progress import CopyProgress, NullProgress
from asyncsync.copy.recompress_cache import RecompressCache
from asyncsync.copy.trust import sign_present
from asyncsync.digest import Digest
from asyncsync.errors import AsyncSyncError, ImmutableTagError, QuotaDeferredError
from asyncsync.limits import BlobLimiter
from asyncsync.manifest import ImageIndex, parse_manifest
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.retry import with_retries
from asyncsync.state_files import read_json, write_json
from asyncsync.sync.decisions import REASON_EXISTS, Decision, DestinationCheck
from asyncsync.sync.hooks import RunContext, SyncHooks
from asyncsync.sync.plan import DEFAULT_PLAN_CONCURRENCY, Plan, PlannedImage, bounded_map
from asyncsync.sync.report import ImageResult, Outcome
from asyncsync.sync.result_memory import ResultMemory, remembers
from asyncsync.sync.settings import RunSettings, Side
from asyncsync.transports.attachment_store import reader_of
from asyncsync.transports.base import CopyStats, SideOptions, SignatureSource, TransportContext
from asyncsync.transports.docker.reference import DockerReference

#: Whole-image attempts for a temporary failure (blob transfers retry inside each attempt).
IMAGE_ATTEMPTS = 2
MOUNT_INDEX_FILE = "mount-index.json"
#: The skip reason of an image whose destination tag the registry keeps immutable (HTTP 412),
#: whether the 412 arrived or a hook (Harbor's rules) predicted it before any upload.
REASON_IMMUTABLE = "immutable: the destination tag is immutable (HTTP 412)"
#: ``--dry-run`` wording when the registry's rules (not a 412) say so.
REASON_IMMUTABLE_RULE = "immutable: the destination tag is immutable (registry rule)"


class SyncRun:
    """The run-wide objects of one sync and the work done per image with them.

    Created once per run (``sync.engine``), inside its :class:`RegistrySession`. :meth:`load` reads
    the state directory's memories; :meth:`finish` saves them and closes the journals (a dry run,
    which writes nothing, only closes them: :meth:`close`).
    """

    def __init__(self, settings: RunSettings, session: RegistrySession) -> None:
        self.settings = settings
        self.session = session
        self.retry = settings.retry
        # Already below every per-host limit (limits.pool_sizes' deadlock rule, applied when the
        # settings were resolved).
        self.blob_limiter = BlobLimiter(settings.pool.blobs)
        self.coordinator = BlobCoordinator()
        # The upload journal lives beside the mount index; without it (--no-mount-cache) no
        # blob is ever assumed absent (see copy.destination_state).
        self.destinations = DestinationState(settings.mount_index_dir)
        # One for the run (a layer shared by many images is recompressed once), recorded beside
        # the journal so a re-run asks the destination for what it recompressed before.
        self.recompressed = RecompressCache(settings.mount_index_dir)
        # A source registry's "no referrers API" is remembered for a while beside the journal.
        self.attachments = AttachmentRun(ReferrersApiMemory(settings.mount_index_dir))
        # Destination digests of copies that change them (platform selection), for the next run.
        self.results = ResultMemory(settings.mount_index_dir)
        #: Hosts whose pull quota deferred images: host -> when the window resets (if known).
        self.quota_deferred: dict[str, float | None] = {}
        self._contexts: dict[tuple[str, str], TransportContext] = {}

    def load(self) -> None:
        """Read the mount index (where each blob was seen) from the state directory, if any; a
        missing or damaged one only costs mounts, never correctness."""
        directory = self.settings.mount_index_dir
        if directory is not None and (data := read_json(directory / MOUNT_INDEX_FILE)) is not None:
            self.coordinator.load(data)

    def finish(self) -> None:
        """Save what the next run can use (mount index, copy results, the referrers-API memory)
        and close the journals."""
        self._save_mount_index()
        self.results.save()
        self.attachments.api_memory.save()
        self.close()

    def close(self) -> None:
        """Close the upload journal and the recompression record (every path, dry runs too)."""
        self.destinations.close()
        self.recompressed.close()

    def _save_mount_index(self) -> None:
        directory = self.settings.mount_index_dir
        if directory is not None:
            # The index is an optimisation: failing to save it must not fail the sync.
            write_json(directory / MOUNT_INDEX_FILE, self.coordinator.export())

    async def process(
        self,
        image: PlannedImage,
        progress: CopyProgress,
        check: DestinationCheck,
        hooks: SyncHooks,
        ctx: RunContext,
    ) -> ImageResult:
        """One image, in a pool worker: decide copy or skip (``check``), then copy it, or follow a
        skipped image's attachments and sign it where asked. Never raises for the image: every
        outcome is an :class:`ImageResult`; a pull quota's "not now" is also kept in
        :attr:`quota_deferred` (host -> window reset) for the report."""
        try:
            decision = await check.decided(image)
        except AsyncSyncError as exc:
            return failed_result(image, f"checking the destination: {exc}")
        if decision.action == "skip":
            try:
                if decision.reason == REASON_EXISTS:
                    return await self.attachments_of_existing(image, decision, check)
                skipped = await self.attachments_of_skipped(image, decision)
            except AsyncSyncError as exc:
                return failed_result(image, f"copying attachments: {exc}")
            try:
                return await self.sign_skipped(image, decision, skipped)
            except AsyncSyncError as exc:
                return failed_result(image, f"signing the image present at the destination: {exc}")
        if await hooks.destination_immutable(image, decision, ctx):
            return immutable_result(image)  # known before any blob request (Harbor's rules)
        try:
            return self.remember(image, await self.copy_one(image, progress))
        except ImmutableTagError:
            return immutable_result(image)
        except QuotaDeferredError as exc:
            self.quota_deferred[exc.host] = exc.reset_at
            return deferred_result(image, exc)
        except AsyncSyncError as exc:
            return failed_result(image, str(exc))

    def local_context(self) -> TransportContext:
        """The context of a local side (``dir:``): no registry settings apply there."""
        ctx = self._contexts.get(("", "local"))
        if ctx is None:
            ctx = self._contexts[("", "local")] = TransportContext(
                session=self.session,
                options=SideOptions(registry=RegistryOptions(), registries_d=self.settings.registries_d),
                retry=self.retry,
                blob_limiter=self.blob_limiter,
            )
        return ctx

    def context(self, host: str, side: Side) -> TransportContext:
        key = (host, side)
        ctx = self._contexts.get(key)
        if ctx is None:
            settings = self.settings.host(host)
            ctx = self._contexts[key] = TransportContext(
                session=self.session,
                options=SideOptions(
                    registry=settings.options(side),
                    chunk_size=settings.chunk_size,
                    registries_d=self.settings.registries_d,
                ),
                retry=self.retry,
                blob_limiter=self.blob_limiter,
            )
        return ctx

    async def copy_one(self, image: PlannedImage, progress: CopyProgress) -> ImageResult:
        source_ref = image.source_local or DockerReference(image.source)
        dest_ref = image.destination_local or DockerReference(image.destination)
        source_ctx = (
            self.local_context() if image.source_local else self.context(image.source.registry, "source")
        )
        dest_ctx = (
            self.local_context()
            if image.destination_local
            else self.context(image.destination.registry, "dest")
        )
        options = replace(_copy_options(image, self.settings), attachments=self.policy_for(image))
        env = self.environment(progress)
        attempts = 0

        async def attempt() -> ImageResult:
            nonlocal attempts
            attempts += 1
            source = await source_ref.new_source(source_ctx)
            try:
                destination = await dest_ref.new_destination(dest_ctx)
                try:
                    started = time.monotonic()
                    result = await copy_image(source, destination, options, env)
                finally:
                    await destination.close()
            finally:
                await source.close()
            stats = result.stats
            return ImageResult(
                source=image.describe_source(),
                destination=image.describe_destination(),
                outcome=Outcome.COPIED,
                digest=str(result.digest),
                seconds=round(time.monotonic() - started, 3),
                attempts=attempts,
                bytes_uploaded=stats.bytes_uploaded,
                bytes_reused=stats.bytes_reused,
                blobs_copied=stats.blobs_copied,
                blobs_mounted=stats.blobs_mounted,
                blobs_existing=stats.blobs_existing,
                origin=str(image.origin),
                attachments=_attachments_json(result.attachments),
            )

        policy = replace(self.retry, attempts=IMAGE_ATTEMPTS) if self.retry.attempts > 1 else self.retry
        return _strict(self.settings.attachments, await with_retries(policy, attempt))

    def remember(self, image: PlannedImage, result: ImageResult) -> ImageResult:
        """Keep the digest a copy wrote when the plan could not predict it (see ResultMemory)."""
        if result.outcome is Outcome.COPIED and remembers(image):
            self.results.record(
                str(image.destination), image.digest, image.settings, Digest.parse(result.digest)
            )
        return result

    def policy_for(self, image: PlannedImage) -> AttachmentPolicy | None:
        """The attachment policy of one image: the run's (``--attachments``, ``--attachment-type``),
        unless its spec entry turns attachments off or, without ``--attachment-type``, names types."""
        policy = self.settings.attachments
        if policy is None or not image.settings.attachments:
            return None
        if image.settings.attachment_types and not policy.types:
            return replace(policy, types=image.settings.attachment_types)
        return policy

    def environment(self, progress: CopyProgress) -> CopyEnvironment:
        """The copy environment of one image: the run-wide limiters, caches and attachment state."""
        return CopyEnvironment(
            blob_limiter=self.blob_limiter,
            retry=self.retry,
            coordinator=self.coordinator,
            progress=progress,
            destinations=self.destinations,
            recompressed=self.recompressed,
            attachments=self.attachments,
            trust=self.settings.trust,
        )

    async def preview_attachments(self, plan: Plan) -> list[str]:
        """``--dry-run`` lines for attachments: ``attach`` what would follow each image (if the
        destination lacks it), ``leave`` what cannot follow, and why. Reads the source only."""
        if self.settings.attachments is None:
            return []
        self.seed_attachments(plan)
        images = [i for i in plan.images if i.source_local is None and i.destination_local is None]

        async def preview(index: int) -> list[str]:
            image = images[index]
            policy = self.policy_for(image)
            if policy is None:
                return []
            source = await DockerReference(image.source).new_source(
                self.context(image.source.registry, "source")
            )
            destination = await DockerReference(image.destination).new_destination(
                self.context(image.destination.registry, "dest")
            )
            copier = BlobCopier(source, destination, self.environment(NullProgress()), CopyStats())
            outcome = await preview_image(
                copier,
                image.digest,
                image.expected_destination_digest() is not None,
                policy,
                self.attachments,
            )
            target = image.describe_destination()
            return (
                [f"attach {found} -> {target}" for found in outcome.found]
                + [f"leave  {left} ({target})" for left in outcome.left]
                + [f"leave  {name}: {target} cannot hold attachments" for name in outcome.unsupported]
            )

        results = await bounded_map(list(range(len(images))), preview, DEFAULT_PLAN_CONCURRENCY)
        lines: list[str] = []
        for index in range(len(images)):
            result = results[index]
            if isinstance(result, AsyncSyncError):
                lines.append(f"error attachments of {images[index].describe_source()}: {result}")
            else:
                lines += result
        return lines

    def seed_attachments(self, plan: Plan) -> None:
        """What the plan already knows, for attachments: the source tag lists and, per source
        repository, the digests planned (see :mod:`asyncsync.copy.attachments.settle`)."""
        for key, tags in plan.source_tags.items():
            self.attachments.seed_tags(key, tags)
        planned: dict[str, list[Digest]] = {}
        for image in plan.images:
            planned.setdefault(f"{image.source.registry}/{image.source.repository}", []).append(image.digest)
        for key, digests in planned.items():
            self.attachments.seed_subjects(key, digests)

    def source_tag_lister(self, image: PlannedImage) -> Callable[[], Awaitable[list[str]]] | None:
        """How the attachments of ``image``, skipped, list its source repository's tags (see
        :meth:`attachments_of_skipped`); ``None`` when they are not followed."""
        if (
            self.policy_for(image) is None
            or image.source_local is not None
            or image.destination_local is not None
        ):
            return None

        async def fetch() -> list[str]:
            source = await DockerReference(image.source).new_source(
                self.context(image.source.registry, "source")
            )
            try:
                reader = reader_of(source)
                return [] if reader is None else await reader.list_tags()
            finally:
                await source.close()

        return fetch

    def repository_is_new(self, registry: str, repository: str) -> None:
        """The destination check found ``registry/repository`` absent: the copy engine skips blob
        HEADs there, and the attachment walk knows its tag list (empty) without listing it."""
        self.destinations.mark_fresh(registry, repository)
        self.attachments.seed_destination_tags(f"{registry}/{repository}", ())

    async def attachments_of_existing(
        self, image: PlannedImage, decision: Decision, check: DestinationCheck
    ) -> ImageResult:
        """An image ``--skip-existing`` skipped: its attachments too are looked at, by name, with the
        destination tag list the check already holds (see :func:`follow_existing`)."""
        dest = image.destination
        tags = await check.existing_tags(dest.registry, dest.repository)
        self.attachments.seed_destination_tags(f"{dest.registry}/{dest.repository}", tags)
        return await self.attachments_of_skipped(image, decision, existing=True)

    async def attachments_of_skipped(
        self, image: PlannedImage, decision: Decision, *, existing: bool = False
    ) -> ImageResult:
        """An image skipped because the destination has it: its attachments may still be new.

        Decided by name from the tag lists (one per repository at each side) when all are in
        place; see :mod:`asyncsync.copy.attachments.settle` and ``walk`` for the rest. A skip by a
        remembered digest (``--multi-arch system``) walks what that copy did: the instance written
        carries its attachments, the index's are left behind."""
        skipped = skipped_result(image, decision)
        policy = self.policy_for(image)
        if policy is None or image.source_local is not None or image.destination_local is not None:
            return skipped
        source = await DockerReference(image.source).new_source(self.context(image.source.registry, "source"))
        try:
            destination = await DockerReference(image.destination).new_destination(
                self.context(image.destination.registry, "dest")
            )
            try:
                copier = BlobCopier(source, destination, self.environment(NullProgress()), CopyStats())
                if decision.remembered and decision.destination_digest is not None:
                    outcome = await follow_platform_skipped(
                        copier, image.digest, decision.destination_digest, policy, self.attachments
                    )
                else:
                    follow = follow_existing if existing else follow_skipped
                    outcome = await follow(copier, image.digest, image.is_index, policy, self.attachments)
            finally:
                await destination.close()
        finally:
            await source.close()
        return _strict(policy, replace(skipped, attachments=_attachments_json(outcome)))

    async def sign_skipped(self, image: PlannedImage, decision: Decision, result: ImageResult) -> ImageResult:
        """Sign an image skipped as present, as its copy would have been (see the module docstring).

        Without signers nothing is read. With them: the destination's signatures of the digest
        (and, for a ``--multi-arch all`` index, its manifest and each instance's signatures)."""
        trust = self.settings.trust
        top = decision.destination_digest
        if (
            trust is None
            or not trust.signers
            or top is None
            or image.destination_local is not None
            or result.outcome is not Outcome.SKIPPED
        ):
            return result
        reference = DockerReference(image.destination)
        ctx = self.context(image.destination.registry, "dest")
        reader = await reference.new_source(ctx)
        try:
            destination = await reference.new_destination(ctx)
            try:
                assert isinstance(reader, SignatureSource)  # a registry lists its signatures
                digests = [(top, False)]
                if image.is_index and image.settings.multi_arch == "all":
                    written = parse_manifest((await reader.get_manifest(top))[0])
                    if isinstance(written, ImageIndex):
                        digests += [(entry.digest, True) for entry in written.manifests]
                done = await sign_present(reader, destination, digests, trust)
            finally:
                await destination.close()
        finally:
            await reader.close()
        return replace(result, signatures_added=done.added, signatures_present=done.present)


def _attachments_json(outcome: AttachmentOutcome) -> dict[str, Any]:
    return {} if outcome.empty else outcome.as_json()


def _strict(policy: AttachmentPolicy | None, result: ImageResult) -> ImageResult:
    """With ``--attachments-strict``, an image whose attachments were left behind failed."""
    if policy is None or not policy.strict or not result.attachments.get("left"):
        return result
    left = result.attachments["left"]
    return replace(
        result,
        outcome=Outcome.FAILED,
        reason=f"--attachments-strict: {left} attachment(s) left behind (the image was written)",
    )


def _copy_options(image: PlannedImage, run: RunSettings) -> CopyOptions:
    settings = image.settings
    return CopyOptions(
        multi_arch=settings.multi_arch,
        platform=settings.platform,
        platforms=settings.platforms,
        format=settings.format,
        preserve_digests=run.preserve_digests,
        remove_signatures=run.remove_signatures,
    )


def not_copied(
    image: PlannedImage, outcome: Outcome, reason: str, *, digest: str = "", attempts: int = 1
) -> ImageResult:
    """The report line of an image that was not copied (failed, deferred or skipped)."""
    return ImageResult(
        source=image.describe_source(),
        destination=image.describe_destination(),
        outcome=outcome,
        reason=reason,
        digest=digest,
        attempts=attempts,
        origin=str(image.origin),
    )


def failed_result(image: PlannedImage, reason: str, attempts: int = 1) -> ImageResult:
    return not_copied(image, Outcome.FAILED, reason, attempts=attempts)


def deferred_result(image: PlannedImage, exc: QuotaDeferredError) -> ImageResult:
    # Not a failure of the image: the source's pull quota said "not now" (asyncsync.quota).
    return not_copied(image, Outcome.DEFERRED, str(exc))


def immutable_result(image: PlannedImage) -> ImageResult:
    # Harbor answers 412 to overwriting an immutable tag: a policy, not a failure to retry.
    return not_copied(image, Outcome.SKIPPED, REASON_IMMUTABLE)


def skipped_result(image: PlannedImage, decision: Decision) -> ImageResult:
    return not_copied(image, Outcome.SKIPPED, decision.reason, digest=str(decision.destination_digest or ""))
