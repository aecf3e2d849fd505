"""``asyncsync sync``: skopeo's sync (``--src yaml|docker|dir --dest docker|dir``) and the native spec.

The command parses and renders; :class:`SyncFlags` turns the source arguments into a spec and a
planner (a ``dir`` side, for air-gapped transfers through skopeo's directory tree, is planned by
:func:`asyncsync.sync.local.local_sync`), :func:`~asyncsync.sync.settings.resolve_settings` decides
the run's settings once, and :func:`~asyncsync.sync.engine.run_sync` runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from inspect import Parameter
from pathlib import Path
from typing import Annotated

import typer

from asyncsync.cli._run import EXIT_FAILURE, run
from asyncsync.cli.app import app
from asyncsync.cli.attachment_flags import ATTACHMENT_FLAGS, AttachmentFlags
from asyncsync.cli.common import SkopeoCommand, shown
from asyncsync.cli.extension_options import ExtensionFlags
from asyncsync.cli.flag_groups import FlagGroup, flag_option, with_flag_groups
from asyncsync.cli.image_flags import SYNC_IMAGE_FLAGS, ImageFlags
from asyncsync.cli.platform_flags import PLATFORM_FLAGS, PlatformFlags
from asyncsync.cli.sync_run_flags import SYNC_RUN_FLAGS, SyncRunFlags
from asyncsync.cli.trust_flags import SYNC_SIGN_FLAGS, SignFlags, close_trust
from asyncsync.errors import UsageError
from asyncsync.extensions import build_hooks
from asyncsync.specs.load import load_spec
from asyncsync.specs.model import CopySettings, SyncSpec
from asyncsync.specs.skopeo import docker_source_spec
from asyncsync.sync.engine import dry_run, run_sync
from asyncsync.sync.hooks import HookChain
from asyncsync.sync.local import SyncArguments, local_sync
from asyncsync.sync.plan import Planner
from asyncsync.sync.report import SyncReport
from asyncsync.sync.settings import CommandLine, resolve_settings
from asyncsync.sync.spec_plan import build_plan
from asyncsync.sync.storage_sync import storage_sync

_SYNC_PANEL = "Sync"


@dataclass(frozen=True, slots=True)
class SyncFlags:
    """``sync``'s own flags as given: skopeo's source/destination types and naming, and the run's policy.

    ``keep_going`` is skopeo's spelling of the default and changes nothing."""

    src: str | None = None
    dest: str | None = None
    scoped: bool = False
    append_suffix: str = ""
    dry_run: bool = False
    skip_existing: bool = False
    fail_fast: bool = False
    keep_going: bool = False

    def load(
        self, source: str, destination: str | None, settings: CopySettings, extensions: ExtensionFlags
    ) -> tuple[SyncSpec, Planner]:
        """The spec of SOURCE [DESTINATION] and the planner of its run; :class:`UsageError` for a bad
        combination (skopeo's rules; ``dir`` sides as :func:`~asyncsync.sync.local.local_sync` says,
        containers-storage sides as :func:`~asyncsync.sync.storage_sync.storage_sync` says)."""
        arguments = SyncArguments(
            self.src,
            self.dest,
            source,
            destination,
            scoped=self.scoped,
            append_suffix=self.append_suffix,
            settings=settings,
            prune=extensions.prune,
            create_projects=extensions.create_projects,
        )
        for planned_locally in (storage_sync, local_sync):
            local = planned_locally(arguments)
            if local is not None:
                return local.spec, local.planner
        return self._registry_spec(source, destination, settings), build_plan

    def _registry_spec(self, source: str, destination: str | None, settings: CopySettings) -> SyncSpec:
        if self.src is None:
            if self.dest is not None:
                raise UsageError("--dest needs --src (or give a native spec alone: asyncsync sync SPEC.yaml)")
            return load_spec(source, destination=destination)
        if self.dest != "docker":
            raise UsageError(
                f"--dest {self.dest or '(missing)'}: "
                "only 'docker', 'dir' and 'containers-storage' destinations are supported by sync"
            )
        if destination is None:
            raise UsageError("missing DESTINATION argument (a registry host, optionally with a path prefix)")
        if self.src == "yaml":
            if not Path(source).is_file():
                raise UsageError(f"{source}: no such spec file")
            return load_spec(
                source,
                destination=destination,
                scoped=self.scoped,
                append_suffix=self.append_suffix,
                settings=settings,
            )
        if self.src == "docker":
            return docker_source_spec(
                source, destination, scoped=self.scoped, append_suffix=self.append_suffix, settings=settings
            )
        raise UsageError(
            f"--src {self.src}: unsupported source type (yaml, docker, dir or containers-storage)"
        )


