"""Extension points of a sync run: sharding, prune, Harbor support and the mirror plug in here.

:func:`~asyncsync.sync.engine.run_sync` and :func:`~asyncsync.sync.engine.dry_run` take one
:class:`SyncHooks` (default: none) and call it at fixed points, in this order:

1. :meth:`SyncHooks.source_lister` wraps the :class:`~asyncsync.sync.plan.SourceLister` the plan
   uses (Harbor API discovery, recording what was listed for prune, skipping HEADs of other shards);
2. :meth:`SyncHooks.plan` filters the built plan (sharding); pure, no network; while the plan is
   built, :meth:`SyncHooks.keeps` is asked of each image as it is planned (the run checks the
   destination of those it keeps before the plan is complete);
   :meth:`SyncHooks.destination_checker` wraps the copy/skip checks' destination access (a
   Harbor project that does not exist yet holds nothing: its images are "absent", not 401s);
3. dry run: :meth:`SyncHooks.preview` returns extra ``--dry-run`` lines (what prune would delete,
   which Harbor projects would be created);
4. real run: :meth:`SyncHooks.before_copy` may do network work and return a narrower plan
   (Harbor projects created; images of projects that could not be created leave the plan with a
   plan error naming the project), and :meth:`SyncHooks.configure` sees the run's
   :class:`~asyncsync.copy.BlobCoordinator` (Harbor mount-source lookup);
5. an image decided "copy" is first offered to :meth:`SyncHooks.destination_immutable`: ``True``
   skips it as immutable before any request to its destination's blobs (Harbor's rules);
6. every image's result goes to :meth:`SyncHooks.image_finished`;
7. :meth:`SyncHooks.after_copy` runs after the pool, with the report (prune deletes here).

A hook never raises for an expected failure: it records it, shows it in :meth:`summary_lines`
and :meth:`report_data`, and clears :attr:`ok`. Hooks are combined with :class:`HookChain`
(``HookChain(())`` is "no hooks"). Which hooks a run gets is decided above sync, in
:mod:`asyncsync.extensions`: this package imports no implementation (Harbor's live in
:mod:`asyncsync.harbor.hooks`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from asyncsync.copy.coordinator import BlobCoordinator
from asyncsync.registry.client import RegistryClient, RegistryOptions, RegistrySession
from asyncsync.specs.model import SyncSpec
from asyncsync.sync.decisions import Decision, DestinationChecker
from asyncsync.sync.plan import Plan, PlannedImage, SourceLister
from asyncsync.sync.report import ImageResult, SyncReport

Side = Literal["source", "dest"]


@dataclass(frozen=True)
class RunContext:
    """What hooks may use of a run: the spec, the session and the per-host, per-side options."""

    spec: SyncSpec
    session: RegistrySession
    options_for: Callable[[str, Side], RegistryOptions]

    def client(self, host: str, side: Side) -> RegistryClient:
        """The run's client for ``host`` as the ``side`` sees it (credentials, TLS)."""
        return self.session.client(host, self.options_for(host, side))


class SyncHooks(Protocol):
    """The hook interface, all that sync knows of its extensions (the module docstring gives the order).

    Implementations (Harbor, shard, prune, the mirror's metrics) subclass it and inherit a no-op
    for every method they do not override; they are assembled above sync
    (:mod:`asyncsync.extensions`) and handed to the engine."""

    def source_lister(self, lister: SourceLister, ctx: RunContext) -> SourceLister:
        return lister

    def plan(self, plan: Plan) -> Plan:
        return plan

    def keeps(self, image: PlannedImage) -> bool:
        """Whether :meth:`plan` may keep ``image`` (pure, no network). ``False`` for an image
        :meth:`plan` drops, so its destination is not checked ahead of the plan's end (a
        ``True`` for an image dropped later costs only that check)."""
        return True

    def destination_checker(self, checker: DestinationChecker, ctx: RunContext) -> DestinationChecker:
        return checker

    async def preview(self, plan: Plan, ctx: RunContext) -> list[str]:
        return []

    async def before_copy(self, plan: Plan, ctx: RunContext) -> Plan:
        return plan

    def configure(self, coordinator: BlobCoordinator, ctx: RunContext) -> None:
        """Called once per real run, before the first copy."""
        return None  # a no-op by default, not an abstract method

    async def destination_immutable(self, image: PlannedImage, decision: Decision, ctx: RunContext) -> bool:
        """Whether the destination will refuse ``image`` because its tag is immutable; called for
        each image ``decision`` says to copy. ``True`` skips the image exactly as the registry's
        412 would (``immutable``). Never raises: when unsure, ``False`` (the copy finds out)."""
        return False

    def image_finished(self, image: PlannedImage, result: ImageResult) -> None:
        """Called for every image result, in completion order."""
        return None

    async def after_copy(self, plan: Plan, report: SyncReport, ctx: RunContext) -> None:
        """Called after the pool finished (also when it was stopped: check ``report.stopped_reason``)."""
        return None

    def summary_lines(self) -> list[str]:
        """Lines for the final summary (after the report's own)."""
        return []

    def report_data(self) -> dict[str, Any]:
        """Extra top-level keys for the JSON report."""
        return {}

    @property
    def ok(self) -> bool:
        """False when something the hook did failed (the command then exits non-zero)."""
        return True


class HookChain(SyncHooks):
    """Several hooks applied in order: listers wrap inside-out, plans filter left to right."""

    def __init__(self, hooks: Sequence[SyncHooks]) -> None:
        self.hooks = tuple(hooks)

    def source_lister(self, lister: SourceLister, ctx: RunContext) -> SourceLister:
        for hook in self.hooks:
            lister = hook.source_lister(lister, ctx)
        return lister

    def plan(self, plan: Plan) -> Plan:
        for hook in self.hooks:
            plan = hook.plan(plan)
        return plan

    def keeps(self, image: PlannedImage) -> bool:
        return all(hook.keeps(image) for hook in self.hooks)

    def destination_checker(self, checker: DestinationChecker, ctx: RunContext) -> DestinationChecker:
        for hook in self.hooks:
            checker = hook.destination_checker(checker, ctx)
        return checker

    async def preview(self, plan: Plan, ctx: RunContext) -> list[str]:
        lines: list[str] = []
        for hook in self.hooks:
            lines += await hook.preview(plan, ctx)
        return lines

    async def before_copy(self, plan: Plan, ctx: RunContext) -> Plan:
        for hook in self.hooks:
            plan = await hook.before_copy(plan, ctx)
        return plan

    def configure(self, coordinator: BlobCoordinator, ctx: RunContext) -> None:
        for hook in self.hooks:
            hook.configure(coordinator, ctx)

    async def destination_immutable(self, image: PlannedImage, decision: Decision, ctx: RunContext) -> bool:
        for hook in self.hooks:
            if await hook.destination_immutable(image, decision, ctx):
                return True
        return False

    def image_finished(self, image: PlannedImage, result: ImageResult) -> None:
        for hook in self.hooks:
            hook.image_finished(image, result)

    async def after_copy(self, plan: Plan, report: SyncReport, ctx: RunContext) -> None:
        for hook in self.hooks:
            await hook.after_copy(plan, report, ctx)

    def summary_lines(self) -> list[str]:
        return [line for hook in self.hooks for line in hook.summary_lines()]

    def report_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for hook in self.hooks:
            data.update(hook.report_data())
        return data

    @property
    def ok(self) -> bool:
        return all(hook.ok for hook in self.hooks)
