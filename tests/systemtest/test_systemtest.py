"""skopeo v1.9.3's system tests against asyncsync (the runner in :mod:`tests.systemtest.run`), plus the
runner's own TAP counting.

The end-to-end test runs every upstream .bats file once against asyncsync (about a minute on an idle
machine) and fails on any failed test that :data:`~tests.systemtest.run.EXPECTED_ASYNCSYNC_FAILURES` does
not list with its reason. It needs ``bats``, ``docker-registry``, ``podman``, ``gpg`` and the right to
``unshare`` a network and mount namespace (root, or unprivileged user namespaces).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.systemtest.run import (
    EXPECTED_ASYNCSYNC_FAILURES,
    UPSTREAM,
    FileResult,
    parse_tap,
    unexpected_failures,
)

_ROOT = Path(__file__).resolve().parent.parent.parent


def test_parse_tap_counts_pass_fail_skip_and_unreported() -> None:
    tap = "\n".join(
        [
            "1..5",
            "ok 1 copy: dir, round trip",
            "not ok 2 copy: oci, zstd",
            "# (from function `expect_output' ...",
            "ok 3 copy: bug 651 # skip Enable this once skopeo issue #651 has been fixed",
            "ok 4 copy: sif image",
        ]
    )
    result = parse_tap("020-copy.bats", tap)
    assert result.passed == ["copy: dir, round trip", "copy: sif image"]
    assert result.failed == ["copy: oci, zstd", "(test 5 never reported)"]
    assert result.skipped == ["copy: bug 651"]


def test_unexpected_failures_ignore_listed_ones() -> None:
    listed_file, listed_name = next(iter(EXPECTED_ASYNCSYNC_FAILURES))
    results = {
        "asyncsync": [
            FileResult(listed_file, failed=[listed_name]),
            FileResult("060-delete.bats", failed=["delete: remove image from registry"]),
        ]
    }
    assert unexpected_failures(results) == ["060-delete.bats: delete: remove image from registry"]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_asyncsync_passes_skopeo_systemtests(tmp_path: Path) -> None:
    report = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "tests.systemtest.run", "--tool", "asyncsync", "--json", str(report)],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    raw = json.loads(report.read_text())["asyncsync"]
    results = {"asyncsync": [FileResult(**entry) for entry in raw]}
    assert [r.file for r in results["asyncsync"]] == sorted(p.name for p in UPSTREAM.glob("*.bats"))
    assert sum(r.planned for r in results["asyncsync"]) == 27
    assert unexpected_failures(results) == [], completed.stdout
