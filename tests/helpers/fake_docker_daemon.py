"""A small Docker Engine API server for tests of ``docker-daemon:``, over a unix socket (or TCP).

No Docker engine runs on these machines, so ``docker-daemon:`` is tested against this stand-in. It
implements just what ``docker save`` / ``docker load`` clients use, with the real engine's shapes:

* ``GET /_ping`` -> ``OK`` (with an ``Api-Version`` header); ``GET /version`` -> a version document;
* ``POST /images/load[?quiet=1]`` takes a ``docker save`` tar (uncompressed or gzip), checks every
  layer against the config's ``rootfs.diff_ids`` as the engine does (answering 500 with
  ``{"message": ...}`` on a malformed archive), stores the image under its id (``sha256:`` + the
  config digest) and its RepoTags, and streams ``{"stream": "Loaded image: NAME:TAG\\n"}`` lines;
* ``GET /images/{name}/get`` answers a ``docker save`` tar of the image named by tag or id
  (legacy ``<id>/layer.tar`` layout, ``manifest.json`` with the requested tag, ``repositories``),
  or 404 ``{"message": "reference does not exist"}``.

Stored images are kept in memory (tests use KiB-MiB images). ``requests`` records
``(method, path)`` of every request; ``load_error`` makes the next load stream an error line
(``{"errorDetail": {"message": ...}, "error": ...}``) as the engine does for failures mid-load.
Nothing here imports ``asyncsync``: the fake must not share bugs with the code under test.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import posixpath
import socket
import tarfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from aiohttp import web

__all__ = ["FakeDockerDaemon", "StoredImage", "normalise_name"]


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def normalise_name(name: str) -> str:
    """``busybox`` -> ``docker.io/library/busybox:latest``; ``host:5000/a:b`` stays; a tag is added."""
    repo, tag = name, "latest"
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        repo, tag = name[:colon], name[colon + 1 :]
    first = repo.split("/", 1)[0]
    if "/" not in repo or not ("." in first or ":" in first or first == "localhost"):
        repo = "docker.io/" + (repo if "/" in repo else "library/" + repo)
    return f"{repo}:{tag}"


def _familiar(name: str) -> str:
    if name.startswith("docker.io/library/"):
        return name[len("docker.io/library/") :]
    return name[len("docker.io/") :] if name.startswith("docker.io/") else name


@dataclass
class StoredImage:
    """An image the fake engine holds: config bytes and uncompressed layer tars."""

    config: bytes
    layers: list[bytes]
    tags: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return _sha256(self.config)


class _BadArchive(Exception):
    pass


def _members(raw: bytes) -> tuple[dict[str, tarfile.TarInfo], tarfile.TarFile]:
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        tar = tarfile.open(fileobj=io.BytesIO(raw), mode="r:")  # noqa: SIM115 - the caller closes it
    except tarfile.TarError as exc:
        raise _BadArchive(f"invalid tar header: {exc}") from None
    return {posixpath.normpath(m.name): m for m in tar.getmembers()}, tar


def _read(members: dict[str, tarfile.TarInfo], tar: tarfile.TarFile, name: str, hops: int = 0) -> bytes:
    name = posixpath.normpath(name)
    info = members.get(name)
    if info is None or hops > 8:
        raise _BadArchive(f"file {name} not found in the archive")
    if info.issym():
        return _read(members, tar, posixpath.join(posixpath.dirname(name), info.linkname), hops + 1)
    extracted = tar.extractfile(info)
    if extracted is None:
        raise _BadArchive(f"{name} is not a file")
    return extracted.read()


def parse_save_archive(raw: bytes) -> list[StoredImage]:
    """The images of a ``docker save`` archive, each layer checked against its diff id."""
    members, tar = _members(raw)
    with tar:
        try:
            items = json.loads(_read(members, tar, "manifest.json"))
        except json.JSONDecodeError:
            raise _BadArchive("manifest.json is not JSON") from None
        images = []
        for item in items:
            config = _read(members, tar, item["Config"])
            diff_ids = json.loads(config)["rootfs"]["diff_ids"]
            layers = []
            for path, diff_id in zip(item["Layers"], diff_ids, strict=True):
                data = _read(members, tar, path)
                plain = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
                if _sha256(plain) != diff_id:
                    raise _BadArchive(f"layer {path} does not match diff id {diff_id}")
                layers.append(plain)
            tags = [normalise_name(tag) for tag in item.get("RepoTags") or []]
            images.append(StoredImage(config, layers, tags))
    return images


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def save_archive(image: StoredImage, tags: list[str]) -> bytes:
    """A ``docker save`` tar of ``image`` listing ``tags`` (familiar form, as docker writes them)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        layer_paths = []
        parent = ""
        for layer in image.layers:
            layer_id = hashlib.sha256(f"{parent} {_sha256(layer)}".encode()).hexdigest()
            _add(tar, f"{layer_id}/VERSION", b"1.0")
            _add(tar, f"{layer_id}/json", json.dumps({"id": layer_id, "parent": parent}).encode())
            _add(tar, f"{layer_id}/layer.tar", layer)
            layer_paths.append(f"{layer_id}/layer.tar")
            parent = layer_id
        config_name = f"{image.id[7:]}.json"
        _add(tar, config_name, image.config)
        familiar = [_familiar(tag) for tag in tags]
        _add(
            tar,
            "manifest.json",
            json.dumps([{"Config": config_name, "RepoTags": familiar, "Layers": layer_paths}]).encode(),
        )
        repositories: dict[str, dict[str, str]] = {}
        for tag in familiar:
            repo, _, name = tag.rpartition(":")
            repositories.setdefault(repo, {})[name] = parent
        _add(tar, "repositories", json.dumps(repositories).encode())
    return out.getvalue()


