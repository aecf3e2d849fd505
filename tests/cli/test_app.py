"""The application entry point: which command modules a run imports."""

from __future__ import annotations

import subprocess
import sys

from asyncsync.cli.app import COMMAND_MODULE_OF, COMMAND_MODULES, _command_in


def test_every_command_module_is_mapped() -> None:
    assert set(COMMAND_MODULE_OF.values()) == set(COMMAND_MODULES)


def test_command_word_skips_global_options() -> None:
    assert _command_in(["sync", "spec.yaml"]) == "sync"
    assert _command_in(["--debug", "--command-timeout", "30", "copy", "a", "b"]) == "copy"
    assert _command_in(["--version"]) is None
    assert _command_in([]) is None


def _modules_after(argv: list[str]) -> set[str]:
    script = (
        "import sys\n"
        f"sys.argv = {['asyncsync', *argv]!r}\n"
        "from asyncsync.cli.app import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('asyncsync'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    return set(done.stdout.split())


def test_a_command_imports_only_its_module() -> None:
    loaded = _modules_after(["list-tags", "--help"])
    assert "asyncsync.cli.tags_command" in loaded
    assert "asyncsync.cli.mirror_command" not in loaded
    assert "asyncsync.mirror.metrics" not in loaded


def test_top_level_help_lists_every_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "asyncsync", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "200", "NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    for command in COMMAND_MODULE_OF:
        assert command in done.stdout
