"""What attachments cost a sync: requests and wall time with and without them, full and no-op.

``python -m bench.attachments [--repos 20] [--tags 3] [--rounds 3]`` seeds a source registry
(distribution 2.8, tmpfs) with ``repos x tags`` small OCI images, each with a cosign signature
(tag ``sha256-<hex>.sig``) and an SBOM referrer listed by the fallback tag ``sha256-<hex>`` (what
OCI 1.1 clients push to a registry without the referrers API). Then, into fresh destinations, it
runs ``asyncsync sync --src yaml --dest docker`` (every tag of every repository) with attachments
(the default) and with ``--attachments=false``, each followed by a no-op re-sync, and prints
requests per registry (from the access logs) and the median wall time of ``--rounds`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.registries import Registry, start_registry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _desc(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": _digest(data), "size": len(data), **extra}


def _manifest(config: tuple[str, bytes], layers: list[tuple[str, bytes]], **extra: Any) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": _desc(*config),
        "layers": [_desc(*layer) for layer in layers],
        **extra,
    }
    return json.dumps(document).encode()


class _Pusher:
    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base

    async def blob(self, repo: str, data: bytes) -> None:
        async with self.http.post(f"{self.base}/v2/{repo}/blobs/uploads/") as started:
            location = started.headers["Location"]
        url = location if location.startswith("http") else self.base + location
        separator = "&" if "?" in url else "?"
        async with self.http.put(f"{url}{separator}digest={_digest(data)}", data=data) as done:
            assert done.status == 201, await done.text()

    async def manifest(self, repo: str, reference: str, raw: bytes, media_type: str = OCI_MANIFEST) -> None:
        headers = {"Content-Type": media_type}
        async with self.http.put(
            f"{self.base}/v2/{repo}/manifests/{reference}", data=raw, headers=headers
        ) as done:
            assert done.status == 201, await done.text()


async def _seed_image(push: _Pusher, repo: str, tag: str, rng: random.Random) -> None:
    # A gzip layer: an uncompressed one would be compressed on the way (as skopeo does), changing the
    # image's digest, and its attachments could not follow.
    content = rng.randbytes(4096)
    layer = gzip.compress(content, mtime=0)
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [_digest(content)]}}
    ).encode()
    image = _manifest(
        ("application/vnd.oci.image.config.v1+json", config),
        [("application/vnd.oci.image.layer.v1.tar+gzip", layer)],
    )
    for blob in (layer, config):
        await push.blob(repo, blob)
    await push.manifest(repo, tag, image)
    subject = _digest(image)
    hex_ = subject.removeprefix("sha256:")
    payload = json.dumps({"critical": {"image": {"docker-manifest-digest": subject}}}).encode()
    sig_config = b'{"architecture":"","os":"","config":{}}'
    signature = {"dev.cosignproject.cosign/signature": rng.randbytes(48).hex()}
    sig = _manifest(
        ("application/vnd.oci.image.config.v1+json", sig_config),
        [("application/vnd.dev.cosign.simplesigning.v1+json", payload)],
    )
    sig = sig.replace(
        b'"size": %d}' % len(payload),
        b'"size": %d, "annotations": %s}' % (len(payload), json.dumps(signature).encode()),
        1,
    )
    for blob in (payload, sig_config):
        await push.blob(repo, blob)
    await push.manifest(repo, f"sha256-{hex_}.sig", sig)
    sbom_payload = json.dumps(
        {"spdxVersion": "SPDX-2.3", "name": f"{repo}:{tag}", "n": rng.random()}
    ).encode()
    sbom = _manifest(
        ("application/vnd.oci.empty.v1+json", b"{}"),
        [("application/spdx+json", sbom_payload)],
        artifactType="application/spdx+json",
        subject={"mediaType": OCI_MANIFEST, "digest": subject, "size": len(image)},
    )
    for blob in (sbom_payload, b"{}"):
        await push.blob(repo, blob)
    await push.manifest(repo, _digest(sbom), sbom)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [_desc(OCI_MANIFEST, sbom, artifactType="application/spdx+json")],
        }
    ).encode()
    await push.manifest(repo, f"sha256-{hex_}", index, OCI_INDEX)


async def seed(source: Registry, repos: int, tags: int) -> list[str]:
    names = [f"bench/app{r:02d}" for r in range(repos)]
    async with aiohttp.ClientSession() as http:
        push = _Pusher(http, source.url)
        await asyncio.gather(
            *(
                _seed_image(push, repo, f"v{t}", random.Random(f"{repo}:{t}"))
                for repo in names
                for t in range(tags)
            )
        )
    return names


def _sync(spec: Path, dest: Registry, extra: list[str], report: Path) -> float:
    args = [sys.executable, "-m", "asyncsync", "sync", "--src", "yaml", "--dest", "docker"]
    args += ["--dest-tls-verify=false", "--report", str(report), *extra, str(spec), f"{dest.host}/mirror"]
    started = time.monotonic()
    done = subprocess.run(args, capture_output=True, check=False)
    took = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"sync failed: {done.stderr.decode()[-2000:]}")
    return took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=20)
    parser.add_argument("--tags", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    root = Path(
        tempfile.mkdtemp(prefix="bench-attachments-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    )
    source = start_registry(root / "source", name="source")
    try:
        names = asyncio.run(seed(source, args.repos, args.tags))
        spec = root / "spec.yaml"
        spec.write_text(
            f"{source.host}:\n  tls-verify: false\n  images-by-tag-regex:\n"
            + "".join(f"    {n}: '^v'\n" for n in names)
        )
        images = args.repos * args.tags
        print(f"{images} images in {args.repos} repositories, each with a cosign .sig and an SBOM referrer")
        for label, extra in (("attachments (default)", []), ("--attachments=false", ["--attachments=false"])):
            results: dict[str, list[tuple[float, int, int]]] = {"full": [], "no-op": []}
            for round_ in range(args.rounds):
                dest = start_registry(root / f"dest-{label[:3]}-{round_}", name="dest")
                try:
                    for mode in ("full", "no-op"):
                        source.truncate_log()
                        dest.truncate_log()
                        took = _sync(spec, dest, extra, root / "report.json")
                        results[mode].append((took, len(source.requests()), len(dest.requests())))
                        if os.environ.get("BENCH_ATTACHMENTS_DEBUG"):
                            for entry in source.requests() + dest.requests():
                                print(mode, entry)
                finally:
                    dest.stop()
            for mode, runs in results.items():
                wall = statistics.median(r[0] for r in runs)
                src, dst = runs[-1][1], runs[-1][2]
                print(
                    f"{label:<22} {mode:<6} wall {wall:5.2f} s (median of {len(runs)})  requests: "
                    f"source {src}, destination {dst}, {(src + dst) / images:.2f} per image"
                )
    finally:
        source.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
