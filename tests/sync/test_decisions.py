"""Copy/skip decisions (HEAD only, one tag list per repository for --skip-existing) and --dry-run lines."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import pytest

from asyncsync.digest import Digest
from asyncsync.errors import TransportError
from asyncsync.manifest import DOCKER_LIST, DOCKER_V2S2
from asyncsync.reference import ImageName
from asyncsync.specs.model import CopySettings, Origin
from asyncsync.sync.decisions import (
    REASON_ABSENT,
    REASON_DIFFERS,
    REASON_EQUAL,
    REASON_EXISTS,
    REASON_NEW_REPOSITORY,
    REASON_UNKNOWN,
    DestinationCheck,
    check_plan,
    render_plan,
)
from asyncsync.sync.plan import Plan, PlanError, PlannedImage

pytestmark = pytest.mark.anyio

ORIGIN = Origin("sync.yaml", 4)


def digest(text: str) -> Digest:
    return Digest.of(text.encode())


def image(
    tag: str, *, dest_tag: str | None = None, media_type: str = DOCKER_V2S2, **settings: Any
) -> PlannedImage:
    source = ImageName("a.example", "proj/app", tag, digest(f"src:{tag}"))
    destination = ImageName("b.example", "new/app", dest_tag or tag)
    return PlannedImage(source, destination, media_type, ORIGIN, CopySettings(**settings))


class FakeChecker:
    def __init__(self, heads: dict[str, Digest], tags: dict[str, list[str]]) -> None:
        self.heads = heads
        self.tag_lists = tags
        self.calls: Counter[str] = Counter()
        self.fail_heads = False

    async def head(self, registry: str, repository: str, reference: str) -> Digest | None:
        self.calls["head"] += 1
        await anyio.sleep(0.001)
        if self.fail_heads:
            raise TransportError("connection refused")
        return self.heads.get(f"{registry}/{repository}:{reference}")

    async def tags(self, registry: str, repository: str) -> list[str]:
        self.calls["tags"] += 1
        await anyio.sleep(0.01)  # slow, so concurrent deciders overlap
        return self.tag_lists.get(f"{registry}/{repository}", [])

    async def repository_exists(self, registry: str, repository: str) -> bool:
        self.calls["exists"] += 1
        prefix = f"{registry}/{repository}"
        return prefix in self.tag_lists or any(key.startswith(prefix + ":") for key in self.heads)


async def test_equal_digest_is_skipped_others_copied() -> None:
    checker = FakeChecker(
        {"b.example/new/app:same": digest("src:same"), "b.example/new/app:changed": digest("old")}, {}
    )
    plan = Plan(images=(image("same"), image("changed"), image("new")))
    decisions = await check_plan(plan, checker)
    assert [(d.action, d.reason) for d in decisions] == [
        ("skip", REASON_EQUAL),
        ("copy", REASON_DIFFERS),
        ("copy", REASON_ABSENT),
    ]
    assert decisions[1].destination_digest == digest("old")
    assert checker.calls["head"] == 3
    assert checker.calls["exists"] <= 1  # only if "new" happened to be decided first


async def test_skip_existing_reads_each_destination_tag_list_once() -> None:
    existing = [f"t{i}" for i in range(0, 20, 2)]
    checker = FakeChecker({}, {"b.example/new/app": existing})
    images = tuple(image(f"t{i}", skip_existing=True) for i in range(20))
    decisions = await check_plan(Plan(images=images), checker, limit=8)
    assert [d.action for d in decisions] == ["skip", "copy"] * 10
    assert decisions[0].reason == REASON_EXISTS and decisions[1].reason == REASON_ABSENT
    assert checker.calls == Counter({"tags": 1})


async def test_index_copied_for_one_platform_cannot_be_compared() -> None:
    checker = FakeChecker({}, {})
    decision = await DestinationCheck(checker).decide(
        image("multi", media_type=DOCKER_LIST, multi_arch="system")
    )
    assert (decision.action, decision.reason) == ("copy", REASON_UNKNOWN)
    assert checker.calls == Counter({"exists": 1})  # no HEAD; one probe for a new repository


async def test_new_repository_is_probed_once_and_its_images_copied_without_heads() -> None:
    checker = FakeChecker({}, {})
    new_repos: list[tuple[str, str]] = []
    images = tuple(image(f"t{i}") for i in range(12))
    check = DestinationCheck(checker, on_new=lambda registry, repo: new_repos.append((registry, repo)))
    async with anyio.create_task_group() as tg:
        results: list[str] = []

        async def decide(planned: PlannedImage) -> None:
            results.append((await check.decide(planned)).reason)

        for planned in images:
            tg.start_soon(decide, planned)
    assert checker.calls == Counter({"head": 1, "exists": 1})
    assert sorted(results) == sorted([REASON_ABSENT] + [REASON_NEW_REPOSITORY] * 11)
    assert new_repos == [("b.example", "new/app")]


async def test_digest_references_are_checked_by_digest() -> None:
    pinned = digest("pinned")
    source = ImageName("a.example", "proj/app", None, pinned)
    planned = PlannedImage(
        source, ImageName("b.example", "new/app", None, pinned), DOCKER_V2S2, ORIGIN, CopySettings()
    )
    checker = FakeChecker({f"b.example/new/app:{pinned}": pinned}, {})
    decision = await DestinationCheck(checker).decide(planned)
    assert (decision.action, decision.reason) == ("skip", REASON_EQUAL)


async def test_failed_checks_become_error_decisions() -> None:
    checker = FakeChecker({}, {})
    checker.fail_heads = True
    (decision,) = await check_plan(Plan(images=(image("x"),)), checker)
    assert decision.action == "error" and decision.reason == "checking the destination: connection refused"


async def test_render_plan_lines() -> None:
    checker = FakeChecker({"b.example/new/app:same": digest("src:same")}, {})
    plan = Plan(
        images=(image("same"), image("new")),
        errors=(PlanError(Origin("sync.yaml", 9), "a.example/x:1 not found"),),
        warnings=(PlanError(Origin("sync.yaml", 12), "a.example/y has no tags"),),
    )
    lines = render_plan(plan, await check_plan(plan, checker))
    same, new = digest("src:same").short, digest("src:new").short
    assert lines == [
        f'Would have skipped image ref 1/2 from="docker://a.example/proj/app:same" '
        f'to="docker://b.example/new/app:same" (sha256:{same}): destination digest equal',
        f'Would have copied image ref 2/2 from="docker://a.example/proj/app:new" '
        f'to="docker://b.example/new/app:new" (sha256:{new}): destination absent',
        "error sync.yaml:9: a.example/x:1 not found",
        "note  sync.yaml:12: a.example/y has no tags",
        "Would have synced 1 images from 1 sources (plan: 1 to copy, 1 to skip, 1 error(s))",
    ]
    unchecked = render_plan(Plan(images=(image("new"),)))
    assert unchecked[0].startswith("Would have copied image ref 1/1 ") and unchecked[0].endswith(
        ": not checked"
    )
    assert (
        unchecked[-1] == "Would have synced 1 images from 1 sources (plan: 1 to copy, 0 to skip, 0 error(s))"
    )


class OrderedChecker(FakeChecker):
    """Records the order of HEADs (by tag) and how many ran at once."""

    def __init__(self, heads: dict[str, Digest]) -> None:
        super().__init__(heads, {})
        self.order: list[str] = []
        self.in_flight = 0
        self.peak = 0

    async def head(self, registry: str, repository: str, reference: str) -> Digest | None:
        self.order.append(f"{repository}:{reference}")
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await super().head(registry, repository, reference)
        finally:
            self.in_flight -= 1


def repo_image(repository: str, tag: str) -> PlannedImage:
    source = ImageName("a.example", repository, tag, digest(f"{repository}:{tag}"))
    return PlannedImage(source, ImageName("b.example", repository, tag), DOCKER_V2S2, ORIGIN, CopySettings())


async def test_prefetch_decides_each_image_once_leaders_first_within_its_limit() -> None:
    images = [repo_image(f"r{r}", f"t{t}") for r in range(3) for t in range(3)]
    checker = OrderedChecker({f"b.example/{i.destination.repository}:{i.tag}": i.digest for i in images})
    check = DestinationCheck(checker)

    await check.prefetch(images, 2, lambda: False)

    # The first image of each repository first (the others of a repository wait for it).
    assert checker.order[:3] == ["r0:t0", "r1:t0", "r2:t0"]
    assert sorted(checker.order) == sorted(f"{i.destination.repository}:{i.tag}" for i in images)
    assert checker.peak <= 2
    # The pool's calls take the prefetched decisions: no request more.
    decisions = [await check.decided(i) for i in images]
    assert {d.action for d in decisions} == {"skip"}
    assert checker.calls["head"] == len(images)


async def test_prefetch_stops_when_asked_and_leaves_the_rest_to_decided() -> None:
    images = [repo_image(f"r{r}", "t") for r in range(5)]
    checker = OrderedChecker({})
    check = DestinationCheck(checker)
    await check.prefetch(images, 1, lambda: len(checker.order) >= 2)
    assert len(checker.order) == 2
    assert (await check.decided(images[4])).action == "copy"


async def test_a_failed_prefetch_is_raised_by_decided() -> None:
    checker = FakeChecker({}, {})
    checker.fail_heads = True
    check = DestinationCheck(checker)
    planned = repo_image("r", "t")
    await check.prefetch([planned], 4, lambda: False)
    with pytest.raises(TransportError):
        await check.decided(planned)


async def test_an_image_planned_twice_is_decided_once() -> None:
    planned = repo_image("r", "t")
    checker = OrderedChecker({"b.example/r:t": planned.digest})
    check = DestinationCheck(checker)
    # The same image from another spec line (the plan keeps one): one decision, one HEAD.
    again = PlannedImage(
        planned.source, planned.destination, planned.media_type, Origin("sync.yaml", 9), planned.settings
    )
    assert (await check.decided(planned)).action == "skip"
    assert (await check.decided(again)).action == "skip"
    assert checker.calls["head"] == 1
