"""Command-line options of the run extensions (sharding, prune, Harbor projects), for sync and mirror.

Each factory returns a ``typer.Option`` for an ``Annotated`` parameter, as
:mod:`asyncsync.cli.common` does for the registry flags; the values go to
:meth:`asyncsync.sync.extensions.Extensions.from_flags`.
"""

from __future__ import annotations

from typing import Any

import typer

EXTENSIONS_PANEL = "Sharding, prune and Harbor"


def shard_option() -> Any:
    return typer.Option(
        "--shard",
        metavar="INDEX/COUNT",
        help="Copy only shard INDEX (from 0) of COUNT: destination repositories partitioned by hash.",
        rich_help_panel=EXTENSIONS_PANEL,
    )


def shard_count_option() -> Any:
    return typer.Option(
        "--shard-count",
        metavar="COUNT",
        min=1,
        help="Like --shard, with INDEX from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job).",
        rich_help_panel=EXTENSIONS_PANEL,
    )


def prune_option() -> Any:
    return typer.Option(
        "--prune",
        help="Delete destination tags the spec selects but the source no longer has (see --dry-run).",
        rich_help_panel=EXTENSIONS_PANEL,
    )


def create_projects_option() -> Any:
    return typer.Option(
        "--create-projects",
        help="Destinations are Harbor registries: create missing projects before pushing.",
        rich_help_panel=EXTENSIONS_PANEL,
    )