def _option(
    name: str, kind: object, default: object, *spelling: str, help: str, panel: bool = True
) -> Parameter:
    info = typer.Option(*spelling, help=help, rich_help_panel=_SYNC_PANEL if panel else None)
    return flag_option(name, Annotated[kind, info], default)


SYNC_FLAGS: FlagGroup[SyncFlags] = FlagGroup(
    SyncFlags,
    (
        _option(
            "src",
            str | None,
            None,
            "--src",
            "-s",
            help="Source type: yaml, docker, dir or containers-storage.",
            panel=False,
        ),
        _option(
            "dest",
            str | None,
            None,
            "--dest",
            "-d",
            help="Destination type: docker, dir or containers-storage.",
            panel=False,
        ),
        _option(
            "scoped",
            bool,
            False,
            "--scoped",
            help="Keep the full source name under DESTINATION.",
            panel=False,
        ),
        _option(
            "append_suffix",
            str,
            "",
            "--append-suffix",
            help="Append this suffix to destination tags.",
            panel=False,
        ),
        _option(
            "dry_run",
            bool,
            False,
            "--dry-run",
            help="Print what would be copied or skipped, and why; write nothing.",
        ),
        _option(
            "skip_existing",
            bool,
            False,
            "--skip-existing",
            help="Treat destination tags as immutable: skip tags that exist.",
        ),
        _option(
            "fail_fast", bool, False, "--fail-fast", help="Stop taking work after the first failed image."
        ),
        _option(
            "keep_going",
            bool,
            False,
            "--keep-going",
            help="Continue after a failed image (the default; skopeo spelling).",
        ),
    ),
    lambda values: SyncFlags(**values),
)


def _command_line(
    shared: SyncRunFlags,
    flags: SyncFlags,
    image: ImageFlags,
    attachment_flags: AttachmentFlags,
    sign: SignFlags,
) -> CommandLine:
    """What the command line says for the run, parsed; the trust policy and signers are loaded
    here so a bad one is reported first (none for a dry run, which writes nothing)."""
    return shared.command_line(
        fail_fast=flags.fail_fast,
        preserve_digests=image.preserve_digests,
        attachments=attachment_flags.policy(image.remove_signatures),
        sign=None if flags.dry_run else sign,
        remove_signatures=image.remove_signatures,
    )


@app.command("sync", cls=SkopeoCommand)
@with_flag_groups
def sync_command(
    source: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE", help="Spec file (yaml/native), repository, or directory (--src dir)."
        ),
    ],
    destination: Annotated[
        str | None,
        typer.Argument(metavar="DESTINATION", help="Registry (and path prefix), or directory (--dest dir)."),
    ] = None,
    *,
    flags: Annotated[SyncFlags, SYNC_FLAGS],
    image: Annotated[ImageFlags, SYNC_IMAGE_FLAGS],
    platform: Annotated[PlatformFlags, PLATFORM_FLAGS],
    shared: Annotated[SyncRunFlags, SYNC_RUN_FLAGS],
    attachment_flags: Annotated[AttachmentFlags, ATTACHMENT_FLAGS],
    sign: Annotated[SignFlags, SYNC_SIGN_FLAGS],
) -> None:
    """Synchronise images between registries: a skopeo sync YAML, a repository, or a native spec.

    Examples: asyncsync sync --src yaml --dest docker sync.yml registry.example/mirror;
    asyncsync sync --src docker --dest docker quay.io/org/app registry.example/mirror;
    asyncsync sync --src docker --dest dir registry.example/org/app /media/usb;
    asyncsync sync --src dir --dest docker /media/usb registry.internal/mirror;
    asyncsync sync --src docker --dest containers-storage quay.io/org/app;
    asyncsync sync --src containers-storage --dest docker localhost/app registry.example/mirror;
    asyncsync sync migrate.yaml (native spec, see configs/).
    """
    hooks = HookChain(())

    async def main() -> SyncReport | None:
        nonlocal hooks
        extensions = shared.extensions.extensions()
        copy_settings = image.copy_settings(platform.override(), skip_existing=flags.skip_existing)
        spec, planner = flags.load(source, destination, copy_settings, shared.extensions)
        for warning in spec.warnings:
            typer.echo(f"warning: {warning}", err=True)
        command_line = _command_line(shared, flags, image, attachment_flags, sign)
        settings = resolve_settings(spec, command_line)
        hooks = build_hooks(spec, extensions)
        if flags.dry_run:
            for line in (await dry_run(spec, settings, hooks, planner=planner))[1]:
                typer.echo(line)
            return None
        view = shared.output.view(live=True)
        try:
            return await shown(view, run_sync(spec, settings, view, hooks=hooks, planner=planner))
        finally:
            close_trust(settings.trust)  # the temporary GPG homes

    result = run(main)
    if result is not None and not shared.output.finish(result, hooks):
        raise typer.Exit(EXIT_FAILURE)
