"""Check that a destination registry holds every expected tag, whole and digest-equal.

Contract of :func:`verify_destination`, for each expected (repo, tag, digest):

* ``GET`` the tag's manifest at the destination repo (``dest_repo(repo)``) accepting every manifest type:
  missing -> ``missing tag``; the sha256 of the returned bytes must equal the source digest (so the bytes
  are identical) -> otherwise ``digest mismatch``;
* for an index, ``GET`` every child manifest by digest (same checks);
* for every image manifest, ``HEAD`` its config and each layer: the blob must answer 200 with a
  ``Content-Length`` equal to the descriptor's size -> otherwise ``blob ... missing`` / ``wrong size``.

Blob answers are memoised per (repo, digest), so tags sharing layers in one repo cost one HEAD per blob.
The result is a :class:`VerifyReport`; ``ok`` is True only when no tag has a problem. Requests retry 5xx
(:func:`bench.distribution.request`), so a flaky registry is not reported as a corrupt image.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.distribution import ACCEPT_MANIFESTS, new_session, request
from bench.workload import INDEX_MEDIA_TYPES, TagEntry, sha256_digest

__all__ = ["VerifyReport", "last_component_under", "verify_destination"]


@dataclass
class VerifyReport:
    """Verification outcome: ``problems`` maps ``repo:tag`` (destination names) to what is wrong."""

    tags_checked: int = 0
    manifests_checked: int = 0
    blobs_checked: int = 0
    problems: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every tag is present, digest-equal and whole."""
        return self.tags_checked > 0 and not self.problems

    def summary(self) -> str:
        """One line: ``ok (N tags)`` or ``K of N tags corrupt/incomplete: first problems``."""
        if self.ok:
            counts = (
                f"{self.tags_checked} tags, {self.manifests_checked} manifests, {self.blobs_checked} blobs"
            )
            return f"ok ({counts})"
        first = "; ".join(f"{name}: {', '.join(p[:2])}" for name, p in list(self.problems.items())[:3])
        return f"{len(self.problems)} of {self.tags_checked} tags corrupt/incomplete: {first}"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "ok": self.ok,
            "tags_checked": self.tags_checked,
            "manifests_checked": self.manifests_checked,
            "blobs_checked": self.blobs_checked,
            "problems": self.problems,
        }


def last_component_under(prefix: str) -> Callable[[str], str]:
    """skopeo sync's naming without ``--scoped``: ``proj/app`` -> ``<prefix>/app``."""
    clean = prefix.strip("/")

    def mapping(repo: str) -> str:
        last = repo.rpartition("/")[2]
        return f"{clean}/{last}" if clean else last

    return mapping


class _Verifier:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, report: VerifyReport) -> None:
        self.session = session
        self.base = base_url.rstrip("/")
        self.report = report
        self._blobs: dict[tuple[str, str], asyncio.Task[str | None]] = {}

    async def _head_blob(self, repo: str, digest: str, size: int) -> str | None:
        self.report.blobs_checked += 1
        reply = await request(self.session, "HEAD", f"{self.base}/v2/{repo}/blobs/{digest}")
        if reply.status != 200:
            return f"blob {digest[:19]} missing (HTTP {reply.status})"
        length = reply.headers.get("Content-Length")
        if length is None or int(length) != size:
            return f"blob {digest[:19]} wrong size ({length} != {size})"
        return None

    async def blob(self, repo: str, digest: str, size: int) -> str | None:
        key = (repo, digest)
        if key not in self._blobs:
            self._blobs[key] = asyncio.ensure_future(self._head_blob(repo, digest, size))
        return await asyncio.shield(self._blobs[key])

    async def manifest(self, repo: str, reference: str, expected: str, problems: list[str]) -> None:
        self.report.manifests_checked += 1
        url = f"{self.base}/v2/{repo}/manifests/{reference}"
        reply = await request(self.session, "GET", url, headers={"Accept": ACCEPT_MANIFESTS})
        if reply.status != 200:
            problems.append(f"manifest {reference[:19]} missing (HTTP {reply.status})")
            return
        actual = sha256_digest(reply.body)
        if actual != expected:
            problems.append(f"manifest {reference[:19]} digest mismatch ({actual[:19]} != {expected[:19]})")
            return
        document: dict[str, Any] = json.loads(reply.body)
        media_type = document.get("mediaType") or reply.headers.get("Content-Type", "")
        if media_type in INDEX_MEDIA_TYPES or "manifests" in document:
            for child in document["manifests"]:
                await self.manifest(repo, child["digest"], child["digest"], problems)
            return
        descriptors = [document["config"], *document["layers"]]
        answers = await asyncio.gather(*(self.blob(repo, d["digest"], int(d["size"])) for d in descriptors))
        problems.extend(answer for answer in answers if answer is not None)


async def verify_destination(
    base_url: str,
    expected: Iterable[TagEntry],
    dest_repo: Callable[[str], str],
    *,
    concurrency: int = 16,
) -> VerifyReport:
    """Verify every entry of ``expected`` at ``base_url`` (see the module docstring)."""
    report = VerifyReport()
    semaphore = asyncio.Semaphore(concurrency)
    async with new_session(limit=concurrency) as session:
        verifier = _Verifier(session, base_url, report)

        async def one(entry: TagEntry) -> None:
            async with semaphore:
                repo = dest_repo(entry.repo)
                problems: list[str] = []
                await verifier.manifest(repo, entry.tag, entry.digest, problems)
                report.tags_checked += 1
                if problems:
                    report.problems[f"{repo}:{entry.tag}"] = problems

        await asyncio.gather(*(one(entry) for entry in expected))
    return report
