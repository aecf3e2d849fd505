"""Sharding a sync across machines: a deterministic partition of the plan by destination repository.

``--shard INDEX/COUNT`` (``INDEX`` from 0, as a Kubernetes Indexed Job's ``JOB_COMPLETION_INDEX``;
``--shard-count COUNT`` reads the index from that variable) keeps the images whose destination
repository ``registry/repository`` hashes to ``INDEX``:

    shard_of(registry, repository, COUNT) = int(sha256("registry/repository")[:8 bytes]) % COUNT

The hash is stable across machines, processes and Python versions (unlike ``hash()``), and
depends on the destination repository alone, so

* every image of one destination repository goes to one shard: shards never write the same
  repository, never race on its tags, and its cross-repo mounts stay in one process;
* the shards of one COUNT together hold exactly the full plan, with no image in two shards.

Every shard plans the whole spec (listings are cheap and plan errors stay visible everywhere),
but :class:`ShardLister` skips the per-tag HEAD of images that only other shards copy: their
``resolve`` answers :data:`OTHER_SHARD`, a placeholder that :func:`partition` always drops.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from asyncsync.digest import Digest
from asyncsync.errors import InvalidReferenceError, UsageError
from asyncsync.manifest import OCI_MANIFEST
from asyncsync.specs.model import SyncSpec
from asyncsync.sync.hooks import RunContext, SyncHooks
from asyncsync.sync.plan import Plan, PlannedImage, ResolvedManifest, SourceLister

JOB_INDEX_VARIABLE = "JOB_COMPLETION_INDEX"
#: What :class:`ShardLister` resolves references of other shards to; never copied.
OTHER_SHARD = ResolvedManifest(Digest("sha256", "0" * 64), OCI_MANIFEST)


def shard_of(registry: str, repository: str, count: int) -> int:
    """The shard (0..count-1) of destination repository ``registry/repository``."""
    digest = hashlib.sha256(f"{registry}/{repository}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True, slots=True)
class Shard:
    """This process's part: ``index`` of ``count`` (0 <= index < count)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise UsageError(f"--shard: index must be in 0..{self.count - 1}, not {self.index}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``INDEX/COUNT``, e.g. ``0/4``."""
        index, sep, count = text.strip().partition("/")
        if not sep or not index.isdigit() or not count.isdigit():
            raise UsageError(f"--shard: expected INDEX/COUNT such as 0/4, not {text!r}")
        if int(count) < 1:
            raise UsageError("--shard: COUNT must be at least 1")
        return cls(int(index), int(count))

    @classmethod
    def from_job_index(cls, count: int, environ: Mapping[str, str] | None = None) -> Shard:
        """The shard of a Kubernetes Indexed Job pod: ``JOB_COMPLETION_INDEX`` of ``count``."""
        env = os.environ if environ is None else environ
        value = env.get(JOB_INDEX_VARIABLE, "")
        if not value.strip().isdigit():
            raise UsageError(
                f"--shard-count needs {JOB_INDEX_VARIABLE} (set by an Indexed Job) to be a number, "
                f"not {value!r}"
            )
        if count < 1:
            raise UsageError("--shard-count must be at least 1")
        return cls(int(value), count)

    def owns(self, registry: str, repository: str) -> bool:
        return shard_of(registry, repository, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def in_shard(image: PlannedImage, shard: Shard) -> bool:
    """Whether ``image`` belongs to ``shard`` (its destination repository does, and it is not
    :class:`ShardLister`'s placeholder)."""
    return shard.owns(image.destination.registry, image.destination.repository) and (
        image.digest != OTHER_SHARD.digest
    )


def partition(plan: Plan, shard: Shard) -> Plan:
    """The images of ``plan`` whose destination repository belongs to ``shard`` (order kept)."""
    return replace(plan, images=tuple(image for image in plan.images if in_shard(image, shard)))


class ShardLister:
    """Skips the HEAD of references whose every destination belongs to other shards."""

    def __init__(self, inner: SourceLister, spec: SyncSpec, shard: Shard) -> None:
        self.inner = inner
        self.spec = spec
        self.shard = shard
        self.skipped = 0

    async def list_tags(self, registry: str, repository: str) -> list[str]:
        return await self.inner.list_tags(registry, repository)

    async def list_repositories(self, registry: str, prefix: str) -> list[str]:
        return await self.inner.list_repositories(registry, prefix)

    def _only_other_shards(self, registry: str, repository: str, reference: str) -> bool:
        try:
            digest = Digest.parse(reference) if ":" in reference else None
        except InvalidReferenceError:
            return False
        tag = None if digest is not None else reference
        destinations = 0
        for entry in self.spec.entries:
            for selector in entry.sources:
                if selector.registry != registry:
                    continue
                if not (selector.matches(repository) if selector.is_glob else selector.pattern == repository):
                    continue
                try:
                    name = entry.destination_for(selector, repository, tag=tag, digest=digest)
                except InvalidReferenceError:
                    return False  # let the plan resolve it and report the bad name
                if self.shard.owns(name.registry, name.repository):
                    return False
                destinations += 1
        return destinations > 0

    async def resolve(self, registry: str, repository: str, reference: str) -> ResolvedManifest | None:
        if self._only_other_shards(registry, repository, reference):
            self.skipped += 1
            return OTHER_SHARD
        return await self.inner.resolve(registry, repository, reference)


class ShardHooks(SyncHooks):
    """Applies a :class:`Shard` to a run: HEADs of other shards skipped, the plan partitioned."""

    def __init__(self, spec: SyncSpec, shard: Shard) -> None:
        self.spec = spec
        self.shard = shard
        self.kept = 0

    def source_lister(self, lister: SourceLister, ctx: RunContext) -> SourceLister:
        return ShardLister(lister, self.spec, self.shard)

    def plan(self, plan: Plan) -> Plan:
        sharded = partition(plan, self.shard)
        self.kept = len(sharded.images)
        return sharded

    def keeps(self, image: PlannedImage) -> bool:
        return in_shard(image, self.shard)

    async def preview(self, plan: Plan, ctx: RunContext) -> list[str]:
        return [f"note  shard {self.shard}: {self.kept} image(s) of this shard (by destination repository)"]

    def summary_lines(self) -> list[str]:
        return [f"Shard {self.shard}: {self.kept} image(s) of this shard (by destination repository)"]

    def report_data(self) -> dict[str, object]:
        return {"shard": {"index": self.shard.index, "count": self.shard.count, "images": self.kept}}