class FakeDockerDaemon:
    """``async with FakeDockerDaemon(socket_path) as daemon:``; ``daemon.host`` is ``unix://...``.

    Pass ``socket_path=None`` to listen on a free TCP port of 127.0.0.1 instead (``tcp://...``).
    """

    def __init__(self, socket_path: str | None) -> None:
        self.socket_path = socket_path
        self.images: dict[str, StoredImage] = {}
        self.tags: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []
        self.load_error: str | None = None
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def host(self) -> str:
        return f"unix://{self.socket_path}" if self.socket_path else f"tcp://127.0.0.1:{self._port}"

    async def __aenter__(self) -> Self:
        app = web.Application(client_max_size=1024**3)
        app.router.add_get("/_ping", self._ping)
        app.router.add_get("/version", self._version)
        app.router.add_post("/images/load", self._load)
        app.router.add_get("/images/{name:.+}/get", self._get)
        app.middlewares.append(self._record)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site: web.BaseSite
        if self.socket_path:
            site = web.UnixSite(self._runner, self.socket_path)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            self._port = sock.getsockname()[1]
            site = web.SockSite(self._runner, sock)
        await site.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _record(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        return await handler(request)

    def find(self, name: str) -> StoredImage | None:
        """The stored image with id ``sha256:...`` or tag ``name`` (any spelling)."""
        if name.startswith("sha256:"):
            return self.images.get(name)
        image_id = self.tags.get(normalise_name(name))
        return self.images.get(image_id) if image_id else None

    async def _ping(self, request: web.Request) -> web.Response:
        return web.Response(text="OK", headers={"Api-Version": "1.41", "Docker-Experimental": "false"})

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"Version": "fake-24.0", "ApiVersion": "1.41", "MinAPIVersion": "1.12", "Os": "linux"}
        )

    async def _load(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            images = parse_save_archive(raw)
        except (_BadArchive, KeyError, TypeError, ValueError) as exc:
            return web.json_response({"message": f"failed to load: {exc}"}, status=500)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        if self.load_error is not None:
            message, self.load_error = self.load_error, None
            await response.write(
                json.dumps({"errorDetail": {"message": message}, "error": message}).encode() + b"\n"
            )
            await response.write_eof()
            return response
        for image in images:
            self.images[image.id] = image
            for tag in image.tags:
                self.tags[tag] = image.id
            names = [_familiar(tag) for tag in image.tags] or [f"ID: {image.id}"]
            for name in names:
                line = {"stream": f"Loaded image{'' if name.startswith('ID') else ':'} {name}\n"}
                await response.write(json.dumps(line).encode() + b"\r\n")
        await response.write_eof()
        return response

    async def _get(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        image = self.find(name)
        if image is None:
            return web.json_response({"message": f"reference does not exist: {name}"}, status=404)
        tags = image.tags if name.startswith("sha256:") else [normalise_name(name)]
        body = save_archive(image, tags)
        response = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
        await response.prepare(request)
        for start in range(0, len(body), 64 * 1024):
            await response.write(body[start : start + 64 * 1024])
        await response.write_eof()
        return response
