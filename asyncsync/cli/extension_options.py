"""Command-line options of the run extensions (sharding, prune, Harbor projects), for sync and mirror.

The four options are declared once, as one flag group (:mod:`asyncsync.cli.flag_groups`),
:data:`EXTENSION_FLAGS`, delivering an :class:`ExtensionFlags`; :meth:`ExtensionFlags.extensions`
validates them through :meth:`asyncsync.extensions.Extensions.from_flags`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from asyncsync.cli.flag_groups import FlagGroup, flag_option
from asyncsync.extensions import Extensions

EXTENSIONS_PANEL = "Sharding, prune and Harbor"


@dataclass(frozen=True, slots=True)
class ExtensionFlags:
    """``--shard``, ``--shard-count``, ``--prune`` and ``--create-projects`` as given (unvalidated)."""

    shard: str | None = None
    shard_count: int | None = None
    prune: bool = False
    create_projects: bool = False

    def extensions(self) -> Extensions:
        """The validated extensions; raises :class:`~asyncsync.errors.UsageError` for bad flags
        (and reads ``JOB_COMPLETION_INDEX`` for ``--shard-count``)."""
        return Extensions.from_flags(
            shard=self.shard,
            shard_count=self.shard_count,
            prune=self.prune,
            create_projects=self.create_projects,
        )


#: The four extension options, in --help order.
EXTENSION_FLAGS: FlagGroup[ExtensionFlags] = FlagGroup(
    ExtensionFlags,
    (
        flag_option(
            "shard",
            Annotated[
                str | None,
                typer.Option(
                    "--shard",
                    metavar="INDEX/COUNT",
                    help="Copy only shard INDEX (from 0) of COUNT: "
                    "destination repositories partitioned by hash.",
                    rich_help_panel=EXTENSIONS_PANEL,
                ),
            ],
            None,
        ),
        flag_option(
            "shard_count",
            Annotated[
                int | None,
                typer.Option(
                    "--shard-count",
                    metavar="COUNT",
                    min=1,
                    help="Like --shard, with INDEX from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job).",
                    rich_help_panel=EXTENSIONS_PANEL,
                ),
            ],
            None,
        ),
        flag_option(
            "prune",
            Annotated[
                bool,
                typer.Option(
                    "--prune",
                    help="Delete destination tags the spec selects "
                    "but the source no longer has (see --dry-run).",
                    rich_help_panel=EXTENSIONS_PANEL,
                ),
            ],
            False,
        ),
        flag_option(
            "create_projects",
            Annotated[
                bool,
                typer.Option(
                    "--create-projects",
                    help="Destinations are Harbor registries: create missing projects before pushing.",
                    rich_help_panel=EXTENSIONS_PANEL,
                ),
            ],
            False,
        ),
    ),
    lambda values: ExtensionFlags(**values),
)
