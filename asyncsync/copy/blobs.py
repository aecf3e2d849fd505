"""Copying one blob: reuse (HEAD) -> cross-repo mount -> streamed, verified transfer.

For each blob :class:`BlobCopier`

1. asks the destination to reuse it (``try_reuse_blob``: present already, or mounted from a
   candidate repository on the same registry - the source repository when source and
   destination share a registry, then the coordinator's known locations);
2. otherwise transfers it once per destination registry (:meth:`BlobCoordinator.once`); tasks
   that waited for another's upload mount from where it went;
3. a transfer streams ``source.open_blob`` through :func:`~asyncsync.digest.verified_chunks`
   into ``destination.put_blob`` under the run's :class:`~asyncsync.limits.BlobLimiter`.

Retries share one budget per blob (``RetryPolicy.attempts``): a source stream that breaks is
reopened at the offset reached (the upload goes on unaware; the source turns the offset into a
``Range`` or skips what it already sent); an upload that fails restarts the blob with a fresh
upload. Only temporary errors are retried; a digest mismatch is never committed nor retried.
Memory per blob is bounded by the stream's chunk size, whatever the blob size.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, aclosing
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import anyio

from asyncsync.copy.options import CopyEnvironment
from asyncsync.copy.progress import BlobKind
from asyncsync.digest import Digest, verified_chunks
from asyncsync.errors import AsyncSyncError, ContentError
from asyncsync.manifest import Descriptor
from asyncsync.retry import RetryPolicy, pause, stopping
from asyncsync.transports.base import (
    BlobLocation,
    BytesBlobDestination,
    CopyStats,
    ImageDestination,
    ImageSource,
    ReuseKind,
    ReuseResult,
    StreamedBlobDestination,
)

log = logging.getLogger("asyncsync.copy")


class _Attempts:
    """One blob's retry budget, shared by stream resumptions and upload restarts."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.failures = 0

    async def pause(self, exc: AsyncSyncError, what: str) -> None:
        """Wait before the next try, or raise ``exc`` if it is permanent or the budget is spent."""
        self.failures += 1
        retry_after = getattr(exc, "retry_after", None)
        spent = self.failures >= self.policy.attempts
        if not exc.temporary or spent or not self.policy.waits_for(retry_after):
            raise exc
        wait = self.policy.backoff(self.failures, retry_after)
        if stopping():
            raise exc
        log.info("%s: retrying in %.1fs after: %s", what, wait, exc)
        if not await pause(wait):
            raise exc  # the run is stopping: give the retry up now


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to report for a failed group of concurrent steps.

    Content errors (a digest mismatch) first, then other permanent errors, then anything else:
    the others are usually cancellations or consequences of the first failure.
    """
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)

    def rank(exc: BaseException) -> int:
        if isinstance(exc, ContentError):
            return 0
        if isinstance(exc, AsyncSyncError):
            return 1 if not exc.temporary else 2
        return 3

    return min(leaves, key=rank) if leaves else group


class StreamedOutput(Protocol):
    """A transformed blob on its way (:meth:`BlobCopier.transfer_streamed`)."""

    def chunks(self) -> AsyncIterator[bytes]:
        """The output bytes; iterate once."""

    @property
    def digest(self) -> Digest:
        """The output's digest, once :meth:`chunks` has ended."""


