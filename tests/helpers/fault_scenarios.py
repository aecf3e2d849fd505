"""Fault scenarios: a small mixed workload copied between two real registries through fault proxies.

One :class:`Scenario` is a named set of fault rules on the source or destination side. :func:`run_scenario`

1. pushes a seeded workload to the source (single-arch Docker and OCI images, a multi-arch index, and an
   image sharing a layer with another, so mounts happen);
2. copies every image with asyncsync's copy engine (``--all`` semantics, images concurrently, one run-wide
   session and blob limiter) through a :class:`~tests.helpers.fault_proxy.FaultProxy` on each side;
3. crawls the destination (:mod:`tests.helpers.crawl`): how many tags are complete and digest-equal, and
   how many are corrupt or incomplete (must be 0);
4. re-runs the copy without faults and checks that it converges, recording which blobs it uploaded again.

It imports ``asyncsync`` (it drives the package under test); the reliability tests and the figures
script (``tests/reliability/figures.py``) share it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio

from asyncsync.copy import BlobCoordinator, CopyEnvironment, CopyOptions, copy_image
from asyncsync.errors import AsyncSyncError
from asyncsync.limits import BlobLimiter, HostLimiters
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.registry.credentials import Credentials
from asyncsync.retry import RetryPolicy
from asyncsync.transports.base import SideOptions, TransportContext
from tests.helpers.crawl import crawl
from tests.helpers.fault_proxy import Fault, FaultProxy, RecordedRequest
from tests.helpers.images import (
    GeneratedImage,
    GeneratedIndex,
    blob_exists,
    make_image,
    make_layer,
    make_multiarch,
    push_image,
    push_index,
)
from tests.helpers.registry import RegistryServer

Side = Literal["source", "destination"]
BLOB_GET = r"/v2/.+/blobs/sha256:[0-9a-f]{64}"
UPLOAD = r"/v2/.+/blobs/uploads/.*"
MANIFEST = r"/v2/.+/manifests/.+"
RETRY = RetryPolicy(attempts=4, base_delay=0.02, max_delay=0.2, max_retry_after=3.0)
HOST_LIMIT = 6


@dataclass(frozen=True)
class Scenario:
    """A named fault set. ``rules`` are ``(side, fault, match)``; ``must_complete`` scenarios are
    survivable by retries alone, the others may fail images (with a clear reason) but never corrupt."""

    name: str
    rules: tuple[tuple[Side, Fault, dict[str, Any]], ...] = ()
    must_complete: bool = True
    destination: Literal["anon", "token"] = "anon"
    chunk_size: int | None = None
    read_timeout: float = 5.0
    #: Rules that need the running proxies (an alias URL to redirect to): ``setup(proxies, servers)``.
    setup: Callable[[dict[Side, FaultProxy], dict[Side, RegistryServer]], None] | None = None
    #: An extra check on the finished run (e.g. where Authorization went); returns a problem or None.
    check: Callable[[ScenarioRun], str | None] | None = None


@dataclass
class ScenarioRun:
    """What happened. ``failed`` maps image to its one-line reason; ``reuploaded`` lists blobs the
    re-run uploaded although they were already complete at the destination (must be empty)."""

    scenario: Scenario
    images: int
    injected: int = 0
    completed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    corrupt: list[str] = field(default_factory=list)
    converged: bool = False
    reuploaded: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    source_records: list[RecordedRequest] = field(default_factory=list)
    destination_records: list[RecordedRequest] = field(default_factory=list)
    peak_in_flight: int = 0


Workload = list[tuple[str, GeneratedImage | GeneratedIndex]]


def workload(seed: int, prefix: str, layer_size: int = 48 * 1024) -> Workload:
    """Four images under ``prefix/``: Docker, OCI, a two-platform index, one sharing a layer."""
    shared = make_layer(f"{seed}/shared", layer_size)
    return [
        (
            f"{prefix}/docker",
            make_image(f"{seed}/a", layers=2, layer_size=layer_size, shared_layers=[shared]),
        ),
        (f"{prefix}/oci", make_image(f"{seed}/b", layers=2, layer_size=layer_size, fmt="oci")),
        (f"{prefix}/multi", make_multiarch(f"{seed}/c", layers=1, layer_size=layer_size)),
        (
            f"{prefix}/shares",
            make_image(f"{seed}/d", layers=1, layer_size=layer_size, shared_layers=[shared]),
        ),
    ]


async def push_workload(server: RegistryServer, images: Workload, tag: str = "v1") -> None:
    for repo, image in images:
        if isinstance(image, GeneratedIndex):
            await push_index(server, repo, tag, image)
        else:
            await push_image(server, repo, tag, image)


def _options(server: RegistryServer) -> RegistryOptions:
    creds = None
    if server.username is not None and server.password is not None:
        creds = Credentials(server.username, server.password)
    return RegistryOptions(tls_verify=False, credentials=creds)


async def copy_all(
    images: Workload,
    source: tuple[str, RegistryOptions],
    destination: tuple[str, RegistryOptions],
    *,
    chunk_size: int | None = None,
    read_timeout: float = 5.0,
    tag: str = "v1",
) -> dict[str, str | None]:
    """Copy every image concurrently; returns image -> None (copied) or its one-line failure."""
    outcome: dict[str, str | None] = {}
    limiters = HostLimiters(HOST_LIMIT)
    async with RegistrySession(limiters=limiters, retry=RETRY, read_timeout=read_timeout) as session:
        env = CopyEnvironment(blob_limiter=BlobLimiter(6), retry=RETRY, coordinator=BlobCoordinator())

        def context(options: RegistryOptions, **side: Any) -> TransportContext:
            return TransportContext(session, SideOptions(registry=options, **side), RETRY, env.blob_limiter)

        async def one(repo: str) -> None:
            from asyncsync.transports import parse_image_name

            src = await parse_image_name(f"docker://{source[0]}/{repo}:{tag}").new_source(context(source[1]))
            dst = await parse_image_name(f"docker://{destination[0]}/{repo}:{tag}").new_destination(
                context(destination[1], chunk_size=chunk_size)
            )
            try:
                await copy_image(src, dst, CopyOptions(multi_arch="all"), env)
                outcome[repo] = None
            except AsyncSyncError as exc:
                outcome[repo] = f"{repo}: {exc}"
            finally:
                await dst.close()
                await src.close()

        async with anyio.create_task_group() as group:
            for repo, _ in images:
                group.start_soon(one, repo)
    return outcome


def peak_answered_in_flight(records: list[RecordedRequest]) -> int:
    """Most requests the proxy handled at once, leaving out exchanges the client abandoned.

    The proxy counts an exchange until it notices the client left, which can be just after the
    client, having released its slot, sent its next request: counting those would measure the
    proxy's lag, not the client's limit. Abandoned are: requests without an answer, and requests
    to an upload session the client then cancelled with DELETE (a sibling blob's failure cancels
    uploads in flight; the proxy may still relay the registry's 201 into the closed connection).
    Every other exchange counts from its first to its last byte.
    """
    cancelled = {r.path for r in records if r.method == "DELETE" and "/blobs/uploads/" in r.path}
    kept = [
        r
        for r in records
        if r.status is not None
        and r.finished is not None
        and not (r.method != "DELETE" and r.path in cancelled)
    ]
    events = sorted([(r.started, 1) for r in kept] + [(r.finished or 0.0, -1) for r in kept])
    peak = current = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


def _uploaded(records: list[RecordedRequest]) -> list[str]:
    """``repo@digest`` of every upload the destination completed (a 201 to a final PUT)."""
    found = []
    for record in records:
        match = re.search(r"digest=(sha256%3A|sha256:)([0-9a-f]{64})", record.query)
        if record.method == "PUT" and record.status == 201 and match and "/blobs/uploads/" in record.path:
            repo = record.path.split("/blobs/uploads/")[0].removeprefix("/v2/")
            found.append(f"{repo}@sha256:{match.group(2)}")
    return found


async def run_scenario(
    scenario: Scenario, source: RegistryServer, destination: RegistryServer, seed: int, prefix: str
) -> ScenarioRun:
    """Run ``scenario`` (see the module docstring); ``prefix`` keeps its repositories apart."""
    images = workload(seed, prefix)
    expected = {f"{repo}:v1": image.digest for repo, image in images}
    await push_workload(source, images)
    run = ScenarioRun(scenario, len(images))
    started = time.monotonic()
    with (
        FaultProxy(source.host, seed=seed) as source_proxy,
        FaultProxy(destination.host, seed=seed) as destination_proxy,
    ):
        proxies: dict[Side, FaultProxy] = {"source": source_proxy, "destination": destination_proxy}
        for side, fault, match in scenario.rules:
            proxies[side].add_rule(fault, **match)
        if scenario.setup is not None:
            scenario.setup(proxies, {"source": source, "destination": destination})
        outcome = await copy_all(
            images,
            (source_proxy.address, _options(source)),
            (destination_proxy.address, _options(destination)),
            chunk_size=scenario.chunk_size,
            read_timeout=scenario.read_timeout,
        )
        run.injected = sum(source_proxy.injected().values()) + sum(destination_proxy.injected().values())
        run.source_records = source_proxy.records()
        run.destination_records = destination_proxy.records()
        run.peak_in_flight = max(
            peak_answered_in_flight(run.source_records), peak_answered_in_flight(run.destination_records)
        )
    run.seconds = time.monotonic() - started
    repos = [repo for repo, _ in images]
    first = await crawl(destination, repos)
    run.corrupt = first.corrupt_tags()
    run.completed = first.complete(expected)
    run.failed = {repo: reason for repo, reason in outcome.items() if reason is not None}
    for repo, reason in outcome.items():
        if reason is None and f"{repo}:v1" not in run.completed:
            run.problems.append(f"{repo}: reported copied but not complete at the destination")
    if scenario.check is not None and (problem := scenario.check(run)) is not None:
        run.problems.append(problem)
    # Which blobs had fully arrived: the re-run must not upload those again.
    present = set()
    for repo, image in images:
        for digest in image.blobs():
            if await blob_exists(destination, repo, digest):
                present.add(f"{repo}@{digest}")
    with FaultProxy(destination.host, seed=seed) as clean:
        again = await copy_all(
            images, (source.host, _options(source)), (clean.address, _options(destination))
        )
        run.reuploaded = sorted(set(_uploaded(clean.records())) & present)
    final = await crawl(destination, repos)
    run.converged = (
        all(reason is None for reason in again.values())
        and final.complete(expected) == sorted(expected)
        and not final.corrupt_tags()
    )
    return run
