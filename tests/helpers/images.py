"""Seeded random container images, manifest lists and OCI indexes, and a raw aiohttp pusher.

Nothing here touches the internet or imports ``asyncsync``: test images are built in memory and pushed with
plain Distribution API calls, so a bug in the package under test cannot hide in its own fixtures.

Determinism contract: the same arguments give byte-identical blobs, manifests and digests on one machine
(layers are real ``tar`` archives with fixed metadata, gzip-compressed with ``mtime=0`` and no file name;
every random choice comes from ``random.Random`` seeded with a string derived from ``seed``). Different
seeds give different layers, configs and digests.

Pushing contract (:func:`push_image`, :func:`push_index`, :func:`push_blob`, :func:`push_manifest`):
blobs first (``HEAD`` to skip existing ones, then ``POST`` an upload and one monolithic
``PUT ?digest=``), manifests last with their media type as ``Content-Type``; an index's child manifests are
pushed by digest before the index. Each returns the digest the registry confirmed and raises
:class:`PushError` on any unexpected status (after retrying 5xx, connection errors and a manifest PUT's
``MANIFEST_BLOB_UNKNOWN``, which distribution 2.8 produces transiently under concurrent pushes of shared
blobs). Credentials come from the :class:`RegistryServer`: Basic for
``basic``; for ``token`` a JWT minted in-process by its token service (so the service's request records stay
untouched); TLS trusts the registry's CA file. The ``*_sync`` twins run the coroutine on a private event
loop (in a worker thread when the caller's thread already runs one).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import gzip
import hashlib
import io
import json
import random
import ssl
import tarfile
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self, TypeVar
from urllib.parse import quote

import aiohttp
import yarl
from multidict import CIMultiDict

from tests.helpers.registry import RegistryServer

__all__ = [
    "DOCKER_CONFIG",
    "DOCKER_LAYER",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_MANIFEST",
    "Format",
    "GeneratedImage",
    "GeneratedIndex",
    "PushError",
    "blob_exists",
    "blob_exists_sync",
    "digest_of",
    "get_manifest",
    "get_manifest_sync",
    "list_tags",
    "list_tags_sync",
    "make_image",
    "make_index",
    "make_layer",
    "make_multiarch",
    "push_blob",
    "push_blob_sync",
    "push_image",
    "push_image_sync",
    "push_index",
    "push_index_sync",
    "push_manifest",
    "push_manifest_sync",
    "run_sync",
]

Format = Literal["docker", "oci"]

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

_MEDIA_TYPES: dict[Format, tuple[str, str, str, str]] = {
    # manifest, config, layer, index
    "docker": (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST_LIST),
    "oci": (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER, OCI_INDEX),
}
_EPOCH = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
_T = TypeVar("_T")


def digest_of(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _rng(seed: int | str, *parts: object) -> random.Random:
    return random.Random("/".join(str(p) for p in (seed, *parts)))


def make_layer(seed: int | str, size: int = 4096, *, files: int = 1) -> bytes:
    """A gzip-compressed tar with a directory and ``files`` random files of ``size`` bytes each.

    Real tar + gzip (readable by ``tar xz`` and skopeo); byte-identical for the same arguments.
    """
    rng = _rng(seed, "layer", size, files)
    top = f"layer-{rng.getrandbits(48):012x}"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        entries: list[tuple[tarfile.TarInfo, bytes | None]] = []
        directory = tarfile.TarInfo(top)
        directory.type, directory.mode = tarfile.DIRTYPE, 0o755
        entries.append((directory, None))
        for index in range(files):
            data = rng.randbytes(size)
            info = tarfile.TarInfo(f"{top}/file-{index}.bin")
            info.size, info.mode = len(data), 0o644
            entries.append((info, data))
        for member, content in entries:
            member.mtime = 0
            member.uid = member.gid = 0
            member.uname = member.gname = "root"
            tar.addfile(member, io.BytesIO(content) if content is not None else None)
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "size": len(data), "digest": digest_of(data)}


@dataclass(frozen=True, eq=False)
class GeneratedImage:
    """One single-platform image: raw ``config`` and ``layers`` blobs and the ``manifest`` bytes.

    ``digest`` is the sha256 of ``manifest`` exactly as pushed; ``diff_ids`` are the sha256 of the
    uncompressed layer tars (as in the config's ``rootfs.diff_ids``).
    """

    fmt: Format
    config: bytes
    layers: list[bytes]
    manifest: bytes
    media_type: str
    digest: str
    os: str
    architecture: str
    variant: str | None
    diff_ids: list[str] = field(repr=False)

    @property
    def config_digest(self) -> str:
        """Digest of the config blob."""
        return digest_of(self.config)

    @property
    def layer_digests(self) -> list[str]:
        """Digests of the compressed layer blobs, in manifest order."""
        return [digest_of(layer) for layer in self.layers]

    @property
    def size(self) -> int:
        """Length of the manifest in bytes."""
        return len(self.manifest)

    def platform(self) -> dict[str, str]:
        """The ``platform`` object of this image in an index."""
        platform = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            platform["variant"] = self.variant
        return platform

    def blobs(self) -> dict[str, bytes]:
        """digest -> bytes for the config and every layer (config first, then layers in order)."""
        blobs = {self.config_digest: self.config}
        blobs.update((digest_of(layer), layer) for layer in self.layers)
        return blobs


@dataclass(frozen=True, eq=False)
class GeneratedIndex:
    """A Docker manifest list or OCI index over ``images`` (``manifest`` bytes, its ``digest``)."""

    fmt: Format
    images: tuple[GeneratedImage, ...]
    manifest: bytes
    media_type: str
    digest: str

    @property
    def size(self) -> int:
        """Length of the index manifest in bytes."""
        return len(self.manifest)

    def blobs(self) -> dict[str, bytes]:
        """digest -> bytes of every blob of every child image (deduplicated, first-seen order)."""
        blobs: dict[str, bytes] = {}
        for image in self.images:
            blobs.update(image.blobs())
        return blobs

    def manifests(self) -> dict[str, tuple[str, bytes]]:
        """Child manifest digest -> (media type, bytes)."""
        return {image.digest: (image.media_type, image.manifest) for image in self.images}


def make_image(
    seed: int | str,
    *,
    layers: int = 2,
    layer_size: int = 4096,
    fmt: Format = "docker",
    os: str = "linux",
    arch: str = "amd64",
    variant: str | None = None,
    labels: Mapping[str, str] | None = None,
    env: Sequence[str] | None = None,
    shared_layers: Iterable[bytes] = (),
    config_overrides: Mapping[str, Any] | None = None,
) -> GeneratedImage:
    """A deterministic image: ``shared_layers`` (compressed, e.g. from :func:`make_layer`) come first, then
    ``layers`` fresh random layers of ``layer_size`` bytes of content each.

    The config is realistic (``architecture``, ``os``, ``variant``, ``created``, ``config.Env``,
    ``config.Labels``, ``config.Cmd``, ``rootfs.diff_ids``, one ``history`` entry per layer plus an empty
    one). ``labels``/``env`` default to seed-derived values. ``fmt`` picks Docker v2s2 or OCI media types.
    ``config_overrides`` replaces or adds top-level config keys (``docker_version``, a ``created`` with
    fractional seconds: the fields a stand-in for a real published image needs).
    """
    if fmt not in _MEDIA_TYPES:
        raise ValueError(f"unknown image format {fmt!r}")
    manifest_type, config_type, layer_type, _ = _MEDIA_TYPES[fmt]
    rng = _rng(seed, "image")
    blobs = [*shared_layers, *(make_layer(f"{seed}/{i}", layer_size) for i in range(layers))]
    if not blobs:
        raise ValueError("an image needs at least one layer")
    diff_ids = [digest_of(gzip.decompress(blob)) for blob in blobs]
    created = (_EPOCH + dt.timedelta(seconds=rng.randrange(365 * 86400))).strftime("%Y-%m-%dT%H:%M:%SZ")
    history: list[dict[str, Any]] = [
        {"created": created, "created_by": f"/bin/sh -c #(nop) ADD file:{diff_id[7:23]} in / "}
        for diff_id in diff_ids
    ]
    history.append({"created": created, "created_by": '/bin/sh -c #(nop)  CMD ["sh"]', "empty_layer": True})
    config_obj: dict[str, Any] = {
        "architecture": arch,
        "os": os,
        "created": created,
        "config": {
            "Env": list(env)
            if env is not None
            else [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                f"ASYNCSYNC_TEST_SEED={seed}",
            ],
            "Labels": dict(labels) if labels is not None else {"org.asyncsync.test.seed": str(seed)},
            "Cmd": ["sh"],
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }
    if variant:
        config_obj["variant"] = variant
    config_obj.update(config_overrides or {})
    config = json.dumps(config_obj, sort_keys=True, separators=(",", ":")).encode()
    manifest_obj = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": _descriptor(config_type, config),
        "layers": [_descriptor(layer_type, blob) for blob in blobs],
    }
    # Docker serialises with a 3-space indent; OCI tools usually compactly: clients must keep the bytes.
    manifest = json.dumps(manifest_obj, indent=3 if fmt == "docker" else None).encode()
    return GeneratedImage(
        fmt=fmt,
        config=config,
        layers=blobs,
        manifest=manifest,
        media_type=manifest_type,
        digest=digest_of(manifest),
        os=os,
        architecture=arch,
        variant=variant,
        diff_ids=diff_ids,
    )


def make_index(images: Sequence[GeneratedImage], fmt: Format | None = None) -> GeneratedIndex:
    """A Docker manifest list (``fmt="docker"``) or OCI index (``"oci"``) listing ``images`` with their
    platforms, in order. ``fmt`` defaults to the first image's format; children are not converted."""
    if not images:
        raise ValueError("an index needs at least one image")
    fmt = fmt or images[0].fmt
    index_type = _MEDIA_TYPES[fmt][3]
    obj = {
        "schemaVersion": 2,
        "mediaType": index_type,
        "manifests": [
            {**_descriptor(image.media_type, image.manifest), "platform": image.platform()}
            for image in images
        ],
    }
    manifest = json.dumps(obj, indent=3 if fmt == "docker" else None).encode()
    return GeneratedIndex(
        fmt=fmt, images=tuple(images), manifest=manifest, media_type=index_type, digest=digest_of(manifest)
    )


DEFAULT_PLATFORMS: tuple[tuple[str, str, str | None], ...] = (
    ("linux", "amd64", None),
    ("linux", "arm64", "v8"),
)


def make_multiarch(
    seed: int | str,
    platforms: Sequence[tuple[str, str, str | None]] = DEFAULT_PLATFORMS,
    *,
    fmt: Format = "docker",
    **image_options: Any,
) -> GeneratedIndex:
    """An index over one image per ``(os, arch, variant)``, each seeded from ``seed`` and its platform
    (so layers differ between platforms). ``image_options`` go to :func:`make_image`."""
    images = [
        make_image(
            f"{seed}/{os}/{arch}/{variant or ''}", fmt=fmt, os=os, arch=arch, variant=variant, **image_options
        )
        for os, arch, variant in platforms
    ]
    return make_index(images, fmt)


# ---------------------------------------------------------------------------------------------- pushing


class PushError(RuntimeError):
    """The registry answered a helper request with an unexpected status (URL query strings are omitted)."""

    def __init__(self, method: str, path: str, status: int, body: bytes) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {body[:500]!r}")
        self.method = method
        self.path = path
        self.status = status
        self.body = body


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    headers: Mapping[str, str]
    body: bytes


class _Client:
    """Raw Distribution API calls against one :class:`RegistryServer` with its credentials."""

    RETRIES = 5

    def __init__(self, server: RegistryServer, session: aiohttp.ClientSession | None) -> None:
        self.server = server
        self._session = session
        self._owned: aiohttp.ClientSession | None = None
        context = server.ssl_context()
        self._ssl: ssl.SSLContext | bool = context if context is not None else True
        self._tokens: dict[tuple[str, str], str] = {}

    async def __aenter__(self) -> Self:
        if self._session is None:
            self._owned = self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._owned is not None:
            await self._owned.close()

    def _authorization(self, repo: str, actions: str) -> str | None:
        server = self.server
        if server.flavour == "token" and server.token_service is not None:
            key = (repo, actions)
            if key not in self._tokens:
                scope = f"repository:{repo}:{actions}"
                self._tokens[key] = server.token_service.issue_token(server.username, [scope])
            return "Bearer " + self._tokens[key]
        return server.basic_auth_header()

    async def request(
        self,
        method: str,
        repo: str,
        url: str | yarl.URL,
        *,
        actions: str = "pull",
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
        retry: bool = True,
    ) -> _Response:
        """One exchange (retried on 5xx and connection errors when ``retry``); the body is read fully."""
        assert self._session is not None, "use `async with _Client(...)`"
        target = yarl.URL(url, encoded=True) if isinstance(url, str) else url
        if not target.is_absolute():
            target = yarl.URL(self.server.url).join(target)
        all_headers = dict(headers or {})
        authorization = self._authorization(repo, actions)
        if authorization is not None:
            all_headers["Authorization"] = authorization
        attempts = self.RETRIES if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                async with self._session.request(
                    method, target, headers=all_headers, data=data, ssl=self._ssl, allow_redirects=False
                ) as response:
                    body = await response.read()
                    result = _Response(response.status, CIMultiDict(response.headers), body)
            except aiohttp.ClientConnectionError:
                if attempt == attempts:
                    raise
            else:
                if result.status < 500 or attempt == attempts:
                    return result
            await asyncio.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    async def put_blob(self, repo: str, data: bytes, digest: str | None = None) -> bool:
        """Upload unless present; True if uploaded, False if the registry already had it."""
        digest = digest or digest_of(data)
        for attempt in range(1, self.RETRIES + 1):
            head = await self.request("HEAD", repo, f"/v2/{repo}/blobs/{digest}", actions="pull,push")
            if head.status == 200:
                return False
            start = await self.request("POST", repo, f"/v2/{repo}/blobs/uploads/", actions="pull,push")
            if start.status != 202 or "Location" not in start.headers:
                raise PushError("POST", f"/v2/{repo}/blobs/uploads/", start.status, start.body)
            location = start.headers["Location"]
            separator = "&" if "?" in location else "?"
            put = await self.request(
                "PUT",
                repo,
                f"{location}{separator}digest={quote(digest, safe='')}",
                actions="pull,push",
                headers={"Content-Type": "application/octet-stream"},
                data=data,
                retry=False,
            )
            if put.status == 201:
                return True
            if put.status < 500 or attempt == self.RETRIES:
                raise PushError("PUT", f"/v2/{repo}/blobs/uploads/…", put.status, put.body)
            await asyncio.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    async def put_manifest(self, repo: str, reference: str, manifest: bytes, media_type: str) -> str:
        """PUT a manifest; returns the registry's ``Docker-Content-Digest`` (checked against the bytes).

        A 400 ``MANIFEST_BLOB_UNKNOWN`` is retried: distribution 2.8 rewrites a repository's blob link file
        in place (truncate, then write) whenever the same blob is committed again, so a manifest PUT racing
        a concurrent upload of one of its blobs briefly sees that blob as unknown.
        """
        path = f"/v2/{repo}/manifests/{reference}"
        for attempt in range(1, self.RETRIES + 1):
            response = await self.request(
                "PUT", repo, path, actions="pull,push", headers={"Content-Type": media_type}, data=manifest
            )
            racing = response.status == 400 and b"MANIFEST_BLOB_UNKNOWN" in response.body
            if response.status == 201 or not racing or attempt == self.RETRIES:
                break
            await asyncio.sleep(0.05 * attempt)
        if response.status != 201:
            raise PushError("PUT", path, response.status, response.body)
        expected = digest_of(manifest)
        confirmed = response.headers.get("Docker-Content-Digest", expected)
        if confirmed != expected:
            raise PushError("PUT", path, response.status, f"digest {confirmed} != {expected}".encode())
        return confirmed


async def push_blob(
    server: RegistryServer, repo: str, data: bytes, *, session: aiohttp.ClientSession | None = None
) -> bool:
    """Push one blob to ``repo``; True if uploaded, False if it was already there."""
    async with _Client(server, session) as client:
        return await client.put_blob(repo, data)


async def push_manifest(
    server: RegistryServer,
    repo: str,
    reference: str,
    manifest: bytes,
    media_type: str,
    *,
    session: aiohttp.ClientSession | None = None,
) -> str:
    """PUT raw ``manifest`` bytes as ``repo:reference`` (tag or digest); returns the confirmed digest."""
    async with _Client(server, session) as client:
        return await client.put_manifest(repo, reference, manifest, media_type)


async def push_image(
    server: RegistryServer,
    repo: str,
    tag_or_digest: str | None,
    image: GeneratedImage,
    *,
    session: aiohttp.ClientSession | None = None,
) -> str:
    """Push ``image``'s blobs then its manifest as ``repo:tag`` (or by digest when ``tag_or_digest`` is
    None or a digest); returns the manifest digest."""
    async with _Client(server, session) as client:
        for digest, blob in image.blobs().items():
            await client.put_blob(repo, blob, digest)
        return await client.put_manifest(
            repo, tag_or_digest or image.digest, image.manifest, image.media_type
        )


async def push_index(
    server: RegistryServer,
    repo: str,
    tag_or_digest: str | None,
    index: GeneratedIndex,
    *,
    session: aiohttp.ClientSession | None = None,
) -> str:
    """Push every child image by digest, then the index as ``repo:tag`` (or by digest); returns its
    digest."""
    async with _Client(server, session) as client:
        for digest, blob in index.blobs().items():
            await client.put_blob(repo, blob, digest)
        for image in index.images:
            await client.put_manifest(repo, image.digest, image.manifest, image.media_type)
        return await client.put_manifest(
            repo, tag_or_digest or index.digest, index.manifest, index.media_type
        )


async def get_manifest(
    server: RegistryServer, repo: str, reference: str, *, session: aiohttp.ClientSession | None = None
) -> tuple[str, bytes]:
    """GET ``repo:reference`` accepting every manifest type; returns (Content-Type, raw bytes)."""
    accept = ", ".join([DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX])
    path = f"/v2/{repo}/manifests/{reference}"
    async with _Client(server, session) as client:
        response = await client.request("GET", repo, path, headers={"Accept": accept})
    if response.status != 200:
        raise PushError("GET", path, response.status, response.body)
    return response.headers.get("Content-Type", ""), response.body


async def blob_exists(
    server: RegistryServer, repo: str, digest: str, *, session: aiohttp.ClientSession | None = None
) -> bool:
    """Whether ``HEAD /v2/<repo>/blobs/<digest>`` answers 200 (404 -> False, anything else raises)."""
    path = f"/v2/{repo}/blobs/{digest}"
    async with _Client(server, session) as client:
        response = await client.request("HEAD", repo, path)
    if response.status not in (200, 404):
        raise PushError("HEAD", path, response.status, response.body)
    return response.status == 200


async def list_tags(
    server: RegistryServer, repo: str, *, session: aiohttp.ClientSession | None = None
) -> list[str]:
    """The tags of ``repo`` (sorted; one page of up to 10,000), or ``[]`` when the repository is unknown."""
    path = f"/v2/{repo}/tags/list?n=10000"
    async with _Client(server, session) as client:
        response = await client.request("GET", repo, path)
    if response.status == 404:
        return []
    if response.status != 200:
        raise PushError("GET", path, response.status, response.body)
    return sorted(json.loads(response.body).get("tags") or [])


def run_sync(factory: Callable[[], Awaitable[_T]]) -> _T:
    """Run ``factory()`` to completion on a fresh event loop and return its result.

    ``factory`` is called inside the loop's thread; when the calling thread already runs a loop, a worker
    thread hosts the new loop (the caller blocks until it is done).
    """

    async def main() -> _T:
        return await factory()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


def push_blob_sync(server: RegistryServer, repo: str, data: bytes) -> bool:
    """Blocking :func:`push_blob`."""
    return run_sync(lambda: push_blob(server, repo, data))


def push_manifest_sync(
    server: RegistryServer, repo: str, reference: str, manifest: bytes, media_type: str
) -> str:
    """Blocking :func:`push_manifest`."""
    return run_sync(lambda: push_manifest(server, repo, reference, manifest, media_type))


def push_image_sync(
    server: RegistryServer, repo: str, tag_or_digest: str | None, image: GeneratedImage
) -> str:
    """Blocking :func:`push_image`."""
    return run_sync(lambda: push_image(server, repo, tag_or_digest, image))


def push_index_sync(
    server: RegistryServer, repo: str, tag_or_digest: str | None, index: GeneratedIndex
) -> str:
    """Blocking :func:`push_index`."""
    return run_sync(lambda: push_index(server, repo, tag_or_digest, index))


def get_manifest_sync(server: RegistryServer, repo: str, reference: str) -> tuple[str, bytes]:
    """Blocking :func:`get_manifest`."""
    return run_sync(lambda: get_manifest(server, repo, reference))


def blob_exists_sync(server: RegistryServer, repo: str, digest: str) -> bool:
    """Blocking :func:`blob_exists`."""
    return run_sync(lambda: blob_exists(server, repo, digest))


def list_tags_sync(server: RegistryServer, repo: str) -> list[str]:
    """Blocking :func:`list_tags`."""
    return run_sync(lambda: list_tags(server, repo))
