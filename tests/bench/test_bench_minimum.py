"""The minimum destination requests of a migration, counted from the workload's manifests."""

from __future__ import annotations

import json

from bench.minimum import MinimumRequests, minimum_report, minimum_requests
from bench.verify import last_component_under
from bench.workload import Workload


def test_minimum_counts_uploads_mounts_manifests_and_checks(small_workload: Workload) -> None:
    minimum = minimum_requests(small_workload, last_component_under("mirror"))
    per_repo: dict[str, set[str]] = {}
    manifests = 0
    for entry in small_workload.tags:
        document = json.loads(small_workload.read(entry.digest))
        children = [json.loads(small_workload.read(c["digest"])) for c in document.get("manifests", [])]
        images = children or [document]
        manifests += 1 + len(children)
        for image in images:
            blobs = {image["config"]["digest"], *(layer["digest"] for layer in image["layers"])}
            per_repo.setdefault(entry.repo, set()).update(blobs)
    unique = set().union(*per_repo.values())
    assert minimum.uploads == 2 * len(unique)
    assert minimum.mounts == sum(len(b) for b in per_repo.values()) - len(unique) > 0
    assert minimum.manifests == manifests  # the small preset has no child shared by two tags
    assert minimum.checks == len(small_workload.tags)
    assert minimum.total == minimum.uploads + minimum.mounts + minimum.manifests + minimum.checks


def test_report_compares_median_destination_requests_of_full_runs() -> None:
    minimum = MinimumRequests(uploads=10, mounts=2, manifests=4, checks=4)
    text = minimum_report(minimum, [(0.0, "asyncsync", 22), (0.0, "asyncsync", 30), (0.0, "asyncsync", 24)])
    assert "minimum destination requests: 20 = 10 upload" in text
    assert "| 0 ms | asyncsync | 24 | 1.20x |" in text
    assert minimum_report(minimum, []) == ""
