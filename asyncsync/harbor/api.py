"""A small Harbor v2.0 API client on the run's HTTP layer (:mod:`asyncsync.http`).

Harbor serves the Distribution API under ``/v2/`` and its own REST API under ``/api/v2.0/`` on
the same host. :class:`HarborAPI` speaks the second, with the same host slot, TLS settings and
credentials the run uses for the registry (``--creds``, auth files, a spec's ``credentials``),
sent as HTTP Basic: Harbor's API takes Basic credentials for users and robot accounts
(``robot$name``, ``robot$project+name``), never the registry's bearer tokens.

Endpoints used (Harbor 2.x):

* ``HEAD /api/v2.0/projects?project_name=P`` - 200 when the project exists, 404 when not;
* ``POST /api/v2.0/projects`` ``{"project_name": P, "metadata": {"public": "false"}}`` - 201;
  409 when it exists (a concurrent creator won: not an error);
* ``GET /api/v2.0/projects`` and ``/api/v2.0/projects/{P}/repositories`` - paginated with
  ``page``/``page_size`` (Harbor caps ``page_size`` at 100), ``Link: <...>; rel="next"`` and
  ``X-Total-Count``; repository ``name`` is the full ``P/NAME``;
* ``GET /api/v2.0/projects/{P}/repositories/{R}/artifacts?with_tag=true`` - artifacts with
  their tags. ``R`` is the repository path without the project, URL-encoded *twice* when it
  contains ``/`` (``a/b`` -> ``a%252Fb``), as Harbor's API requires;
* ``GET /api/v2.0/repositories?q=blob_digest=<digest>`` - repositories holding an artifact that
  references the blob. This is a real Harbor query (``RepoRecord.FilterByBlobDigest`` in
  ``src/pkg/repository/model/model.go`` joins ``artifact_blob``): it finds blobs of pushed
  manifests, within the projects the caller may see (all for an admin, public ones for a robot
  account). Only the first page is read (see :meth:`HarborAPI.repositories_with_blob`);
* ``DELETE /api/v2.0/projects/{P}/repositories/{R}/artifacts/{digest}/tags/{tag}`` - removes one
  tag and leaves the artifact (and its other tags) alone;
* ``GET /api/v2.0/projects/{P}/immutabletagrules`` - the project's tag-immutability rules,
  paginated, with ``X-Is-Resource-Name: true`` so that a numeric project name is not taken for
  a project id (see :mod:`asyncsync.harbor.immutable`).

Requests go through the same :class:`~asyncsync.http.session.HttpSession` as the registry's:
same aiohttp session, proxies, host slot, TLS settings and retry policy. Errors become the
error tree in :mod:`asyncsync.http.errors`, as the registry's do
(:func:`~asyncsync.errors.registry_error` on Harbor's ``{"errors": [{"code", "message"}]}``
bodies). URLs in messages never carry credentials.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import orjson
import yarl

from asyncsync.digest import Digest
from asyncsync.errors import InvalidReferenceError, NotFoundError, RegistryError
from asyncsync.harbor.immutable import ImmutableRule, parse_rules
from asyncsync.http.errors import error_from_response, mapped
from asyncsync.http.session import Response, read_response
from asyncsync.registry.auth import basic_header
from asyncsync.registry.client import RegistryClient

API = "/api/v2.0"
#: Harbor refuses page sizes above 100.
PAGE_SIZE = 100
MAX_PAGES = 10_000
MAX_BODY = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class HarborAccessory:
    """An accessory of an artifact (Harbor 2.5+): a cosign signature (``signature.cosign``), an
    OCI referrer (``subject.accessory``), ...; its digest and Harbor's type name."""

    digest: Digest
    type: str


@dataclass(frozen=True, slots=True)
class HarborArtifact:
    """One artifact of a repository: its manifest digest and media type, its tags (sorted) and its
    accessories (signatures, SBOMs: attachments, not images of their own)."""

    digest: Digest
    media_type: str
    tags: tuple[str, ...]
    accessories: tuple[HarborAccessory, ...] = ()


def _accessories(item: dict[str, Any]) -> tuple[HarborAccessory, ...]:
    """The ``accessories`` of an artifact listed ``with_accessory=true``; malformed ones are ignored
    (they only cost the attachment walk a lookup)."""
    found = []
    for entry in item.get("accessories") or ():
        if not isinstance(entry, dict):
            continue
        try:
            digest = Digest.parse(str(entry.get("digest", "")))
        except InvalidReferenceError:
            continue
        found.append(HarborAccessory(digest, str(entry.get("type") or "")))
    return tuple(found)


