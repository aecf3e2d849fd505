"""JSON memories in the state directory: damaged files read as empty, saves merge and are bounded."""

from __future__ import annotations

from pathlib import Path

import orjson

from asyncsync.state_files import read_entries, save_merged


def test_missing_damaged_and_other_version_files_are_empty(tmp_path: Path) -> None:
    path = tmp_path / "memory.json"
    assert read_entries(path, 1) == {}
    path.write_bytes(b"not json")
    assert read_entries(path, 1) == {}
    path.write_bytes(orjson.dumps({"version": 2, "entries": {"a": 1}}))
    assert read_entries(path, 1) == {}
    path.write_bytes(orjson.dumps({"version": 1, "entries": ["a"]}))
    assert read_entries(path, 1) == {}


def test_save_merges_with_what_another_run_saved_and_keeps_the_newest(tmp_path: Path) -> None:
    path = tmp_path / "state" / "memory.json"
    assert save_merged(path, 1, {"a": 1, "b": 2}, max_entries=10, recency=int)
    assert save_merged(path, 1, {"c": 3}, max_entries=10, recency=int)
    assert read_entries(path, 1) == {"a": 1, "b": 2, "c": 3}
    assert save_merged(path, 1, {"d": 4}, max_entries=2, recency=int)
    assert read_entries(path, 1) == {"c": 3, "d": 4}
    assert [p.name for p in path.parent.iterdir()] == ["memory.json"]  # no temporary left


def test_an_unwritable_directory_is_reported_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert not save_merged(blocker / "memory.json", 1, {"a": 1}, max_entries=10, recency=int)
