"""The application entry point: which command modules a run imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from asyncsync.cli.app import COMMAND_MODULE_OF, COMMAND_MODULES, GC_THRESHOLD, _command_in
from tests.helpers.asyncsync_cli import run_cli


def test_every_command_module_is_mapped() -> None:
    assert set(COMMAND_MODULE_OF.values()) == set(COMMAND_MODULES)


def test_command_word_skips_global_options() -> None:
    assert _command_in(["sync", "spec.yaml"]) == "sync"
    assert _command_in(["--debug", "--command-timeout", "30", "copy", "a", "b"]) == "copy"
    assert _command_in(["--version"]) is None
    assert _command_in([]) is None


def _modules_after(argv: list[str], prefix: str = "asyncsync") -> set[str]:
    return set(_run_in_process(argv, prefix).splitlines()[-1].split())


def _run_in_process(argv: list[str], prefix: str) -> str:
    """The command's stdout, then a line naming the modules loaded whose name starts with ``prefix``."""
    script = (
        "import sys\n"
        f"sys.argv = {['asyncsync', *argv]!r}\n"
        "from asyncsync.cli.app import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(' '.join(sorted(m for m in sys.modules if m.startswith({prefix!r}))))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    return done.stdout


def test_a_command_imports_only_its_module() -> None:
    loaded = _modules_after(["list-tags", "--help"])
    assert "asyncsync.cli.tags_command" in loaded
    assert "asyncsync.cli.mirror_command" not in loaded
    assert "asyncsync.mirror.metrics" not in loaded


def test_a_sync_without_a_terminal_or_signing_imports_no_rich_view_or_crypto(tmp_path: Path) -> None:
    # A sync that runs (its only source refuses connections: a plan error), output to a pipe.
    spec = tmp_path / "sync.yaml"
    spec.write_text("127.0.0.1:9:\n  tls-verify: false\n  images:\n    app: [v1]\n")
    argv = ["sync", "--src", "yaml", "--dest", "docker", "--retry-times", "0", str(spec), "127.0.0.1:9/x"]
    output = _run_in_process(argv, prefix="")
    assert "Synced 0 images" in output  # it did run
    loaded = set(output.splitlines()[-1].split())
    assert not {m for m in loaded if m.split(".")[0] in ("rich", "cryptography", "nacl")}


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


def test_the_program_collects_garbage_again_once_its_modules_are_loaded(tmp_path: Path) -> None:
    # The entry point pauses the collector while the modules load, then freezes what start-up
    # made and collects the youngest generation less often (see resume_collector). An exit hook
    # reports how the collector stood when the command ended.
    report = "print(gc.isenabled(), gc.get_threshold()[0], gc.get_freeze_count() > 10000)"
    probe = tmp_path / "probe.py"
    probe.write_text(
        f"import atexit, gc, sys\natexit.register(lambda: {report})\n"
        "sys.argv = ['asyncsync', '--version']\n"
        "from asyncsync.cli.app import entry_point\nentry_point()\n"
    )
    done = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"True {GC_THRESHOLD} True"
    # In-process callers of main() keep their own collector settings.
    probe.write_text(
        "import gc, sys\nsys.argv = ['asyncsync', '--version']\nfrom asyncsync.cli.app import main\n"
        f"try:\n    main()\nexcept SystemExit:\n    {report}\n"
    )
    done = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines()[-1] == "True 700 False"


def test_command_timeout_takes_a_go_duration_or_seconds(tmp_path: Path) -> None:
    manifest = tmp_path / "m.json"
    manifest.write_bytes(b"{}")
    for value in ("1m30s", "90", "1.5h"):
        assert run_cli("--command-timeout", value, "manifest-digest", str(manifest)).returncode == 0


def test_a_bad_command_timeout_is_one_line() -> None:
    result = run_cli("--command-timeout", "soon", "manifest-digest", "/dev/null")
    assert result.returncode == 2
    expected = "Error: --command-timeout: invalid duration 'soon' (e.g. 30s, 1m30s, 1.5h, 300ms)\n"
    assert result.stderr == expected
