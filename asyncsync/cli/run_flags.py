"""The engine flags ``sync`` and ``mirror`` share: concurrency, upload chunks, the mount cache.

Declared once as :data:`RUN_FLAGS` (a :mod:`~asyncsync.cli.flag_groups` group), part of the
commands' :data:`~asyncsync.cli.sync_run_flags.SYNC_RUN_FLAGS`, which turns them with the registry
and retry flags into the run's :class:`~asyncsync.sync.settings.CommandLine`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from asyncsync.cli.common import ChunkSizeFlag, chunk_size_flag
from asyncsync.cli.flag_groups import FlagGroup, flag_option
from asyncsync.copy.destination_state import default_mount_index_dir
from asyncsync.limits import DEFAULT_BLOBS_IN_FLIGHT, DEFAULT_PARALLEL_IMAGES, DEFAULT_REQUESTS_PER_HOST

RUN_PANEL = "Concurrency and uploads"


@dataclass(frozen=True, slots=True)
class RunFlags(ChunkSizeFlag):
    """The flags as given (``None``: not given, the engine's default applies); unvalidated
    (``--chunk-size``: :meth:`~asyncsync.cli.common.ChunkSizeFlag.chunk_bytes`)."""

    parallel: int | None = None
    image_parallel_copies: int | None = None
    max_requests_per_host: int | None = None
    no_mount_cache: bool = False
    pull_quota_reserve: int | None = None

    def mount_index_dir(self) -> Path | None:
        """Where the mount-source index persists (from the environment); ``None``: ``--no-mount-cache``."""
        return None if self.no_mount_cache else default_mount_index_dir()


RUN_FLAGS: FlagGroup[RunFlags] = FlagGroup(
    RunFlags,
    (
        flag_option(
            "parallel",
            Annotated[
                int | None,
                typer.Option(
                    "--parallel",
                    "-j",
                    min=1,
                    help=f"Images in flight (default {DEFAULT_PARALLEL_IMAGES}).",
                    rich_help_panel=RUN_PANEL,
                ),
            ],
            None,
        ),
        flag_option(
            "image_parallel_copies",
            Annotated[
                int | None,
                typer.Option(
                    "--image-parallel-copies",
                    min=1,
                    help=f"Blobs in flight, run-wide (default {DEFAULT_BLOBS_IN_FLIGHT}).",
                    rich_help_panel=RUN_PANEL,
                ),
            ],
            None,
        ),
        flag_option(
            "max_requests_per_host",
            Annotated[
                int | None,
                typer.Option(
                    "--max-requests-per-host",
                    min=2,
                    help=f"Concurrent requests per registry (default {DEFAULT_REQUESTS_PER_HOST}).",
                    rich_help_panel=RUN_PANEL,
                ),
            ],
            None,
        ),
        chunk_size_flag(RUN_PANEL),
        flag_option(
            "no_mount_cache",
            Annotated[
                bool,
                typer.Option(
                    "--no-mount-cache",
                    help="Do not read or write the persisted mount index, upload journal, copy results "
                    "and recompressed-layer index.",
                    rich_help_panel=RUN_PANEL,
                ),
            ],
            False,
        ),
        flag_option(
            "pull_quota_reserve",
            Annotated[
                int | None,
                typer.Option(
                    "--pull-quota-reserve",
                    min=0,
                    metavar="N",
                    help="Leave N pulls of a source's quota (ratelimit headers) unspent; "
                    "images beyond it are deferred (default 0).",
                    rich_help_panel=RUN_PANEL,
                ),
            ],
            None,
        ),
    ),
    lambda values: RunFlags(**values),
)
