"""The Harbor keys of the native spec: ``type: harbor``, ``create-projects``, and their validation."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from asyncsync.errors import SpecError
from asyncsync.registry.credentials import Credentials
from asyncsync.specs.load import load_spec


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "sync.yaml"
    path.write_text("version: 1\n" + textwrap.dedent(body))
    return path


def spec_error(tmp_path: Path, body: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, body))
    return info.value


def assert_error(err: SpecError, line: int, message: str) -> None:
    assert str(err) == f"{err.file}:{line}: {message}"


def test_harbor_registry_with_project_creation_and_robot_credentials(tmp_path: Path) -> None:
    spec = load_spec(
        write(
            tmp_path,
            """\
            registries:
              harbor-a.example.com:
                type: harbor
                credentials: {username: robot$payments+reader, password: "s3cret"}
              harbor-b.example.com:
                type: harbor
                create-projects: true
                credentials: {username: 'robot$migration', password: x}
              quay.io: {type: distribution}
            sync:
              - from: harbor-a.example.com/payments/**
                to: harbor-b.example.com/fintech/
            """,
        )
    )
    source, target, quay = (
        spec.registry(h) for h in ("harbor-a.example.com", "harbor-b.example.com", "quay.io")
    )
    assert source is not None and (source.kind, source.create_projects) == ("harbor", False)
    assert source.credentials == Credentials("robot$payments+reader", "s3cret")
    assert target is not None and (target.kind, target.create_projects) == ("harbor", True)
    assert target.credentials == Credentials("robot$migration", "x")
    assert quay is not None and quay.kind == "distribution"


def test_registries_default_to_distribution(tmp_path: Path) -> None:
    spec = load_spec(
        write(
            tmp_path,
            """\
            registries:
              registry.example.com: {tls-verify: false}
            sync:
              - from: registry.example.com/a/b
                to: other.example.com/c/
            """,
        )
    )
    config = spec.registry("registry.example.com")
    assert config is not None and (config.kind, config.create_projects) == ("distribution", False)


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (
            """\
            registries:
              harbor.example.com:
                type: harbour
            sync: [{from: a.example.com/x/y, to: b.example.com/z/}]
            """,
            4,
            "'type' of registry 'harbor.example.com' must be one of distribution, harbor",
        ),
        (
            """\
            registries:
              harbor.example.com:
                type: [harbor]
            sync: [{from: a.example.com/x/y, to: b.example.com/z/}]
            """,
            4,
            "'type' of registry 'harbor.example.com' must be a string, not a list",
        ),
        (
            """\
            registries:
              harbor.example.com:
                create-projects: true
            sync: [{from: a.example.com/x/y, to: b.example.com/z/}]
            """,
            4,
            "'create-projects' of registry 'harbor.example.com' needs 'type: harbor' "
            "(only Harbor has projects to create)",
        ),
        (
            """\
            registries:
              harbor.example.com:
                type: harbor
                create-projects: yes please
            sync: [{from: a.example.com/x/y, to: b.example.com/z/}]
            """,
            5,
            "'create-projects' of registry 'harbor.example.com' must be true or false, "
            "not a string 'yes please'",
        ),
        (
            """\
            registries:
              harbor.example.com:
                typ: harbor
            sync: [{from: a.example.com/x/y, to: b.example.com/z/}]
            """,
            4,
            "unknown key 'typ' in registry 'harbor.example.com' (did you mean 'type'?)",
        ),
        (
            """\
            registries:
              harbor.example.com: {type: harbor}
            sync:
              - from: a.example.com/team/app
                to: harbor.example.com/app
            """,
            6,
            "destination harbor.example.com/app of sync entry 1 has no project: Harbor repositories are "
            "PROJECT/NAME",
        ),
        (
            """\
            registries:
              harbor.example.com: {type: harbor}
            sync:
              - from: a.example.com/team/app
                to: harbor.example.com/
            """,
            6,
            "destination harbor.example.com/app of sync entry 1 has no project: Harbor repositories are "
            "PROJECT/NAME",
        ),
    ],
)
def test_harbor_key_errors(tmp_path: Path, body: str, line: int, message: str) -> None:
    assert_error(spec_error(tmp_path, body), line, message)


def test_a_glob_into_the_registry_root_is_left_to_the_plan(tmp_path: Path) -> None:
    # proj/** keeps "proj/..." below the root: only the listing can tell whether a name has a project.
    spec = load_spec(
        write(
            tmp_path,
            """\
            registries:
              harbor.example.com: {type: harbor}
            sync:
              - from: a.example.com/proj/**
                to: harbor.example.com/
            """,
        )
    )
    assert spec.entries[0].destination.path == ""
