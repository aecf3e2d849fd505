"""build_hooks: the run's extensions assembled above sync, in the one correct order."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from asyncsync.errors import UsageError
from asyncsync.extensions import Extensions, build_hooks
from asyncsync.harbor.hooks import HarborHooks, delete_harbor_tag
from asyncsync.specs.load import load_spec
from asyncsync.specs.model import SyncSpec
from asyncsync.sync.hooks import SyncHooks
from asyncsync.sync.prune import PruneHooks
from asyncsync.sync.shard import Shard, ShardHooks


def _spec(tmp_path: Path, body: str) -> SyncSpec:
    path = tmp_path / "sync.yaml"
    path.write_text("version: 1\n" + textwrap.dedent(body))
    return load_spec(path)


class _Caller(SyncHooks):
    """A caller's hooks (the mirror's metrics, say): they come last and see every result."""


def test_harbor_then_shard_then_prune_then_the_callers(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        """\
        registries:
          harbor.example: {type: harbor}
        sync: [{from: src.example/app, to: harbor.example/mirror/}]
        """,
    )
    caller = _Caller()
    chain = build_hooks(spec, Extensions(shard=Shard(0, 2), prune=True), caller)
    kinds = [type(hook) for hook in chain.hooks]
    assert kinds == [HarborHooks, ShardHooks, PruneHooks, _Caller]
    prune = chain.hooks[2]
    assert isinstance(prune, PruneHooks)
    # Prune removes tags through Harbor's API on the hosts the spec declares Harbor, nowhere else.
    assert dict(prune.tag_deleters) == {"harbor.example": delete_harbor_tag}


def test_a_plain_spec_gets_no_harbor_hooks_and_distribution_deletes(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "sync: [{from: src.example/app, to: dst.example/mirror/}]\n")
    chain = build_hooks(spec, Extensions(prune=True))
    assert [type(hook) for hook in chain.hooks] == [PruneHooks]
    prune = chain.hooks[0]
    assert isinstance(prune, PruneHooks) and not prune.tag_deleters
    assert build_hooks(spec, Extensions()).hooks == ()


def test_prune_and_create_projects_refuse_local_entries(tmp_path: Path) -> None:
    spec = _spec(tmp_path, f"sync: [{{from: src.example/app, to: 'dir:{tmp_path}/out'}}]\n")
    with pytest.raises(UsageError, match="--prune needs registries on both sides"):
        build_hooks(spec, Extensions(prune=True))
    with pytest.raises(UsageError, match="--create-projects"):
        build_hooks(spec, Extensions(create_projects=True))
