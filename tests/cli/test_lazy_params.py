"""typer's per-parameter coercion built lazily: values and errors unchanged, pydantic not imported
by a command whose values need no adapter (start-up time)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.testing import CliRunner

from asyncsync.cli.lazy_params import install

REPO_ROOT = Path(__file__).resolve().parents[2]


def _app(seen: dict[str, object]) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def command(
        name: Annotated[str, typer.Argument()],
        label: Annotated[str | None, typer.Option("--label")] = None,
        count: Annotated[int | None, typer.Option("--count")] = None,
        item: Annotated[list[str] | None, typer.Option("--item")] = None,
        jobs: Annotated[int, typer.Option("--jobs")] = 6,
    ) -> None:
        seen.update(name=name, label=label, count=count, item=item, jobs=jobs)

    return app


def test_values_and_errors_are_typers_own() -> None:
    install()
    install()  # idempotent
    seen: dict[str, object] = {}
    runner = CliRunner()
    result = runner.invoke(
        _app(seen), ["n", "--label", "x", "--count", "3", "--item", "a", "--item", "b", "--jobs", "2"]
    )
    assert result.exit_code == 0, result.output
    assert seen == {"name": "n", "label": "x", "count": 3, "item": ["a", "b"], "jobs": 2}
    result = runner.invoke(_app(seen), ["n"])
    assert result.exit_code == 0, result.output
    assert seen == {"name": "n", "label": None, "count": None, "item": None, "jobs": 6}
    assert type(seen["jobs"]) is int
    result = runner.invoke(_app(seen), ["n", "--count", "three"])
    assert result.exit_code == 2
    assert "--count" in result.output
    result = runner.invoke(_app(seen), ["n", "--jobs", "many"])
    assert result.exit_code == 2
    assert "--jobs" in result.output


def _importing(*argv: str) -> subprocess.CompletedProcess[str]:
    """``python -X importtime -m asyncsync ARGV`` (the import log is on stderr)."""
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "asyncsync", *argv],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
        timeout=60,
    )


def _imported_pydantic(stderr: str) -> bool:
    return "| pydantic" in stderr or "|   pydantic" in stderr


def test_a_sync_with_string_values_does_not_import_pydantic(tmp_path: Path) -> None:
    spec = str(tmp_path / "absent.yaml")
    done = _importing("sync", "--src", "yaml", "--dest", "docker", spec, "x")
    assert done.returncode == 2  # a missing spec file is a usage error
    assert "no such spec file" in done.stderr
    assert not _imported_pydantic(done.stderr)


def test_a_copy_with_default_values_does_not_import_pydantic(tmp_path: Path) -> None:
    """``copy``'s ``--image-parallel-copies`` defaults to an int: once 0.1 s of pydantic's import
    on every copy, before its first request."""
    done = _importing("copy", "--quiet", f"dir:{tmp_path / 'absent'}", f"dir:{tmp_path / 'copy'}")
    assert done.returncode == 1, done.stderr  # the source directory does not exist
    assert not _imported_pydantic(done.stderr)
