"""A Harbor-compatible test server: token service + ``/api/v2.0`` in front of a real ``docker-registry``.

:class:`HarborServer` composes pieces of the test bed instead of imitating the registry:

* a :class:`~tests.helpers.token_service.TokenService` whose policy is
  :meth:`HarborState.token_policy <tests.helpers.harbor_state.HarborState.token_policy>`;
* a real CNCF distribution registry (:func:`~tests.helpers.registry.start_registry`, ``token``
  flavour) that verifies those tokens;
* a front server (aiohttp, own thread and loop) on one port, like Harbor's nginx + core: it
  serves the token endpoint at ``/service/token`` (forwarded to the token service, so the realm
  is on the registry's own host, as with Harbor), proxies ``/v2/`` to the registry, records
  artifacts from the manifest PUTs/DELETEs it proxies, and serves the API.

Harbor behaviours reproduced:

* the token realm is ``https?://<harbor>/service/token`` on the registry's host; robot accounts
  named ``robot$name`` (system: every project) and ``robot$project+name`` (one project)
  authenticate with Basic credentials at the token service and the API;
* **no push into a project that does not exist**: the token grants nothing there, and the
  registry answers 401 "unauthorized" (what Harbor clients see); ``_catalog`` only for the admin;
* ``HEAD/GET/POST /api/v2.0/projects`` (201, 409 CONFLICT when it exists, 403 for robot
  accounts, 401 for wrong credentials), ``GET /projects/{p}``, ``/projects/{p}/repositories``,
  ``/projects/{p}/repositories/{r}`` and ``.../artifacts?with_tag=true`` with Harbor's paging
  (``page``, ``page_size`` up to 100, ``X-Total-Count``, ``Link: <...>; rel="next"``) and
  double-URL-encoded repository names (``a/b`` as ``a%252Fb``; single encoding is a 404);
* ``GET /api/v2.0/repositories?q=blob_digest=<digest>``: repositories with an artifact that
  references the blob; the admin sees every project, ordinary users their projects and public
  ones, robot accounts only public ones (as Harbor's ``ListAllRepositories`` does);
* ``DELETE .../artifacts/{ref}/tags/{tag}`` removes only that tag;
* accessories (Harbor 2.8): a manifest pushed with a ``subject`` is a ``subject.accessory`` of it and
  a cosign ``sha256-<hex>.sig|att|sbom`` tag a ``signature.cosign`` (...) accessory of ``<hex>``;
  the artifacts list leaves accessories out and shows them under their subject with
  ``with_accessory=true``; ``GET /v2/<repo>/referrers/<digest>`` lists the ``subject.accessory``
  ones (``artifactType`` filter, ``OCI-Filters-Applied``), served by the front without an auth
  check (the registry behind still checks every pull of what it lists);
* tag immutability: a manifest PUT to an existing tag that the project's rules keep immutable
  answers **412** ``PRECONDITION`` ("... configured as immutable"), as does deleting a tagged
  manifest or tag. Rules (:mod:`tests.helpers.harbor_rules`: doublestar repository and tag
  patterns, ``matches``/``excludes`` decorations, disabled rules) are added with
  ``server.rules.add(project, repositories=..., tags=...)``; a project created ``immutable=True``
  has Harbor's ``**``/``**`` rule. ``GET /api/v2.0/projects/{p}/immutabletagrules`` lists them (paged; ``p``
  is a name with ``X-Is-Resource-Name: true``, else an id when numeric) to members and the
  admin; robot accounts get 403, as Harbor's default robot permissions give.

Not reproduced: the web UI, sessions/CSRF, OIDC, quotas, replication, scanning, retention,
labels, webhooks, proxy-cache projects, member roles finer than "member" (members may push and
delete), creating rules through the API, doublestar patterns beyond the subset
:mod:`tests.helpers.harbor_rules` supports, Harbor's own ``/v2/`` catalog and tag listing (the
registry serves them), artifacts pushed around the front server, HTTPS, and pull counting.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import json
import re
import secrets
import shutil
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote

import aiohttp
from aiohttp import web

from tests.helpers.harbor_rules import RuleBook, immutable_response
from tests.helpers.harbor_state import (
    Account,
    Artifact,
    HarborState,
    Project,
    accessory_json,
    artifact_json,
    error_response,
    paged_response,
    project_json,
)
from tests.helpers.registry import RegistryServer, start_registry
from tests.helpers.token_service import TokenService

__all__ = ["HarborServer"]

_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te", "trailer"}
)
_IMAGE_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HarborServer:
    """A running Harbor look-alike (see the module docstring). Use ``with HarborServer(dir) as h``."""

    def __init__(
        self, base_dir: Path, *, admin_password: str | None = None, token_expires_in: int = 1800
    ) -> None:
        self.base_dir = base_dir
        self.admin_password = admin_password or secrets.token_urlsafe(12)
        self.state = HarborState(self.admin_password)
        #: tag-immutability rules per project (``rules.add(project, repositories=, tags=, ...)``)
        self.rules = RuleBook()
        self.token_service = TokenService(
            users={}, anonymous_actions=(), expires_in=token_expires_in, policy=self.state.token_policy
        )
        #: Seconds the front waits before answering each blob upload PATCH/PUT (slow networks).
        self.upload_delay = 0.0
        #: ``account`` query parameters the token endpoint received, in order.
        self.token_accounts: list[str | None] = []
        #: ``(method, path_qs, status)`` of every API request.
        self.api_requests: list[tuple[str, str, int]] = []
        #: ``"METHOD repository:reference"`` of every request refused with 412 (immutable).
        self.refusals: list[str] = []
        self.registry: RegistryServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._port = 0

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Self:
        self.token_service.start()
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="harbor-front", daemon=True)
        self._thread.start()
        try:
            self._port = asyncio.run_coroutine_threadsafe(self._serve(), loop).result(10)
            self.registry = start_registry(
                "token",
                base_dir=self.base_dir / "registry",
                username="admin",
                password=self.admin_password,
                token_service=self.token_service,
                extra_config={"auth": {"token": {"realm": f"{self.url}/service/token"}}},
            )
        except BaseException:
            self.stop()
            raise
        self._sync_users()
        return self

    def stop(self) -> None:
        registry, self.registry = self.registry, None
        try:
            if registry is not None:
                registry.stop()
        finally:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
            if loop is not None and thread is not None:
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
                loop.call_soon_threadsafe(loop.stop)
                thread.join(10)
                loop.close()
            self.token_service.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def _serve(self) -> int:
        self._http = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=120))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/service/token", self._token)
        app.router.add_get("/v2/{repo:.+}/referrers/{digest}", self._referrers)
        app.router.add_route("*", "/v2/{tail:.*}", self._proxy)
        api = "/api/v2.0"
        app.router.add_route("*", f"{api}/projects", self._projects)
        app.router.add_get(f"{api}/projects/{{project}}", self._project)
        app.router.add_get(f"{api}/projects/{{project}}/repositories", self._repositories)
        app.router.add_get(f"{api}/projects/{{project}}/immutabletagrules", self._immutable_rules)
        app.router.add_get(f"{api}/projects/{{project}}/repositories/{{repo}}", self._repository)
        app.router.add_get(f"{api}/projects/{{project}}/repositories/{{repo}}/artifacts", self._artifacts)
        app.router.add_delete(
            f"{api}/projects/{{project}}/repositories/{{repo}}/artifacts/{{ref}}/tags/{{tag}}",
            self._delete_tag,
        )
        app.router.add_get(f"{api}/repositories", self._all_repositories)
        app.middlewares.append(self._record_api)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return int(runner.addresses[0][1])

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    # -- addresses and setup ---------------------------------------------------------------------

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def _sync_users(self) -> None:
        self.token_service.users.clear()
        self.token_service.users.update(self.state.passwords())

    def add_project(self, name: str, *, public: bool = False, immutable: bool = False) -> Project:
        return self.state.add_project(name, public=public, immutable=immutable)

    def tag_immutable(self, repository: str, tag: str) -> bool:
        """Whether the rules keep ``tag`` of ``repository`` (``project/path``) immutable."""
        return self.rules.tag_immutable(self.state, repository, tag)

    def add_robot(self, name: str, password: str, project: str | None = None) -> Account:
        account = self.state.add_robot(name, password, project)
        self._sync_users()
        return account

    def add_user(self, name: str, password: str, projects: tuple[str, ...] = ()) -> Account:
        account = self.state.add_user(name, password, projects)
        self._sync_users()
        return account

    def as_registry(self) -> RegistryServer:
        """A :class:`RegistryServer` view whose address is the front (for the image helpers, as admin).

        Only for pushing/reading through the front; never ``stop()`` it (the server owns the process).
        """
        assert self.registry is not None
        return dataclasses.replace(self.registry, host=self.host)

    def api_count(self, method: str, path_prefix: str) -> int:
        return sum(1 for m, path, _ in self.api_requests if m == method and path.startswith(path_prefix))

    # -- token endpoint and registry proxy -------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        assert self._http is not None
        self.token_accounts.append(request.query.get("account"))
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        async with self._http.request(
            request.method,
            f"{self.token_service.realm}?{request.query_string}",
            headers=headers,
            data=await request.read() if request.body_exists else None,
        ) as upstream:
            body = await upstream.read()
            keep = {
                k: v for k, v in upstream.headers.items() if k.lower() in ("content-type", "www-authenticate")
            }
            return web.Response(status=upstream.status, body=body, headers=keep)

    async def _proxy(self, request: web.Request) -> web.StreamResponse:
        assert self._http is not None and self.registry is not None
        path = request.path
        manifest = _manifest_path(path)
        body: Any = None
        if manifest is not None and request.method in ("PUT", "DELETE"):
            refusal = self._immutable_refusal(request.method, *manifest)
            if refusal is not None:
                return refusal
        if request.method == "PUT" and manifest is not None:
            body = await request.read()
        elif request.body_exists:
            body = request.content.iter_chunked(64 * 1024)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS | {"host"}}
        headers["Host"] = self.host  # the registry builds upload Locations from it
        target = f"{self.registry.url}{request.raw_path}"
        async with self._http.request(
            request.method, target, headers=headers, data=body, allow_redirects=False
        ) as upstream:
            if manifest is not None and upstream.status in (201, 202):
                self._record(request, manifest, body, upstream)
            if "/blobs/uploads/" in path and request.method in ("PATCH", "PUT") and self.upload_delay:
                await asyncio.sleep(self.upload_delay)
            response = web.StreamResponse(status=upstream.status)
            for key, value in upstream.headers.items():
                if key.lower() not in _HOP_HEADERS and key.lower() != "content-length":
                    response.headers.add(key, value)
            if "Content-Length" in upstream.headers:
                response.content_length = int(upstream.headers["Content-Length"])
            await response.prepare(request)
            if request.method != "HEAD":
                async for chunk in upstream.content.iter_chunked(64 * 1024):
                    await response.write(chunk)
            await response.write_eof()
            return response

    def _immutable_refusal(self, method: str, repository: str, reference: str) -> web.Response | None:
        tag = self.rules.refused_tag(self.state, method, repository, reference)
        if tag is None:
            return None
        self.refusals.append(f"{method} {repository}:{reference}")
        return immutable_response(repository, tag)

    def _record(
        self, request: web.Request, manifest: tuple[str, str], body: Any, upstream: aiohttp.ClientResponse
    ) -> None:
        repository, reference = manifest
        if request.method == "DELETE":
            self.state.record_delete(repository, reference)
            return
        digest = upstream.headers.get("Docker-Content-Digest", "")
        media_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        document = json.loads(body)
        media_type = media_type or str(document.get("mediaType", ""))
        if "layers" in document or media_type in _IMAGE_TYPES:
            blobs = [document.get("config", {}).get("digest", "")]
            blobs += [layer.get("digest", "") for layer in document.get("layers", [])]
            references: tuple[str, ...] = ()
        else:
            references = tuple(str(m.get("digest", "")) for m in document.get("manifests", []))
            blobs = list(references)
        artifact = Artifact(digest, media_type, frozenset(b for b in blobs if b), references)
        _as_accessory(artifact, reference, document, len(body))
        self.state.record_push(repository, reference, artifact, is_tag=not reference.startswith("sha256:"))

    # -- API -------------------------------------------------------------------------------------

    @web.middleware
    async def _record_api(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if request.path.startswith("/api/"):
            self.api_requests.append((request.method, request.path_qs, response.status))
        return response

    def _caller(self, request: web.Request) -> tuple[Account | None, web.Response | None]:
        header = request.headers.get("Authorization")
        if header is None:
            return None, None
        scheme, _, value = header.partition(" ")
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep = ""
        account = self.state.authenticate(user, password) if scheme.lower() == "basic" and sep else None
        if account is None:
            return None, error_response(401, "UNAUTHORIZED", "unauthorized")
        return account, None

    def _readable_project(
        self, request: web.Request, name: str
    ) -> tuple[Project | None, Account | None, web.Response | None]:
        account, refusal = self._caller(request)
        if refusal is not None:
            return None, None, refusal
        project = self.state.projects.get(name)
        if project is None:
            return None, account, error_response(404, "NOT_FOUND", f"project {name} not found")
        if not self.state.can_read(account, project):
            status, code = (403, "FORBIDDEN") if account is not None else (401, "UNAUTHORIZED")
            return None, account, error_response(status, code, "forbidden")
        return project, account, None

    async def _projects(self, request: web.Request) -> web.StreamResponse:
        account, refusal = self._caller(request)
        if refusal is not None:
            return refusal
        if request.method == "HEAD":
            name = request.query.get("project_name", "")
            return web.Response(status=200 if name in self.state.projects else 404)
        if request.method == "POST":
            return await self._create_project(request, account)
        if request.method != "GET":
            return error_response(405, "METHOD_NOT_ALLOWED", "method not allowed")
        with self.state.lock:
            visible = [p for p in self.state.projects.values() if self.state.can_read(account, p)]
        items = [project_json(p) for p in sorted(visible, key=lambda p: p.name)]
        return paged_response(request, items)

    async def _create_project(self, request: web.Request, account: Account | None) -> web.Response:
        if account is None:
            return error_response(401, "UNAUTHORIZED", "unauthorized")
        if account.kind == "robot":
            return error_response(403, "FORBIDDEN", "forbidden")
        try:
            data = await request.json()
            name = str(data["project_name"])
        except (ValueError, KeyError, TypeError):
            return error_response(400, "BAD_REQUEST", "project_name is required")
        if not name or name != name.lower() or "/" in name:
            return error_response(400, "BAD_REQUEST", f"invalid project name {name!r}")
        public = str((data.get("metadata") or {}).get("public", "false")).lower() == "true"
        with self.state.lock:
            if name in self.state.projects:
                return error_response(409, "CONFLICT", f"The project named {name} already exists")
            project = self.state.add_project(name, public=public)
            if account.kind == "user" and account.projects is not None:
                account.projects = account.projects | {name}
        return web.Response(status=201, headers={"Location": f"/api/v2.0/projects/{project.project_id}"})

    async def _project(self, request: web.Request) -> web.Response:
        project, _, refusal = self._readable_project(request, request.match_info["project"])
        if refusal is not None:
            return refusal
        assert project is not None
        return web.json_response(project_json(project))

    def _repository_json(self, name: str) -> dict[str, Any]:
        project = self.state.projects[name.split("/", 1)[0]]
        return {
            "id": self.state.repository_id(name),
            "name": name,
            "project_id": project.project_id,
            "artifact_count": len(self.state.artifacts.get(name, {})),
            "pull_count": 0,
        }

    async def _repositories(self, request: web.Request) -> web.Response:
        project, _, refusal = self._readable_project(request, request.match_info["project"])
        if refusal is not None:
            return refusal
        assert project is not None
        with self.state.lock:
            items = [self._repository_json(name) for name in self.state.repositories(project.name)]
        return paged_response(request, items)

    def _repository_name(self, request: web.Request) -> str:
        # The router decoded the path once; Harbor decodes repository names a second time.
        return f"{request.match_info['project']}/{unquote(request.match_info['repo'])}"

    async def _repository(self, request: web.Request) -> web.Response:
        _, _, refusal = self._readable_project(request, request.match_info["project"])
        if refusal is not None:
            return refusal
        name = self._repository_name(request)
        if name not in self.state.repositories():
            return error_response(404, "NOT_FOUND", f"repository {name} not found")
        with self.state.lock:
            return web.json_response(self._repository_json(name))

    async def _artifacts(self, request: web.Request) -> web.Response:
        project, _, refusal = self._readable_project(request, request.match_info["project"])
        if refusal is not None:
            return refusal
        assert project is not None
        name = self._repository_name(request)
        with_tag = request.query.get("with_tag", "true").lower() != "false"
        with_accessory = request.query.get("with_accessory", "false").lower() == "true"
        with self.state.lock:
            every = sorted(self.state.artifacts.get(name, {}).values(), key=lambda a: -a.push_time)
            # Accessories are listed under their subject, never as artifacts of their own.
            artifacts = [a for a in every if not a.subject]
            items = [artifact_json(a, project, with_tag) for a in artifacts]
            if with_accessory:
                for item in items:
                    item["accessories"] = [accessory_json(a) for a in every if a.subject == item["digest"]]
        for item in items:
            for tag in item["tags"] or ():
                tag["immutable"] = self.tag_immutable(name, tag["name"])
        return paged_response(request, items)

    async def _referrers(self, request: web.Request) -> web.Response:
        """Harbor 2.8's referrers API: the ``subject.accessory`` accessories of a digest (no auth
        check here: the registry behind enforces pulls of what is listed)."""
        name, subject = request.match_info["repo"], request.match_info["digest"]
        with self.state.lock:
            entries = [
                {
                    "mediaType": a.media_type,
                    "digest": a.digest,
                    "size": a.size,
                    "artifactType": a.artifact_type,
                }
                for a in self.state.artifacts.get(name, {}).values()
                if a.subject == subject and a.accessory_type == "subject.accessory"
            ]
        wanted = request.query.get("artifactType")
        headers = {"Content-Type": "application/vnd.oci.image.index.v1+json"}
        if wanted:
            entries = [e for e in entries if e["artifactType"] == wanted]
            headers["OCI-Filters-Applied"] = "artifactType"
        document = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        }
        return web.Response(body=json.dumps(document).encode(), headers=headers)

    async def _immutable_rules(self, request: web.Request) -> web.Response:
        account, refusal = self._caller(request)
        return refusal or self.rules.response(request, self.state, account)

    async def _delete_tag(self, request: web.Request) -> web.Response:
        project, account, refusal = self._readable_project(request, request.match_info["project"])
        if refusal is not None:
            return refusal
        assert project is not None
        if not self.state.is_member(account, project.name):
            return error_response(403, "FORBIDDEN", "forbidden")
        name, tag = self._repository_name(request), request.match_info["tag"]
        if self.tag_immutable(name, tag):
            self.refusals.append(f"DELETE {name}:{tag}")
            return immutable_response(name, tag)
        if not self.state.remove_tag(name, tag):
            return error_response(404, "NOT_FOUND", f"tag {tag} not found")
        assert self.registry is not None
        # Harbor keeps tags in its database; here the registry's own tag link goes.
        link = self.registry.data_dir / "docker/registry/v2/repositories" / name / "_manifests/tags" / tag
        shutil.rmtree(link, ignore_errors=True)
        return web.Response(status=200)

    async def _all_repositories(self, request: web.Request) -> web.Response:
        account, refusal = self._caller(request)
        if refusal is not None:
            return refusal
        names = self.state.repositories()
        for clause in filter(None, request.query.get("q", "").split(",")):
            key, _, value = clause.partition("=")
            if key == "blob_digest":
                names = [n for n in names if n in set(self.state.repositories_with_blob(value))]
            elif key == "name":
                names = [n for n in names if (value[1:] in n if value.startswith("~") else n == value)]
            else:
                return error_response(400, "BAD_REQUEST", f"unsupported query key {key!r}")
        with self.state.lock:
            visible = []
            for name in names:
                project = self.state.projects[name.split("/", 1)[0]]
                robot = account is not None and account.kind == "robot"
                if project.public or (not robot and self.state.is_member(account, project.name)):
                    visible.append(self._repository_json(name))
        return paged_response(request, visible)


_COSIGN_TAG = re.compile(r"^sha256-([0-9a-f]{64})\.(sig|att|sbom)$")
_COSIGN_TYPES = {"sig": "signature.cosign", "att": "attestation.cosign", "sbom": "sbom.cosign"}


def _as_accessory(artifact: Artifact, reference: str, document: dict[str, Any], size: int) -> None:
    """Mark ``artifact`` an accessory as Harbor 2.8 does: a manifest with a ``subject`` is one of
    that subject (``subject.accessory``); a cosign ``sha256-<hex>.sig|att|sbom`` tag, of ``<hex>``."""
    artifact.size = size
    subject = document.get("subject")
    config = document.get("config") or {}
    artifact.artifact_type = str(document.get("artifactType") or config.get("mediaType") or "")
    if isinstance(subject, dict) and subject.get("digest"):
        artifact.subject, artifact.accessory_type = str(subject["digest"]), "subject.accessory"
        return
    cosign = _COSIGN_TAG.match(reference)
    if cosign is not None:
        artifact.subject, artifact.accessory_type = (
            f"sha256:{cosign.group(1)}",
            _COSIGN_TYPES[cosign.group(2)],
        )


def _manifest_path(path: str) -> tuple[str, str] | None:
    head, sep, reference = path.rpartition("/manifests/")
    if not sep or not head.startswith("/v2/") or "/" in reference:
        return None
    return head[len("/v2/") :], reference
