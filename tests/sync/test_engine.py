"""``run_sync`` against real registries: a no-op re-sync's destination checks start while the plan
is still being built, and cost one HEAD per tag and side (none for images another shard copies)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from asyncsync.digest import Digest
from asyncsync.specs.load import load_spec
from asyncsync.sync.decisions import DestinationChecker
from asyncsync.sync.engine import run_sync
from asyncsync.sync.hooks import HookChain, RunContext, SyncHooks
from asyncsync.sync.plan import ResolvedManifest, SourceLister
from asyncsync.sync.report import Outcome
from asyncsync.sync.settings import CommandLine, resolve_settings
from asyncsync.sync.shard import Shard, ShardHooks, shard_of
from tests.helpers.images import make_image, push_image
from tests.helpers.registry import RegistryFactory, RegistryServer
from tests.helpers.specs import write_native_spec

pytestmark = pytest.mark.anyio

REPOSITORIES = 3
TAGS = 2
GATED = ("team/app2", "v1")  # the last source reference of the plan


async def _seed(source: RegistryServer) -> None:
    for r in range(REPOSITORIES):
        for t in range(TAGS):
            await push_image(source, f"team/app{r}", f"v{t}", make_image(f"engine-{r}-{t}", layers=1))


def _spec(tmp_path: Path, source: RegistryServer, target: RegistryServer) -> Path:
    return write_native_spec(tmp_path / "spec.yaml", source.host, target.host)


class _GatedLister:
    """Resolves :data:`GATED` only after the destination answered a HEAD."""

    def __init__(self, inner: SourceLister, answered: anyio.Event) -> None:
        self.inner = inner
        self.answered = answered

    async def list_tags(self, registry: str, repository: str) -> list[str]:
        return await self.inner.list_tags(registry, repository)

    async def list_repositories(self, registry: str, prefix: str) -> list[str]:
        return await self.inner.list_repositories(registry, prefix)

    async def resolve(self, registry: str, repository: str, reference: str) -> ResolvedManifest | None:
        if (repository, reference) == GATED:
            await self.answered.wait()
        return await self.inner.resolve(registry, repository, reference)


class _SignallingChecker:
    def __init__(self, inner: DestinationChecker, answered: anyio.Event) -> None:
        self.inner = inner
        self.answered = answered

    async def head(self, registry: str, repository: str, reference: str) -> Digest | None:
        found = await self.inner.head(registry, repository, reference)
        self.answered.set()
        return found

    async def tags(self, registry: str, repository: str) -> list[str]:
        return await self.inner.tags(registry, repository)

    async def repository_exists(self, registry: str, repository: str) -> bool:
        return await self.inner.repository_exists(registry, repository)


class _Overlap(SyncHooks):
    """Planning cannot end before a destination check has answered."""

    def __init__(self) -> None:
        self.answered = anyio.Event()

    def source_lister(self, lister: SourceLister, ctx: RunContext) -> SourceLister:
        return _GatedLister(lister, self.answered)

    def destination_checker(self, checker: DestinationChecker, ctx: RunContext) -> DestinationChecker:
        return _SignallingChecker(checker, self.answered)


async def test_a_noop_resync_checks_destinations_while_planning_one_head_per_tag_and_side(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source, target = make_registry("anon"), make_registry("anon")
    await _seed(source)
    spec = load_spec(_spec(tmp_path, source, target))
    settings = resolve_settings(spec, CommandLine())
    first = await run_sync(spec, settings, handle_signals=False)
    assert [r.outcome for r in first.results] == [Outcome.COPIED] * REPOSITORIES * TAGS
    source.reset_log()
    target.reset_log()

    # Checks that waited for the whole plan would never let the gated reference resolve.
    with anyio.fail_after(30):
        report = await run_sync(spec, settings, handle_signals=False, hooks=HookChain((_Overlap(),)))

    assert [r.outcome for r in report.results] == [Outcome.SKIPPED] * REPOSITORIES * TAGS
    tags = REPOSITORIES * TAGS
    assert source.count("HEAD", r"/v2/team/app\d/manifests/v\d") == tags
    assert target.count("HEAD", r"/v2/mirror/app\d/manifests/v\d") == tags
    assert [r for r in target.requests() if r.method != "HEAD"] == []
    # Besides the HEADs: one catalog and one tag list per repository at the source.
    assert len(source.requests()) == tags + 1 + REPOSITORIES


async def test_a_shard_checks_only_its_own_destinations(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source, target = make_registry("anon"), make_registry("anon")
    # Two destination repositories of shard 0 and one of shard 1 (the hash depends on the host).
    names = [f"app{n}" for n in range(64)]
    ours = [name for name in names if shard_of(target.host, f"mirror/{name}", 2) == 0][:2]
    theirs = [name for name in names if shard_of(target.host, f"mirror/{name}", 2) == 1][:1]
    for name in ours + theirs:
        await push_image(source, f"team/{name}", "v0", make_image(f"engine-shard-{name}", layers=1))
    spec = load_spec(_spec(tmp_path, source, target))
    settings = resolve_settings(spec, CommandLine())
    await run_sync(spec, settings, handle_signals=False)
    target.reset_log()

    shard = ShardHooks(spec, Shard(0, 2))
    report = await run_sync(spec, settings, handle_signals=False, hooks=HookChain((shard,)))

    assert [r.outcome for r in report.results] == [Outcome.SKIPPED] * len(ours)
    # One HEAD per image of this shard: none for the image the other shard copies.
    assert target.count("HEAD", r"/v2/mirror/app\d+/manifests/v0") == len(ours)
