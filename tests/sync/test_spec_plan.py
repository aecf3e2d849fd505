"""Native spec entries with a ``dir:`` side (:mod:`asyncsync.sync.spec_plan`): parsing and its
``file:line`` errors, planning a tree without network (tag filters, missing trees, collisions),
and the air-gapped round trip registry -> tree -> another registry with native specs only.
"""

from __future__ import annotations

import json
import os
import secrets
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest

from asyncsync.digest import Digest
from asyncsync.errors import SpecError, UsageError
from asyncsync.extensions import Extensions, build_hooks
from asyncsync.reference import parse_reference
from asyncsync.specs.load import load_spec
from asyncsync.specs.model import SyncSpec
from asyncsync.sync.plan import Plan
from asyncsync.sync.spec_plan import build_plan
from tests.helpers.asyncsync_cli import invoke
from tests.helpers.images import (
    get_manifest_sync,
    make_image,
    make_multiarch,
    push_image_sync,
    push_index_sync,
)
from tests.helpers.registry import RegistryServer
from tests.local_support import write_dir_image

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def write_spec(tmp_path: Path, body: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text("version: 1\n" + textwrap.dedent(body))
    return path


# ------------------------------------------------------------------------------------ parsing


def test_dir_sides_parse_with_paths_relative_to_the_spec(tmp_path: Path) -> None:
    (tmp_path / "specs").mkdir()
    path = write_spec(
        tmp_path / "specs",
        """\
        sync:
          - from: reg.example/team/app
            to: mirror.example/team/
          - from: reg.example/team/*
            to: dir:../usb
            scoped: true
            tags: {include: '^v'}
          - from: dir:/media/usb
            to: mirror.example/imported/
            tags: [v1]
        """,
    )
    spec = load_spec(path)
    registry, export, imported = spec.entries
    assert spec.has_local_entries and not registry.is_local
    assert (export.destination.kind, export.destination.path, export.scoped) == (
        "dir",
        str(tmp_path / "usb"),
        True,
    )
    assert str(export.destination) == f"dir:{tmp_path / 'usb'}"
    # A dir: image keeps its source's reference; the directory is named from it at planning.
    named = export.destination_for(export.sources[0], "team/app", tag="v1", digest=None)
    assert str(named) == "reg.example/team/app:v1"
    assert (imported.source_dir, imported.sources, imported.scoped) == ("/media/usb", (), False)
    assert (imported.destination.kind, str(imported.destination)) == ("prefix", "mirror.example/imported/")


def test_registry_only_spec_has_no_local_entries(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path, "sync:\n  - from: reg.example/a\n    to: reg.example/b/\n"))
    assert not spec.has_local_entries


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (
            "sync:\n  - from: dir:/a\n    to: dir:/b\n",
            4,
            "sync entry 1 copies a directory tree to a directory tree, "
            "which is not supported (as in skopeo): copy the tree itself",
        ),
        (
            "sync:\n  - from: reg.example/a\n    to: 'dir:'\n",
            4,
            "'to' of sync entry 1 names no directory after 'dir:'",
        ),
        (
            "sync:\n  - from: 'dir:  '\n    to: reg.example/x/\n",
            3,
            "'from' of sync entry 1 names no directory after 'dir:'",
        ),
        (
            "sync:\n  - from: dir:/a\n    to: reg.example/x\n",
            4,
            "'to' of sync entry 1 must be a registry prefix ending in '/' "
            "(every image of the directory tree goes below it), not 'reg.example/x'",
        ),
        (
            "sync:\n  - from: [reg.example/a, dir:/a]\n    to: reg.example/x/\n",
            3,
            "a 'dir:' source must be the only 'from' value of sync entry 1",
        ),
        (
            "sync:\n  - from: reg.example/a\n    to: reg.example/x/\n    scoped: true\n",
            5,
            "'scoped' of sync entry 1 needs a 'dir:' side (it names directories)",
        ),
        (
            "sync:\n  - from: reg.example/a\n    to: dir:/x\n    tag-suffix: -m\n",
            5,
            "'tag-suffix' cannot be used with the 'dir:' side of sync entry 1",
        ),
        (
            "sync:\n  - from: dir:/a\n    to: reg.example/x/\n    tags:\n"
            f"      digests: [sha256:{'ab' * 32}]\n",
            6,
            "'digests' cannot select images of the directory tree of sync entry 1 (use tags)",
        ),
    ],
)
def test_dir_entry_errors_name_file_and_line(tmp_path: Path, body: str, line: int, message: str) -> None:
    path = write_spec(tmp_path, body)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}:{line}: {message}"


