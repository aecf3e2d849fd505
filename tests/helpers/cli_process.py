"""The ``asyncsync`` command line in real child processes that start in milliseconds.

``python -m asyncsync`` spends about a second importing before it does anything; crash tests start it
dozens of times. Here children are forked from a multiprocessing *forkserver* that imported asyncsync
once (the forkserver itself is a fresh single-threaded interpreter, so forking it is safe). As with
any multiprocessing start method but fork, a script using this must guard its entry point with
``if __name__ == "__main__":`` (pytest's own main module is safe). Each child
is a separate process with its own pid that can be killed with SIGKILL, gets the caller's environment,
working directory and arguments, writes stdout/stderr to files and exits with the CLI's exit code.

* :func:`start` returns a :class:`CliProcess` (``pid``, ``wait()``, ``kill()``, ``returncode``,
  ``stdout``/``stderr`` once finished); a process killed by SIGKILL has ``returncode == -9``.
* :func:`run` starts and waits.

It imports ``asyncsync`` (the preload), unlike the rest of ``tests.helpers``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import tempfile
import threading
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path

__all__ = ["CliProcess", "run", "start"]

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
_CONTEXT = multiprocessing.get_context("forkserver")
#: Reading a child's exit status consumes it from the forkserver's pipe, and ``Process.start`` polls
#: every other child: two threads doing either at once make one of them see 255. One lock for both.
_LOCK = threading.Lock()
_CONTEXT.set_forkserver_preload(["tests.helpers.cli_process", "asyncsync.cli.app"])


def _register() -> None:
    """Import every command and whatever Typer imports lazily while parsing their options."""
    import typer.main

    from asyncsync.cli.app import _register_commands, app

    _register_commands()
    group = typer.main.get_command(app)
    for name, command in getattr(group, "commands", {}).items():
        with contextlib.suppress(Exception):
            command.make_context(name, [], resilient_parsing=True)


def _child(argv: list[str], env: dict[str, str], cwd: str, out: str, err: str) -> None:
    """Runs in the forked child: become the CLI process and exit with its code."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    # The forkserver's parent may have handed it ignored or redirected signals; a CLI gets defaults.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.argv = ["asyncsync", *argv]
    code = 1
    try:
        from asyncsync.cli.app import main

        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        # What the interpreter does with an uncaught exception (``--debug`` re-raises errors).
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


# In the forkserver (the preload) and in tests alike: import every command module once. A module
# that does not import fails its own tests; the child then reports the error itself.
with contextlib.suppress(ImportError):
    _register()


@dataclass
class CliProcess:
    """A running or finished CLI child. ``stdout``/``stderr`` are read from files after :meth:`wait`."""

    process: BaseProcess
    directory: Path
    stdout: str = ""
    stderr: str = ""
    _code: int | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """The exit code (``-9`` after SIGKILL), or None while running."""
        if self._code is not None:
            return self._code
        with _LOCK:
            return self.process.exitcode

    def kill(self) -> None:
        """SIGKILL the child (no cleanup of any kind runs in it)."""
        if self._code is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for the exit (killing the child after ``timeout``); returns the exit code."""
        if self._code is None:
            # Wait on the sentinel without reading it; the exit status is read under the lock.
            if not multiprocessing.connection.wait([self.process.sentinel], timeout):
                self.kill()
                multiprocessing.connection.wait([self.process.sentinel], 5)
            with _LOCK:
                self.process.join(5)
                code = self.process.exitcode
                self.process.close()
            assert code is not None
            self._code = code
            self.stdout, self.stderr = (_read(self.directory / name) for name in ("stdout", "stderr"))
        return self._code

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def _read(path: Path) -> str:
    # A child that died before redirecting its output wrote nothing.
    return path.read_text(errors="replace") if path.exists() else ""


def start(
    args: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None, directory: Path
) -> CliProcess:
    """Start ``asyncsync ARGS`` in a child; its output goes to ``directory/stdout`` and ``/stderr``."""
    directory.mkdir(parents=True, exist_ok=True)
    environment = dict(os.environ if env is None else env)
    out, err = directory / "stdout", directory / "stderr"
    process = _CONTEXT.Process(
        target=_child,
        args=(
            list(args),
            environment,
            str(cwd or REPO_ROOT),
            str(out),
            str(err),
        ),
        daemon=False,
    )
    with _LOCK:  # start() polls every other child (multiprocessing's _cleanup): not concurrently
        process.start()
    return CliProcess(process, directory)


def run(args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 60.0) -> CliProcess:
    """Start and wait; the output lands in a fresh temporary directory."""
    child = start(args, env=env, directory=Path(tempfile.mkdtemp(prefix="asyncsync-cli-")))
    child.wait(timeout)
    return child
