"""BlobCoordinator.discover: a registry's mount-source locator, asked once per blob and run."""

from __future__ import annotations

import anyio
import pytest

from asyncsync.copy.coordinator import BlobCoordinator
from asyncsync.digest import Digest
from asyncsync.errors import PermissionDeniedError
from asyncsync.transports.base import BlobLocation

DIGEST = Digest.of(b"layer")


@pytest.mark.anyio
async def test_without_a_locator_nothing_is_discovered() -> None:
    assert await BlobCoordinator().discover("harbor.example", DIGEST, 10) == []


@pytest.mark.anyio
async def test_locator_is_asked_once_even_by_concurrent_callers_and_results_are_candidates() -> None:
    calls: list[Digest] = []

    async def locate(digest: Digest, size: int) -> list[str]:
        calls.append(digest)
        assert size == 10
        await anyio.sleep(0.05)
        return ["proj/a", "other/b"]

    coordinator = BlobCoordinator()
    coordinator.set_locator("harbor.example", locate)
    results: list[list[BlobLocation]] = []

    async def ask() -> None:
        results.append(await coordinator.discover("harbor.example", DIGEST, 10))

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(ask)
    expected = [BlobLocation("harbor.example", "proj/a"), BlobLocation("harbor.example", "other/b")]
    assert results == [expected] * 5
    assert calls == [DIGEST]
    # Recorded as mount candidates, never as places this run saw the blob.
    assert {loc.repository for loc in coordinator.known_locations("harbor.example", DIGEST)} == {
        "proj/a",
        "other/b",
    }
    assert not coordinator.confirmed("harbor.example", "proj/a", DIGEST)
    # Another registry has no locator.
    assert await coordinator.discover("other.example", DIGEST, 10) == []


@pytest.mark.anyio
async def test_a_failing_locator_costs_only_the_mount() -> None:
    async def refuse(digest: Digest, size: int) -> list[str]:
        raise PermissionDeniedError(403, "FORBIDDEN", "no")

    coordinator = BlobCoordinator()
    coordinator.set_locator("harbor.example", refuse)
    assert await coordinator.discover("harbor.example", DIGEST, 10) == []
    assert coordinator.known_locations("harbor.example", DIGEST) == []
