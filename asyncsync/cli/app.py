"""The ``asyncsync`` Typer application: global options and command registration."""

from __future__ import annotations

from typing import Annotated

import typer

from asyncsync import __version__
from asyncsync.cli._run import GLOBAL, configure_logging

app = typer.Typer(
    name="asyncsync",
    help="Copy and sync container images between registries and local stores, concurrently.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"asyncsync version {__version__}")
        raise typer.Exit()


@app.callback()
def global_options(
    debug: Annotated[bool, typer.Option("--debug", help="Verbose logs and tracebacks.")] = False,
    command_timeout: Annotated[
        float | None, typer.Option("--command-timeout", help="Abort the command after this many seconds.")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", "-v", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """asyncsync: a skopeo-compatible, concurrent image copy and sync tool."""
    GLOBAL.debug = debug
    GLOBAL.command_timeout = command_timeout
    configure_logging(debug)


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
)


def _register_commands() -> None:
    import importlib

    for module in COMMAND_MODULES:
        importlib.import_module(f"asyncsync.cli.{module}")


def main() -> None:
    _register_commands()
    app()
