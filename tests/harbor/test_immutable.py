"""Harbor's tag-immutability rules (asyncsync.harbor.immutable): parsing, evaluation, per-run cache.

The evaluation cases are the ones of Harbor's own ``match_test.go`` (``TestImmuMatch``,
``TestImmuExclude``) plus the edges of its matcher: disabled rules, missing selectors, only
the first selector counting, decorations on either list, the namespace decorations that select
nothing there, and rules Harbor cannot evaluate ("unknown", never "immutable").
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from asyncsync.errors import PermissionDeniedError, RegistryError, UsageError
from asyncsync.harbor.immutable import (
    ImmutabilityRules,
    ImmutableRule,
    Selector,
    parse_rules,
    selects,
    tag_immutable,
)


def rule(
    repositories: str,
    tags: str,
    *,
    repo_decoration: str = "repoMatches",
    tag_decoration: str = "matches",
    disabled: bool = False,
    kind: str = "doublestar",
) -> dict[str, Any]:
    """A rule as Harbor's API lists it."""
    return {
        "id": 7,
        "priority": 0,
        "disabled": disabled,
        "action": "immutable",
        "template": "immutable_template",
        "tag_selectors": [{"kind": kind, "decoration": tag_decoration, "pattern": tags}],
        "scope_selectors": {
            "repository": [{"kind": kind, "decoration": repo_decoration, "pattern": repositories}]
        },
    }


def test_harbor_match_cases() -> None:
    rules = parse_rules([rule("redis", "release-**"), rule("mysql", "**")])
    assert tag_immutable(rules, "redis", "release-1.10") is True
    assert tag_immutable(rules, "redis", "1.10") is False
    assert tag_immutable(rules, "mysql", "9.4.8") is True
    assert tag_immutable(rules, "hello", "world") is False


def test_harbor_exclude_cases() -> None:
    rules = parse_rules([rule("**", "world**", tag_decoration="excludes")])
    assert tag_immutable(rules, "redis", "release-1.10") is True
    assert tag_immutable(rules, "redis", "1.10") is True
    assert tag_immutable(rules, "mysql", "9.4.8") is True
    assert tag_immutable(rules, "hello", "world") is False
    repo_excluded = parse_rules([rule("legacy/**", "**", repo_decoration="repoExcludes")])
    assert tag_immutable(repo_excluded, "legacy/app", "1.0") is False
    assert tag_immutable(repo_excluded, "team/app", "1.0") is True


def test_repository_is_the_path_without_project_and_separators_count() -> None:
    rules = parse_rules([rule("team/*", "v*")])
    assert tag_immutable(rules, "team/app", "v1") is True
    assert tag_immutable(rules, "team/app/worker", "v1") is False  # "*" stops at "/"
    assert tag_immutable(parse_rules([rule("team/**", "v*")]), "team/app/worker", "v1") is True


