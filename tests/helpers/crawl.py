"""Crawl a registry and check its integrity: every tag -> manifest -> children -> blobs.

Raw aiohttp against a :class:`~tests.helpers.registry.RegistryServer` (never ``asyncsync``), so the
check cannot share a bug with the package under test. :func:`crawl` reports, per repository:

* every tag and the digest of the manifest it names (computed from the bytes, and checked against
  ``Docker-Content-Digest``);
* a *problem* for anything a tag reaches that is missing or wrong: a child manifest that is absent or
  whose bytes do not hash to its descriptor's digest, a config or layer blob whose HEAD is not 200
  with the descriptor's size, a manifest that does not parse.

Non-distributable ("foreign") layers are not required to exist. A tag with no problem is *complete*;
:meth:`CrawlResult.corrupt_tags` lists the others. Bodies are read whole: test images are small.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.helpers.registry import RegistryServer

__all__ = ["CrawlResult", "crawl", "present_blobs"]

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
FOREIGN = (
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
)


@dataclass
class CrawlResult:
    """``tags`` maps ``repo:tag`` to its manifest digest; ``problems`` maps ``repo:tag`` to what is
    wrong with it (absent key: complete). ``blobs_checked`` counts distinct blob HEADs."""

    tags: dict[str, str] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=dict)
    blobs_checked: int = 0

    def corrupt_tags(self) -> list[str]:
        """Tags that reference something missing or wrong."""
        return sorted(self.problems)

    def complete(self, expected: dict[str, str]) -> list[str]:
        """The ``repo:tag`` keys of ``expected`` present, problem-free, with the expected digest."""
        return sorted(k for k, v in expected.items() if self.tags.get(k) == v and k not in self.problems)


class _Crawler:
    def __init__(self, server: RegistryServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session
        context = server.ssl_context()
        self.ssl: Any = context if context is not None else False
        self.blobs: dict[tuple[str, str], str | None] = {}  # (repo, digest) -> problem or None

    def _headers(self, repo: str, accept: str | None = None) -> dict[str, str]:
        headers = {"Accept": accept} if accept else {}
        server = self.server
        if server.token_service is not None:
            token = server.token_service.issue_token(server.username, [f"repository:{repo}:pull"])
            headers["Authorization"] = f"Bearer {token}"
        elif (basic := server.basic_auth_header()) is not None:
            headers["Authorization"] = basic
        return headers

    async def get(self, repo: str, path: str, accept: str | None = None) -> tuple[int, dict[str, str], bytes]:
        async with self.session.get(
            f"{self.server.url}{path}", headers=self._headers(repo, accept), ssl=self.ssl
        ) as response:
            return response.status, dict(response.headers), await response.read()

    async def tag(self, repo: str, tag: str) -> tuple[int, dict[str, str], bytes]:
        """GET a listed tag. A 404 is asked again for a while: distribution lists a tag as soon as its
        directory exists, a moment before the link a GET reads (a PUT still finishing after the client
        that sent it was killed). A tag still absent after that is a problem."""
        for attempt in range(8):
            answer = await self.get(repo, f"/v2/{repo}/manifests/{tag}", ACCEPT)
            if answer[0] != 404 or attempt == 7:
                return answer
            await asyncio.sleep(0.1)
        raise AssertionError("unreachable")

    async def tags(self, repo: str) -> list[str]:
        status, _, body = await self.get(repo, f"/v2/{repo}/tags/list?n=100000")
        if status == 404:
            return []
        if status != 200:
            raise RuntimeError(f"listing tags of {repo}: HTTP {status}")
        return sorted(json.loads(body).get("tags") or [])

    async def blob(self, repo: str, descriptor: dict[str, Any]) -> str | None:
        digest = str(descriptor.get("digest"))
        if descriptor.get("mediaType") in FOREIGN:
            return None
        key = (repo, digest)
        if key not in self.blobs:
            status, length = await self.head_blob(repo, digest)
            if status != 200:
                self.blobs[key] = f"blob {digest} answers HTTP {status}"
            elif length is not None and int(length) != int(descriptor.get("size", -1)):
                self.blobs[key] = f"blob {digest} has size {length}, not {descriptor.get('size')}"
            else:
                self.blobs[key] = None
        return self.blobs[key]

    async def head_blob(self, repo: str, digest: str) -> tuple[int, str | None]:
        """Status and Content-Length of a blob HEAD. A 5xx is asked again: distribution 2.8 answers
        500 to some HEADs while other uploads run, which says nothing about the blob."""
        for attempt in range(5):
            async with self.session.head(
                f"{self.server.url}/v2/{repo}/blobs/{digest}", headers=self._headers(repo), ssl=self.ssl
            ) as response:
                if response.status < 500 or attempt == 4:
                    return response.status, response.headers.get("Content-Length")
            await asyncio.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    async def manifest(self, repo: str, raw: bytes, problems: list[str], depth: int = 0) -> None:
        try:
            document = json.loads(raw)
        except ValueError:
            problems.append("manifest is not JSON")
            return
        children = document.get("manifests")
        if isinstance(children, list):
            for child in children:
                digest = str(child.get("digest"))
                status, _, body = await self.get(repo, f"/v2/{repo}/manifests/{digest}", ACCEPT)
                if status != 200:
                    problems.append(f"child manifest {digest} answers HTTP {status}")
                elif "sha256:" + hashlib.sha256(body).hexdigest() != digest:
                    problems.append(f"child manifest {digest} has other bytes")
                elif depth < 2:
                    await self.manifest(repo, body, problems, depth + 1)
            return
        for descriptor in [document.get("config") or {}, *(document.get("layers") or [])]:
            problem = await self.blob(repo, descriptor)
            if problem is not None:
                problems.append(problem)


async def present_blobs(server: RegistryServer, wanted: list[tuple[str, str]]) -> set[str]:
    """``repo@digest`` of each ``(repo, digest)`` in ``wanted`` whose HEAD answers 200."""
    async with aiohttp.ClientSession() as session:
        crawler = _Crawler(server, session)
        return {
            f"{repo}@{digest}" for repo, digest in wanted if (await crawler.head_blob(repo, digest))[0] == 200
        }


async def crawl(server: RegistryServer, repositories: list[str]) -> CrawlResult:
    """Check every tag of ``repositories`` on ``server`` down to its blobs (see the module docstring)."""
    result = CrawlResult()
    async with aiohttp.ClientSession() as session:
        crawler = _Crawler(server, session)
        for repo in repositories:
            for tag in await crawler.tags(repo):
                key = f"{repo}:{tag}"
                problems: list[str] = []
                status, headers, raw = await crawler.tag(repo, tag)
                if status != 200:
                    problems.append(f"tag answers HTTP {status}")
                else:
                    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
                    result.tags[key] = digest
                    if headers.get("Docker-Content-Digest", digest) != digest:
                        problems.append("Docker-Content-Digest differs from the bytes served")
                    await crawler.manifest(repo, raw, problems)
                if problems:
                    result.problems[key] = problems
        result.blobs_checked = len(crawler.blobs)
    return result
