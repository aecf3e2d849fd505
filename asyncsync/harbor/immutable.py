"""Harbor tag-immutability rules: their model, Harbor's evaluation, and a per-run cache.

Harbor refuses (HTTP 412) to move an existing tag that one of its project's immutability rules
selects. The rules are readable at ``GET /api/v2.0/projects/{project}/immutabletagrules``
(:meth:`~asyncsync.harbor.api.HarborAPI.immutable_rules`), so a sync can skip such an image
before uploading any of its blobs instead of learning it from the final manifest PUT.

:func:`tag_immutable` evaluates them as Harbor does (``src/pkg/immutable/match/rule/match.go``
with the doublestar selector of ``src/lib/selector/selectors/doublestar/selector.go``, as called
by the tag controller's ``populateImmutableStatus``):

* disabled rules are ignored, and so is a rule without a ``repository`` scope selector or
  without a tag selector; only the *first* selector of each list counts;
* the candidate is the repository path *without* the project (``proj/a/b`` -> ``a/b``) and the
  one tag; the namespace is not set, so ``nsMatches``/``nsExcludes`` select nothing;
* decorations: ``matches``/``excludes`` test the tag, ``repoMatches``/``repoExcludes`` the
  repository (whatever list the selector sits in, as in Harbor); an empty pattern matches
  everything; patterns are doublestar globs (:mod:`asyncsync.harbor.doublestar`);
* a tag is immutable when some enabled rule's repository selector and tag selector both select it.

When Harbor cannot evaluate a rule (a selector kind other than ``doublestar``, an unknown
decoration, a malformed pattern) its matcher fails and the tag counts as mutable. Which rules
Harbor evaluates before failing depends on its internal order, so :func:`tag_immutable` then
answers ``None`` ("unknown"): the caller copies and Harbor's own 412, if any, decides.

:class:`ImmutabilityRules` fetches each destination project's rules once per run (single-flight,
at most :data:`FETCH_CONCURRENCY` projects at once) and keeps them for that run only: rules may
change between runs. A project whose rules cannot be read (401/403: robot accounts usually may
not; any other failure) is "unknown" for the run, logged once at info level.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from asyncsync.errors import AsyncSyncError, AuthenticationError, PermissionDeniedError, UsageError
from asyncsync.harbor import doublestar
from asyncsync.limits import SingleFlight

log = logging.getLogger("asyncsync.harbor")

#: Projects whose rules are fetched at the same time.
FETCH_CONCURRENCY = 4

_TAG_DECORATIONS = {"matches": False, "excludes": True}
_REPOSITORY_DECORATIONS = {"repoMatches": False, "repoExcludes": True}
_NAMESPACE_DECORATIONS = frozenset({"nsMatches", "nsExcludes"})


@dataclass(frozen=True, slots=True)
class Selector:
    """One selector of a rule: ``kind`` (``doublestar``), ``decoration`` and ``pattern``."""

    kind: str
    decoration: str
    pattern: str


@dataclass(frozen=True, slots=True)
class ImmutableRule:
    """One tag-immutability rule of a Harbor project, as the API lists it."""

    rule_id: int | None
    disabled: bool
    tag_selectors: tuple[Selector, ...]
    repository_selectors: tuple[Selector, ...]


def parse_rules(items: Iterable[Mapping[str, Any]]) -> tuple[ImmutableRule, ...]:
    """Rules from the API's JSON objects; raises :class:`UsageError` for a rule it cannot read
    (the caller then treats the whole project as unknown rather than guess)."""
    return tuple(_parse_rule(item) for item in items)


def _parse_rule(item: Mapping[str, Any]) -> ImmutableRule:
    rule_id = item.get("id")
    disabled = item.get("disabled", False)
    scopes = item.get("scope_selectors") or {}
    if not isinstance(disabled, bool) or not isinstance(scopes, Mapping):
        raise UsageError(f"unreadable Harbor immutability rule {rule_id!r}")
    return ImmutableRule(
        rule_id if isinstance(rule_id, int) else None,
        disabled,
        _parse_selectors(item.get("tag_selectors"), rule_id),
        _parse_selectors(scopes.get("repository"), rule_id),
    )


def _parse_selectors(value: object, rule_id: object) -> tuple[Selector, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise UsageError(f"unreadable selectors in Harbor immutability rule {rule_id!r}")
    selectors = []
    for entry in value:
        if not isinstance(entry, Mapping):
            raise UsageError(f"unreadable selector in Harbor immutability rule {rule_id!r}")
        fields = [entry.get(key, "") for key in ("kind", "decoration", "pattern")]
        if not all(isinstance(field, str) for field in fields):
            raise UsageError(f"unreadable selector in Harbor immutability rule {rule_id!r}")
        selectors.append(Selector(*fields))
    return tuple(selectors)


def selects(selector: Selector, repository: str, tag: str) -> bool:
    """Whether ``selector`` selects the tag ``tag`` of ``repository`` (the path without project).

    Raises :class:`UsageError` when Harbor could not evaluate it either (see the module docstring)."""
    if selector.kind != "doublestar":
        raise UsageError(f"Harbor selector kind {selector.kind!r} is not supported")
    if selector.decoration in _TAG_DECORATIONS:
        value, excludes = tag, _TAG_DECORATIONS[selector.decoration]
    elif selector.decoration in _REPOSITORY_DECORATIONS:
        value, excludes = repository, _REPOSITORY_DECORATIONS[selector.decoration]
    elif selector.decoration in _NAMESPACE_DECORATIONS:
        return False  # Harbor's immutability check leaves the candidate's namespace empty
    else:
        raise UsageError(f"Harbor selector decoration {selector.decoration!r} is not supported")
    if not value:
        return False  # Harbor selects nothing on an empty value, even with "excludes"
    matched = not selector.pattern or doublestar.match(selector.pattern, value)
    return matched != excludes


def tag_immutable(rules: Iterable[ImmutableRule], repository: str, tag: str) -> bool | None:
    """Whether Harbor keeps ``repository:tag`` immutable (``repository`` without the project).

    ``None`` when some enabled rule cannot be evaluated (see the module docstring)."""
    found = False
    for rule in rules:
        if rule.disabled or not rule.repository_selectors or not rule.tag_selectors:
            continue
        try:
            if selects(rule.repository_selectors[0], repository, tag) and selects(
                rule.tag_selectors[0], repository, tag
            ):
                found = True
        except UsageError:
            return None
    return found


#: ``fetch(registry, project)`` -> the project's rules (raises the error tree when it cannot).
RuleFetcher = Callable[[str, str], Awaitable[tuple[ImmutableRule, ...]]]


class ImmutabilityRules:
    """The rules of each destination (registry, project), fetched once per run.

    ``fetch(registry, project)`` is an async callable returning the project's
    :class:`ImmutableRule` tuple (normally :meth:`HarborAPI.immutable_rules`)."""

    def __init__(self, fetch: RuleFetcher, *, concurrency: int = FETCH_CONCURRENCY) -> None:
        self._fetch = fetch
        self._limiter = anyio.CapacityLimiter(concurrency)
        # (registry, project) -> the rules, or ``None`` when they could not be read
        self._known: SingleFlight[tuple[str, str], tuple[ImmutableRule, ...] | None] = SingleFlight()
        #: ``registry/project`` of every project whose rules could not be read, in order
        self.unreadable: list[str] = []

    async def rules(self, registry: str, project: str) -> tuple[ImmutableRule, ...] | None:
        """The project's rules; ``None`` ("unknown") when they could not be read. Never raises
        for a failed request; concurrent callers for one project share one fetch."""

        async def read() -> tuple[ImmutableRule, ...] | None:
            async with self._limiter:
                return await self._read(registry, project)

        return await self._known.do((registry, project), read)

    async def _read(self, registry: str, project: str) -> tuple[ImmutableRule, ...] | None:
        try:
            rules = await self._fetch(registry, project)
        except (AuthenticationError, PermissionDeniedError) as exc:
            reason = f"not allowed (HTTP {exc.status})"
        except AsyncSyncError as exc:
            reason = str(exc)
        else:
            return rules
        self.unreadable.append(f"{registry}/{project}")
        log.info(
            "cannot read the tag immutability rules of Harbor project %s/%s: %s; "
            "its immutable tags are found by Harbor's 412 after the upload",
            registry,
            project,
            reason,
        )
        return None

    async def immutable(self, registry: str, repository: str, tag: str) -> bool | None:
        """Whether ``registry/repository:tag`` (``repository`` with its project) is immutable;
        ``None`` when unknown (rules unreadable or not evaluable)."""
        project, sep, name = repository.partition("/")
        if not sep or not name:
            return None
        rules = await self.rules(registry, project)
        return None if rules is None else tag_immutable(rules, name, tag)
