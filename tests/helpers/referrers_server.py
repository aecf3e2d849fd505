"""A scripted registry with the OCI 1.1 referrers API, on top of :class:`FakeRegistry`.

Why scripted: the real registry of the test bed (distribution 2.8) has no referrers API, so the
API itself (pagination with ``Link``, ``artifactType`` filtering and ``OCI-Filters-Applied``, the
index served as ``application/vnd.oci.image.index.v1+json`` or ``application/json``, bodies that
are not JSON) can only be produced by a server that says what the test scripts.

:func:`serve_repository` answers manifests (by tag and digest), blobs and the tag list of one
repository; :func:`serve_referrers` answers ``GET /v2/<repo>/referrers/<digest>`` in pages of
``page_size`` entries (``?page=N``; a ``Link: <...?page=N+1>; rel="next"`` while more remain),
filtering by ``artifactType`` when ``filters`` is true.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from aiohttp import web

from tests.helpers.fake_registry import Canned, FakeRegistry


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def serve_repository(
    fake: FakeRegistry,
    repo: str,
    manifests: Mapping[str, tuple[str, bytes]],
    blobs: Mapping[str, bytes],
    tags: Mapping[str, str],
) -> None:
    """Serve ``manifests`` (digest -> (media type, bytes)) by digest and by the ``tags`` naming them
    (tag -> digest), every blob of ``blobs``, and ``tags/list``."""
    for digest, (media_type, raw) in manifests.items():
        answer = Canned(200, raw, {"Content-Type": media_type, "Docker-Content-Digest": digest})
        for method in ("GET", "HEAD"):
            fake.route(method, f"/v2/{repo}/manifests/{digest}", answer)
    for tag, digest in tags.items():
        media_type, raw = manifests[digest]
        answer = Canned(200, raw, {"Content-Type": media_type, "Docker-Content-Digest": digest})
        for method in ("GET", "HEAD"):
            fake.route(method, f"/v2/{repo}/manifests/{tag}", answer)
    for digest, data in blobs.items():
        fake.route(
            "GET",
            f"/v2/{repo}/blobs/{digest}",
            Canned(200, data, {"Content-Type": "application/octet-stream"}),
        )
    listing = json.dumps({"name": repo, "tags": sorted(tags)}).encode()
    fake.route("GET", f"/v2/{repo}/tags/list", Canned(200, listing, {"Content-Type": "application/json"}))


def serve_referrers(
    fake: FakeRegistry,
    repo: str,
    subject: str,
    entries: list[dict[str, Any]],
    *,
    page_size: int = 2,
    filters: bool = True,
    content_type: str = "application/vnd.oci.image.index.v1+json",
    body: bytes | None = None,
) -> None:
    """Answer the referrers API for ``subject`` (see the module docstring); ``body`` replaces the
    JSON document (bad input)."""
    path = f"/v2/{repo}/referrers/{subject}"

    def answer(request: web.Request) -> Canned:
        if body is not None:
            return Canned(200, body, {"Content-Type": content_type})
        wanted = request.query.get("artifactType")
        listed = entries
        headers = {"Content-Type": content_type}
        if wanted and filters:
            listed = [e for e in entries if e.get("artifactType") == wanted]
            headers["OCI-Filters-Applied"] = "artifactType"
        page = int(request.query.get("page", "0"))
        chunk = listed[page * page_size : (page + 1) * page_size]
        if (page + 1) * page_size < len(listed):
            query = f"page={page + 1}" + (f"&artifactType={quote(wanted, safe='')}" if wanted else "")
            headers["Link"] = f'<{path}?{query}>; rel="next"'
        document = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": chunk,
        }
        return Canned(200, json.dumps(document).encode(), headers)

    fake.route("GET", path, answer)


def manifest_entry(
    manifest: bytes, artifact_type: str, media_type: str = "application/vnd.oci.image.manifest.v1+json"
) -> dict[str, Any]:
    """A referrers index entry for ``manifest``."""
    return {
        "mediaType": media_type,
        "digest": _digest(manifest),
        "size": len(manifest),
        "artifactType": artifact_type,
    }
