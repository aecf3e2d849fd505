"""The output flags sync and mirror share: the view, the summary and the report file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asyncsync.cli.output_flags import OutputFlags
from asyncsync.cli.sync_view import JsonSyncView, PlainSyncView
from asyncsync.errors import UsageError
from asyncsync.sync.hooks import HookChain, SyncHooks
from asyncsync.sync.report import ImageResult, Outcome, SyncReport


def test_view_follows_the_flags() -> None:
    assert isinstance(OutputFlags(log_format="json").view(live=True), JsonSyncView)
    # Not a terminal under pytest: plain lines even where a live view is allowed.
    assert isinstance(OutputFlags().view(live=True), PlainSyncView)
    with pytest.raises(UsageError, match="--log-format"):
        OutputFlags(log_format="xml").view()


class _Failing(SyncHooks):
    def summary_lines(self) -> list[str]:
        return ["hook: something failed"]

    def report_data(self) -> dict[str, object]:
        return {"hook": {"failed": 1}}

    @property
    def ok(self) -> bool:
        return False


def test_finish_writes_the_report_and_tells_success(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = SyncReport()
    report.add(ImageResult(source="a/b:1", destination="c/b:1", outcome=Outcome.COPIED))
    report.finish([])
    path = tmp_path / "report.json"
    assert OutputFlags(report=path).finish(report, HookChain(())) is True
    assert json.loads(path.read_text())["summary"]["copied"] == 1
    assert OutputFlags(log_format="json").finish(report, HookChain([_Failing()])) is False
    lines = capsys.readouterr().out.splitlines()
    assert json.loads(lines[-1])["event"] == "summary"
    assert report.extra["hook"] == {"failed": 1}
