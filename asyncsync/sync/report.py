"""The sync report: one result per image, run totals, and how they are written.

:class:`SyncReport` collects :class:`ImageResult` values as the scheduler delivers them and
renders the final summary (human text) or a JSON document (``--report FILE.json``). It
holds no credentials: image names and one-line error messages only (errors are already
redacted by the error tree).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from asyncsync.limits import HostStatistics


class Outcome(StrEnum):
    COPIED = "copied"
    SKIPPED = "skipped"
    FAILED = "failed"
    #: not started: the source's pull quota was spent (see :mod:`asyncsync.quota`); a later run copies it
    DEFERRED = "deferred"


@dataclass(frozen=True, slots=True)
class ImageResult:
    """What happened to one planned image."""

    source: str
    destination: str
    outcome: Outcome
    reason: str = ""
    digest: str = ""
    seconds: float = 0.0
    attempts: int = 1
    bytes_uploaded: int = 0
    bytes_reused: int = 0
    blobs_copied: int = 0
    blobs_mounted: int = 0
    blobs_existing: int = 0
    origin: str = ""
    #: What followed the image (:meth:`AttachmentOutcome.as_json`); empty when nothing refers to it.
    attachments: dict[str, Any] = field(default_factory=dict)
    #: A skipped image with signers: signatures this run added, and the signers' already there.
    signatures_added: int = 0
    signatures_present: int = 0


@dataclass(slots=True)
class SyncReport:
    """Accumulates results; ``started`` is wall-clock time of the run start."""

    started: float = field(default_factory=time.time)
    finished: float | None = None
    results: list[ImageResult] = field(default_factory=list)
    requests_per_host: dict[str, int] = field(default_factory=dict)
    plan_errors: list[str] = field(default_factory=list)
    stopped_reason: str = ""
    #: Hosts whose pull quota deferred images, with the wall-clock time their window resets.
    quota_deferred: dict[str, float | None] = field(default_factory=dict)
    #: Extra top-level JSON sections from run extensions (``prune``, ``shard``, ``harbor``).
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, result: ImageResult) -> None:
        self.results.append(result)

    def finish(self, host_stats: list[HostStatistics]) -> None:
        self.finished = time.time()
        self.requests_per_host = {s.host: s.requests for s in host_stats}

    @property
    def counts(self) -> Counter[Outcome]:
        return Counter(r.outcome for r in self.results)

    @property
    def failed(self) -> list[ImageResult]:
        return [r for r in self.results if r.outcome is Outcome.FAILED]

    @property
    def deferred(self) -> list[ImageResult]:
        return [r for r in self.results if r.outcome is Outcome.DEFERRED]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.deferred and not self.plan_errors and not self.stopped_reason

    def quota_message(self) -> str:
        """The one line naming the quota that deferred images (empty when none was deferred)."""
        if not self.deferred:
            return ""
        hosts = (
            ", ".join(f"{host} (resets {_utc(at)})" for host, at in sorted(self.quota_deferred.items()))
            or "unknown host"
        )
        return f"pull quota reached: {len(self.deferred)} images deferred, run again after the reset: {hosts}"

    @property
    def wall_seconds(self) -> float:
        return (self.finished or time.time()) - self.started

    @property
    def bytes_uploaded(self) -> int:
        return sum(r.bytes_uploaded for r in self.results)

    @property
    def bytes_reused(self) -> int:
        return sum(r.bytes_reused for r in self.results)

    def to_json(self) -> bytes:
        counts = self.counts
        document: dict[str, Any] = {
            "summary": {
                "copied": counts[Outcome.COPIED],
                "skipped": counts[Outcome.SKIPPED],
                "failed": counts[Outcome.FAILED],
                "deferred": counts[Outcome.DEFERRED],
                "quota_deferred": {host: _utc(at) for host, at in self.quota_deferred.items()},
                "plan_errors": len(self.plan_errors),
                "bytes_uploaded": self.bytes_uploaded,
                "bytes_saved_by_reuse": self.bytes_reused,
                "requests_per_registry": self.requests_per_host,
                "wall_seconds": round(self.wall_seconds, 3),
                "stopped": self.stopped_reason,
                "attachments": dict(_attachment_totals(self.results)),
                "signatures_of_skipped": {
                    "added": sum(r.signatures_added for r in self.results),
                    "present": sum(r.signatures_present for r in self.results),
                },
            },
            "plan_errors": self.plan_errors,
            "images": [{**asdict(r), "outcome": r.outcome.value} for r in self.results],
            **{
                key: value
                for key, value in self.extra.items()
                if key not in ("summary", "plan_errors", "images")
            },
        }
        return orjson.dumps(document, option=orjson.OPT_INDENT_2)

    def write_json(self, path: str | os.PathLike[str]) -> None:
        """Write the JSON report atomically (temp file in the same directory, then rename)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".report-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(self.to_json() + b"\n")
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _attachment_lines(self) -> list[str]:
        """Attachments per run, and each one left behind (with the image it belongs to)."""
        totals = _attachment_totals(self.results)
        if not any(totals.values()):
            return []
        with_any = sum(1 for r in self.results if r.attachments)
        lines = [
            f"Attachments of {with_any} images: {totals['copied']} copied, {totals['present']} already "
            f"present, {totals['left']} left behind, {totals['skipped']} skipped (per image in the report)"
        ]
        for result in self.results:
            for reason in result.attachments.get("left_reasons", []):
                lines.append(f"  attachment left: {result.destination}: {reason}")
        return lines

    def summary_lines(self) -> list[str]:
        counts = self.counts
        wall = self.wall_seconds
        # Two decimals below 10 s: a no-op re-sync on a LAN takes tens of milliseconds, not "0.0s".
        took = f"{wall:.2f}s" if wall < 10 else f"{wall:.1f}s"
        lines = [
            f"Synced {len(self.results)} images in {took}: "
            f"{counts[Outcome.COPIED]} copied, {counts[Outcome.SKIPPED]} skipped, "
            f"{counts[Outcome.FAILED]} failed"
            + (f", {counts[Outcome.DEFERRED]} deferred" if counts[Outcome.DEFERRED] else ""),
            f"Uploaded {human_bytes(self.bytes_uploaded)}; saved {human_bytes(self.bytes_reused)} "
            "by reusing blobs already at the destination (existing or mounted)",
        ]
        lines += self._attachment_lines()
        signed = [r for r in self.results if r.signatures_added or r.signatures_present]
        if signed:
            added = sum(1 for r in signed if r.signatures_added)
            lines.append(
                f"Signatures of {len(signed)} skipped images: {added} signed now "
                f"({sum(r.signatures_added for r in signed)} added), {len(signed) - added} already signed "
                "(per image in the report)"
            )
        if self.requests_per_host:
            per_host = ", ".join(f"{host}: {n}" for host, n in sorted(self.requests_per_host.items()))
            lines.append(f"HTTP requests: {per_host}")
        skipped = Counter(r.reason for r in self.results if r.outcome is Outcome.SKIPPED)
        for reason, n in sorted(skipped.items()):
            lines.append(f"  skipped {n}: {reason}")
        for error in self.plan_errors:
            lines.append(f"  plan error: {error}")
        for result in self.failed:
            lines.append(f"  FAILED {result.source} -> {result.destination}: {result.reason}")
        for result in self.deferred:
            lines.append(f"  DEFERRED {result.source} -> {result.destination}: {result.reason}")
        if self.stopped_reason:
            lines.append(f"Stopped early: {self.stopped_reason}")
        if self.deferred:
            lines.append(self.quota_message())
        return lines


def _attachment_totals(results: list[ImageResult]) -> Counter[str]:
    totals: Counter[str] = Counter()
    for result in results:
        for key in ("copied", "present", "left", "skipped"):
            totals[key] += int(result.attachments.get(key, 0))
    return totals


def _utc(at: float | None) -> str:
    return "unknown" if at is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover - loop always returns
