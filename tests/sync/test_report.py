"""The sync report's summary lines and JSON document."""

from __future__ import annotations

import orjson

from asyncsync.sync.report import ImageResult, Outcome, SyncReport, human_bytes


def _report(wall: float) -> SyncReport:
    report = SyncReport(started=1000.0, finished=1000.0 + wall)
    report.add(ImageResult("src/a:1", "dst/a:1", Outcome.COPIED, bytes_uploaded=3 * 1024 * 1024))
    report.add(ImageResult("src/a:2", "dst/a:2", Outcome.SKIPPED, reason="destination digest equal"))
    report.add(ImageResult("src/b:1", "dst/b:1", Outcome.FAILED, reason="blob unknown"))
    report.requests_per_host = {"reg-b:5000": 7, "reg-a:5000": 12}
    return report


def test_summary_lines_name_every_outcome_and_host() -> None:
    lines = _report(42.25).summary_lines()
    assert lines[0] == "Synced 3 images in 42.2s: 1 copied, 1 skipped, 1 failed"
    assert lines[1].startswith("Uploaded 3.0 MiB; saved 0 B")
    assert "HTTP requests: reg-a:5000: 12, reg-b:5000: 7" in lines
    assert "  skipped 1: destination digest equal" in lines
    assert "  FAILED src/b:1 -> dst/b:1: blob unknown" in lines


def test_short_runs_show_hundredths_of_a_second() -> None:
    assert _report(0.043).summary_lines()[0].startswith("Synced 3 images in 0.04s:")
    assert _report(9.994).summary_lines()[0].startswith("Synced 3 images in 9.99s:")


def test_json_document_counts() -> None:
    report = _report(1.5)
    document = orjson.loads(report.to_json())
    assert document["summary"]["copied"] == 1
    assert document["summary"]["failed"] == 1
    assert document["summary"]["skipped"] == 1
    assert not report.ok


def test_human_bytes() -> None:
    assert human_bytes(512) == "512 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(5 * 1024**3) == "5.0 GiB"
