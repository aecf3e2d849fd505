"""The output flags ``sync`` and ``mirror`` share: ``--report``, ``--log-format``, ``--quiet``.

Declared once as :data:`OUTPUT_FLAGS`; a command receives one :class:`OutputFlags`, which picks
the view (:mod:`asyncsync.cli.sync_view`) and renders a finished run: the summary lines (or the
JSON summary event) and the ``--report`` file.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import orjson
import typer

from asyncsync.cli.flag_groups import FlagGroup, flag_option
from asyncsync.cli.sync_view import JsonSyncView, PlainSyncView
from asyncsync.errors import UsageError
from asyncsync.sync.engine import SyncView
from asyncsync.sync.hooks import SyncHooks
from asyncsync.sync.report import SyncReport

OUTPUT_PANEL = "Output"


@dataclass(frozen=True, slots=True)
class OutputFlags:
    """The output flags as given; :meth:`view` validates ``--log-format``."""

    report: Path | None = None
    log_format: str = "text"
    quiet: bool = False

    def view(self, *, live: bool = False) -> SyncView:
        """JSON lines, a rich live view (``live`` and a terminal, not ``--quiet``), or plain lines."""
        if self.log_format == "json":
            return JsonSyncView()
        if self.log_format != "text":
            raise UsageError(f"--log-format: unknown format {self.log_format!r} (text or json)")
        if live and sys.stderr.isatty() and not self.quiet:
            from asyncsync.cli.sync_live_view import RichSyncView  # rich only on a terminal

            return RichSyncView()
        return PlainSyncView(quiet=self.quiet)

    def finish(self, result: SyncReport, hooks: SyncHooks) -> bool:
        """Add the hooks' data to ``result``, write ``--report``, print the summary; whether the
        run and every hook succeeded."""
        result.extra.update(hooks.report_data())
        if self.report is not None:
            result.write_json(self.report)
        if self.log_format == "json":
            summary = orjson.loads(result.to_json())["summary"]
            typer.echo(orjson.dumps({"event": "summary", **summary}).decode())
        else:
            for line in result.summary_lines() + hooks.summary_lines():
                typer.echo(line)
        if result.deferred:
            typer.echo(f"Error: {result.quota_message()}", err=True)
        return result.ok and hooks.ok


OUTPUT_FLAGS: FlagGroup[OutputFlags] = FlagGroup(
    OutputFlags,
    (
        flag_option(
            "report",
            Annotated[
                Path | None,
                typer.Option(
                    "--report",
                    metavar="FILE.json",
                    help="Write the report as JSON (mirror: each cycle's, overwritten).",
                    rich_help_panel=OUTPUT_PANEL,
                ),
            ],
            None,
        ),
        flag_option(
            "log_format",
            Annotated[
                str,
                typer.Option(
                    "--log-format",
                    metavar="text|json",
                    help="Progress output: lines of text, or one JSON object per event.",
                    rich_help_panel=OUTPUT_PANEL,
                ),
            ],
            "text",
        ),
        flag_option(
            "quiet",
            Annotated[
                bool,
                typer.Option(
                    "--quiet", "-q", help="Print only failures and the summary.", rich_help_panel=OUTPUT_PANEL
                ),
            ],
            False,
        ),
    ),
    lambda values: OutputFlags(**values),
)