def test_disabled_incomplete_and_extra_selectors() -> None:
    assert tag_immutable(parse_rules([rule("**", "**", disabled=True)]), "app", "1") is False
    no_scope = {**rule("**", "**"), "scope_selectors": {}}
    no_tags = {**rule("**", "**"), "tag_selectors": None}
    assert tag_immutable(parse_rules([no_scope, no_tags]), "app", "1") is False
    # Only the first selector of each list counts, as in Harbor's matcher.
    two = rule("nothing-matches", "**")
    two["scope_selectors"]["repository"].append(
        {"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}
    )
    assert tag_immutable(parse_rules([two]), "app", "1") is False
    assert tag_immutable(parse_rules([]), "app", "1") is False


def test_decorations_select_what_they_name_wherever_they_sit() -> None:
    # A "matches" decoration in the repository list tests the tag, as Harbor's selector does.
    assert selects(Selector("doublestar", "matches", "v*"), "app", "v1") is True
    assert selects(Selector("doublestar", "repoMatches", "v*"), "app", "v1") is False
    assert selects(Selector("doublestar", "excludes", ""), "app", "v1") is False  # "" matches all
    assert selects(Selector("doublestar", "repoMatches", ""), "app", "v1") is True
    # Harbor leaves the candidate's namespace empty in its immutability check: nothing selected.
    assert selects(Selector("doublestar", "nsMatches", "**"), "app", "v1") is False
    assert selects(Selector("doublestar", "nsExcludes", "x"), "app", "v1") is False


@pytest.mark.parametrize(
    ("bad", "unreached"),
    [
        # an unknown kind fails on the repository selector already
        (rule("**", "**", kind="label"), None),
        # a bad tag decoration or pattern is only read when the repository is selected
        (rule("**", "**", tag_decoration="matching"), False),
        (rule("**", "v[", tag_decoration="matches"), False),
    ],
)
def test_a_rule_harbor_cannot_evaluate_makes_the_answer_unknown(
    bad: dict[str, Any], unreached: bool | None
) -> None:
    # Harbor's matcher fails on it and then treats the tag as mutable; which rules it read
    # first is its own order, so even a matching rule next to it cannot be trusted.
    assert tag_immutable(parse_rules([rule("**", "**"), bad]), "app", "v1") is None
    assert tag_immutable(parse_rules([bad]), "app", "v1") is None
    elsewhere = {
        **bad,
        "scope_selectors": {"repository": [{**bad["scope_selectors"]["repository"][0], "pattern": "other"}]},
    }
    assert tag_immutable(parse_rules([elsewhere]), "app", "v1") is unreached


@pytest.mark.parametrize(
    "item",
    [
        {"disabled": "no", "tag_selectors": [], "scope_selectors": {}},
        {"tag_selectors": {"kind": "doublestar"}, "scope_selectors": {}},
        {"tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": 5}]},
        {"tag_selectors": ["**"]},
        {"scope_selectors": ["**"]},
    ],
)
def test_unreadable_rules_are_refused(item: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        parse_rules([item])


@pytest.mark.anyio
async def test_rules_are_fetched_once_per_project_by_concurrent_callers() -> None:
    calls: list[tuple[str, str]] = []

    async def fetch(registry: str, project: str) -> tuple[ImmutableRule, ...]:
        calls.append((registry, project))
        await anyio.sleep(0.05)
        return parse_rules([rule("**", "v*")])

    cache = ImmutabilityRules(fetch)
    results: list[bool | None] = []

    async def ask(repository: str, tag: str) -> None:
        results.append(await cache.immutable("h:1", repository, tag))

    async with anyio.create_task_group() as group:
        for index in range(6):
            group.start_soon(ask, f"proj/app{index}", "v1" if index % 2 else "dev")
        group.start_soon(ask, "other/app", "v1")
    assert sorted(calls) == [("h:1", "other"), ("h:1", "proj")]
    assert sorted(results, key=str) == [False, False, False, True, True, True, True]
    assert await cache.immutable("h:1", "bare", "v1") is None  # no project: not a Harbor name


@pytest.mark.anyio
async def test_refused_or_failed_reads_are_unknown_logged_once_without_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    async def fetch(registry: str, project: str) -> tuple[ImmutableRule, ...]:
        calls.append(project)
        if project == "robots":
            raise PermissionDeniedError(403, "FORBIDDEN", "forbidden", what="reading rules")
        raise RegistryError(503, "", "", what="reading rules")

    cache = ImmutabilityRules(fetch)
    with caplog.at_level(logging.INFO, logger="asyncsync.harbor"):
        for _ in range(3):
            assert await cache.immutable("h:1", "robots/app", "v1") is None
            assert await cache.immutable("h:1", "down/app", "v1") is None
    assert calls == ["robots", "down"]
    assert cache.unreadable == ["h:1/robots", "h:1/down"]
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2 and all(record.levelno == logging.INFO for record in caplog.records)
    assert "h:1/robots: not allowed (HTTP 403)" in messages[0]
    assert "HTTP 503" in messages[1]


@pytest.mark.anyio
async def test_a_cancelled_fetch_is_retried_by_the_next_caller() -> None:
    attempts = 0

    async def fetch(registry: str, project: str) -> tuple[ImmutableRule, ...]:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            await anyio.sleep(10)
        return parse_rules([rule("**", "**")])

    cache = ImmutabilityRules(fetch)
    with anyio.move_on_after(0.05):
        await cache.immutable("h:1", "p/app", "v1")
    assert await cache.immutable("h:1", "p/app", "v1") is True
    assert attempts == 2
