"""``asyncsync sync``: skopeo's sync (``--src yaml|docker|dir --dest docker|dir``) and the native spec.

A ``dir`` side (air-gapped transfers through skopeo's directory tree) is planned by
:func:`asyncsync.sync.local.local_sync`; everything else goes through :func:`_load`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal, cast

import orjson
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
from asyncsync.cli.platform_flags import PLATFORM_FLAGS, PlatformFlags
from asyncsync.cli.run_flags import RUN_FLAGS, RunFlags
from asyncsync.cli.sync_view import JsonSyncView, PlainSyncView, RichSyncView
from asyncsync.errors import UsageError
from asyncsync.extensions import build_hooks
from asyncsync.specs.load import load_spec
from asyncsync.specs.model import CopySettings, SyncSpec
from asyncsync.specs.skopeo import docker_source_spec
from asyncsync.sync.engine import SyncView, dry_run, run_sync
from asyncsync.sync.hooks import HookChain
from asyncsync.sync.local import local_sync
from asyncsync.sync.report import SyncReport
from asyncsync.sync.settings import resolve_settings
from asyncsync.sync.spec_plan import build_plan

_SYNC_PANEL = "Sync"


def _settings_from_flags(
    all_images: bool,
    fmt: str | None,
    skip_existing: bool,
    platform_flags: PlatformFlags,
) -> CopySettings:
    if fmt is not None and fmt not in ("oci", "v2s2"):
        raise UsageError(f"--format: unknown manifest type {fmt!r} (oci or v2s2)")
    return CopySettings(
        multi_arch="all" if all_images else "system",
        # --override-*: the one image of a multi-arch image that a sync without --all copies.
        platform=None if all_images else platform_flags.override(),
        format=cast(Literal["oci", "v2s2"] | None, fmt),
        skip_existing=skip_existing,
    )


def _load(
    source: str,
    destination: str | None,
    src: str | None,
    dest: str | None,
    scoped: bool,
    append_suffix: str,
    settings: CopySettings,
) -> SyncSpec:
    if src is None:
        if dest is not None:
            raise UsageError("--dest needs --src (or give a native spec alone: asyncsync sync SPEC.yaml)")
        return load_spec(source, destination=destination)
    if dest != "docker":
        raise UsageError(
            f"--dest {dest or '(missing)'}: only 'docker' and 'dir' destinations are supported by sync"
        )
    if destination is None:
        raise UsageError("missing DESTINATION argument (a registry host, optionally with a path prefix)")
    if src == "yaml":
        if not Path(source).is_file():
            raise UsageError(f"{source}: no such spec file")
        return load_spec(
            source, destination=destination, scoped=scoped, append_suffix=append_suffix, settings=settings
        )
    if src == "docker":
        return docker_source_spec(
            source, destination, scoped=scoped, append_suffix=append_suffix, settings=settings
        )
    raise UsageError(f"--src {src}: unsupported source type (yaml, docker or dir)")


def _view(log_format: str, quiet: bool) -> SyncView:
    if log_format == "json":
        return JsonSyncView()
    if log_format != "text":
        raise UsageError(f"--log-format: unknown format {log_format!r} (text or json)")
    if sys.stderr.isatty() and not quiet:
        return RichSyncView()
    return PlainSyncView(quiet=quiet)


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
    src: Annotated[str | None, typer.Option("--src", "-s", help="Source type: yaml, docker or dir.")] = None,
    dest: Annotated[str | None, typer.Option("--dest", "-d", help="Destination type: docker or dir.")] = None,
    scoped: Annotated[
        bool, typer.Option("--scoped", help="Keep the full source name under DESTINATION.")
    ] = False,
    append_suffix: Annotated[
        str, typer.Option("--append-suffix", help="Append this suffix to destination tags.")
    ] = "",
    all_images: Annotated[
        bool, typer.Option("--all", "-a", help="Copy every image of multi-arch images, and the index.")
    ] = False,
    fmt: Annotated[
        str | None, typer.Option("--format", "-f", metavar="oci|v2s2", help="Convert manifests.")
    ] = None,
    preserve_digests: Annotated[
        bool, typer.Option("--preserve-digests", help="Fail rather than change a digest.")
    ] = False,
    remove_signatures: Annotated[
        bool, typer.Option("--remove-signatures", help="Accepted; no signatures are copied yet.")
    ] = False,
    platform: Annotated[PlatformFlags, PLATFORM_FLAGS],
    dry_run_flag: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print what would be copied or skipped, and why; write nothing.",
            rich_help_panel=_SYNC_PANEL,
        ),
    ] = False,
    skip_existing: Annotated[
        bool,
        typer.Option(
            "--skip-existing",
            help="Treat destination tags as immutable: skip tags that exist.",
            rich_help_panel=_SYNC_PANEL,
        ),
    ] = False,
    fail_fast: Annotated[
        bool,
        typer.Option(
            "--fail-fast", help="Stop taking work after the first failed image.", rich_help_panel=_SYNC_PANEL
        ),
    ] = False,
    keep_going: Annotated[
        bool,
        typer.Option(
            "--keep-going",
            help="Continue after a failed image (the default; skopeo spelling).",
            rich_help_panel=_SYNC_PANEL,
        ),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            metavar="FILE.json",
            help="Write the final report as JSON.",
            rich_help_panel=_SYNC_PANEL,
        ),
    ] = None,
    log_format: Annotated[
        str,
        typer.Option(
            "--log-format", metavar="text|json", help="Progress output format.", rich_help_panel=_SYNC_PANEL
        ),
    ] = "text",
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only failures and the summary.")
    ] = False,
    run_flags: Annotated[RunFlags, RUN_FLAGS],
    extension_flags: Annotated[ExtensionFlags, EXTENSION_FLAGS],
    registries: Annotated[RegistrySides, REGISTRY_SIDES],
    retry_flags: Annotated[RetryFlags, RETRY_FLAGS],
) -> None:
    """Synchronise images between registries: a skopeo sync YAML, a repository, or a native spec.

    Examples: asyncsync sync --src yaml --dest docker sync.yml registry.example/mirror;
    asyncsync sync --src docker --dest docker quay.io/org/app registry.example/mirror;
    asyncsync sync --src docker --dest dir registry.example/org/app /media/usb;
    asyncsync sync --src dir --dest docker /media/usb registry.internal/mirror;
    asyncsync sync migrate.yaml (native spec, see configs/).
    """
    del remove_signatures, keep_going  # accepted for skopeo compatibility; behaviour is the default

    hooks: HookChain | None = None

    async def main() -> SyncReport | None:
        nonlocal hooks
        extensions = extension_flags.extensions()
        if preserve_digests and fmt is not None:
            raise UsageError(
                "--preserve-digests and --format cannot be used together: conversion changes digests"
            )
        copy_settings = _settings_from_flags(all_images, fmt, skip_existing, platform)
        local = local_sync(
            src,
            dest,
            source,
            destination,
            scoped=scoped,
            append_suffix=append_suffix,
            settings=copy_settings,
            prune=extension_flags.prune,
            create_projects=extension_flags.create_projects,
        )
        spec = (
            local.spec
            if local
            else _load(source, destination, src, dest, scoped, append_suffix, copy_settings)
        )
        planner = local.planner if local else build_plan
        for warning in spec.warnings:
            typer.echo(f"warning: {warning}", err=True)
        flags = run_flags.command_line(
            registries, retry_flags, fail_fast=fail_fast, preserve_digests=preserve_digests
        )
        settings = resolve_settings(spec, flags)
        hooks = build_hooks(spec, extensions)
        if dry_run_flag:
            _, lines = await dry_run(spec, settings, hooks, planner=planner)
            for line in lines:
                typer.echo(line)
            return None
        view = _view(log_format, quiet)
        if isinstance(view, RichSyncView):
            with view:
                return await run_sync(spec, settings, view, hooks=hooks, planner=planner)
        return await run_sync(spec, settings, view, hooks=hooks, planner=planner)

    result = run(main)
    if result is None:
        return
    if hooks is not None:
        result.extra.update(hooks.report_data())
    if report is not None:
        result.write_json(report)
    if log_format == "json":
        typer.echo(orjson.dumps({"event": "summary", **orjson.loads(result.to_json())["summary"]}).decode())
    else:
        for line in result.summary_lines() + (hooks.summary_lines() if hooks is not None else []):
            typer.echo(line)
    if not result.ok or (hooks is not None and not hooks.ok):
        raise typer.Exit(EXIT_FAILURE)
