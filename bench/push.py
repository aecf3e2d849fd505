"""Push a generated :class:`~bench.workload.Workload` into a registry, concurrently and idempotently.

Contract of :func:`push_workload`:

* a tag whose manifest ``HEAD`` already answers the expected digest is skipped (re-seeding a cached
  source registry costs one HEAD per tag);
* blobs go before manifests and child manifests (by digest) before their index;
* each (repo, blob) is ensured once: ``HEAD`` skips blobs already present; the first repo to need a blob
  uploads it (``POST`` + one monolithic ``PUT ?digest=``) while the others wait for it and then mount it
  (``POST ?mount=&from=``), falling back to an upload if the mount is refused (202);
* every request goes through :func:`bench.distribution.request` (5xx and connection errors retried);
  an unexpected status raises :class:`PushError` naming the repo and digest, and the push stops.

It returns a :class:`PushStats` with counts of tags pushed/skipped, blobs uploaded/mounted/present.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
import yarl

from bench.distribution import ACCEPT_MANIFESTS, new_session, request
from bench.workload import INDEX_MEDIA_TYPES, TagEntry, Workload

__all__ = ["PushError", "PushStats", "push_workload"]


class PushError(RuntimeError):
    """The registry answered a push step with an unexpected status."""


@dataclass
class PushStats:
    """What :func:`push_workload` did."""

    tags_pushed: int = 0
    tags_skipped: int = 0
    blobs_uploaded: int = 0
    blobs_mounted: int = 0
    blobs_present: int = 0
    bytes_uploaded: int = 0


class _Pusher:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, workload: Workload) -> None:
        self.session = session
        self.base = base_url.rstrip("/")
        self.workload = workload
        self.stats = PushStats()
        # digest -> future of the repo that holds it (single-flight: the first uploader resolves it).
        self._holders: dict[str, asyncio.Future[str]] = {}
        self._ensured: dict[tuple[str, str], asyncio.Task[None]] = {}

    async def _upload(self, repo: str, digest: str, location: str | None = None) -> None:
        data = self.workload.read(digest)
        if location is None:
            reply = await request(self.session, "POST", f"{self.base}/v2/{repo}/blobs/uploads/")
            if reply.status != 202:
                raise PushError(f"POST upload to {repo}: HTTP {reply.status}")
            location = reply.headers["Location"]
        url = yarl.URL(self.base).join(yarl.URL(location)).update_query({"digest": digest})
        headers = {"Content-Type": "application/octet-stream"}
        reply = await request(self.session, "PUT", str(url), headers=headers, data=data)
        if reply.status != 201:
            # A retried PUT may hit an upload session the first attempt already closed: re-check.
            head = await request(self.session, "HEAD", f"{self.base}/v2/{repo}/blobs/{digest}")
            if head.status != 200:
                raise PushError(f"PUT blob {digest} to {repo}: HTTP {reply.status}")
        self.stats.blobs_uploaded += 1
        self.stats.bytes_uploaded += len(data)

    async def _ensure_blob_once(self, repo: str, digest: str) -> None:
        head = await request(self.session, "HEAD", f"{self.base}/v2/{repo}/blobs/{digest}")
        if head.status == 200:
            self.stats.blobs_present += 1
            self._holders.setdefault(digest, _resolved(repo))
            return
        holder = self._holders.get(digest)
        if holder is None:
            future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            self._holders[digest] = future
            try:
                await self._upload(repo, digest)
            except BaseException:
                # Let the next repo that needs this blob upload it itself.
                del self._holders[digest]
                future.cancel()
                raise
            future.set_result(repo)
            return
        try:
            source = await asyncio.shield(holder)
        except asyncio.CancelledError:
            if not holder.cancelled():
                raise
            await self._ensure_blob_once(repo, digest)
            return
        url = f"{self.base}/v2/{repo}/blobs/uploads/?mount={digest}&from={source}"
        reply = await request(self.session, "POST", url)
        if reply.status == 201:
            self.stats.blobs_mounted += 1
        elif reply.status == 202:
            await self._upload(repo, digest, reply.headers["Location"])
        else:
            raise PushError(f"mount {digest} into {repo}: HTTP {reply.status}")

    async def ensure_blob(self, repo: str, digest: str) -> None:
        key = (repo, digest)
        task = self._ensured.get(key)
        if task is None:
            task = asyncio.ensure_future(self._ensure_blob_once(repo, digest))
            self._ensured[key] = task
        await asyncio.shield(task)

    async def put_manifest(self, repo: str, reference: str, digest: str) -> None:
        body = self.workload.read(digest)
        media_type = json.loads(body)["mediaType"]
        url = f"{self.base}/v2/{repo}/manifests/{reference}"
        reply = await request(self.session, "PUT", url, headers={"Content-Type": media_type}, data=body)
        if reply.status != 201 or reply.headers.get("Docker-Content-Digest") != digest:
            raise PushError(f"PUT manifest {repo}:{reference}: HTTP {reply.status}")

    async def push_image(self, repo: str, reference: str, digest: str) -> None:
        manifest: dict[str, Any] = json.loads(self.workload.read(digest))
        blobs = [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]
        await asyncio.gather(*(self.ensure_blob(repo, blob) for blob in blobs))
        await self.put_manifest(repo, reference, digest)

    async def push_tag(self, entry: TagEntry) -> None:
        url = f"{self.base}/v2/{entry.repo}/manifests/{entry.tag}"
        head = await request(self.session, "HEAD", url, headers={"Accept": ACCEPT_MANIFESTS})
        if head.status == 200 and head.headers.get("Docker-Content-Digest") == entry.digest:
            self.stats.tags_skipped += 1
            return
        if entry.media_type in INDEX_MEDIA_TYPES:
            index = json.loads(self.workload.read(entry.digest))
            for child in index["manifests"]:
                await self.push_image(entry.repo, child["digest"], child["digest"])
            await self.put_manifest(entry.repo, entry.tag, entry.digest)
        else:
            await self.push_image(entry.repo, entry.tag, entry.digest)
        self.stats.tags_pushed += 1


def _resolved(value: str) -> asyncio.Future[str]:
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future


async def push_workload(workload: Workload, base_url: str, *, concurrency: int = 8) -> PushStats:
    """Push every tag of ``workload`` to the registry at ``base_url`` (see the module docstring)."""
    async with new_session(limit=concurrency * 2) as session:
        pusher = _Pusher(session, base_url, workload)
        queue: asyncio.Queue[TagEntry] = asyncio.Queue()
        for entry in workload.tags:
            queue.put_nowait(entry)

        async def worker() -> None:
            while not queue.empty():
                await pusher.push_tag(queue.get_nowait())

        workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in (*workers, *pusher._ensured.values()):
                task.cancel()
            await asyncio.gather(*workers, *pusher._ensured.values(), return_exceptions=True)
        return pusher.stats