def test_airgap_examples_in_configs_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPORT_PASSWORD", "x")
    export = load_spec(CONFIGS / "airgap-export.yaml")
    assert export.has_local_entries
    assert any(e.destination.kind == "dir" for e in export.entries)
    imported = load_spec(CONFIGS / "airgap-import.yaml")
    sources = [e.source_dir for e in imported.entries if e.source_dir is not None]
    assert sources and all(os.path.isabs(s) for s in sources)


def test_prune_and_create_projects_are_refused_with_dir_entries(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path, "sync:\n  - from: dir:/a\n    to: reg.example/x/\n"))
    with pytest.raises(UsageError, match="--prune needs registries on both sides"):
        build_hooks(spec, Extensions(prune=True))
    with pytest.raises(UsageError, match="--create-projects needs registries on both sides"):
        build_hooks(spec, Extensions(create_projects=True))
    assert build_hooks(spec, Extensions()) is not None


# ------------------------------------------------------------------------------------ planning a tree


class _NoLister:
    """A :class:`SourceLister` that fails the test when used (a dir source reads no registry)."""

    async def list_tags(self, registry: str, repository: str) -> list[str]:
        raise AssertionError("no registry listing expected")

    async def list_repositories(self, registry: str, prefix: str) -> list[str]:
        raise AssertionError("no registry listing expected")

    async def resolve(self, registry: str, repository: str, reference: str) -> Any:
        raise AssertionError("no registry listing expected")


def _plan(spec: SyncSpec) -> Plan:
    async def main() -> Plan:
        return await build_plan(spec, _NoLister())

    return anyio.run(main)


@pytest.fixture
def tree(tmp_path: Path, rng_seed: int) -> dict[str, str]:
    """``tmp_path/tree`` with app:v1, app:v2, app:latest and tools:v1; directory -> manifest digest."""
    digests = {}
    for name in ("app:v1", "app:v2", "app:latest", "tools:v1"):
        image = make_image(f"{rng_seed}/{name}", layers=1, layer_size=128)
        write_dir_image(tmp_path / "tree" / name, image)
        digests[name] = image.digest
    return digests


def test_tree_plan_applies_tag_filters_per_repository(tmp_path: Path, tree: dict[str, str]) -> None:
    spec = load_spec(
        write_spec(
            tmp_path,
            """\
            sync:
              - from: dir:tree
                to: reg.example/imp/
                tags:
                  include: '^v'
                  latest: 1
            """,
        )
    )
    plan = _plan(spec)
    assert not plan.errors
    assert {str(i.destination): str(i.source_local) for i in plan.images} == {
        "reg.example/imp/app:v2": f"dir:{tmp_path / 'tree' / 'app:v2'}",
        "reg.example/imp/tools:v1": f"dir:{tmp_path / 'tree' / 'tools:v1'}",
    }
    for image in plan.images:
        assert str(image.digest) == tree[image.source_local.path.rsplit("/", 1)[-1]]  # type: ignore[union-attr]
        assert image.origin.line == 3 and image.settings.multi_arch == "all"


def test_tree_plan_errors_carry_the_spec_line(tmp_path: Path, tree: dict[str, str]) -> None:
    spec = load_spec(
        write_spec(
            tmp_path,
            """\
            sync:
              - from: dir:tree
                to: reg.example/imp/
                tags: [v1, v9]
              - from: dir:missing
                to: reg.example/other/
              - from: dir:tree
                to: reg.example/imp/
                tags: [latest]
                multi-arch: system
            """,
        )
    )
    plan = _plan(spec)
    assert [str(e) for e in plan.errors] == [
        f"{spec.file}:5: no image of dir:{tmp_path / 'tree'} has tag v9",
        f"{spec.file}:6: reading dir:{tmp_path / 'missing'}: "
        f"invalid source directory {str(tmp_path / 'missing')!r}: not a directory",
    ]
    assert sorted(str(i.destination) for i in plan.images) == [
        "reg.example/imp/app:latest",
        "reg.example/imp/app:v1",
        "reg.example/imp/tools:v1",
    ]


def test_tree_images_written_twice_from_different_trees_are_dropped(tmp_path: Path, rng_seed: int) -> None:
    for root in ("one", "two"):
        write_dir_image(tmp_path / root / "app:v1", make_image(f"{rng_seed}/{root}", layers=1, layer_size=64))
    spec = load_spec(
        write_spec(
            tmp_path,
            "sync:\n  - from: dir:one\n    to: reg.example/x/\n  - from: dir:two\n    to: reg.example/x/\n",
        )
    )
    plan = _plan(spec)
    assert plan.images == ()  # as in a registry plan: neither source wins
    (error,) = plan.errors
    assert error.origin.line == 5
    assert error.message.startswith(
        f"destination reg.example/x/app:v1 is written twice: by {spec.file}:3 (from dir:"
    )
    assert error.message.endswith("neither is copied")


