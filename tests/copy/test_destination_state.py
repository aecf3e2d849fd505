"""DestinationState: when a blob may be assumed absent without a request, and the upload journal."""

from __future__ import annotations

from pathlib import Path

from asyncsync.copy.destination_state import JOURNAL_FILE, DestinationState
from asyncsync.digest import Digest

BLOB = Digest.of(b"layer")
OTHER = Digest.of(b"other")


def test_without_a_journal_nothing_is_ever_known_absent() -> None:
    state = DestinationState(None)
    state.mark_fresh("r", "new/app")
    assert not state.trusted
    assert not state.known_absent("r", "new/app", BLOB)


def test_fresh_repository_blobs_are_known_absent_only_there(tmp_path: Path) -> None:
    state = DestinationState(tmp_path)
    state.mark_fresh("r", "new/app")
    assert state.known_absent("r", "new/app", BLOB)
    assert not state.known_absent("r", "old/app", BLOB)
    assert not state.known_absent("other", "new/app", BLOB)
    state.close()


def test_journaled_uploads_survive_a_crash_and_are_checked_next_run(tmp_path: Path) -> None:
    first = DestinationState(tmp_path)
    first.uploaded("r", "new/app", BLOB)
    # No close(): a kill -9 leaves the journal as flushed so far.
    second = DestinationState(tmp_path)
    second.mark_fresh("r", "new/app")  # the crashed run left blobs but no tag: NAME_UNKNOWN again
    assert not second.known_absent("r", "new/app", BLOB)  # may be there: HEAD it
    assert second.known_absent("r", "new/app", OTHER)
    first.close()
    second.close()
    assert (tmp_path / JOURNAL_FILE).read_text().splitlines() == [f"r\tnew/app\t{BLOB}"]


def test_an_unwritable_journal_falls_back_to_checking_everything(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("file where the cache directory should be")
    state = DestinationState(blocker)
    state.mark_fresh("r", "new/app")
    assert not state.trusted
    assert not state.known_absent("r", "new/app", BLOB)
