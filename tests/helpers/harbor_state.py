"""The "database" of the Harbor-compatible test server: projects, accounts, artifacts, permissions.

:class:`HarborState` is shared by three threads (the front server's loop, the token service's
loop, and the test), so every access takes its lock. It holds what Harbor keeps in its
database and the test server needs:

* **projects** (name, id, public, ``immutable``: every tag of the project is immutable, as a
  Harbor tag-immutability rule ``repositories: **, tags: **`` makes it);
* **accounts**: the admin, ordinary users (members of some projects) and robot accounts named as
  Harbor names them, ``robot$name`` (system level: every project) and ``robot$project+name``;
* **artifacts** per repository: manifest digest, media type, the blobs the manifest references
  (Harbor's ``artifact_blob`` table) and tags. The front server records them from the manifest
  PUTs and DELETEs it proxies, as Harbor's core does from the requests it serves.

:meth:`HarborState.token_policy` is the :class:`~tests.helpers.token_service.TokenService` policy:
it grants nothing on a repository outside an existing project, which is how Harbor refuses a
push into a missing project (the registry then answers 401 "unauthorized").

The module also renders the API's documents the way Harbor does: error bodies, paged lists
(``page``/``page_size``/``X-Total-Count``/``Link``), projects and artifacts with tags.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlencode

from aiohttp import web

from tests.helpers.token_service import Scope

AccountKind = Literal["admin", "user", "robot"]


@dataclass
class Project:
    project_id: int
    name: str
    public: bool = False
    immutable: bool = False


@dataclass
class Account:
    name: str
    password: str
    kind: AccountKind
    #: Projects a user is a member of / a robot may use; ``None`` = every project (system robot).
    projects: frozenset[str] | None = frozenset()


@dataclass
class Artifact:
    digest: str
    media_type: str
    blobs: frozenset[str]
    references: tuple[str, ...] = ()
    tags: dict[str, float] = field(default_factory=dict)
    push_time: float = field(default_factory=time.time)
    #: An accessory (Harbor 2.8+): the digest of its subject, and Harbor's accessory type
    #: (``subject.accessory`` for OCI referrers, ``signature.cosign`` for cosign's .sig tags).
    subject: str = ""
    accessory_type: str = ""
    artifact_type: str = ""
    size: int = 0


class HarborState:
    """Thread-safe projects, accounts and artifacts (see the module docstring)."""

    def __init__(self, admin_password: str) -> None:
        self.lock = threading.RLock()
        self.projects: dict[str, Project] = {}
        self.accounts: dict[str, Account] = {"admin": Account("admin", admin_password, "admin", None)}
        self.artifacts: dict[str, dict[str, Artifact]] = {}
        self._ids = itertools.count(1)
        self._repo_ids: dict[str, int] = {}

    # -- setup ---------------------------------------------------------------------------------

    def add_project(self, name: str, *, public: bool = False, immutable: bool = False) -> Project:
        with self.lock:
            if name in self.projects:
                raise ValueError(f"project {name} exists")
            project = self.projects[name] = Project(next(self._ids), name, public, immutable)
            return project

    def add_user(self, name: str, password: str, projects: tuple[str, ...] = ()) -> Account:
        with self.lock:
            account = self.accounts[name] = Account(name, password, "user", frozenset(projects))
            return account

    def add_robot(self, name: str, password: str, project: str | None = None) -> Account:
        """``robot$project+name`` for a project robot, ``robot$name`` for a system robot."""
        full = f"robot${project}+{name}" if project else f"robot${name}"
        with self.lock:
            projects = frozenset({project}) if project else None
            account = self.accounts[full] = Account(full, password, "robot", projects)
            return account

    def passwords(self) -> dict[str, str]:
        with self.lock:
            return {name: account.password for name, account in self.accounts.items()}

    # -- permissions ---------------------------------------------------------------------------

    def authenticate(self, name: str, password: str) -> Account | None:
        with self.lock:
            account = self.accounts.get(name)
        return account if account is not None and account.password == password else None

    def is_member(self, account: Account | None, project: str) -> bool:
        if account is None:
            return False
        return account.projects is None or project in account.projects

    def can_read(self, account: Account | None, project: Project) -> bool:
        return project.public or self.is_member(account, project.name)

    def token_policy(self, user: str | None, scope: Scope) -> tuple[str, ...]:
        with self.lock:
            account = self.accounts.get(user) if user is not None else None
            if scope.type == "registry":
                return ("*",) if account is not None and account.kind == "admin" else ()
            if scope.type != "repository" or "/" not in scope.name:
                return ()
            project = self.projects.get(scope.name.split("/", 1)[0])
            if project is None:
                return ()  # Harbor grants nothing in a project that does not exist
            if self.is_member(account, project.name):
                return ("pull", "push", "delete", "*")
            return ("pull",) if project.public else ()

    # -- artifacts -----------------------------------------------------------------------------

    def repository_id(self, repository: str) -> int:
        with self.lock:
            if repository not in self._repo_ids:
                self._repo_ids[repository] = next(self._ids)
            return self._repo_ids[repository]

    def tagged(self, repository: str, tag: str) -> Artifact | None:
        with self.lock:
            for artifact in self.artifacts.get(repository, {}).values():
                if tag in artifact.tags:
                    return artifact
            return None

    def record_push(self, repository: str, reference: str, artifact: Artifact, *, is_tag: bool) -> None:
        with self.lock:
            repo = self.artifacts.setdefault(repository, {})
            self.repository_id(repository)
            existing = repo.setdefault(artifact.digest, artifact)
            if is_tag:
                for other in repo.values():
                    other.tags.pop(reference, None)  # a tag names one artifact
                existing.tags[reference] = time.time()

    def record_delete(self, repository: str, digest: str) -> None:
        with self.lock:
            self.artifacts.get(repository, {}).pop(digest, None)

    def remove_tag(self, repository: str, tag: str) -> bool:
        with self.lock:
            artifact = self.tagged(repository, tag)
            if artifact is None:
                return False
            del artifact.tags[tag]
            return True

    def repositories(self, project: str | None = None) -> list[str]:
        with self.lock:
            return sorted(
                name
                for name, artifacts in self.artifacts.items()
                if artifacts and (project is None or name.split("/", 1)[0] == project)
            )

    def repositories_with_blob(self, digest: str) -> list[str]:
        with self.lock:
            return sorted(
                name
                for name, artifacts in self.artifacts.items()
                if any(digest in artifact.blobs for artifact in artifacts.values())
            )


# -- the JSON documents of the API ------------------------------------------------------------


def error_response(status: int, code: str, message: str) -> web.Response:
    """Harbor's error body: ``{"errors": [{"code", "message"}]}``."""
    return web.json_response({"errors": [{"code": code, "message": message}]}, status=status)


