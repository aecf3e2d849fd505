"""Copy or skip: destination checks for planned images, and the ``--dry-run`` rendering.

:class:`DestinationCheck` decides for one :class:`~asyncsync.sync.plan.PlannedImage`, with HEAD
requests only (never a manifest GET: registries such as Harbor count GETs as pulls):

* ``skip-existing``: a destination tag that exists is left alone, whatever it points to; the
  destination repository's tag list is fetched once per repository (single-flight) and
  reused for every image of that repository;
* otherwise, when the copy would keep the manifest bytes (see
  :meth:`~asyncsync.sync.plan.PlannedImage.expected_destination_digest`), one HEAD of the
  destination reference: an equal digest is skipped, anything else is copied;
* when the result's digest cannot be known in advance (platform selection out of an index,
  format conversion), the image is copied and the copy engine's own blob checks keep that cheap;
  except that for ``--multi-arch system`` out of an index, the digest an earlier copy of the same
  source digest with the same settings left at the tag
  (:class:`~asyncsync.sync.result_memory.ResultMemory`) is expected, with the same one HEAD.

An image with a local destination (``sync --dest dir``) is decided without network from what
its directory holds (:func:`asyncsync.sync.local.local_image_state`): absent, or ``--skip-existing``
and present, or a ``manifest.json`` digest equal to the expected one with every file it
references in place (skip), else copy.

A sync decides ahead of its copy pool: while planning, each image as the planner announces it
(:class:`~asyncsync.sync.ahead.ChecksAhead`), then the rest with :meth:`DestinationCheck.prefetch`
(``limits.checks_in_flight`` at a time, first image of each repository first), so at high latency
the cheap HEADs keep the link busy instead of waiting one image at a time inside the pool; the
pool's workers take them with :meth:`DestinationCheck.decided` (made once per image, by value, by
whichever asks first).
``--dry-run`` calls :func:`check_plan` (bounded, plan order) and prints :func:`render_plan`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import anyio

from asyncsync.digest import Digest
from asyncsync.errors import AsyncSyncError
from asyncsync.limits import SingleFlight
from asyncsync.reference import ImageName
from asyncsync.sync.local import local_image_state
from asyncsync.sync.plan import DEFAULT_PLAN_CONCURRENCY, Plan, PlannedImage, bounded_map
from asyncsync.sync.result_memory import ResultMemory, remembers

if TYPE_CHECKING:
    from asyncsync.transports.base import ImageReference

Action = Literal["copy", "skip", "error"]

REASON_ABSENT = "destination absent"
REASON_DIFFERS = "destination digest differs"
REASON_EQUAL = "destination digest equal"
REASON_REMEMBERED_EQUAL = "destination digest equal to what an earlier copy wrote"
REASON_EXISTS = "exists (--skip-existing)"
REASON_UNKNOWN = "destination digest cannot be predicted (platform selection or format conversion)"
REASON_UNCHECKED = "not checked"
REASON_NEW_REPOSITORY = "destination repository is new"
REASON_INCOMPLETE = "destination directory incomplete"
REASON_LOCAL_UNCHECKED = "local destination not checked"
REASON_GENERATED = "source manifest is generated when read (containers-storage)"


class DestinationChecker(Protocol):
    """Read access to destination registries; absence is a return value."""

    async def head(self, registry: str, repository: str, reference: str) -> Digest | None:
        """The digest at a tag or digest (one HEAD), ``None`` when absent."""

    async def tags(self, registry: str, repository: str) -> list[str]:
        """Every tag of the repository; an empty list when the repository does not exist."""

    async def repository_exists(self, registry: str, repository: str) -> bool:
        """Whether the repository exists (one tag-list request; ``NAME_UNKNOWN`` is ``False``)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one image and why; ``destination_digest`` when a HEAD told it.
    ``remembered``: the expected digest came from an earlier run's copy (not the source's)."""

    image: PlannedImage
    action: Action
    reason: str
    destination_digest: Digest | None = None
    remembered: bool = False


class DestinationCheck:
    """Per-run copy/skip decisions. Tag lists are cached per destination repository; ``memory``
    supplies expected digests of copies that change them (platform selection, conversion)."""

    def __init__(
        self,
        checker: DestinationChecker,
        on_new: Callable[[str, str], None] | None = None,
        memory: ResultMemory | None = None,
    ) -> None:
        self.checker = checker
        self.on_new = on_new
        self.memory = memory
        # (registry, repository) -> whether it is new, decided by its first image
        self._repo_is_new: SingleFlight[tuple[str, str], bool] = SingleFlight()
        # (registry, repository) -> its tags, or why they could not be listed (asked once)
        self._tags: SingleFlight[tuple[str, str], frozenset[str] | AsyncSyncError] = SingleFlight()
        # the image (as _decision_key) -> its decision or why it could not be made (made once, see
        # decided); by value, so the plan's copy of an image announced early is the same image
        self._decided: SingleFlight[Hashable, Decision | AsyncSyncError] = SingleFlight()

    async def decided(self, image: PlannedImage) -> Decision:
        """:meth:`decide` once per image: the decision :meth:`prefetch` made or is making, else
        made here. Raises the checker's :class:`AsyncSyncError` as :meth:`decide` does."""

        async def make() -> Decision | AsyncSyncError:
            try:
                return await self.decide(image)
            except AsyncSyncError as exc:
                return exc

        result = await self._decided.do(_decision_key(image), make)
        if isinstance(result, AsyncSyncError):
            raise result
        return result

    async def prefetch(self, images: Sequence[PlannedImage], limit: int, stopped: Callable[[], bool]) -> None:
        """Decide ``images`` ahead of :meth:`decided`, ``limit`` at a time (``limit`` worker tasks
        over one iterator), until done or ``stopped()``. Failures wait in the cache for the image's
        own :meth:`decided` call. The first image of each destination repository goes first: the
        others of its repository wait for it (see :meth:`decide`), so leaders first keep every
        worker busy; then the rest in plan order."""
        seen: set[tuple[str, str]] = set()
        leaders: list[PlannedImage] = []
        followers: list[PlannedImage] = []
        for image in images:
            key = (image.destination.registry, image.destination.repository)
            (followers if key in seen else leaders).append(image)
            seen.add(key)
        iterator = iter(leaders + followers)

        async def worker() -> None:
            for image in iterator:
                if stopped():
                    return
                with contextlib.suppress(AsyncSyncError):
                    await self.decided(image)

        async with anyio.create_task_group() as tg:
            for _ in range(min(max(1, limit), len(images))):
                tg.start_soon(worker)

    async def existing_tags(self, registry: str, repository: str) -> frozenset[str]:
        """The destination repository's tags, fetched at most once however many tasks ask (a
        failed listing is remembered too; a cancelled one is fetched again by the next caller)."""

        async def fetch() -> frozenset[str] | AsyncSyncError:
            try:
                return frozenset(await self.checker.tags(registry, repository))
            except AsyncSyncError as exc:
                return exc

        result = await self._tags.do((registry, repository), fetch)
        if isinstance(result, AsyncSyncError):
            raise result
        return result

    async def decide(self, image: PlannedImage) -> Decision:
        """Copy or skip ``image``; raises the checker's :class:`AsyncSyncError` on failure.

        The first image of each destination repository is decided alone (the others wait):
        when its HEAD finds nothing, one tag-list request tells whether the repository exists
        at all. A repository that does not is "new": every later image planned into it is
        copied without a HEAD (the plan never writes one destination twice), and ``on_new``
        hears of it so the copy engine can skip blob HEADs there too.
        """
        if image.destination_local is not None:
            return await self._by_local_state(image)
        dest = image.destination
        if image.settings.skip_existing and dest.tag is not None:
            if dest.tag in await self.existing_tags(dest.registry, dest.repository):
                return Decision(image, "skip", REASON_EXISTS)
            return Decision(image, "copy", REASON_ABSENT)
        key = (dest.registry, dest.repository)
        first: Decision | None = None

        async def decide_first() -> bool:
            nonlocal first
            first = await self._by_head(image)
            is_new = first.destination_digest is None and not await self.checker.repository_exists(*key)
            if is_new and self.on_new is not None:
                self.on_new(*key)
            return is_new

        is_new = await self._repo_is_new.do(key, decide_first)
        if first is not None:
            return first
        if is_new:
            return Decision(image, "copy", REASON_NEW_REPOSITORY)
        return await self._by_head(image)

    async def _by_local_state(self, image: PlannedImage) -> Decision:
        state = await local_image_state(image)
        if state is None:
            return Decision(image, "copy", REASON_LOCAL_UNCHECKED)
        if state.digest is None:
            return Decision(image, "copy", REASON_ABSENT)
        if image.settings.skip_existing:
            return Decision(image, "skip", REASON_EXISTS, state.digest)
        expected = image.expected_destination_digest()
        if expected is None:
            return Decision(image, "copy", REASON_UNKNOWN, state.digest)
        if state.digest != expected:
            return Decision(image, "copy", REASON_DIFFERS, state.digest)
        if state.missing is not None:
            return Decision(image, "copy", f"{REASON_INCOMPLETE} ({state.missing} missing)", state.digest)
        return Decision(image, "skip", REASON_EQUAL, state.digest)

    async def _by_head(self, image: PlannedImage) -> Decision:
        dest = image.destination
        expected = image.expected_destination_digest()
        remembered = False
        if expected is None and self.memory is not None and remembers(image):
            expected = self.memory.expected(str(dest), image.digest, image.settings)
            remembered = expected is not None
        if expected is None:
            return Decision(image, "copy", REASON_UNKNOWN if image.manifest_pinned else REASON_GENERATED)
        found = await self.checker.head(dest.registry, dest.repository, dest.reference)
        if found is None:
            return Decision(image, "copy", REASON_ABSENT)
        if found == expected:
            reason = REASON_REMEMBERED_EQUAL if remembered else REASON_EQUAL
            return Decision(image, "skip", reason, found, remembered=remembered)
        return Decision(image, "copy", REASON_DIFFERS, found)


