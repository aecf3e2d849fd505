"""Reads ahead of the copy pool: destination checks while the plan is built, and the source tag
lists of skipped images' attachments (each the request the pool would make, made once)."""

from __future__ import annotations

import anyio
import pytest

from asyncsync.copy.attachments import AttachmentRun
from asyncsync.digest import Digest
from asyncsync.sync.ahead import WORKERS_PER_CHECK, ChecksAhead, source_tags_ahead
from asyncsync.sync.decisions import DestinationCheck
from asyncsync.sync.plan import PlannedImage
from tests.sync.test_decisions import FakeChecker, OrderedChecker, repo_image

pytestmark = pytest.mark.anyio


class SignallingChecker(OrderedChecker):
    """Sets ``decided_three`` once three HEADs have answered."""

    def __init__(self, heads: dict[str, Digest]) -> None:
        super().__init__(heads)
        self.decided_three = anyio.Event()
        self.answered = 0

    async def head(self, registry: str, repository: str, reference: str) -> Digest | None:
        found = await super().head(registry, repository, reference)
        self.answered += 1
        if self.answered == 3:
            self.decided_three.set()
        return found


async def test_checks_ahead_decide_announced_images_while_more_are_announced() -> None:
    images = [repo_image(f"r{r}", f"t{t}") for r in range(2) for t in range(3)]
    checker = SignallingChecker({f"b.example/{i.destination.repository}:{i.tag}": i.digest for i in images})
    check = DestinationCheck(checker)
    sizes: list[PlannedImage] = []

    def limit(first: PlannedImage) -> int:
        sizes.append(first)
        return 2

    async with anyio.create_task_group() as tg:
        ahead = ChecksAhead(check, tg, limit, lambda: False)
        for planned in images[:3]:
            ahead.planned(planned)
        # The first images are decided before the rest is announced (planning goes on meanwhile).
        with anyio.fail_after(10):
            await checker.decided_three.wait()
        for planned in images[3:]:
            ahead.planned(planned)
        ahead.close()
        ahead.planned(repo_image("late", "t"))  # after close: ignored

    assert sizes == [images[0]]  # workers sized once, from the first image
    assert sorted(checker.order) == sorted(f"{i.destination.repository}:{i.tag}" for i in images)
    assert checker.peak <= WORKERS_PER_CHECK * 2  # the host limiters bound real requests
    # The pool's calls, and a prefetch over the final plan, take those decisions: no request more.
    await check.prefetch(images, 4, lambda: False)
    assert {(await check.decided(i)).action for i in images} == {"skip"}
    assert checker.calls["head"] == len(images)


async def test_checks_ahead_without_images_start_nothing() -> None:
    check = DestinationCheck(OrderedChecker({}))
    started: list[PlannedImage] = []

    def limit(first: PlannedImage) -> int:
        started.append(first)
        return 1

    async with anyio.create_task_group() as tg:
        ahead = ChecksAhead(check, tg, limit, lambda: False)
        ahead.close()
    assert started == []


async def test_source_tags_are_listed_ahead_once_per_repository_with_a_skipped_image() -> None:
    images = [repo_image(f"r{r}", f"t{t}") for r in range(3) for t in range(2)]
    # r0 entirely at the destination, r1 half (t1 only), r2 absent.
    heads = {
        "b.example/r0:t0": images[0].digest,
        "b.example/r0:t1": images[1].digest,
        "b.example/r1:t1": images[3].digest,
    }
    check = DestinationCheck(FakeChecker(heads, {"b.example/r2": []}))
    attachments = AttachmentRun()
    listed: list[str] = []

    def lister(image: PlannedImage) -> object:
        if image.source.repository == "r1" and image.tag == "t0":
            raise AssertionError("a copied image's attachments are the copy's")

        async def fetch() -> list[str]:
            listed.append(image.source.repository)
            return [f"{image.tag}-listed"]

        return fetch

    await source_tags_ahead(images, check, attachments, lister, 4)  # type: ignore[arg-type]

    assert sorted(listed) == ["r0", "r1"]  # r2 holds no skipped image: its copies list if they need
    # The pool's later call finds the listing: no second request.
    assert await attachments.tags("a.example/r0", _never) == frozenset({"t0-listed"})


async def test_an_image_whose_attachments_are_not_followed_lists_nothing() -> None:
    images = [repo_image("r0", "t0")]
    check = DestinationCheck(FakeChecker({"b.example/r0:t0": images[0].digest}, {}))
    await source_tags_ahead(images, check, AttachmentRun(), lambda image: None, 4)
    assert (await check.decided(images[0])).action == "skip"


async def _never() -> list[str]:
    raise AssertionError("listed twice")
