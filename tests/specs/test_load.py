"""load_spec: format detection, unreadable files, YAML syntax errors, and the spec value types."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from asyncsync.errors import InvalidReferenceError, SpecError, UsageError
from asyncsync.specs.filters import TagFilter
from asyncsync.specs.load import load_spec
from asyncsync.specs.model import CopySettings, Destination, Origin, SourceSelector, SyncEntry, validate_glob


def write(tmp_path: Path, text: str | bytes, name: str = "sync.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def load_error(path: Path, **options: Any) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_spec(path, **options)
    return info.value


def test_version_key_selects_the_native_format(tmp_path: Path) -> None:
    native = write(tmp_path, "version: 1\nsync: [{from: a.example/x, to: b.example/}]\n")
    assert load_spec(native).kind == "native"
    skopeo = write(tmp_path, "a.example:\n  images: {x: []}\n", "skopeo.yaml")
    assert load_spec(skopeo, destination="b.example").kind == "skopeo"


def test_wrong_format_for_the_command_line_is_a_usage_error(tmp_path: Path) -> None:
    native = write(tmp_path, "version: 1\nsync: [{from: a.example/x, to: b.example/}]\n")
    with pytest.raises(UsageError, match=r"native asyncsync spec names its destinations; drop the DEST"):
        load_spec(native, destination="b.example")
    skopeo = write(tmp_path, "a.example:\n  images: {x: []}\n", "skopeo.yaml")
    with pytest.raises(UsageError, match=r"skopeo-format spec needs a DEST argument"):
        load_spec(skopeo)


def test_missing_file_is_one_line_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(UsageError) as info:
        load_spec(missing)
    assert str(info.value) == f"{missing}: cannot read sync spec: No such file or directory"
    assert not isinstance(info.value, SpecError)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read sync spec: Is a directory"):
        load_spec(tmp_path)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "a.example:\n  images:\n    x: [v1\n  tls-verify: true\n")
    err = load_error(path, destination="b.example")
    assert err.file == str(path) and err.line == 4
    assert str(err).startswith(f"{path}:4: invalid YAML: ")
    assert "\n" not in str(err)


def test_tab_indentation_error(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, "a.example:\n\timages: {}\n"), destination="b.example")
    assert str(err).startswith(f"{err.file}:2: invalid YAML: found character '\\t'")


def test_not_utf8(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, b"a.example:\n  images:\n    x: [\xff]\n"), destination="b.example")
    assert str(err) == f"{err.file}:3: not UTF-8 text"


def test_control_character(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, "a.example:\n  images: {x: [v\x01]}\n"), destination="b.example")
    assert str(err) == f"{err.file}:2: invalid YAML: unacceptable character '\\x01'"


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n", "~\n"])
def test_empty_documents(tmp_path: Path, text: str) -> None:
    err = load_error(write(tmp_path, text), destination="b.example")
    assert str(err) == f"{err.file}:1: the spec is empty"


def test_several_documents_are_refused(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, "a.example: {}\n---\nb.example: {}\n"), destination="b.example")
    assert str(err) == (
        f"{err.file}:2: invalid YAML: but found another document (expected a single document in the stream)"
    )


def test_python_tags_are_refused_without_running_anything(tmp_path: Path) -> None:
    text = "a.example:\n  images:\n    x: !!python/object/apply:os.system ['touch pwned']\n"
    err = load_error(write(tmp_path, text), destination="b.example")
    assert str(err) == f"{err.file}:3: unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os.system'"
    assert not (tmp_path / "pwned").exists()


def test_origin_formats() -> None:
    assert str(Origin("sync.yaml", 12)) == "sync.yaml:12"
    assert str(Origin("<command line>", 0)) == "<command line>"
    err = Origin("sync.yaml", 3).error("bad")
    assert (err.file, err.line, str(err)) == ("sync.yaml", 3, "sync.yaml:3: bad")


def test_validate_glob() -> None:
    assert validate_glob("proj/*") is None
    assert validate_glob("proj/app-*/x") is None
    assert validate_glob("**") is None
    assert validate_glob("a/**/b") == "'**' is only allowed as the last path component"
    assert validate_glob("a/b**") == "'**' must be a whole path component, not part of 'b**'"
    assert validate_glob("a/B*") == "invalid repository path component 'B*'"


def test_destination_names_that_cannot_exist_raise_invalid_reference() -> None:
    entry = SyncEntry(
        origin=Origin("s.yaml", 1),
        sources=(SourceSelector("a.example", "x", 1),),
        destination=Destination(kind="prefix", registry="b.example", path="p"),
        tags=TagFilter(),
        settings=CopySettings(),
        tag_suffix="-" + "s" * 127,
    )
    with pytest.raises(InvalidReferenceError, match="longer than 128"):
        entry.destination_for(entry.sources[0], "x", tag="v1", digest=None)
    with pytest.raises(InvalidReferenceError, match="needs a tag or a digest"):
        entry.destination_for(entry.sources[0], "x", tag=None, digest=None)
    assert str(entry.destination) == "b.example/p/"
    assert str(Destination(kind="prefix", registry="b.example", path="")) == "b.example/"
    assert str(Destination(kind="repository", registry="b.example", path="r")) == "b.example/r"


def test_python_scalar_tags_are_refused(tmp_path: Path) -> None:
    err = load_error(
        write(tmp_path, "a.example:\n  cert-dir: !!python/name:os.system\n"), destination="b.example"
    )
    assert err.line == 2 and "could not determine a constructor" in str(err)


def test_oversized_file(tmp_path: Path) -> None:
    path = write(tmp_path, b"#" * (16 * 1024 * 1024 + 1))
    assert str(load_error(path)) == f"{path}:1: spec file is larger than 16 MiB"
