"""The memory of source registries without the referrers API (unit: the file and the window)."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncsync.copy.attachments.api_memory import API_FILE, NO_API_TTL, ReferrersApiMemory
from asyncsync.copy.attachments.state import AttachmentRun


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_no_api_is_trusted_for_the_window_then_asked_again(tmp_path: Path) -> None:
    clock = Clock()
    first = ReferrersApiMemory(tmp_path, clock=clock)
    assert not first.known_without_api("src.example")
    first.learnt("src.example", has_api=False)
    first.save()

    clock.now += NO_API_TTL - 1
    later = ReferrersApiMemory(tmp_path, clock=clock)
    assert later.known_without_api("src.example")
    assert not later.known_without_api("other.example")
    clock.now += 1
    assert not later.known_without_api("src.example")


def test_an_answer_from_the_future_is_not_trusted(tmp_path: Path) -> None:
    """A clock set back (or a file from another machine) must not keep the API unasked forever."""
    clock = Clock()
    memory = ReferrersApiMemory(tmp_path, clock=clock)
    memory.learnt("src.example", has_api=False)
    clock.now -= 10
    assert not memory.known_without_api("src.example")


def test_a_registry_that_now_answers_is_forgotten(tmp_path: Path) -> None:
    memory = ReferrersApiMemory(tmp_path, clock=Clock())
    memory.learnt("src.example", has_api=False)
    memory.learnt("src.example", has_api=True)
    assert not memory.known_without_api("src.example")
    memory.save()
    assert not (tmp_path / API_FILE).exists()


def test_concurrent_runs_merge_and_a_damaged_file_is_empty(tmp_path: Path) -> None:
    clock = Clock()
    one, two = ReferrersApiMemory(tmp_path, clock=clock), ReferrersApiMemory(tmp_path, clock=clock)
    one.learnt("a.example", has_api=False)
    two.learnt("b.example", has_api=False)
    one.save()
    two.save()
    merged = ReferrersApiMemory(tmp_path, clock=clock)
    assert merged.known_without_api("a.example") and merged.known_without_api("b.example")

    (tmp_path / API_FILE).write_bytes(b'{"version": 1, "entries": ')
    assert not ReferrersApiMemory(tmp_path, clock=clock).known_without_api("a.example")


def test_without_a_directory_nothing_is_kept(tmp_path: Path) -> None:
    memory = ReferrersApiMemory(None)
    memory.learnt("src.example", has_api=False)
    memory.save()
    assert memory.known_without_api("src.example")  # for the rest of this run
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("has_api", [False, True])
def test_the_run_asks_the_memory_once_and_records_what_it_learns(tmp_path: Path, has_api: bool) -> None:
    clock = Clock()
    run = AttachmentRun(ReferrersApiMemory(tmp_path, clock=clock))
    assert run.source_api_known("src.example") is None
    run.source_api_learnt("src.example", has_api)
    assert run.source_api_known("src.example") is has_api
    run.api_memory.save()
    next_run = AttachmentRun(ReferrersApiMemory(tmp_path, clock=clock))
    assert next_run.source_api_known("src.example") is (False if not has_api else None)
