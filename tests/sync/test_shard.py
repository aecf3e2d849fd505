"""--shard INDEX/COUNT: a stable partition of the plan by destination repository.

Unit level: parsing, the Indexed Job variable, hash stability, partition completeness and
disjointness, HEADs of other shards skipped. End to end: two shards (one given ``--shard``, the
other ``--shard-count`` with ``JOB_COMPLETION_INDEX``) copy exactly the full plan, no image twice,
every repository in one shard only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from asyncsync.digest import Digest
from asyncsync.errors import UsageError
from asyncsync.manifest import OCI_MANIFEST
from asyncsync.reference import ImageName
from asyncsync.specs.load import load_spec
from asyncsync.specs.model import CopySettings, Origin
from asyncsync.sync.plan import Plan, PlannedImage, ResolvedManifest
from asyncsync.sync.shard import OTHER_SHARD, Shard, ShardLister, partition, shard_of
from tests.helpers.asyncsync_cli import run_cli
from tests.helpers.images import list_tags_sync, make_image, push_image_sync
from tests.helpers.registry import RegistryFactory

DIGEST = Digest.of(b"image")


def test_parse_and_job_index() -> None:
    assert Shard.parse("2/4") == Shard(2, 4)
    assert str(Shard.parse(" 0/1 ")) == "0/1"
    for bad in ("4/4", "1", "a/2", "1/0", "-1/2"):
        with pytest.raises(UsageError, match="--shard"):
            Shard.parse(bad)
    assert Shard.from_job_index(3, {"JOB_COMPLETION_INDEX": "2"}) == Shard(2, 3)
    with pytest.raises(UsageError, match="JOB_COMPLETION_INDEX"):
        Shard.from_job_index(3, {})
    with pytest.raises(UsageError, match=r"index must be in 0\.\.2"):
        Shard.from_job_index(3, {"JOB_COMPLETION_INDEX": "3"})


def test_hash_is_stable_and_partition_is_complete_and_disjoint() -> None:
    # Pinned: the partition must never change between versions, machines or processes (a re-run
    # of one shard must find its own repositories again).
    assert [shard_of("harbor.example", f"proj/app{i}", 4) for i in range(8)] == [0, 2, 3, 2, 3, 2, 3, 1]
    assert shard_of("harbor.example", "proj/app", 1) == 0
    digest = hashlib.sha256(b"r.example/a/b").digest()
    assert shard_of("r.example", "a/b", 7) == int.from_bytes(digest[:8], "big") % 7

    images = tuple(
        PlannedImage(
            ImageName("src.example", f"team/app{i % 10}", f"v{i}", DIGEST),
            ImageName("dst.example", f"mirror/app{i % 10}", f"v{i}", None),
            OCI_MANIFEST,
            Origin("spec.yaml", 3),
            CopySettings(),
        )
        for i in range(40)
    )
    plan = Plan(images=images)
    parts = [partition(plan, Shard(index, 3)) for index in range(3)]
    seen = [image for part in parts for image in part.images]
    assert sorted(map(str, (i.destination for i in seen))) == sorted(str(i.destination) for i in images)
    assert len(seen) == len(set(map(id, seen)))
    for part in parts:
        for image in part.images:  # whole repositories only
            owners = {
                i
                for i, p in enumerate(parts)
                if any(x.destination.repository == image.destination.repository for x in p.images)
            }
            assert len(owners) == 1
    assert all(part.images for part in parts)  # 10 repositories over 3 shards: none empty here


class _CountingLister:
    def __init__(self) -> None:
        self.resolved: list[tuple[str, str, str]] = []

    async def list_tags(self, registry: str, repository: str) -> list[str]:
        return ["1", "2"]

    async def list_repositories(self, registry: str, prefix: str) -> list[str]:
        return []

    async def resolve(self, registry: str, repository: str, reference: str) -> ResolvedManifest | None:
        self.resolved.append((registry, repository, reference))
        return ResolvedManifest(DIGEST, OCI_MANIFEST)


@pytest.mark.anyio
async def test_lister_skips_heads_of_images_other_shards_copy(tmp_path: Path) -> None:
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(
        "version: 1\nsync:\n"
        + "".join(f"  - from: src.example/team/app{i}\n    to: dst.example/mirror/\n" for i in range(6))
    )
    spec = load_spec(spec_path)
    shard = Shard(1, 2)
    inner = _CountingLister()
    lister = ShardLister(inner, spec, shard)
    results = {}
    for i in range(6):
        results[i] = await lister.resolve("src.example", f"team/app{i}", "1")
    mine = {i for i in range(6) if shard.owns("dst.example", f"mirror/app{i}")}
    assert {repo for _, repo, _ in inner.resolved} == {f"team/app{i}" for i in mine}
    assert all((results[i] == OTHER_SHARD) == (i not in mine) for i in range(6))
    assert lister.skipped == 6 - len(mine)
    # A digest reference and a repository no entry names go to the inner lister.
    await lister.resolve("src.example", "team/unknown", "1")
    assert inner.resolved[-1] == ("src.example", "team/unknown", "1")


def test_two_shards_copy_exactly_the_full_plan_without_overlap(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source, target = make_registry("anon"), make_registry("anon")
    expected: set[str] = set()
    for r in range(8):
        for t in range(2):
            push_image_sync(source, f"team/app{r}", f"v{t}", make_image(f"shard-{r}-{t}", layers=1))
            expected.add(f"{target.host}/mirror/app{r}:v{t}")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"""version: 1
registries:
  {source.host}: {{tls-verify: false}}
  {target.host}: {{tls-verify: false}}
sync:
  - from: {source.host}/team/*
    to: {target.host}/mirror/
"""
    )
    reports = [tmp_path / "shard0.json", tmp_path / "shard1.json"]
    source.reset_log()

    first = run_cli("sync", "--no-mount-cache", "--shard", "0/2", "--report", str(reports[0]), str(spec))
    second = run_cli(
        "sync",
        "--no-mount-cache",
        "--shard-count",
        "2",
        "--report",
        str(reports[1]),
        str(spec),
        extra_env={"JOB_COMPLETION_INDEX": "1"},
    )

    assert first.returncode == 0, first.all_output
    assert second.returncode == 0, second.all_output
    copied = [
        {
            image["destination"]
            for image in json.loads(path.read_text())["images"]
            if image["outcome"] == "copied"
        }
        for path in reports
    ]
    assert copied[0] | copied[1] == expected
    assert not copied[0] & copied[1]
    assert copied[0] and copied[1]
    repositories = [{name.rsplit(":", 1)[0] for name in part} for part in copied]
    assert not repositories[0] & repositories[1]
    for r in range(8):
        assert list_tags_sync(target, f"mirror/app{r}") == ["v0", "v1"]
    assert json.loads(reports[1].read_text())["shard"] == {"index": 1, "count": 2, "images": len(copied[1])}
    # Each source tag was resolved by one shard only (the other skipped its HEAD).
    assert source.count("HEAD", r"/v2/team/app\d/manifests/v\d") == len(expected)
    assert "Shard 0/2:" in first.out
