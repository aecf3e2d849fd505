"""The ``asyncsync`` Typer application: global options and command registration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, NoReturn

import typer

from asyncsync import __version__
from asyncsync.cli._run import EXIT_USAGE, GLOBAL, configure_logging, fail
from asyncsync.cli.compat_flags import (
    GLOBAL_COMPAT_FLAGS,
    GLOBAL_COMPAT_OPTIONS_WITH_VALUE,
    GlobalCompatFlags,
    SkopeoGroup,
)
from asyncsync.cli.flag_groups import with_flag_groups
from asyncsync.errors import UsageError
from asyncsync.units import duration_flag

app = typer.Typer(
    cls=SkopeoGroup,
    name="asyncsync",
    help="Copy and sync container images between registries and local stores, concurrently.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _timeout(text: str | None) -> float | None:
    """``--command-timeout`` in seconds; a malformed value is a one-line usage error."""
    if text is None:
        return None
    try:
        return duration_flag(text, "--command-timeout")
    except UsageError as exc:
        fail(str(exc), EXIT_USAGE)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"asyncsync version {__version__}")
        raise typer.Exit()


@app.callback()
@with_flag_groups
def global_options(
    debug: Annotated[bool, typer.Option("--debug", help="Verbose logs and tracebacks.")] = False,
    command_timeout: Annotated[
        str | None,
        typer.Option(
            "--command-timeout",
            metavar="DURATION",
            help="Abort the command after DURATION (30s, 1m30s, or seconds).",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", "-v", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
    override_os: Annotated[
        str | None, typer.Option("--override-os", metavar="OS", help="Use OS instead of the host's.")
    ] = None,
    override_arch: Annotated[
        str | None,
        typer.Option("--override-arch", metavar="ARCH", help="Use ARCH instead of the host's architecture."),
    ] = None,
    override_variant: Annotated[
        str | None,
        typer.Option("--override-variant", metavar="VARIANT", help="Use VARIANT instead of the host's."),
    ] = None,
    policy: Annotated[
        str | None, typer.Option("--policy", metavar="PATH", help="Path to a trust policy file.")
    ] = None,
    insecure_policy: Annotated[
        bool, typer.Option("--insecure-policy", help="Run the tool without any policy check.")
    ] = False,
    registries_d: Annotated[
        str | None,
        typer.Option(
            "--registries.d",
            metavar="DIR",
            help="Use registry configuration files in DIR (e.g. for container signature storage).",
        ),
    ] = None,
    *,
    compat: Annotated[GlobalCompatFlags, GLOBAL_COMPAT_FLAGS],
) -> None:
    """asyncsync: a skopeo-compatible, concurrent image copy and sync tool."""
    GLOBAL.debug = debug
    GLOBAL.command_timeout = _timeout(command_timeout)
    GLOBAL.override_os, GLOBAL.override_arch, GLOBAL.override_variant = (
        override_os,
        override_arch,
        override_variant,
    )
    GLOBAL.policy, GLOBAL.insecure_policy, GLOBAL.registries_d = policy, insecure_policy, registries_d
    configure_logging(debug)
    try:
        compat.apply()
    except UsageError as exc:
        fail(str(exc), EXIT_USAGE)


#: Command modules; each adds its commands to ``app`` when imported.
COMMAND_MODULES: tuple[str, ...] = (
    "inspect_command",
    "tags_command",
    "delete_command",
    "auth_commands",
    "digest_command",
    "copy_command",
    "sync_command",
    "mirror_command",
    "signing_commands",
)


#: Which module defines each command, so a run imports only the one it needs.
COMMAND_MODULE_OF: dict[str, str] = {
    "inspect": "inspect_command",
    "list-tags": "tags_command",
    "delete": "delete_command",
    "login": "auth_commands",
    "logout": "auth_commands",
    "manifest-digest": "digest_command",
    "copy": "copy_command",
    "sync": "sync_command",
    "mirror": "mirror_command",
    "standalone-sign": "signing_commands",
    "standalone-verify": "signing_commands",
    "generate-sigstore-key": "signing_commands",
}
#: Global options that take a value (the command name is the first word after the options).
_GLOBAL_OPTIONS_WITH_VALUE = (
    "--command-timeout",
    "--override-os",
    "--override-arch",
    "--override-variant",
    "--policy",
    "--registries.d",
    *GLOBAL_COMPAT_OPTIONS_WITH_VALUE,
)


def _register_commands(modules: tuple[str, ...] = COMMAND_MODULES) -> None:
    import importlib

    for module in modules:
        importlib.import_module(f"asyncsync.cli.{module}")


def _command_in(argv: list[str]) -> str | None:
    """The command word of ``argv`` (without the program name), or ``None`` if there is none."""
    words = iter(argv)
    for word in words:
        if word in _GLOBAL_OPTIONS_WITH_VALUE:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def main(loaded: Callable[[], None] | None = None) -> None:
    """Run the CLI. Only the invoked command's module is imported (start-up time: the mirror's
    web server, the Harbor client and the local transports are not needed by every command);
    without a known command (top-level ``--help``, a typo) every command is, for the listing.
    ``loaded`` is called once the command's modules are imported, before it runs."""
    import sys

    from asyncsync.cli.lazy_params import install

    install()  # typer's per-parameter pydantic adapters only where a value needs one
    module = COMMAND_MODULE_OF.get(_command_in(sys.argv[1:]) or "")
    _register_commands((module,) if module is not None else COMMAND_MODULES)
    if loaded is not None:
        loaded()
    app()


#: The youngest generation's collection threshold once the program runs (Python's default: 700).
GC_THRESHOLD = 5000


def resume_collector() -> None:
    """The cyclic garbage collector after start-up (the entry point pauses it while the modules
    load). The objects made so far (modules, classes, the command tree) live until the program
    exits: they are frozen out of every later collection. A run then makes short-lived objects
    by the thousand per second (requests, responses, tasks), most of them freed by reference
    counting before any collection, so the youngest generation is collected every
    :data:`GC_THRESHOLD` net allocations instead of 700 (garbage in cycles waits at most that
    long). Measured on a 200-tag loopback migration: the collector's time from about 80 ms
    (35 ms of it in start-up, before the first request) to about 10 ms."""
    import gc

    gc.freeze()
    gc.set_threshold(GC_THRESHOLD)
    gc.enable()


def entry_point() -> None:
    """The program's entry (``asyncsync``, ``python -m asyncsync``): :func:`main` with the
    collector paused until the command's modules are loaded (:func:`resume_collector`), then
    leave at once (:func:`_exit_now`). In-process callers use :func:`main`, which raises
    ``SystemExit`` and leaves the collector alone."""
    import gc

    gc.disable()
    try:
        main(loaded=resume_collector)
    except SystemExit as done:
        _exit_now(done.code)


def _exit_now(code: object) -> NoReturn:
    """Leave without the interpreter's teardown (freeing every module and object: 0.1-0.2 s of
    CPU, a tenth of a no-op re-sync). The command is over: its files are closed, its report
    written; only the standard streams and logging may hold buffered output, flushed here, and
    ``atexit`` hooks run as at a normal exit (asyncsync registers none: temporary directories are
    removed explicitly)."""
    import atexit
    import logging
    import os
    import sys

    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()  # exit hooks (of libraries, of an embedding script) still run
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or 1  # stdout closed or broken (a pipe reader gone): as Python does
    os._exit(status)