def _decision_key(image: PlannedImage) -> Hashable:
    """What a decision depends on: the image without its spec line (the same image planned from
    two lines, which the plan keeps once, is decided once)."""
    return (
        image.source,
        image.destination,
        image.media_type,
        image.settings,
        image.manifest_pinned,
        image.source_local,
        image.destination_local,
    )


async def check_plan(
    plan: Plan,
    checker: DestinationChecker,
    *,
    limit: int = DEFAULT_PLAN_CONCURRENCY,
    memory: ResultMemory | None = None,
) -> list[Decision]:
    """A decision for every planned image, in plan order; a failed check is an ``error`` decision."""
    check = DestinationCheck(checker, memory=memory)
    indexes = list(range(len(plan.images)))

    async def decide(index: int) -> Decision:
        return await check.decide(plan.images[index])

    results = await bounded_map(indexes, decide, limit)
    decisions = []
    for index in indexes:
        result = results[index]
        if isinstance(result, AsyncSyncError):
            decisions.append(Decision(plan.images[index], "error", f"checking the destination: {result}"))
        else:
            decisions.append(result)
    return decisions


def _transport_name(name: ImageName, local: ImageReference | None) -> str:
    """The name skopeo logs for an image (``transports.ImageName``): ``docker://`` and the familiar
    reference with its tag (its digest when it has no tag), or the local reference."""
    if local is not None:
        return str(local)
    reference = (
        f"{name.familiar_name}:{name.tag}" if name.tag is not None else f"{name.familiar_name}@{name.digest}"
    )
    return f"docker://{reference}"


