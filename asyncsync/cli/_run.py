"""Run a command's coroutine under anyio (uvloop when available) and map errors to exit codes.

Exit codes: 0 success; 1 an operation failed (registry, network, content, image copy);
2 bad usage (invalid names, bad spec, bad flags); 130 interrupted. Without ``--debug`` an
error is printed as one line ``Error: ...`` with no traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn, TypeVar

import anyio
import typer

from asyncsync.errors import AsyncSyncError, UsageError

T = TypeVar("T")

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@dataclass(slots=True)
class GlobalOptions:
    """Options of the top-level ``asyncsync`` command that every subcommand honours."""

    debug: bool = False
    command_timeout: float | None = None
    #: skopeo's global ``--override-os``/``--override-arch``/``--override-variant``.
    override_os: str | None = None
    override_arch: str | None = None
    override_variant: str | None = None
    #: skopeo's global trust options: ``--policy``, ``--insecure-policy``, ``--registries.d``.
    policy: str | None = None
    insecure_policy: bool = False
    registries_d: str | None = None


GLOBAL = GlobalOptions()


def configure_logging(debug: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # aiohttp's own loggers may print URLs with signed query strings; keep them quiet.
    logging.getLogger("aiohttp").setLevel(logging.WARNING)


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print ``Error: message`` on stderr and exit with ``code``."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


def _backend_options() -> dict[str, object]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return {}
    return {"loop_factory": uvloop.new_event_loop}


async def until_signal(work: Awaitable[T]) -> T:
    """``work``, cancelled at once by the first SIGINT or SIGTERM, which then ends the command as
    Ctrl-C does (``Error: interrupted``, exit :data:`EXIT_INTERRUPTED`; :func:`run`). Waits
    (retries, ``Retry-After``) and transfers stop with it; a copy writes its tag last, so a
    cancelled one leaves none. Without this a SIGTERM killed the process wherever it was."""
    import signal

    received: list[str] = []
    results: list[T] = []
    async with anyio.create_task_group() as group:

        async def watch(*, task_status: anyio.abc.TaskStatus[None]) -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                task_status.started()
                async for signum in signals:
                    received.append(signal.Signals(signum).name)
                    group.cancel_scope.cancel()
                    return

        await group.start(watch)
        failure: Exception | None = None
        try:
            results.append(await work)
        except Exception as exc:  # raised as itself below, not inside the task group's ExceptionGroup
            failure = exc
        finally:
            group.cancel_scope.cancel()
    if failure is not None:
        raise failure
    if received or not results:
        raise KeyboardInterrupt(received[0] if received else "")
    return results[0]


def run(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main`` to completion with the global timeout; errors become exit codes."""

    async def guarded() -> T:
        if GLOBAL.command_timeout:
            with anyio.fail_after(GLOBAL.command_timeout):
                return await main()
        return await main()

    try:
        return anyio.run(guarded, backend="asyncio", backend_options=_backend_options())
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        typer.echo("Error: interrupted", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except TimeoutError:
        if GLOBAL.debug:
            raise
        fail(f"command timed out after {GLOBAL.command_timeout:g}s")
    except UsageError as exc:
        if GLOBAL.debug:
            raise
        fail(str(exc), EXIT_USAGE)
    except AsyncSyncError as exc:
        if GLOBAL.debug:
            raise
        fail(str(exc))
