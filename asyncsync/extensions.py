"""The run extensions a command asks for, assembled into one :class:`~asyncsync.sync.hooks.SyncHooks`.

This module sits above :mod:`asyncsync.sync` and :mod:`asyncsync.harbor`: sync knows only the hook
interface (:mod:`asyncsync.sync.hooks`) and Harbor plugs into it here, so no import runs from sync
up to harbor. The commands (:mod:`asyncsync.cli`) and the mirror loop call :func:`build_hooks`.

``sync`` and ``mirror`` share :class:`Extensions` (from ``--shard``/``--shard-count``, ``--prune``,
``--create-projects`` and the spec's ``type: harbor`` registries) and :func:`build_hooks`, which
chains them in the one order that is correct:

1. Harbor (API discovery is the innermost lister: the others see what it lists);
2. shard (skips HEADs of other shards, partitions the plan);
3. prune (records the listings the plan made; decides only in this shard's repositories; on
   ``type: harbor`` hosts it removes tags through Harbor's tag API);
4. any caller hooks (the mirror's metrics), which see every image result.
"""

from __future__ import annotations

from dataclasses import dataclass

from asyncsync.errors import UsageError
from asyncsync.harbor.hooks import HarborHooks, delete_harbor_tag, harbor_hosts
from asyncsync.specs.model import SyncSpec
from asyncsync.sync.hooks import HookChain, SyncHooks
from asyncsync.sync.prune import PruneHooks
from asyncsync.sync.shard import Shard, ShardHooks


@dataclass(frozen=True, slots=True)
class Extensions:
    """What a run adds to the plain sync. ``shard`` ``None`` = the whole plan."""

    shard: Shard | None = None
    prune: bool = False
    create_projects: bool = False

    @classmethod
    def from_flags(
        cls, *, shard: str | None, shard_count: int | None, prune: bool, create_projects: bool
    ) -> Extensions:
        """Validated flags: ``--shard INDEX/COUNT`` or ``--shard-count COUNT`` (index from the Job)."""
        if shard is not None and shard_count is not None:
            raise UsageError("--shard and --shard-count cannot be used together")
        parsed = Shard.parse(shard) if shard is not None else None
        if shard_count is not None:
            parsed = Shard.from_job_index(shard_count)
        return cls(shard=parsed, prune=prune, create_projects=create_projects)


def build_hooks(spec: SyncSpec, extensions: Extensions, *extra: SyncHooks) -> HookChain:
    """The hooks for one run of ``spec`` (create a fresh chain per run: hooks keep run state).

    Raises :class:`UsageError` for ``--prune``/``--create-projects`` with a spec that has
    ``dir:`` entries: both act on destination registries a directory side does not have."""
    if spec.has_local_entries and (extensions.prune or extensions.create_projects):
        flag = "--prune" if extensions.prune else "--create-projects"
        raise UsageError(f"{flag} needs registries on both sides; {spec.file} has 'dir:' entries")
    hooks: list[SyncHooks] = []
    if harbor_hosts(spec) or extensions.create_projects:
        hooks.append(HarborHooks(spec, create_projects=extensions.create_projects))
    shard = extensions.shard
    if shard is not None:
        hooks.append(ShardHooks(spec, shard))
    if extensions.prune:
        deleters = dict.fromkeys(harbor_hosts(spec), delete_harbor_tag)
        hooks.append(PruneHooks(spec, owns=shard.owns if shard is not None else None, tag_deleters=deleters))
    hooks.extend(extra)
    return HookChain(hooks)
