"""Tag-immutability rules of the Harbor-compatible test server (:mod:`tests.helpers.harbor_server`).

:class:`RuleBook` keeps each project's rules and renders them as Harbor's
``/projects/{p}/immutabletagrules`` lists them (``id``, ``disabled``, ``action``, ``template``,
``tag_selectors`` and ``scope_selectors.repository``, each selector ``kind: doublestar``,
``decoration``, ``pattern``). :meth:`RuleBook.immutable` decides the server's 412s the way
Harbor's matcher does: an enabled rule whose repository selector (on the repository path without
the project) and tag selector both select the tag.

The patterns are matched by :func:`glob_regex`, a translation written for this server, kept
independent of ``asyncsync.harbor.doublestar`` so that the integration tests compare two
implementations. It covers the subset the tests use: ``*``, ``?``, ``{a,b}`` (without ``/``
inside) and ``**`` inside a component (like ``*``) or as a whole component (any number of
components); an empty pattern matches everything, as in Harbor. Anything else raises
``ValueError``.
"""

from __future__ import annotations

import itertools
import re
import threading
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.helpers.harbor_state import Account, HarborState, error_response, paged_response

__all__ = ["Rule", "RuleBook", "glob_regex", "immutable_response"]


@dataclass(frozen=True)
class Rule:
    rule_id: int
    repositories: str
    tags: str
    repository_decoration: str = "repoMatches"
    tag_decoration: str = "matches"
    disabled: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.rule_id,
            "priority": 0,
            "disabled": self.disabled,
            "action": "immutable",
            "template": "immutable_template",
            "params": {},
            "tag_selectors": [
                {"kind": "doublestar", "decoration": self.tag_decoration, "pattern": self.tags}
            ],
            "scope_selectors": {
                "repository": [
                    {
                        "kind": "doublestar",
                        "decoration": self.repository_decoration,
                        "pattern": self.repositories,
                    }
                ]
            },
        }

    def selects(self, repository: str, tag: str) -> bool:
        if self.disabled:
            return False
        repo_hit = glob_regex(self.repositories).fullmatch(repository) is not None
        tag_hit = glob_regex(self.tags).fullmatch(tag) is not None
        repo_selected = repo_hit if self.repository_decoration == "repoMatches" else not repo_hit
        tag_selected = tag_hit if self.tag_decoration == "matches" else not tag_hit
        return repo_selected and tag_selected


class RuleBook:
    """Thread-safe rules per project name (the front's loop and the test thread share it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str, list[Rule]] = {}
        self._ids = itertools.count(1)

    def add(
        self,
        project: str,
        *,
        repositories: str = "**",
        tags: str = "**",
        exclude_repositories: bool = False,
        exclude_tags: bool = False,
        disabled: bool = False,
    ) -> Rule:
        glob_regex(repositories), glob_regex(tags)  # refuse patterns the server cannot evaluate
        with self._lock:
            rule = Rule(
                next(self._ids),
                repositories,
                tags,
                "repoExcludes" if exclude_repositories else "repoMatches",
                "excludes" if exclude_tags else "matches",
                disabled,
            )
            self._rules.setdefault(project, []).append(rule)
            return rule

    def rules(self, project: str, *, all_immutable: bool = False) -> list[Rule]:
        """The project's rules; an all-immutable project shows Harbor's ``**``/``**`` rule first."""
        with self._lock:
            rules = list(self._rules.get(project, []))
        if all_immutable:
            rules.insert(0, Rule(0, "**", "**"))
        return rules

    def immutable(self, project: str, repository: str, tag: str, *, all_immutable: bool = False) -> bool:
        """Whether ``tag`` of ``project/repository`` is immutable (``repository`` without project)."""
        return any(rule.selects(repository, tag) for rule in self.rules(project, all_immutable=all_immutable))

    def tag_immutable(self, state: HarborState, repository: str, tag: str) -> bool:
        """:meth:`immutable` for a full ``project/path`` name of ``state`` (an ``immutable`` project
        has Harbor's ``**``/``**`` rule)."""
        project_name, _, path = repository.partition("/")
        with state.lock:
            project = state.projects.get(project_name)
            all_immutable = project is not None and project.immutable
        return self.immutable(project_name, path, tag, all_immutable=all_immutable)

    def refused_tag(self, state: HarborState, method: str, repository: str, reference: str) -> str | None:
        """The immutable tag a manifest ``PUT``/``DELETE`` of ``repository:reference`` would move
        or remove (Harbor answers 412), or ``None``. A tag pushed for the first time is accepted."""
        is_tag = not reference.startswith("sha256:")
        if method == "PUT" and is_tag:
            exists = state.tagged(repository, reference) is not None
            return reference if exists and self.tag_immutable(state, repository, reference) else None
        if method == "DELETE":
            with state.lock:
                artifact = state.artifacts.get(repository, {}).get(reference)
                tags = sorted(artifact.tags) if artifact is not None else []
            return next((tag for tag in tags if self.tag_immutable(state, repository, tag)), None)
        return None

    def response(self, request: web.Request, state: HarborState, account: Account | None) -> web.Response:
        """``GET /projects/{p}/immutabletagrules`` for ``account`` (already authenticated, or None)."""
        if account is None:
            return error_response(401, "UNAUTHORIZED", "unauthorized")
        key = request.match_info["project"]
        by_name = request.headers.get("X-Is-Resource-Name", "false").lower() == "true"
        with state.lock:
            if not by_name and key.isdigit():
                project = next((p for p in state.projects.values() if p.project_id == int(key)), None)
            else:
                project = state.projects.get(key)
            if project is None:
                return error_response(404, "NOT_FOUND", f"project {key} not found")
            if account.kind == "robot" or not state.is_member(account, project.name):
                return error_response(403, "FORBIDDEN", "forbidden")
            all_immutable = project.immutable
        rules = self.rules(project.name, all_immutable=all_immutable)
        return paged_response(request, [rule.to_json() for rule in rules])


def immutable_response(repository: str, tag: str) -> web.Response:
    """Harbor's 412 for moving or deleting an immutable tag."""
    message = (
        f"Failed to process request due to '{repository.split('/', 1)[-1]}:{tag}' configured as immutable."
    )
    return error_response(412, "PRECONDITION", message)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """The regular expression (for ``fullmatch``) of a doublestar pattern of the supported subset."""
    if not pattern or pattern == "**":
        return re.compile(r".*", re.DOTALL)
    parts = pattern.split("/")
    out = ""
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**" and not last:
            out += r"(?:[^/]*/)*"  # any number of whole components, each with its "/"
            continue
        out += r".*" if part == "**" else _component(part)
        if not last:
            out += "/"
    return re.compile(out, re.DOTALL)


def _component(part: str) -> str:
    out = ""
    index = 0
    while index < len(part):
        char = part[index]
        if char == "*":
            out += r"[^/]*"
        elif char == "?":
            out += r"[^/]"
        elif char == "{":
            end = part.find("}", index)
            if end == -1 or "{" in part[index + 1 : end]:
                raise ValueError(f"unsupported pattern {part!r}")
            options = part[index + 1 : end].split(",")
            out += "(?:" + "|".join(_component(option) for option in options) + ")"
            index = end
        elif char in "[]\\}":
            raise ValueError(f"unsupported pattern {part!r}")
        else:
            out += re.escape(char)
        index += 1
    return out
