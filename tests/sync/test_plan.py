"""Plan expansion against an in-memory registry: order, request counts, bounds, errors, duplicates."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from asyncsync.digest import Digest
from asyncsync.errors import NotFoundError, PermissionDeniedError
from asyncsync.manifest import DOCKER_V2S2, OCI_INDEX
from asyncsync.specs.load import load_spec
from asyncsync.specs.model import SyncSpec
from asyncsync.specs.skopeo import docker_source_spec
from asyncsync.sync.plan import Plan, PlannedImage, ResolvedManifest, bounded_map
from asyncsync.sync.spec_plan import build_plan

pytestmark = pytest.mark.anyio


def digest_for(text: str) -> Digest:
    return Digest.of(text.encode())


class FakeLister:
    """Repositories -> tags -> digest; records every call and the peak number of calls in flight."""

    def __init__(self, repos: dict[str, list[str]], *, delay: float = 0.0) -> None:
        self.repos = repos
        self.delay = delay
        self.calls: Counter[tuple[str, ...]] = Counter()
        self.in_flight = 0
        self.peak = 0
        self.media_types: dict[str, str] = {}
        self.refuse_catalog = False

    async def _enter(self, *call: str) -> None:
        self.calls[call] += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await anyio.sleep(self.delay)
        self.in_flight -= 1

    async def list_tags(self, registry: str, repository: str) -> list[str]:
        await self._enter("tags", registry, repository)
        key = f"{registry}/{repository}"
        if key not in self.repos:
            raise NotFoundError(404, "NAME_UNKNOWN", "repository name not known to registry")
        return list(self.repos[key])

    async def list_repositories(self, registry: str, prefix: str) -> list[str]:
        await self._enter("catalog", registry, prefix)
        if self.refuse_catalog:
            raise PermissionDeniedError(403, "DENIED", "catalog needs admin")
        names = [k.split("/", 1)[1] for k in self.repos if k.startswith(f"{registry}/")]
        return [n for n in names if not prefix or n.startswith(prefix + "/")]

    async def resolve(self, registry: str, repository: str, reference: str) -> ResolvedManifest | None:
        await self._enter("resolve", registry, repository, reference)
        key = f"{registry}/{repository}"
        if reference.startswith("sha256:"):
            return ResolvedManifest(Digest.parse(reference), DOCKER_V2S2) if key in self.repos else None
        if reference not in self.repos.get(key, []):
            return None
        return ResolvedManifest(
            digest_for(f"{key}:{reference}"), self.media_types.get(reference, DOCKER_V2S2)
        )

    def count(self, kind: str) -> int:
        return sum(n for call, n in self.calls.items() if call[0] == kind)


def native(tmp_path: Path, body: str) -> SyncSpec:
    path = tmp_path / "sync.yaml"
    path.write_text("version: 1\n" + textwrap.dedent(body))
    return load_spec(path)


def lines(plan: Plan) -> list[str]:
    return [f"{image.source.name}:{image.tag} -> {image.destination}" for image in plan.images]


REPOS = {
    "a.example/proj/api": ["2.0", "1.0", "latest"],
    "a.example/proj/web": ["1.0"],
    "a.example/proj/team/worker": ["0.1"],
    "a.example/other/x": ["1"],
}


async def test_glob_expansion_order_and_single_resolution(tmp_path: Path) -> None:
    spec = native(
        tmp_path,
        """\
        sync:
          - from: a.example/proj/**
            to: b.example/newproj/
          - from: a.example/proj/api
            to: b.example/newproj/
            tags: ["1.0"]
        """,
    )
    lister = FakeLister(REPOS)
    plan = await build_plan(spec, lister)
    assert plan.errors == () and plan.warnings == ()
    assert lines(plan) == [
        "a.example/proj/api:1.0 -> b.example/newproj/api:1.0",
        "a.example/proj/api:2.0 -> b.example/newproj/api:2.0",
        "a.example/proj/api:latest -> b.example/newproj/api:latest",
        "a.example/proj/team/worker:0.1 -> b.example/newproj/team/worker:0.1",
        "a.example/proj/web:1.0 -> b.example/newproj/web:1.0",
    ]
    image = plan.images[0]
    assert image.source.digest == digest_for("a.example/proj/api:1.0") == image.digest
    assert str(image.origin) == f"{spec.file}:3"
    # One catalog, one tag list per repository, one HEAD per distinct source tag (api:1.0 is shared).
    assert lister.calls[("catalog", "a.example", "proj")] == 1
    assert lister.count("tags") == 3
    assert lister.count("resolve") == 5 and max(lister.calls.values()) == 1


async def test_explicit_tags_skip_the_tag_list_and_a_missing_tag_is_an_error_at_its_line(
    tmp_path: Path,
) -> None:
    spec = native(
        tmp_path,
        """\
        sync:
          - from: a.example/proj/api
            to: b.example/x/
            tags:
              - "2.0"
              - "9.9"
        """,
    )
    lister = FakeLister(REPOS)
    plan = await build_plan(spec, lister)
    assert lines(plan) == ["a.example/proj/api:2.0 -> b.example/x/api:2.0"]
    assert [str(e) for e in plan.errors] == [f"{spec.file}:7: a.example/proj/api:9.9 not found"]
    assert lister.count("tags") == 0


async def test_one_failing_entry_does_not_stop_the_others(tmp_path: Path) -> None:
    spec = native(
        tmp_path,
        """\
        sync:
          - from: a.example/proj/missing
            to: b.example/x/
          - from: a.example/proj/web
            to: b.example/x/
          - from: a.example/nothing-*
            to: b.example/x/
        """,
    )
    plan = await build_plan(spec, FakeLister(REPOS))
    assert lines(plan) == ["a.example/proj/web:1.0 -> b.example/x/web:1.0"]
    assert [str(e) for e in plan.errors] == [
        f"{spec.file}:3: listing tags of a.example/proj/missing: name unknown: repository name not known "
        "to registry (HTTP 404)",
        f"{spec.file}:7: a.example/nothing-* matches no repository",
    ]


async def test_catalog_refused(tmp_path: Path) -> None:
    spec = native(tmp_path, "sync:\n  - {from: a.example/proj/*, to: b.example/}\n")
    lister = FakeLister(REPOS)
    lister.refuse_catalog = True
    plan = await build_plan(spec, lister)
    assert plan.images == ()
    assert [str(e) for e in plan.errors] == [
        f"{spec.file}:3: listing repositories for a.example/proj/*: denied: catalog needs admin (HTTP 403)"
    ]


async def test_duplicates_after_expansion_name_both_lines_and_drop_both(tmp_path: Path) -> None:
    spec = native(
        tmp_path,
        """\
        sync:
          - from: a.example/proj/*
            to: b.example/flat/
          - from: a.example/other/*
            to: b.example/flat/
          - from: a.example/proj/web
            to: b.example/web-copy
        """,
    )
    repos = {**REPOS, "a.example/other/api": ["1.0", "3.0"]}
    plan = await build_plan(spec, FakeLister(repos))
    assert lines(plan) == [
        "a.example/proj/api:2.0 -> b.example/flat/api:2.0",
        "a.example/proj/api:latest -> b.example/flat/api:latest",
        "a.example/proj/web:1.0 -> b.example/flat/web:1.0",
        "a.example/other/api:3.0 -> b.example/flat/api:3.0",
        "a.example/other/x:1 -> b.example/flat/x:1",
        "a.example/proj/web:1.0 -> b.example/web-copy:1.0",
    ]
    digest = digest_for("a.example/proj/api:1.0").short
    other = digest_for("a.example/other/api:1.0").short
    assert [str(e) for e in plan.errors] == [
        f"{spec.file}:5: destination b.example/flat/api:1.0 is written twice: by {spec.file}:3 "
        f"(from a.example/proj/api:1.0 (sha256:{digest})) and here "
        f"(from a.example/other/api:1.0 (sha256:{other})); neither is copied"
    ]


async def test_same_source_from_two_entries_is_planned_once(tmp_path: Path) -> None:
    path = tmp_path / "s.yml"
    path.write_text("a.example:\n  images:\n    proj/web: []\n  images-by-tag-regex:\n    proj/web: '1'\n")
    spec = load_spec(path, destination="b.example/m")
    lister = FakeLister(REPOS)
    plan = await build_plan(spec, lister)
    assert lines(plan) == ["a.example/proj/web:1.0 -> b.example/m/web:1.0"]
    assert plan.errors == () and lister.count("tags") == 1 and lister.count("resolve") == 1


async def test_filters_latest_and_warnings(tmp_path: Path) -> None:
    spec = native(
        tmp_path,
        """\
        sync:
          - from: a.example/proj/api
            to: b.example/x/
            tags: {latest: 1}
          - from: a.example/proj/web
            to: b.example/x/
            tags: {include: '^9'}
        """,
    )
    plan = await build_plan(spec, FakeLister({**REPOS, "a.example/empty/r": []}))
    assert lines(plan) == ["a.example/proj/api:2.0 -> b.example/x/api:2.0"]
    assert [str(w) for w in plan.warnings] == [
        f"{spec.file}:6: no tag of a.example/proj/web matches include /^9/"
    ]


async def test_digest_references_are_copied_by_digest(tmp_path: Path) -> None:
    pinned = "sha256:" + "12" * 32
    spec = native(
        tmp_path,
        f"""\
        sync:
          - from: a.example/proj/web
            to: b.example/x/
            tags: {{digests: ['{pinned}']}}
        """,
    )
    lister = FakeLister(REPOS)
    plan = await build_plan(spec, lister)
    (image,) = plan.images
    assert (image.tag, str(image.digest), str(image.destination)) == (
        None,
        pinned,
        f"b.example/x/web@{pinned}",
    )
    assert image.describe_source() == f"a.example/proj/web@{pinned}"
    assert lister.count("tags") == 0


async def test_invalid_destination_after_expansion_is_an_entry_error(tmp_path: Path) -> None:
    long_tag = "t" * 125
    spec = native(tmp_path, "sync:\n  - {from: a.example/r, to: b.example/, tag-suffix: -long}\n")
    plan = await build_plan(spec, FakeLister({"a.example/r": [long_tag, "ok"]}))
    assert lines(plan) == ["a.example/r:ok -> b.example/r:ok-long"]
    assert len(plan.errors) == 1
    assert str(plan.errors[0]).startswith(
        f"{spec.file}:3: no valid destination for a.example/r:{long_tag}: invalid tag"
    )


async def test_docker_source_on_the_command_line() -> None:
    spec = docker_source_spec("a.example/proj/api", "b.example/mirror")
    plan = await build_plan(spec, FakeLister(REPOS))
    assert lines(plan)[0] == "a.example/proj/api:1.0 -> b.example/mirror/api:1.0"
    missing = await build_plan(docker_source_spec("a.example/proj/api:7", "b.example"), FakeLister(REPOS))
    assert [str(e) for e in missing.errors] == ["<command line>: a.example/proj/api:7 not found"]


async def test_expected_destination_digest_depends_on_settings(tmp_path: Path) -> None:
    spec = native(
        tmp_path,
        """\
        sync:
          - {from: a.example/r, to: b.example/all/}
          - {from: a.example/r, to: b.example/system/, multi-arch: system}
          - {from: a.example/r, to: b.example/oci/, format: oci}
          - {from: a.example/r, to: b.example/some/, platforms: [linux/amd64]}
        """,
    )
    lister = FakeLister({"a.example/r": ["index", "image"]})
    lister.media_types["index"] = OCI_INDEX
    plan = await build_plan(spec, lister)
    expected = {str(i.destination): i.expected_destination_digest() is not None for i in plan.images}
    assert expected == {
        "b.example/all/r:image": True,
        "b.example/all/r:index": True,
        "b.example/system/r:image": True,
        "b.example/system/r:index": False,
        "b.example/oci/r:image": False,
        "b.example/oci/r:index": True,
        "b.example/some/r:image": True,
        "b.example/some/r:index": False,
    }


async def test_concurrency_is_bounded_by_limit(tmp_path: Path) -> None:
    repos = {f"a.example/p/r{i}": [f"t{j}" for j in range(10)] for i in range(20)}
    spec = native(tmp_path, "sync:\n  - {from: a.example/p/*, to: b.example/}\n")
    lister = FakeLister(repos, delay=0.001)
    plan = await build_plan(spec, lister, limit=5)
    assert len(plan.images) == 200
    assert lister.peak == 5
    assert lister.count("resolve") == 200 and lister.count("tags") == 20


async def test_bounded_map_uses_limit_workers_and_keeps_errors_as_results() -> None:
    started: list[int] = []

    async def call(key: int) -> int:
        started.append(key)
        await anyio.lowlevel.checkpoint()
        if key == 3:
            raise NotFoundError(404, "", "gone")
        return key * 2

    results = await bounded_map(list(range(6)), call, 2)
    assert {k: v for k, v in results.items() if not isinstance(v, Exception)} == {
        0: 0,
        1: 2,
        2: 4,
        4: 8,
        5: 10,
    }
    assert isinstance(results[3], NotFoundError)
    assert started == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ValueError):
        await bounded_map([1], call, 0)

    async def bug(key: int) -> int:
        raise RuntimeError("bug")

    with pytest.raises(ExceptionGroup):
        await bounded_map([1, 2], bug, 2)


class GatedLister(FakeLister):
    """Resolves ``gated`` only once ``opened`` is set (by whoever heard of an image first)."""

    def __init__(self, repos: dict[str, list[str]], gated: str) -> None:
        super().__init__(repos)
        self.gated = gated
        self.opened = anyio.Event()

    async def resolve(self, registry: str, repository: str, reference: str) -> ResolvedManifest | None:
        if reference == self.gated:
            await self.opened.wait()
        return await super().resolve(registry, repository, reference)


async def test_images_are_announced_as_their_reference_resolves_before_the_plan_is_complete(
    tmp_path: Path,
) -> None:
    spec = native(
        tmp_path,
        """\
        sync:
          - from: a.example/proj/api
            to: b.example/newproj/
          - from: a.example/proj/web
            to: b.example/newproj/
          - from: a.example/proj/web
            to: b.example/copy/
        """,
    )
    # api:latest resolves only after an image was announced: a planner that announced at the end
    # (or never) would hang here.
    lister = GatedLister(REPOS, gated="latest")
    announced: list[str] = []

    def on_image(image: PlannedImage) -> None:
        announced.append(str(image.destination))
        lister.opened.set()

    with anyio.fail_after(10):
        plan = await build_plan(spec, lister, on_image=on_image)

    assert plan.errors == ()
    # Each image once, the same images as the plan's (web:1.0, resolved once, gives two images).
    assert sorted(announced) == sorted(str(image.destination) for image in plan.images)
    assert len(announced) == len(plan.images) == 5
    assert lister.count("resolve") == 4


async def test_a_local_plan_announces_nothing(tmp_path: Path) -> None:
    spec = native(
        tmp_path,
        f"""\
        sync:
          - from: a.example/proj/web
            to: dir:{tmp_path / "tree"}
        """,
    )
    announced: list[PlannedImage] = []
    plan = await build_plan(spec, FakeLister(REPOS), on_image=announced.append)
    assert len(plan.images) == 1 and plan.images[0].destination_local is not None
    assert announced == []
