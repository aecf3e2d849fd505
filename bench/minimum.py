"""The fewest destination requests a migration of the workload into a fresh registry can make.

Counted from the workload's own manifests (no registry needed), per the issue's rule:

* one upload per unique blob: POST + PUT (distribution 2.8 answers the OCI single-POST upload with
  202 and drops the body, so two requests is the least a blob costs);
* one cross-repository mount (POST) per blob a destination repository needs that was uploaded to
  another repository;
* one PUT per manifest (images, index children, indexes);
* one check per tag (a HEAD: is it there already?).

A tool's destination requests over :func:`minimum_requests`'s total is how close it gets.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.workload import Workload


@dataclass(frozen=True)
class MinimumRequests:
    """The minimum per kind and in total."""

    uploads: int
    mounts: int
    manifests: int
    checks: int

    @property
    def total(self) -> int:
        return self.uploads + self.mounts + self.manifests + self.checks

    def describe(self) -> str:
        return (
            f"{self.total} = {self.uploads} upload (POST+PUT per unique blob) + {self.mounts} mount "
            f"+ {self.manifests} manifest PUT + {self.checks} tag check"
        )


def _blobs_and_manifests(workload: Workload, digest: str) -> tuple[set[str], int]:
    """Blob digests of the manifest ``digest`` (children included) and how many manifests it is."""
    document = json.loads(workload.read(digest))
    if "manifests" in document:
        blobs: set[str] = set()
        count = 1
        for child in document["manifests"]:
            child_blobs, child_count = _blobs_and_manifests(workload, child["digest"])
            blobs |= child_blobs
            count += child_count
        return blobs, count
    return {document["config"]["digest"], *(layer["digest"] for layer in document["layers"])}, 1


def minimum_requests(workload: Workload, destination_repo: Callable[[str], str]) -> MinimumRequests:
    """The minimum for migrating every tag of ``workload`` into a fresh registry, each source
    repository written to ``destination_repo(repo)``."""
    per_repo: dict[str, set[str]] = {}
    manifests: set[tuple[str, str]] = set()
    for entry in workload.tags:
        blobs, count = _blobs_and_manifests(workload, entry.digest)
        repo = destination_repo(entry.repo)
        per_repo.setdefault(repo, set()).update(blobs)
        # a manifest is PUT once per repository it lands in (a child shared by two tags of one
        # repository is written once)
        manifests.add((repo, entry.digest))
        if count > 1:
            for child in json.loads(workload.read(entry.digest))["manifests"]:
                manifests.add((repo, child["digest"]))
    unique = set().union(*per_repo.values()) if per_repo else set()
    needed = sum(len(blobs) for blobs in per_repo.values())
    return MinimumRequests(
        uploads=2 * len(unique),
        mounts=needed - len(unique),
        manifests=len(manifests),
        checks=len(workload.tags),
    )


def minimum_report(minimum: MinimumRequests, runs: Sequence[tuple[float, str, int]]) -> str:
    """Markdown: each tool's median destination requests in full migrations against the minimum.
    ``runs`` are ``(rtt_ms, tool, destination requests)`` of the successful ``full`` runs."""
    if not runs:
        return ""
    groups: dict[tuple[float, str], list[int]] = {}
    for rtt, tool, count in runs:
        groups.setdefault((rtt, tool), []).append(count)
    lines = [
        "",
        f"Fresh destination, minimum destination requests: {minimum.describe()}.",
        "",
        "| RTT | tool | destination requests (median) | / minimum |",
        "|---|---|---|---|",
    ]
    for (rtt, tool), counts in sorted(groups.items()):
        median = round(statistics.median(counts))
        lines.append(f"| {rtt:g} ms | {tool} | {median} | {median / minimum.total:.2f}x |")
    return "\n".join(lines)
