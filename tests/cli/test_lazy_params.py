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
    ) -> None:
        seen.update(name=name, label=label, count=count, item=item)

    return app


def test_values_and_errors_are_typers_own() -> None:
    install()
    install()  # idempotent
    seen: dict[str, object] = {}
    runner = CliRunner()
    result = runner.invoke(_app(seen), ["n", "--label", "x", "--count", "3", "--item", "a", "--item", "b"])
    assert result.exit_code == 0, result.output
    assert seen == {"name": "n", "label": "x", "count": 3, "item": ["a", "b"]}
    result = runner.invoke(_app(seen), ["n"])
    assert result.exit_code == 0, result.output
    assert seen == {"name": "n", "label": None, "count": None, "item": None}
    result = runner.invoke(_app(seen), ["n", "--count", "three"])
    assert result.exit_code == 2
    assert "--count" in result.output


def test_a_sync_with_string_values_does_not_import_pydantic(tmp_path: Path) -> None:
    spec = str(tmp_path / "absent.yaml")
    done = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "asyncsync",
            "sync",
            "--src",
            "yaml",
            "--dest",
            "docker",
            spec,
            "x",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2  # a missing spec file is a usage error
    assert "no such spec file" in done.stderr
    assert "| pydantic" not in done.stderr and "|   pydantic" not in done.stderr