# ------------------------------------------------------------------------------------ end to end


def _run(spec: Path, report: Path, *extra: str) -> dict[str, tuple[str, str]]:
    result = invoke("sync", "--report", str(report), *extra, str(spec))
    assert result.returncode == 0, result.stderr + result.out
    document: dict[str, Any] = json.loads(report.read_bytes())
    return {image["destination"]: (image["outcome"], image["reason"]) for image in document["images"]}


def _digest(server: RegistryServer, repo: str, tag: str) -> str:
    return str(Digest.of(get_manifest_sync(server, repo, tag)[1]))


def test_native_specs_carry_a_registry_through_a_tree_into_another_registry(
    registry_anon: RegistryServer, make_registry: Any, tmp_path: Path, rng_seed: int
) -> None:
    host, project = registry_anon.host, f"ag-{secrets.token_hex(4)}"
    repo = f"{project}/app"
    digests = {}
    for tag, fmt in (("v1", "docker"), ("v2", "oci")):
        image = make_image(f"{rng_seed}/{tag}", layers=2, layer_size=1024, fmt=fmt)  # type: ignore[arg-type]
        push_image_sync(registry_anon, repo, tag, image)
        digests[tag] = image.digest
    index = make_multiarch(f"{rng_seed}/multi", layer_size=1024)
    push_index_sync(registry_anon, repo, "multi", index)
    digests["multi"] = index.digest

    # A mixed export: registry -> registry and registry -> tree (relative to the spec) in one run.
    export = write_spec(
        tmp_path,
        f"""\
        registries:
          {host}: {{tls-verify: false}}
        sync:
          - from: {host}/{repo}
            to: {host}/{project}-mirror/
            tags: [v1]
          - from: {host}/{project}/*
            to: dir:usb
        """,
        name="export.yaml",
    )
    usb = tmp_path / "usb"
    first = _run(export, tmp_path / "export-1.json")
    assert first == {
        f"{host}/{project}-mirror/app:v1": ("copied", first[f"{host}/{project}-mirror/app:v1"][1]),
        **{f"dir:{usb}/app:{tag}": ("copied", first[f"dir:{usb}/app:{tag}"][1]) for tag in digests},
    }
    assert sorted(os.listdir(usb)) == sorted(f"app:{tag}" for tag in digests)
    for tag, digest in digests.items():
        assert str(Digest.of((usb / f"app:{tag}" / "manifest.json").read_bytes())) == digest
    assert _digest(registry_anon, f"{project}-mirror/app", "v1") == digests["v1"]
    again = _run(export, tmp_path / "export-2.json")
    assert set(again.values()) == {("skipped", "destination digest equal")} and set(again) == set(first)

    # The import side, in another registry: every image of the tree with identical digests.
    target = make_registry("anon")
    imported = write_spec(
        tmp_path,
        f"""\
        registries:
          {target.host}: {{tls-verify: false}}
        sync:
          - from: dir:usb
            to: {target.host}/imported/
        """,
        name="import.yaml",
    )
    pushed = _run(imported, tmp_path / "import-1.json")
    assert pushed == {
        f"{target.host}/imported/app:{tag}": ("copied", pushed[f"{target.host}/imported/app:{tag}"][1])
        for tag in digests
    }
    for tag, digest in digests.items():
        assert _digest(target, "imported/app", tag) == digest
    skipped = _run(imported, tmp_path / "import-2.json")
    assert set(skipped.values()) == {("skipped", "destination digest equal")} and set(skipped) == set(pushed)
    dry = invoke("sync", "--dry-run", str(imported))
    assert dry.returncode == 0, dry.stderr
    assert f"dir:{usb}/app:v1" in dry.out and "0 to copy" in dry.out


def test_mixed_spec_parses_names_as_references(tmp_path: Path) -> None:
    # The registry side of a to: dir: entry is the source's reference, valid for the engine.
    spec = load_spec(write_spec(tmp_path, "sync:\n  - from: reg.example/a/b\n    to: dir:/x\n"))
    (entry,) = spec.entries
    name = entry.destination_for(
        entry.sources[0], "a/b", tag=None, digest=Digest.parse("sha256:" + "cd" * 32)
    )
    assert name == parse_reference("reg.example/a/b@sha256:" + "cd" * 32, default_tag=False)
