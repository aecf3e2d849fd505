"""The sync run: plan the spec, then copy or skip every planned image through the bounded pool.

:func:`run_sync` is the one entry point the CLI calls. It owns the run-wide objects, each
created exactly once here: the :class:`~asyncsync.registry.client.RegistrySession` (with
the per-host request limiters configured from the spec), the
:class:`~asyncsync.limits.BlobLimiter`, the :class:`~asyncsync.copy.BlobCoordinator`
(single-flight per destination blob and the mount-source index, loaded from and saved to the
user cache directory), both held by :class:`~asyncsync.sync.image_work.SyncRun`, and the
:class:`~asyncsync.sync.report.SyncReport`. Every setting comes
from the :class:`~asyncsync.sync.settings.RunSettings` the caller resolved
(:func:`~asyncsync.sync.settings.resolve_settings`); the engine reads no flag, environment
variable or spec default itself.

Destination checks start while the plan is built (the planner announces each image as its source
digest arrives: :mod:`asyncsync.sync.ahead`); copies start when it is complete, each image in a
pool worker through :meth:`~asyncsync.sync.image_work.SyncRun.process` (which owns the per-image
work and the run-wide copy objects). One failed image never stops the others (unless
``fail_fast``).

Local storage (``sync --src dir`` / ``--dest dir``, :mod:`asyncsync.sync.local`) plugs in through
``planner``: its planned images carry ``dir:`` references, opened in place of ``docker://`` ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import closing
from dataclasses import replace

import anyio

from asyncsync.copy.progress import CopyProgress, NullProgress
from asyncsync.limits import checks_in_flight
from asyncsync.quota import PullQuotas
from asyncsync.registry.client import RegistrySession
from asyncsync.specs.model import SyncSpec
from asyncsync.sync.ahead import ChecksAhead, source_tags_ahead
from asyncsync.sync.decisions import DestinationCheck, check_plan, render_plan
from asyncsync.sync.hooks import HookChain, RunContext, SyncHooks
from asyncsync.sync.image_work import REASON_IMMUTABLE_RULE, SyncRun
from asyncsync.sync.plan import Plan, PlannedImage, Planner
from asyncsync.sync.registry_lister import RegistryLister
from asyncsync.sync.report import ImageResult, Outcome, SyncReport
from asyncsync.sync.scheduler import PoolControl, PoolStatistics, run_pool
from asyncsync.sync.settings import RunSettings
from asyncsync.sync.spec_plan import build_plan


class SyncView:
    """What the sync tells its observer; the CLI implements it (rich live view, plain, JSON)."""

    def planned(self, plan: Plan) -> None:
        """The plan is built (before any copy)."""

    def pool_started(self, stats: PoolStatistics) -> None:
        """The pool runs; ``stats`` is live."""

    def image_started(self, image: PlannedImage) -> CopyProgress:
        """An image starts; returns the progress sink for its blobs."""
        return NullProgress()

    def image_finished(self, image: PlannedImage, result: ImageResult) -> None:
        """An image is done (copied, skipped or failed)."""


async def dry_run(
    spec: SyncSpec, settings: RunSettings, hooks: SyncHooks | None = None, *, planner: Planner = build_plan
) -> tuple[Plan, list[str]]:
    """The plan and its ``--dry-run`` lines (destination checked with HEAD/tag lists, no writes).

    ``planner`` builds the plan (default :func:`build_plan`; see :mod:`asyncsync.sync.local`)."""
    hooks = hooks if hooks is not None else HookChain(())
    async with _session(settings) as session:
        run = SyncRun(settings, session)
        # A dry run writes nothing, but SyncRun opened the upload journal: close it on every path.
        with closing(run):
            ctx = RunContext(spec, session, settings.registry_options)
            lister = hooks.source_lister(
                RegistryLister(session, lambda host: settings.registry_options(host, "source")), ctx
            )
            plan = hooks.plan(await planner(spec, lister))
            checker = hooks.destination_checker(
                RegistryLister(session, lambda host: settings.registry_options(host, "dest")), ctx
            )
            decisions = await check_plan(plan, checker, memory=run.results)
            # What a run would skip before copying (Harbor's immutable-tag rules) shows as a skip.
            for index, decision in enumerate(decisions):
                if decision.action == "copy" and await hooks.destination_immutable(
                    decision.image, decision, ctx
                ):
                    decisions[index] = replace(decision, action="skip", reason=REASON_IMMUTABLE_RULE)
            lines = render_plan(plan, decisions)
            lines[-1:-1] = await run.preview_attachments(plan)
            return plan, lines + await hooks.preview(plan, ctx)


def _session(settings: RunSettings, quotas: PullQuotas | None = None) -> RegistrySession:
    limiters = settings.pool.host_limiters(default_rate=settings.other_hosts.requests_per_second)
    for host, config in settings.hosts.items():
        limiters.configure(host, rate=config.requests_per_second)
    quotas = quotas or PullQuotas()
    quotas.reserve = settings.pull_quota_reserve
    return RegistrySession(limiters=limiters, retry=settings.retry, quotas=quotas)


async def run_sync(
    spec: SyncSpec,
    settings: RunSettings,
    view: SyncView | None = None,
    *,
    handle_signals: bool = True,
    control: PoolControl | None = None,
    hooks: SyncHooks | None = None,
    planner: Planner = build_plan,
    quotas: PullQuotas | None = None,
) -> SyncReport:
    """Plan and run the sync; returns the report (check ``report.ok``). Never raises for one image.

    ``hooks`` (:mod:`asyncsync.sync.hooks`) extend the run: sharding, prune, Harbor support.
    ``planner`` builds the plan (default :func:`build_plan`; local storage: :mod:`asyncsync.sync.local`).
    ``quotas``: pull quotas known from earlier runs (the mirror keeps one across cycles).
    """
    view = view or SyncView()
    hooks = hooks if hooks is not None else HookChain(())
    report = SyncReport()
    control = control or PoolControl()
    async with _session(settings, quotas) as session:
        run = SyncRun(settings, session)
        run.load()
        ctx = RunContext(spec, session, settings.registry_options)
        lister = hooks.source_lister(
            RegistryLister(session, lambda host: settings.registry_options(host, "source")), ctx
        )
        check = DestinationCheck(
            hooks.destination_checker(
                RegistryLister(session, lambda host: settings.registry_options(host, "dest")), ctx
            ),
            on_new=run.repository_is_new,
            memory=run.results,
        )

        async def work(image: PlannedImage) -> ImageResult:
            return await run.process(image, view.image_started(image), check, hooks, ctx)

        def on_result(image: PlannedImage, result: ImageResult) -> None:
            report.add(result)
            hooks.image_finished(image, result)
            view.image_finished(image, result)
            if result.outcome is Outcome.FAILED and settings.fail_fast:
                control.stop(f"--fail-fast: {result.destination} failed")

        async with anyio.create_task_group() as checks:
            # Decisions ahead of the copy pool (cheap HEADs, as many as the latency seen calls
            # for, within the destination's per-host limit): an image's check starts as soon as
            # the planner knows its source digest, then the plan's remaining images.
            ahead = ChecksAhead(
                check, checks, lambda image: _checks_in_flight(session, [image]), lambda: control.stopped
            )

            def planned(image: PlannedImage) -> None:
                if hooks.keeps(image):
                    ahead.planned(image)

            try:
                plan = hooks.plan(await planner(spec, lister, on_image=planned))
            finally:
                ahead.close()
            plan = await hooks.before_copy(plan, ctx)
            run.seed_attachments(plan)
            hooks.configure(run.coordinator, ctx)
            report.plan_errors = [str(e) for e in plan.errors]
            view.planned(plan)
            in_flight = _checks_in_flight(session, plan.images)
            checks.start_soon(check.prefetch, plan.images, in_flight, lambda: control.stopped)
            checks.start_soon(
                source_tags_ahead, plan.images, check, run.attachments, run.source_tag_lister, in_flight
            )
            await run_pool(
                plan.images,
                work,
                parallel=settings.pool.images,
                on_result=on_result,
                control=control,
                handle_signals=handle_signals,
                on_stats=view.pool_started,
            )
            checks.cancel_scope.cancel()
        report.stopped_reason = control.reason
        report.quota_deferred.update(run.quota_deferred)
        await hooks.after_copy(plan, report, ctx)
        report.finish(session.limiters.statistics())
        run.finish()
    return report


def _checks_in_flight(session: RegistrySession, images: Iterable[PlannedImage]) -> int:
    """Destination checks ahead of the pool: sized by ``limits.checks_in_flight`` from the latency
    seen so far, within the largest per-host limit of the ``images``' destination registries."""
    hosts = {image.destination.registry for image in images if image.destination_local is None}
    limit = max((session.limiters.limit(host) for host in hosts), default=1)
    return checks_in_flight(limit, session.limiters.latency())
