"""BlobCoordinator: single-flight uploads, remembered results, the location index."""

from __future__ import annotations

import anyio
import pytest

from asyncsync.copy import BlobCoordinator
from asyncsync.digest import Digest
from asyncsync.errors import TransportError
from asyncsync.transports.base import BlobLocation

pytestmark = pytest.mark.anyio
DIGEST = Digest.of(b"blob")


async def test_concurrent_callers_share_one_upload() -> None:
    coordinator = BlobCoordinator()
    calls: list[str] = []
    results: list[str] = []
    release = anyio.Event()

    async def upload(name: str) -> str:
        calls.append(name)
        await release.wait()
        return name

    async def caller(name: str) -> None:
        results.append(await coordinator.once("reg", DIGEST, lambda: upload(name)))

    async with anyio.create_task_group() as group:
        for name in ("a", "b", "c"):
            group.start_soon(caller, name)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert calls == ["a"]
    assert results == ["a", "a", "a"]
    # Remembered for the run; another key runs its own upload.
    assert await coordinator.once("reg", DIGEST, lambda: upload("late")) == "a"
    assert await coordinator.once("other", DIGEST, lambda: upload("other")) == "other"
    uploads = coordinator.statistics().uploads
    assert (uploads.runs, uploads.shared, uploads.cached, uploads.in_flight) == (2, 2, 1, 0)


async def test_a_failed_upload_lets_the_next_waiter_run() -> None:
    coordinator = BlobCoordinator()
    calls: list[str] = []
    outcomes: dict[str, str] = {}
    gate = anyio.Event()

    async def upload(name: str) -> str:
        calls.append(name)
        await gate.wait()
        if name == "first":
            raise TransportError("connection reset")
        return name

    async def caller(name: str) -> None:
        try:
            outcomes[name] = await coordinator.once("reg", DIGEST, lambda: upload(name))
        except TransportError as exc:
            outcomes[name] = f"error: {exc}"

    async with anyio.create_task_group() as group:
        group.start_soon(caller, "first")
        await anyio.wait_all_tasks_blocked()
        group.start_soon(caller, "second")
        await anyio.wait_all_tasks_blocked()
        gate.set()
    assert calls == ["first", "second"]
    assert outcomes == {"first": "error: connection reset", "second": "second"}


def test_locations_most_recent_first_bounded_and_exported() -> None:
    coordinator = BlobCoordinator(max_locations=2)
    for repo in ("a", "b", "a", "c"):
        coordinator.record("reg", repo, DIGEST)
    assert coordinator.known_locations("reg", DIGEST) == [BlobLocation("reg", "c"), BlobLocation("reg", "a")]
    assert coordinator.known_locations("elsewhere", DIGEST) == []
    exported = coordinator.export()
    assert exported == {"reg": {str(DIGEST): ["a", "c"]}}
    fresh = BlobCoordinator()
    fresh.load(exported)
    assert fresh.known_locations("reg", DIGEST) == coordinator.known_locations("reg", DIGEST)


def test_load_ignores_malformed_cache_entries() -> None:
    coordinator = BlobCoordinator()
    coordinator.load(
        {
            "reg": {"not-a-digest": ["x"], str(DIGEST): ["ok", "", 3]},  # type: ignore[list-item]
            "bad": ["not", "a", "dict"],  # type: ignore[dict-item]
        }
    )
    assert coordinator.export() == {"reg": {str(DIGEST): ["ok"]}}


async def test_one_placement_per_repository_at_a_time_and_a_failure_lets_the_next_try() -> None:
    coordinator = BlobCoordinator()
    calls: list[str] = []
    gate = anyio.Event()

    async def place(name: str) -> None:
        calls.append(name)
        await gate.wait()
        if name == "a1":
            raise TransportError("connection reset")

    async def caller(repository: str, name: str) -> None:
        try:
            await coordinator.placing("reg", repository, DIGEST, lambda: place(name))
        except TransportError:
            calls.append(f"{name} failed")

    async with anyio.create_task_group() as group:
        for repository, name in (("a", "a1"), ("a", "a2"), ("a", "a3"), ("b", "b1")):
            group.start_soon(caller, repository, name)
            await anyio.wait_all_tasks_blocked()
        gate.set()
    # One placement per repository runs; a2 takes over after a1's failure, a3 shares a2's.
    assert calls == ["a1", "b1", "a1 failed", "a2"]
    placements = coordinator.statistics().placements
    assert (placements.runs, placements.failures, placements.shared, placements.cached) == (3, 1, 1, 0)
    # Nothing is remembered: a later caller runs its own (callers check ``confirmed`` first).
    await coordinator.placing("reg", "b", DIGEST, lambda: place("b2"))
    assert calls[-1] == "b2"