def project_of(repository: str) -> tuple[str, str]:
    """``("proj", "a/b")`` for ``proj/a/b``; Harbor keeps every repository in a project."""
    project, sep, rest = repository.partition("/")
    if not sep or not project or not rest:
        raise NotFoundError(404, "NOT_FOUND", f"{repository!r} is not a Harbor repository (PROJECT/NAME)")
    return project, rest


def _segment(text: str) -> str:
    return quote(text, safe="")


def _repository_segment(name: str) -> str:
    # Harbor unescapes repository path parameters once more than the router does.
    return _segment(_segment(name))


class HarborAPI:
    """The Harbor API of the registry ``client`` talks to (same host, options and credentials)."""

    def __init__(self, client: RegistryClient, *, page_size: int = PAGE_SIZE) -> None:
        if not 1 <= page_size <= PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {PAGE_SIZE}")
        self.client = client
        self.page_size = page_size

    @property
    def registry(self) -> str:
        return self.client.registry

    async def _authorization(self) -> str | None:
        creds = await self.client.credentials()
        if creds is None or not creds.username:
            return None
        # Harbor's API takes Basic credentials; ``$`` and ``+`` of robot names travel inside base64.
        return basic_header(creds)

    async def _exchange(
        self,
        method: str,
        target: str,
        *,
        ok: tuple[int, ...],
        what: str,
        body: bytes | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Response:
        """One request to ``target`` (a path with its already-encoded query, or a same-host URL)."""
        base = await self.client.base_url()
        url = yarl.URL(target if target.startswith(("http://", "https://")) else base + target, encoded=True)
        origin = yarl.URL(base)
        if (url.scheme, url.host, url.port) != (origin.scheme, origin.host, origin.port):
            # A pagination link to another origin must not receive our credentials.
            raise RegistryError(502, "", "Harbor answered a link to another host", what=what)
        headers = {"Accept": "application/json", **(extra_headers or {})}
        if body is not None:
            headers["Content-Type"] = "application/json"
        authorization = await self._authorization()
        session = self.client.session

        async def attempt() -> Response:
            with mapped(what):
                async with session.limiters.hold(self.client.host):
                    response = await session.send(
                        method,
                        str(url),
                        ssl=self.client.ssl,
                        what=what,
                        headers=headers,
                        data=body,
                        authorization=authorization,
                    )
                    try:
                        if response.status not in ok:
                            raise await error_from_response(response, what)
                        answer = await read_response(response, MAX_BODY)
                    finally:
                        response.release()
            if answer is None:
                raise RegistryError(502, "", "Harbor answer larger than 16 MiB", what=what)
            return answer

        return await session.retrying(attempt, what)

    async def _paged(
        self, path: str, query: Mapping[str, str], what: str, headers: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a paginated list endpoint, following ``Link`` (or short pages)."""
        params = {**query, "page": "1", "page_size": str(self.page_size)}
        target: str | None = f"{path}?{urlencode(params, quote_via=quote)}"
        items: list[dict[str, Any]] = []
        pages = 0
        while target is not None and pages < MAX_PAGES:
            pages += 1
            answer = await self._exchange("GET", target, ok=(200,), what=what, extra_headers=headers)
            page = _json_list(answer.body, what)
            items.extend(page)
            if answer.next_link is not None:
                target = answer.next_link
            elif len(page) >= self.page_size and pages * self.page_size < _total(answer, len(items)):
                params["page"] = str(pages + 1)
                target = f"{path}?{urlencode(params, quote_via=quote)}"
            else:
                target = None
        return items

    # -- projects --------------------------------------------------------------------------------

    async def _exists(self, method: str, target: str, what: str) -> bool:
        """Whether ``target`` answers 200 (``True``) or 404 (``False``); other answers raise."""
        answer = await self._exchange(method, target, ok=(200, 404), what=what)
        return answer.status == 200

    async def project_exists(self, project: str) -> bool:
        """Whether ``project`` exists (``HEAD /projects?project_name=``)."""
        return await self._exists(
            "HEAD",
            f"{API}/projects?{urlencode({'project_name': project}, quote_via=quote)}",
            f"checking Harbor project {project!r} on {self.registry}",
        )

    async def create_project(self, project: str, *, public: bool = False) -> bool:
        """Create ``project``; ``True`` when this call created it, ``False`` when it existed (409)."""
        body = orjson.dumps({"project_name": project, "metadata": {"public": "true" if public else "false"}})
        answer = await self._exchange(
            "POST",
            f"{API}/projects",
            ok=(201, 409),
            body=body,
            what=f"creating Harbor project {project!r} on {self.registry}",
        )
        return answer.status == 201

    async def list_projects(self) -> list[str]:
        """Names of every project the credentials may see."""
        return _names(await self._paged(f"{API}/projects", {}, f"listing Harbor projects of {self.registry}"))

    async def immutable_rules(self, project: str) -> tuple[ImmutableRule, ...]:
        """The tag-immutability rules of ``project``, disabled ones included.

        Raises the error tree for a refused request (401/403: the account may not read them;
        robot accounts usually may not) and :class:`~asyncsync.errors.UsageError` for a rule
        it cannot read."""
        items = await self._paged(
            f"{API}/projects/{_segment(project)}/immutabletagrules",
            {},
            f"reading the tag immutability rules of Harbor project {project!r} on {self.registry}",
            {"X-Is-Resource-Name": "true"},
        )
        return parse_rules(items)

    # -- repositories and artifacts --------------------------------------------------------------

    async def list_repositories(self, project: str) -> list[str]:
        """Full names (``project/...``) of the repositories of ``project``."""
        what = f"listing repositories of Harbor project {project!r} on {self.registry}"
        return _names(await self._paged(f"{API}/projects/{_segment(project)}/repositories", {}, what))

    async def repository_exists(self, repository: str) -> bool:
        project, name = project_of(repository)
        return await self._exists(
            "GET",
            f"{API}/projects/{_segment(project)}/repositories/{_repository_segment(name)}",
            f"reading Harbor repository {self.registry}/{repository}",
        )

    async def list_artifacts(self, repository: str) -> list[HarborArtifact]:
        """Artifacts of ``repository`` with their tags; raises NotFoundError for an unknown repository."""
        project, name = project_of(repository)
        what = f"listing artifacts of {self.registry}/{repository}"
        items = await self._paged(
            f"{API}/projects/{_segment(project)}/repositories/{_repository_segment(name)}/artifacts",
            {"with_tag": "true", "with_accessory": "true"},
            what,
        )
        if not items and not await self.repository_exists(repository):
            # An unknown repository lists as empty on some Harbor versions: tell the two apart.
            raise NotFoundError(404, "NOT_FOUND", "repository not found", what=what)
        artifacts = []
        for item in items:
            try:
                digest = Digest.parse(str(item.get("digest", "")))
            except InvalidReferenceError as exc:
                raise RegistryError(502, "", f"Harbor answered an invalid digest: {exc}", what=what) from None
            tags = item.get("tags") or []
            names = sorted(t["name"] for t in tags if isinstance(t, dict) and isinstance(t.get("name"), str))
            media_type = str(item.get("manifest_media_type") or "")
            artifacts.append(HarborArtifact(digest, media_type, tuple(names), _accessories(item)))
        return artifacts

    async def repositories_with_blob(self, digest: Digest, *, limit: int = 10) -> list[str]:
        """Up to ``limit`` repositories (full names) holding an artifact that references ``digest``.

        One page only: a mount needs a few candidates, and a Harbor too old to know the
        ``blob_digest`` key (it would list every repository) then costs one request, not a walk.
        """
        query = urlencode(
            {"q": f"blob_digest={digest}", "page": "1", "page_size": str(limit)}, quote_via=quote
        )
        answer = await self._exchange(
            "GET",
            f"{API}/repositories?{query}",
            ok=(200,),
            what=f"finding repositories with blob {digest.short} on {self.registry}",
        )
        return _names(_json_list(answer.body, "finding repositories with a blob"))

    async def delete_tag(self, repository: str, digest: Digest, tag: str) -> None:
        """Remove ``tag`` from the artifact ``digest`` of ``repository`` (the artifact stays)."""
        project, name = project_of(repository)
        await self._exchange(
            "DELETE",
            f"{API}/projects/{_segment(project)}/repositories/{_repository_segment(name)}"
            f"/artifacts/{_segment(str(digest))}/tags/{_segment(tag)}",
            ok=(200,),
            what=f"deleting tag {self.registry}/{repository}:{tag}",
        )


def _json_list(body: bytes, what: str) -> list[dict[str, Any]]:
    if not body.strip():
        return []  # Harbor answers "null" or nothing for an empty page on some versions
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise RegistryError(502, "", "Harbor answered invalid JSON", what=what) from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise RegistryError(502, "", "Harbor answered an unexpected document", what=what)
    return [item for item in data if isinstance(item, dict)]


def _names(items: Iterable[dict[str, Any]]) -> list[str]:
    """The sorted, distinct ``name`` fields of Harbor's list items (projects, repositories)."""
    return sorted({str(item["name"]) for item in items if isinstance(item.get("name"), str)})


def _total(answer: Response, seen: int) -> int:
    total = answer.headers.get("X-Total-Count", "")
    # Without a count, a full page means "maybe more": ask for one more page.
    return int(total) if total.isdigit() else seen + 1
