"""``asyncsync mirror``: the sync on a schedule, in one long-running process (or ``--once`` under cron).

Exit codes: 2 for bad usage or a spec that does not load at start (later cycles that cannot load
it fail and the loop goes on); with ``--once``, 0 when the cycle was clean and 1 otherwise; a
scheduled mirror exits 0 after SIGTERM/SIGINT once the in-flight images are done.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from asyncsync.cli._run import EXIT_FAILURE, run
from asyncsync.cli.app import app
from asyncsync.cli.common import (
    REGISTRY_SIDES,
    RETRY_FLAGS,
    RegistrySides,
    RetryFlags,
    SkopeoCommand,
)
from asyncsync.cli.extension_options import EXTENSION_FLAGS, ExtensionFlags
from asyncsync.cli.flag_groups import with_flag_groups
from asyncsync.cli.run_flags import RUN_FLAGS, RunFlags
from asyncsync.cli.sync_view import JsonSyncView, PlainSyncView
from asyncsync.errors import UsageError
from asyncsync.mirror.cron import CronSchedule
from asyncsync.mirror.loop import Cron, Every, MirrorLoop, Schedule
from asyncsync.mirror.metrics import MetricsServer, MirrorMetrics
from asyncsync.specs.load import load_spec
from asyncsync.specs.model import CopySettings, SyncSpec
from asyncsync.sync.engine import SyncView
from asyncsync.units import duration_flag

_PANEL = "Mirror"


def _schedule(every: str | None, cron: str | None, once: bool) -> Schedule | None:
    given = [name for name, value in (("--every", every), ("--cron", cron)) if value is not None]
    if once and given:
        raise UsageError(f"--once and {given[0]} cannot be used together")
    if len(given) > 1:
        raise UsageError("--every and --cron cannot be used together")
    if once:
        return None
    if every is not None:
        interval = duration_flag(every, "--every")
        if interval < 1:
            raise UsageError("--every: the interval must be at least 1s")
        return Every(interval)
    if cron is not None:
        return Cron(CronSchedule.parse(cron))
    raise UsageError("say when to sync: --every DURATION, --cron EXPRESSION, or --once")


@app.command("mirror", cls=SkopeoCommand)
@with_flag_groups
def mirror_command(
    spec_path: Annotated[
        Path, typer.Argument(metavar="SPEC", help="Sync spec (native, or skopeo's with DEST).")
    ],
    destination: Annotated[
        str | None, typer.Argument(metavar="DEST", help="Destination of a skopeo-format spec.")
    ] = None,
    *,
    every: Annotated[
        str | None,
        typer.Option(
            "--every",
            metavar="DURATION",
            help="Sync every DURATION (30m, 1h); first run at once.",
            rich_help_panel=_PANEL,
        ),
    ] = None,
    cron: Annotated[
        str | None,
        typer.Option(
            "--cron",
            metavar="EXPR",
            help='Sync at cron times, UTC ("0 * * * *", @hourly).',
            rich_help_panel=_PANEL,
        ),
    ] = None,
    once: Annotated[
        bool,
        typer.Option(
            "--once", help="Run one cycle and exit (for cron or a CronJob).", rich_help_panel=_PANEL
        ),
    ] = False,
    jitter: Annotated[
        str | None,
        typer.Option(
            "--jitter",
            metavar="DURATION",
            help="Random delay added to each start (default: 10% of the period, at most 5m).",
            rich_help_panel=_PANEL,
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            help="Serve /metrics and /healthz on this port.",
            rich_help_panel=_PANEL,
        ),
    ] = None,
    listen: Annotated[
        str,
        typer.Option(
            "--listen", metavar="ADDRESS", help="Address for --metrics-port.", rich_help_panel=_PANEL
        ),
    ] = "127.0.0.1",
    all_images: Annotated[
        bool, typer.Option("--all", "-a", help="skopeo-format spec: copy every image of multi-arch images.")
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report", metavar="FILE.json", help="Write each cycle's report as JSON (overwritten)."
        ),
    ] = None,
    log_format: Annotated[
        str, typer.Option("--log-format", metavar="text|json", help="Per-image output format.")
    ] = "text",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only failures and summaries.")] = False,
    run_flags: Annotated[RunFlags, RUN_FLAGS],
    extension_flags: Annotated[ExtensionFlags, EXTENSION_FLAGS],
    registries: Annotated[RegistrySides, REGISTRY_SIDES],
    retry_flags: Annotated[RetryFlags, RETRY_FLAGS],
) -> None:
    """Mirror on a schedule: the sync of SPEC every DURATION or at cron times, in one process.

    Examples: asyncsync mirror mirror.yaml --every 30m --metrics-port 9100 --listen 0.0.0.0;
    asyncsync mirror mirror.yaml --cron "0 * * * *"; asyncsync mirror mirror.yaml --once.
    """

    def load() -> SyncSpec:
        settings = CopySettings(multi_arch="all" if all_images else "system")
        return load_spec(spec_path, destination=destination, settings=settings if destination else None)

    def view() -> SyncView:
        return JsonSyncView() if log_format == "json" else PlainSyncView(quiet=quiet)

    async def main() -> bool:
        schedule = _schedule(every, cron, once)
        if log_format not in ("text", "json"):
            raise UsageError(f"--log-format: unknown format {log_format!r} (text or json)")
        extensions = extension_flags.extensions()
        load()  # a spec that does not load now is a usage error, before any server starts
        flags = run_flags.command_line(registries, retry_flags)
        metrics = MirrorMetrics()
        loop = MirrorLoop(
            load,
            flags,
            schedule,
            extensions=extensions,
            jitter=duration_flag(jitter, "--jitter") if jitter is not None else None,
            metrics=metrics,
            view=view,
            echo=lambda line: print(line, file=sys.stdout, flush=True),
            report_path=report,
        )
        if metrics_port is None:
            return await loop.run()
        async with MetricsServer(metrics, listen, metrics_port) as server:
            print(f"mirror: metrics on http://{listen}:{server.port}/metrics", flush=True)
            return await loop.run()

    ok = run(main)
    if once and not ok:
        raise typer.Exit(EXIT_FAILURE)
