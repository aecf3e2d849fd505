"""``asyncsync mirror``: the sync on a schedule, in one long-running process (or ``--once`` under cron).

Exit codes: 2 for bad usage or a spec that does not load at start (later cycles that cannot load
it fail and the loop goes on); with ``--once``, 0 when the cycle was clean and 1 otherwise; a
scheduled mirror exits 0 after SIGTERM/SIGINT once the in-flight images are done.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from inspect import Parameter
from pathlib import Path
from typing import Annotated, Any

import typer

from asyncsync.cli._run import EXIT_FAILURE, run
from asyncsync.cli.app import app
from asyncsync.cli.common import SkopeoCommand
from asyncsync.cli.flag_groups import FlagGroup, flag_option, with_flag_groups
from asyncsync.cli.sync_run_flags import SYNC_RUN_FLAGS, SyncRunFlags
from asyncsync.cli.trust_flags import SignFlags, close_trust
from asyncsync.copy.attachments import AttachmentPolicy
from asyncsync.errors import UsageError
from asyncsync.extensions import Extensions
from asyncsync.mirror.cron import CronSchedule
from asyncsync.mirror.loop import Cron, Every, MirrorLoop, Schedule
from asyncsync.mirror.metrics import DEFAULT_STALL_AFTER, MetricsServer, MirrorMetrics
from asyncsync.specs.load import load_spec
from asyncsync.specs.model import CopySettings, SyncSpec
from asyncsync.sync.settings import CommandLine
from asyncsync.units import duration_flag

_PANEL = "Mirror"


@dataclass(frozen=True, slots=True)
class MirrorFlags:
    """``mirror``'s own flags as given: when to sync, the metrics endpoint, ``--all``."""

    every: str | None = None
    cron: str | None = None
    once: bool = False
    jitter: str | None = None
    metrics_port: int | None = None
    listen: str = "127.0.0.1"
    all_images: bool = False
    stall_after: str | None = None

    def schedule(self) -> Schedule | None:
        """The schedule (``None``: ``--once``); raises :class:`UsageError` unless exactly one is given."""
        return _schedule(self.every, self.cron, self.once)

    def stall_seconds(self) -> float:
        if self.stall_after is None:
            return DEFAULT_STALL_AFTER
        seconds = duration_flag(self.stall_after, "--stall-after")
        if seconds <= 0:
            raise UsageError("--stall-after must be positive")
        return seconds

    def jitter_seconds(self) -> float | None:
        return duration_flag(self.jitter, "--jitter") if self.jitter is not None else None

    def copy_settings(self) -> CopySettings:
        """The settings of a skopeo-format spec's images (a native spec names its own)."""
        return CopySettings(multi_arch="all" if self.all_images else "system")


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


def _option(name: str, kind: object, default: object, *spelling: str, **info: Any) -> Parameter:
    return flag_option(
        name, Annotated[kind, typer.Option(*spelling, rich_help_panel=_PANEL, **info)], default
    )


MIRROR_FLAGS: FlagGroup[MirrorFlags] = FlagGroup(
    MirrorFlags,
    (
        _option(
            "every",
            str | None,
            None,
            "--every",
            metavar="DURATION",
            help="Sync every DURATION (30m, 1h); first run at once.",
        ),
        _option(
            "cron",
            str | None,
            None,
            "--cron",
            metavar="EXPR",
            help='Sync at cron times, UTC ("0 * * * *", @hourly).',
        ),
        _option("once", bool, False, "--once", help="Run one cycle and exit (for cron or a CronJob)."),
        _option(
            "jitter",
            str | None,
            None,
            "--jitter",
            metavar="DURATION",
            help="Random delay added to each start (default: 10% of the period, at most 5m).",
        ),
        _option(
            "metrics_port",
            int | None,
            None,
            "--metrics-port",
            min=0,
            max=65535,
            help="Serve /metrics and /healthz on this port.",
        ),
        _option(
            "listen", str, "127.0.0.1", "--listen", metavar="ADDRESS", help="Address for --metrics-port."
        ),
        _option(
            "stall_after",
            str | None,
            None,
            "--stall-after",
            metavar="DURATION",
            help="/healthz reports a cycle stalled after this long without progress (default 15m).",
        ),
        _option(
            "all_images",
            bool,
            False,
            "--all",
            "-a",
            help="skopeo-format spec: copy every image of multi-arch images.",
        ),
    ),
    lambda values: MirrorFlags(**values),
)


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
    flags: Annotated[MirrorFlags, MIRROR_FLAGS],
    shared: Annotated[SyncRunFlags, SYNC_RUN_FLAGS],
) -> None:
    """Mirror on a schedule: the sync of SPEC every DURATION or at cron times, in one process.

    Examples: asyncsync mirror mirror.yaml --every 30m --metrics-port 9100 --listen 0.0.0.0;
    asyncsync mirror mirror.yaml --cron "0 * * * *"; asyncsync mirror mirror.yaml --once.
    """

    def load() -> SyncSpec:
        settings = flags.copy_settings() if destination else None
        return load_spec(spec_path, destination=destination, settings=settings)

    async def main() -> bool:
        schedule = flags.schedule()
        shared.output.view()  # a bad --log-format is a usage error now, not at the first cycle
        extensions = shared.extensions.extensions()
        load()  # a spec that does not load now is a usage error, before any server starts
        # Attachments follow their images as in sync (a spec entry may say attachments: false),
        # and every image is checked against the trust policy as in sync (loaded once, here).
        command_line = shared.command_line(attachments=AttachmentPolicy(), sign=SignFlags())
        try:
            return await refresh(command_line, schedule, extensions)
        finally:
            close_trust(command_line.trust)

    async def refresh(command_line: CommandLine, schedule: Schedule | None, extensions: Extensions) -> bool:
        metrics = MirrorMetrics(stall_after=flags.stall_seconds())
        loop = MirrorLoop(
            load,
            command_line,
            schedule,
            extensions=extensions,
            jitter=flags.jitter_seconds(),
            metrics=metrics,
            view=shared.output.view,
            echo=lambda line: print(line, file=sys.stdout, flush=True),
            report_path=shared.output.report,
        )
        if flags.metrics_port is None:
            return await loop.run()
        async with MetricsServer(metrics, flags.listen, flags.metrics_port) as server:
            print(f"mirror: metrics on http://{flags.listen}:{server.port}/metrics", flush=True)
            return await loop.run()

    if not run(main) and flags.once:
        raise typer.Exit(EXIT_FAILURE)