def render_plan(plan: Plan, decisions: Sequence[Decision] | None = None) -> list[str]:
    """The ``--dry-run`` lines: one per image, then plan errors, warnings and a summary. Without
    ``decisions`` every image shows as to be copied (not checked).

    skopeo's words come first, as scripts grep them (``Would have copied image ref 1/2
    from="docker://..." to="dir:..."``, ``Would have synced N images from M sources``), then
    asyncsync's detail: the pinned digest and the reason, skips (skopeo 1.9 has none) and errors.
    """
    if decisions is None:
        decisions = [Decision(image, "copy", REASON_UNCHECKED) for image in plan.images]
    words = {"copy": "Would have copied", "skip": "Would have skipped", "error": "Could not check"}
    lines = []
    for number, d in enumerate(decisions, start=1):
        image = d.image
        source = _transport_name(image.source, image.source_local)
        destination = _transport_name(image.destination, image.destination_local)
        lines.append(
            f'{words[d.action]} image ref {number}/{len(decisions)} from="{source}" to="{destination}" '
            f"({image.digest.algorithm}:{image.digest.short}): {d.reason}"
        )
    lines += [f"error {error}" for error in plan.errors]
    lines += [f"note  {warning}" for warning in plan.warnings]
    copies = sum(1 for d in decisions if d.action == "copy")
    skips = sum(1 for d in decisions if d.action == "skip")
    errors = sum(1 for d in decisions if d.action == "error") + len(plan.errors)
    sources = len({d.image.source.name for d in decisions})
    lines.append(
        f"Would have synced {copies} images from {sources} sources "
        f"(plan: {copies} to copy, {skips} to skip, {errors} error(s))"
    )
    return lines