def paged_response(request: web.Request, items: list[dict[str, Any]]) -> web.Response:
    """One page of ``items`` as Harbor pages lists: ``page``, ``page_size`` <= 100, ``X-Total-Count``,
    ``Link: <...>; rel="next"``."""
    try:
        page = int(request.query.get("page", "1"))
        size = int(request.query.get("page_size", "10"))
    except ValueError:
        return error_response(400, "BAD_REQUEST", "invalid page or page_size")
    if page < 1 or not 1 <= size <= 100:
        return error_response(400, "BAD_REQUEST", "page must be >= 1 and page_size between 1 and 100")
    chunk = items[(page - 1) * size : page * size]
    response = web.json_response(chunk)
    response.headers["X-Total-Count"] = str(len(items))
    if page * size < len(items):
        query = {k: v for k, v in request.query.items() if k not in ("page", "page_size")}
        query.update(page=str(page + 1), page_size=str(size))
        response.headers["Link"] = f'<{request.path}?{urlencode(query, quote_via=quote)}>; rel="next"'
    return response


def project_json(project: Project) -> dict[str, Any]:
    return {
        "project_id": project.project_id,
        "name": project.name,
        "metadata": {"public": "true" if project.public else "false"},
    }


def accessory_json(accessory: Artifact) -> dict[str, Any]:
    return {
        "digest": accessory.digest,
        "type": accessory.accessory_type,
        "subject_artifact_digest": accessory.subject,
        "size": accessory.size,
    }


def artifact_json(artifact: Artifact, project: Project, with_tag: bool) -> dict[str, Any]:
    tags = [
        {"name": name, "immutable": project.immutable, "push_time": when}
        for name, when in sorted(artifact.tags.items())
    ]
    return {
        "digest": artifact.digest,
        "manifest_media_type": artifact.media_type,
        "project_id": project.project_id,
        "references": [{"child_digest": d} for d in artifact.references] or None,
        "tags": (tags or None) if with_tag else None,
    }
