"""The 10,000-tag plan check: memory and CPU per image of ``asyncsync sync`` at scale.

``python -m bench.scale [--repos 100 --tags-per-repo 100] [--baseline-tags 100]``

A real ``docker-registry`` seeded with 10,000 tags would take far too long to prepare, so this check runs
against a SCRIPTED registry: an in-process aiohttp app (:class:`ScriptedRegistry`, served from a
background thread) that plays both sides of a sync, each on its own port:

* the source answers ``/v2/``, paginated tag lists (``n``/``last``, ``Link``), manifest HEAD/GET by tag or
  digest, and blob HEAD/GET: ``repos x tags_per_repo`` Docker v2s2 images, each with its own small config
  and three layers drawn from a pool of eight shared blobs;
* the destination already holds every blob (HEAD 200 with the right size, mounts answer 201), has no
  manifests at first, and accepts manifest PUTs (checking that the bytes hash to an image the source
  serves) and, should a tool upload anyway, complete uploads.

So the sync does manifest work only: list tags, resolve each tag, check the destination, put the manifest.
The runner measures ``asyncsync sync`` (skopeo-format YAML with ``[]`` = all tags) with
:func:`bench.measure.run_measured`: peak RSS of its process tree and its CPU time. CPU per image is the
MARGINAL cost: ``(cpu(N) - cpu(baseline)) / (N - baseline)``, so interpreter start-up and imports are not
charged to images. Targets (issue 4): peak RSS < 300 MiB, < 2 ms CPU per image. Afterwards it checks that
the destination received every manifest, byte-identical. Until ``asyncsync sync`` exists this exits 2 with
a one-line reason.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import shlex
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

if __package__ in (None, ""):  # ``python bench/scale.py``: make ``bench`` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import Measurement, run_measured
from bench.tools import Tool, ToolUnavailable, asyncsync_tool, skopeo_tool

__all__ = ["ScriptedRegistry", "SyntheticImages", "main"]

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MIB = 2**20
RSS_BUDGET = 300 * MIB
CPU_BUDGET_S = 0.002
_PATH = re.compile(r"^/v2/(?P<name>.+)/(?P<kind>manifests|blobs|tags)/(?P<ref>[^/]*)$")
_UPLOAD = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<id>[^/]*)$")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class SyntheticImages:
    """``repos`` x ``tags_per_repo`` images: repo ``proj/svc-NNN``, tags ``1.0.N``, shared layer pool."""

    repos: int
    tags_per_repo: int
    seed: int = 7
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, bytes] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        pool = [rng.randbytes(4096 + i) for i in range(8)]
        for layer in pool:
            self.blobs[_digest(layer)] = layer
        for r in range(self.repos):
            repo = f"proj/svc-{r:03d}"
            self.tags[repo] = {}
            for t in range(self.tags_per_repo):
                config = json.dumps({"architecture": "amd64", "os": "linux", "bench": [repo, t]}).encode()
                self.blobs[_digest(config)] = config
                layers = [pool[(r + k) % len(pool)] for k in range(3)]
                manifest = json.dumps(
                    {
                        "schemaVersion": 2,
                        "mediaType": DOCKER_MANIFEST,
                        "config": {
                            "mediaType": DOCKER_CONFIG,
                            "size": len(config),
                            "digest": _digest(config),
                        },
                        "layers": [
                            {"mediaType": DOCKER_LAYER, "size": len(x), "digest": _digest(x)} for x in layers
                        ],
                    }
                ).encode()
                digest = _digest(manifest)
                self.manifests[digest] = manifest
                self.tags[repo][f"1.0.{t}"] = digest

    @property
    def count(self) -> int:
        """Number of tags (= images)."""
        return self.repos * self.tags_per_repo


class ScriptedRegistry:
    """Source and destination apps over one :class:`SyntheticImages` (see the module docstring)."""

    def __init__(self, images: SyntheticImages) -> None:
        self.images = images
        self.counts: dict[str, Counter[str]] = {"source": Counter(), "dest": Counter()}
        self.received: dict[str, dict[str, str]] = {}
        self.bad_puts: list[str] = []
        self._uploads: dict[str, Any] = {}
        self.hosts: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None

    # ---------------------------------------------------------------- handlers

    async def _source(self, request: web.Request) -> web.StreamResponse:
        self.counts["source"][request.method] += 1
        return self._read_side(request, self.images.tags)

    def _read_side(self, request: web.Request, tags: dict[str, dict[str, str]]) -> web.StreamResponse:
        if request.path in ("/v2/", "/v2"):
            return web.json_response({})
        match = _PATH.match(request.path)
        if match is None:
            return web.json_response({"errors": [{"code": "UNSUPPORTED"}]}, status=404)
        name, kind, ref = match["name"], match["kind"], match["ref"]
        if kind == "tags":
            names = sorted(t for t in tags.get(name, {}) if not t.startswith("sha256:"))
            return self._tag_list(request, name, names)
        if kind == "manifests":
            digest = ref if ref.startswith("sha256:") else tags.get(name, {}).get(ref)
            known = digest is not None and digest in self.images.manifests and name in tags
            if not known or digest is None:
                return web.json_response({"errors": [{"code": "MANIFEST_UNKNOWN"}]}, status=404)
            data = self.images.manifests[digest]
            headers = {"Docker-Content-Digest": digest, "Content-Type": DOCKER_MANIFEST}
            return self._bytes(data, headers)
        data_or_none = self.images.blobs.get(ref)
        if data_or_none is None:
            return web.json_response({"errors": [{"code": "BLOB_UNKNOWN"}]}, status=404)
        headers = {"Docker-Content-Digest": ref, "Content-Type": "application/octet-stream"}
        return self._bytes(data_or_none, headers)

    @staticmethod
    def _bytes(data: bytes, headers: dict[str, str]) -> web.Response:
        # aiohttp keeps Content-Length and drops the body when answering HEAD.
        return web.Response(body=data, headers=headers)

    @staticmethod
    def _tag_list(request: web.Request, name: str, tags: list[str]) -> web.Response:
        if not tags:
            return web.json_response({"errors": [{"code": "NAME_UNKNOWN"}]}, status=404)
        last = request.query.get("last")
        start = 0 if last is None else next((i + 1 for i, t in enumerate(tags) if t == last), len(tags))
        n = int(request.query.get("n", "0") or 0) or len(tags)
        page = tags[start : start + n]
        headers = {}
        if start + n < len(tags):
            headers["Link"] = f'</v2/{name}/tags/list?n={n}&last={page[-1]}>; rel="next"'
        return web.json_response({"name": name, "tags": page}, headers=headers)

    async def _dest(self, request: web.Request) -> web.StreamResponse:
        self.counts["dest"][request.method] += 1
        upload = _UPLOAD.match(request.path)
        if upload is not None:
            return await self._upload(request, upload["name"], upload["id"])
        match = _PATH.match(request.path)
        if request.method == "PUT" and match is not None and match["kind"] == "manifests":
            body = await request.read()
            digest = _digest(body)
            if digest not in self.images.manifests:
                self.bad_puts.append(f"{match['name']}:{match['ref']}")
                return web.json_response({"errors": [{"code": "MANIFEST_INVALID"}]}, status=400)
            self.received.setdefault(match["name"], {})[match["ref"]] = digest
            self.received[match["name"]].setdefault(digest, digest)
            return web.Response(status=201, headers={"Docker-Content-Digest": digest})
        if request.method == "DELETE":
            return web.Response(status=202)
        if match is not None and match["kind"] == "blobs":
            # Every blob is "already there": the sync must not need to move any.
            data = self.images.blobs.get(match["ref"])
            if data is None:
                return web.json_response({"errors": [{"code": "BLOB_UNKNOWN"}]}, status=404)
            headers = {"Docker-Content-Digest": match["ref"], "Content-Type": "application/octet-stream"}
            return self._bytes(data, headers)
        return self._read_side(request, self.received)

    async def _upload(self, request: web.Request, name: str, upload_id: str) -> web.StreamResponse:
        if request.method == "POST":
            mount = request.query.get("mount")
            if mount is not None and mount in self.images.blobs:
                return web.Response(status=201, headers={"Docker-Content-Digest": mount})
            new_id = uuid.uuid4().hex
            self._uploads[new_id] = hashlib.sha256()
            location = f"/v2/{name}/blobs/uploads/{new_id}"
            return web.Response(status=202, headers={"Location": location, "Range": "0-0"})
        hasher = self._uploads.get(upload_id)
        if hasher is None:
            return web.json_response({"errors": [{"code": "BLOB_UPLOAD_UNKNOWN"}]}, status=404)
        async for chunk in request.content.iter_any():
            hasher.update(chunk)
        if request.method == "PATCH":
            return web.Response(status=202, headers={"Location": request.path, "Range": "0-0"})
        digest = request.query.get("digest", "")
        del self._uploads[upload_id]
        if "sha256:" + hasher.hexdigest() != digest:
            return web.json_response({"errors": [{"code": "DIGEST_INVALID"}]}, status=400)
        return web.Response(status=201, headers={"Docker-Content-Digest": digest})

    # ---------------------------------------------------------------- lifecycle

    async def _serve(self, ready: threading.Event) -> None:
        self._stop = asyncio.Event()
        runners: list[web.AppRunner] = []
        for role, handler in (("source", self._source), ("dest", self._dest)):
            app = web.Application(client_max_size=64 * MIB)
            app.router.add_route("*", "/{tail:.*}", handler)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
            await site.start()
            self.hosts[role] = f"127.0.0.1:{runner.addresses[-1][1]}"
            runners.append(runner)
        ready.set()
        try:
            await self._stop.wait()
        finally:
            for runner in runners:
                await runner.cleanup()

    def start(self) -> None:
        """Serve both apps from a background thread; returns once they listen."""
        ready = threading.Event()

        def target() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self._serve(ready))
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=target, name="scripted-registry", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("scripted registry did not start")

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def missing(self, prefix: str) -> list[str]:
        """Source tags the destination did not receive (at ``prefix/<last component>``) or got wrong."""
        out: list[str] = []
        for repo, tags in self.images.tags.items():
            got = self.received.get(f"{prefix}/{repo.rpartition('/')[2]}", {})
            out.extend(f"{repo}:{tag}" for tag, digest in tags.items() if got.get(tag) != digest)
        return out


@dataclass
class ScaleRun:
    """One measured sync against a scripted registry."""

    images: int
    measurement: Measurement
    requests: dict[str, dict[str, int]]
    missing: int
    bad_puts: int


def run_scale(tool: Tool, tags: int, repos: int, extra: list[str], work: Path, timeout: float) -> ScaleRun:
    """Sync ``repos`` x ``tags // repos`` scripted images with ``tool``; RuntimeError if it fails."""
    images = SyntheticImages(repos, max(1, tags // repos))
    registry = ScriptedRegistry(images)
    registry.start()
    try:
        spec = {registry.hosts["source"]: {"images": {repo: [] for repo in images.tags}, "tls-verify": False}}
        run_dir = work / f"scale-{images.count}"
        run_dir.mkdir(parents=True, exist_ok=True)
        spec_path = run_dir / "sync.yaml"
        spec_path.write_text(yaml.safe_dump(spec))
        argv = tool.command(spec_path, f"{registry.hosts['dest']}/mirror", tuple(extra))
        measurement = run_measured(
            argv, log_path=run_dir / "tool.log", env=tool.environment(run_dir), timeout_s=timeout
        )
    finally:
        registry.stop()
    if measurement.returncode != 0:
        tail = (run_dir / "tool.log").read_text(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(
            f"{tool.name} sync exited {measurement.returncode} on {images.count} tags: {' | '.join(tail)}"
        )
    return ScaleRun(
        images.count,
        measurement,
        {role: dict(c) for role, c in registry.counts.items()},
        len(registry.missing("mirror")),
        len(registry.bad_puts),
    )


def main(argv: list[str] | None = None) -> int:
    """Run the check: 0 = both runs succeeded and every manifest arrived (targets are reported, not
    enforced), 1 = a run failed, 2 = the tool is unavailable."""
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=100)
    parser.add_argument("--tags-per-repo", type=int, default=100)
    parser.add_argument("--baseline-tags", type=int, default=100, help="small run subtracted for CPU/image")
    parser.add_argument(
        "--tool", choices=["asyncsync", "skopeo"], default="asyncsync", help="tool to measure"
    )
    parser.add_argument("--asyncsync-cmd", help="how to run asyncsync (default: PATH, else python -m)")
    parser.add_argument("--extra-args", default="", help="extra options for the tool's sync command")
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args(argv)
    total = args.repos * args.tags_per_repo
    extra = shlex.split(args.extra_args)
    try:
        tool = asyncsync_tool(args.asyncsync_cmd) if args.tool == "asyncsync" else skopeo_tool()
        with tempfile.TemporaryDirectory(prefix="asyncsync-scale-") as tmp:
            base_repos = max(1, min(args.repos, args.baseline_tags // 10 or 1))
            baseline = run_scale(tool, args.baseline_tags, base_repos, extra, Path(tmp), args.timeout)
            big = run_scale(tool, total, args.repos, extra, Path(tmp), args.timeout)
    except ToolUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    marginal = (big.measurement.cpu_s - baseline.measurement.cpu_s) / max(1, big.images - baseline.images)
    rss = big.measurement.peak_rss
    lines = [
        f"{tool.version or tool.name} against the scripted registry:",
        "",
        "| images | wall | CPU | CPU per image | peak RSS | requests (src / dest) | missing |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in (baseline, big):
        m = run.measurement
        reqs = " / ".join(str(sum(run.requests[r].values())) for r in ("source", "dest"))
        lines.append(
            f"| {run.images} | {m.wall_s:.1f} s | {m.cpu_s:.2f} s | {m.cpu_s / run.images * 1000:.2f} ms "
            f"| {m.peak_rss / MIB:.0f} MiB | {reqs} | {run.missing} |"
        )
    ok = big.missing == 0 and baseline.missing == 0 and big.bad_puts == 0
    verdict = {True: "PASS", False: "FAIL"}
    lines += [
        "",
        f"- marginal CPU per image: {marginal * 1000:.2f} ms -> {verdict[marginal < CPU_BUDGET_S]} (< 2 ms)",
        f"- peak RSS at {big.images} images: {rss / MIB:.0f} MiB -> {verdict[rss < RSS_BUDGET]} (< 300 MiB)",
        f"- every manifest arrived byte-identical: {verdict[ok]}",
    ]
    print("\n".join(lines))
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    out = results / f"scale-{tool.name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(
        json.dumps(
            {
                "tool": {"name": tool.name, "version": tool.version},
                "runs": [
                    {
                        "images": r.images,
                        "measurement": r.measurement.to_json(),
                        "requests": r.requests,
                        "missing": r.missing,
                        "bad_puts": r.bad_puts,
                    }
                    for r in (baseline, big)
                ],
                "marginal_cpu_per_image_s": marginal,
                "markdown": "\n".join(lines),
            },
            indent=1,
        )
    )
    print(f"results written to {out}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
