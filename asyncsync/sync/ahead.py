"""Requests a sync makes ahead of its copy pool, so a slow link is kept busy by cheap reads.

The pool (:mod:`asyncsync.sync.scheduler`) holds a few images at a time; at 20 ms RTT, reads that
wait there one image after another are the run's wall time. Two kinds of read are started ahead
instead, each the same request the pool would make, made once (the pool then finds its answer):

* :class:`ChecksAhead`: destination checks (:meth:`DestinationCheck.decided`) of the images the
  planner announces while it is still resolving the rest (:data:`~asyncsync.sync.plan.OnPlanned`),
  so the destination's HEADs overlap the source's. After planning, ``DestinationCheck.prefetch``
  covers the plan's remaining images.
* :func:`source_tags_ahead`: the source tag list an image's attachments are decided by
  (:mod:`asyncsync.copy.attachments.settle`), once per source repository holding an image the
  checks skip.

Requests per host stay bounded by the host limiters (``limits.HostLimiters``); the worker counts
here only bound how many of these reads wait at once. A failed read is not remembered here: the
image's own call in the pool makes it again and reports it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Awaitable, Callable, Sequence

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream

from asyncsync.copy.attachments import AttachmentRun
from asyncsync.errors import AsyncSyncError
from asyncsync.sync.decisions import DestinationCheck
from asyncsync.sync.plan import PlannedImage, bounded_map

#: :class:`ChecksAhead` workers per check in flight: a repository's later images wait for its first
#: (see :meth:`DestinationCheck.decide`) holding no request slot, so twice as many workers as
#: checks keep the checks asking while planning announces images repository after repository.
WORKERS_PER_CHECK = 2


class ChecksAhead:
    """Destination checks that start while the plan is still being built.

    The planner announces each image as soon as its source digest is known (:meth:`planned`, an
    :data:`~asyncsync.sync.plan.OnPlanned`); worker tasks in ``task_group`` decide them
    (:meth:`DestinationCheck.decided`) in the order announced. The workers start with the first
    image, :data:`WORKERS_PER_CHECK` x ``limit(image)`` of them (``limit`` sized then from the
    latency planning has seen; the host limiters bound the requests), and end once
    :meth:`close` was called and the queue is empty, or at ``stopped()``. The queue holds
    references to images the planner holds anyway (it cannot wait: announcing is synchronous).
    Failures wait in the check's cache for the image's own :meth:`DestinationCheck.decided` call.
    """

    def __init__(
        self,
        check: DestinationCheck,
        task_group: TaskGroup,
        limit: Callable[[PlannedImage], int],
        stopped: Callable[[], bool],
    ) -> None:
        self._check = check
        self._task_group = task_group
        self._limit = limit
        self._stopped = stopped
        self._send, self._receive = anyio.create_memory_object_stream[PlannedImage](math.inf)
        self._closed = False
        self.announced = 0

    def planned(self, image: PlannedImage) -> None:
        """Queue ``image`` for its check (ignored after :meth:`close`)."""
        if self._closed:
            return
        if not self.announced:
            for _ in range(WORKERS_PER_CHECK * max(1, self._limit(image))):
                self._task_group.start_soon(self._worker, self._receive.clone())
        self.announced += 1
        with contextlib.suppress(anyio.BrokenResourceError):  # every worker saw stopped()
            self._send.send_nowait(image)

    def close(self) -> None:
        """Planning ended: no more images; the workers finish the queue."""
        self._closed = True
        self._send.close()
        self._receive.close()

    async def _worker(self, receive: MemoryObjectReceiveStream[PlannedImage]) -> None:
        with receive:
            async for image in receive:
                if self._stopped():
                    return
                with contextlib.suppress(AsyncSyncError):
                    await self._check.decided(image)


async def source_tags_ahead(
    images: Sequence[PlannedImage],
    check: DestinationCheck,
    attachments: AttachmentRun,
    lister: Callable[[PlannedImage], Callable[[], Awaitable[list[str]]] | None],
    limit: int,
) -> None:
    """List, ``limit`` repositories at a time, the source tags the attachments of skipped images
    are decided by: one listing per source repository (``registry/repository``, the key
    :class:`AttachmentRun` caches by) holding an image whose check says "skip", made with the
    function ``lister(image)`` gives (``None``: that image's attachments are not followed).
    Repositories whose images are all copied are left to the copies (a copy that changes its
    subject's digest may need no listing). Waits for the checks it reads (each made once:
    :meth:`DestinationCheck.decided`)."""
    repositories: dict[str, list[PlannedImage]] = {}
    for image in images:
        repositories.setdefault(f"{image.source.registry}/{image.source.repository}", []).append(image)

    async def ahead(key: str) -> None:
        for image in repositories[key]:
            try:
                decision = await check.decided(image)
            except AsyncSyncError:
                continue  # the image fails: nothing of it is followed
            fetch = lister(image) if decision.action == "skip" else None
            if fetch is not None:
                await attachments.tags(key, fetch)
                return

    await bounded_map(list(repositories), ahead, limit)