@dataclass
class BlobCopier:
    """Copies blobs of one image from ``source`` to ``destination``, filling ``stats``."""

    source: ImageSource
    destination: ImageDestination
    env: CopyEnvironment
    stats: CopyStats
    dest_registry: str | None = field(init=False)
    dest_repository: str | None = field(init=False)
    flight_key: str = field(init=False)
    source_locations: tuple[BlobLocation, ...] = field(init=False)

    def __post_init__(self) -> None:
        name = self.destination.reference.docker_reference()
        if self.destination.capabilities.mounts and name is not None:
            self.dest_registry, self.dest_repository = name.registry, name.repository
            self.flight_key = name.registry
        else:
            self.dest_registry = self.dest_repository = None
            ref = self.destination.reference
            self.flight_key = f"{ref.transport_name}:{ref.within_transport()}"
        self.source_locations = tuple(self.source.blob_locations())

    @property
    def _here(self) -> BlobLocation | None:
        if self.dest_registry is None or self.dest_repository is None:
            return None
        return BlobLocation(self.dest_registry, self.dest_repository)

    def candidates(self, blob: Descriptor) -> list[BlobLocation]:
        """Mount sources on the destination registry: the source repository first, then known ones."""
        if self.dest_registry is None:
            return []
        found = [loc for loc in self.source_locations if loc.registry == self.dest_registry]
        for loc in self.env.coordinator.known_locations(self.dest_registry, blob.digest):
            if loc not in found:
                found.append(loc)
        return found

    async def copy(self, blob: Descriptor, kind: BlobKind) -> None:
        """Make ``blob`` present at the destination (foreign layers are left out, with a note).

        In a registry repository one task of the run at a time makes a blob present
        (:meth:`BlobCoordinator.placing`): images of one repository that need the same blob at
        the same time wait for the first, which HEADs, mounts or uploads it once, and then count
        it as already there. A failed or cancelled first task lets the next one try.
        """
        progress = self.env.progress
        if blob.is_foreign:
            message = f"Skipping foreign layer {blob.digest.short} (its content is served from its URLs)"
            self.stats.notes.append(message)
            progress.note(message)
            return
        progress.blob_started(blob, kind)
        here = self._here
        if here is None:
            await self._place(blob, kind)
            return
        if self.env.coordinator.confirmed(here.registry, here.repository, blob.digest):
            # This run already put or found it in this very repository: no request needed.
            self._reused(blob, kind, ReuseResult(ReuseKind.EXISTS, blob.size))
            return
        placed_here = False

        async def place() -> None:
            nonlocal placed_here
            placed_here = True
            await self._place(blob, kind)

        await self.env.coordinator.placing(here.registry, here.repository, blob.digest, place)
        if not placed_here:
            # Another image of this run made it present in this repository meanwhile.
            self._reused(blob, kind, ReuseResult(ReuseKind.EXISTS, blob.size))

    async def _place(self, blob: Descriptor, kind: BlobKind) -> None:
        """Reuse ``blob`` at the destination, else upload it once per destination registry and
        mount it from where that upload went."""
        progress = self.env.progress
        if await self.try_reuse(blob, kind):
            return
        here = self._here
        ran = False

        async def upload() -> BlobLocation | None:
            nonlocal ran
            ran = True
            if here is not None:
                # Journal before the upload can commit, so a kill at any point leaves a record.
                self.env.destinations.uploaded(here.registry, here.repository, blob.digest)
            await self._transfer(blob)
            return here

        where = await self.env.coordinator.once(self.flight_key, blob.digest, upload)
        if not ran:
            # Another task uploaded it: to this repository (then it is here now), or to another
            # one to mount from. It was absent here a moment ago, so no second HEAD.
            if where is not None and where == here:
                self._reused(blob, kind, ReuseResult(ReuseKind.EXISTS, blob.size))
                return
            sources = [where] if where is not None else []
            self._journal_mount(blob, sources)
            reuse = await self._reuse(blob, sources, known_absent=True)
            if reuse is not None:
                self._reused(blob, kind, reuse)
                return
            if here is not None:
                self.env.destinations.uploaded(here.registry, here.repository, blob.digest)
            await self._transfer(blob)
        self.stats.blobs_copied += 1
        self.stats.bytes_uploaded += blob.size
        progress.blob_finished(blob, kind, "done")

    async def try_reuse(self, blob: Descriptor, kind: BlobKind) -> bool:
        """Make ``blob`` present without transferring it (already there, or mounted); ``False``
        when the destination does not have it and cannot get it that way."""
        here = self._here
        if here is not None and self.env.coordinator.confirmed(here.registry, here.repository, blob.digest):
            # This run already put or found it in this very repository: no request needed.
            self._reused(blob, kind, ReuseResult(ReuseKind.EXISTS, blob.size))
            return True
        candidates = self.candidates(blob)
        absent = here is not None and self.env.destinations.known_absent(
            here.registry, here.repository, blob.digest
        )
        self._journal_mount(blob, candidates)
        reuse = await self._reuse(blob, candidates, known_absent=absent)
        if reuse is None and not candidates and self.dest_registry is not None:
            # No location known to this run: a registry-specific locator (Harbor) may know one.
            found = await self.env.coordinator.discover(self.dest_registry, blob.digest, blob.size)
            self._journal_mount(blob, found)
            reuse = await self._reuse(blob, found, known_absent=True) if found else None
        if reuse is None:
            return False
        self._reused(blob, kind, reuse)
        return True

    async def transfer_streamed(
        self,
        blob: Descriptor,
        transform: Callable[[AsyncGenerator[bytes, None]], AbstractAsyncContextManager[StreamedOutput]],
    ) -> Descriptor:
        """Stream ``blob`` from the source through ``transform`` (a layer compressed on the way)
        into the destination, whose digest is known only at the end
        (:class:`~asyncsync.transports.base.StreamedBlobDestination`); returns what was written.

        The source is verified as always; the output's digest is journalled just before the
        upload commits it. Temporary failures restart the transform and the upload from one
        retry budget. The caller has checked that no reuse is possible (the digest is unknown).
        """
        destination = self.destination
        assert isinstance(destination, StreamedBlobDestination)
        what = f"copying blob {blob.digest.short}"
        attempts = _Attempts(self.env.retry)
        here = self._here
        async with self.env.blob_limiter.hold():
            while True:
                try:
                    async with transform(self._verified(blob, attempts, what)) as output:

                        async def finished() -> Digest:
                            digest = output.digest
                            if here is not None:
                                self.env.destinations.uploaded(here.registry, here.repository, digest)
                            return digest

                        size = await destination.put_blob_streamed(output.chunks(), finished)
                    digest = output.digest
                    break
                except AsyncSyncError as exc:
                    await attempts.pause(exc, what)
                    self.env.progress.blob_restarted(blob, 0)
        written = Descriptor(blob.media_type, digest, size)
        self._record(written)
        self.stats.blobs_copied += 1
        self.stats.bytes_uploaded += size
        return written

    def open_verified(self, blob: Descriptor) -> AsyncGenerator[bytes, None]:
        """The source's bytes of ``blob``, verified against its digest and size as they stream,
        resumed after temporary read failures from the run's retry budget. Iterate and close it
        in one task."""
        what = f"copying blob {blob.digest.short}"
        return self._verified(blob, _Attempts(self.env.retry), what)

    def _journal_mount(self, blob: Descriptor, candidates: Sequence[BlobLocation]) -> None:
        """Journal ``blob`` here before a mount from ``candidates`` may place it (like an upload):
        a run killed right after a mount committed must not leave a re-run thinking it absent."""
        here = self._here
        if candidates and here is not None:
            self.env.destinations.uploaded(here.registry, here.repository, blob.digest)

    async def _reuse(
        self, blob: Descriptor, candidates: Sequence[BlobLocation], *, known_absent: bool = False
    ) -> ReuseResult | None:
        async with self.env.blob_limiter.hold():
            return await self.destination.try_reuse_blob(blob, candidates, known_absent=known_absent)

    def _reused(self, blob: Descriptor, kind: BlobKind, reuse: ReuseResult) -> None:
        self._record(blob)
        self.stats.bytes_reused += blob.size
        if reuse.kind is ReuseKind.MOUNTED:
            self.stats.blobs_mounted += 1
            self.env.progress.blob_finished(blob, kind, "mounted", reuse.mounted_from)
        else:
            self.stats.blobs_existing += 1
            self.env.progress.blob_finished(blob, kind, "skipped")

    def _record(self, blob: Descriptor) -> None:
        here = self._here
        if here is not None:
            self.env.coordinator.record(here.registry, here.repository, blob.digest)

    async def _transfer(self, blob: Descriptor) -> None:
        """Stream the blob into the destination, retrying temporary failures from one budget.

        A blob the destination wants as bytes (a small one into a registry on a short link:
        :class:`~asyncsync.transports.base.BytesBlobDestination`) is read whole and verified
        first, then sent in one piece: no body task, one write."""
        what = f"copying blob {blob.digest.short}"
        attempts = _Attempts(self.env.retry)
        destination = self.destination
        small = isinstance(destination, BytesBlobDestination) and destination.wants_bytes(blob)
        async with self.env.blob_limiter.hold():
            while True:
                try:
                    async with aclosing(self._verified(blob, attempts, what)) as chunks:
                        if not small:
                            await destination.put_blob(blob, chunks)
                            break
                        data = b"".join([chunk async for chunk in chunks])
                    # The source's request is over (its host slot free) before the upload.
                    await cast(BytesBlobDestination, destination).put_blob_bytes(blob, data)
                    break
                except AsyncSyncError as exc:
                    await attempts.pause(exc, what)
                    self.env.progress.blob_restarted(blob, 0)
        self._record(blob)
        for location in self.source_locations:
            self.env.coordinator.record(location.registry, location.repository, blob.digest)

    async def _verified(
        self, blob: Descriptor, attempts: _Attempts, what: str
    ) -> AsyncGenerator[bytes, None]:
        # Both inner generators are closed here, in the task that iterates them (a source stream
        # holds a host slot that must be released by the task that took it).
        async with (
            aclosing(self._resumable(blob, attempts, what)) as raw,
            # verified_chunks is an async generator, though typed as an iterator.
            aclosing(
                cast(AsyncGenerator[bytes, None], verified_chunks(raw, blob.digest, blob.size, what="blob"))
            ) as verified,
        ):
            async for chunk in verified:
                yield chunk

    async def _resumable(
        self, blob: Descriptor, attempts: _Attempts, what: str
    ) -> AsyncGenerator[bytes, None]:
        offset = 0
        while True:
            try:
                async with self.source.open_blob(blob, offset) as chunks:
                    async for chunk in chunks:
                        offset += len(chunk)
                        self.env.progress.blob_advanced(blob, len(chunk))
                        yield chunk
                return
            except AsyncSyncError as exc:
                await attempts.pause(exc, f"{what} (reading)")
                self.env.progress.blob_restarted(blob, offset)


async def run_concurrently(steps: Sequence[Callable[[], Coroutine[Any, Any, None]]]) -> None:
    """Run ``steps`` in one task group; on failure raise the most telling error, not a group."""
    try:
        async with anyio.create_task_group() as group:
            for step in steps:
                group.start_soon(step)
    except BaseExceptionGroup as failed:
        raise first_error(failed) from None
