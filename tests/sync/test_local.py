"""Sync with local storage (:mod:`asyncsync.sync.local`): planners, the no-network skip check, and
``sync --src dir`` / ``--dest dir`` end to end against a real registry and skopeo 1.9.

The interop tests go both ways: a tree asyncsync writes is pushed by ``skopeo sync --src dir``, a tree
skopeo writes is pushed by ``asyncsync sync --src dir``, always with the source's digests; the
air-gapped round trip registry -> dir -> registry keeps every digest, and re-runs skip.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

import anyio
import pytest

from asyncsync.digest import Digest
from asyncsync.errors import LocalStorageError, UsageError
from asyncsync.reference import parse_reference
from asyncsync.specs.model import CopySettings, Origin
from asyncsync.sync.local import (
    DirTreeDestination,
    DirTreeSource,
    LocalState,
    SyncArguments,
    dir_image_state,
    local_sync,
)
from asyncsync.sync.plan import Plan, PlannedImage
from tests.helpers.asyncsync_cli import invoke
from tests.helpers.images import (
    get_manifest_sync,
    make_image,
    make_multiarch,
    push_image_sync,
    push_index_sync,
)
from tests.helpers.registry import RegistryServer
from tests.helpers.skopeo import skopeo
from tests.local_support import write_dir_image

# ------------------------------------------------------------------------------------ no registry


def test_dir_image_state_sees_digest_and_missing_files(tmp_path: Path, rng_seed: int) -> None:
    image = make_image(f"{rng_seed}/state", layers=2, layer_size=256)
    assert dir_image_state(str(tmp_path / "absent")).digest is None
    path = write_dir_image(tmp_path / "img", image)
    assert dir_image_state(str(path)) == LocalState(Digest.parse(image.digest))
    layer = image.layer_digests[1].removeprefix("sha256:")
    (path / layer).write_bytes(b"short")
    assert dir_image_state(str(path)).missing == layer
    index = make_multiarch(f"{rng_seed}/state-index", layer_size=256)
    multi = write_dir_image(tmp_path / "multi", index)
    assert dir_image_state(str(multi)).missing is None
    child = index.images[1].digest.removeprefix("sha256:") + ".manifest.json"
    (multi / child).unlink()
    assert dir_image_state(str(multi)).missing == child
    assert dir_image_state(str(multi), children=False).missing is None  # an index-only copy
    (multi / "manifest.json").write_bytes(b"{not json")
    assert dir_image_state(str(multi)).missing == "manifest.json"


def _planned(source: str, digest: str, origin_line: int) -> PlannedImage:
    """A planned image from ``source`` (tag or digest) pinned by ``digest``, destination = source."""
    name = parse_reference(source, default_tag=False)
    return PlannedImage(
        name.with_digest(Digest.parse(digest)),
        name,
        "application/vnd.oci.image.manifest.v1+json",
        Origin("spec.yaml", origin_line),
        CopySettings(),
    )


def test_dir_tree_destination_names_as_skopeo_and_refuses_collisions(tmp_path: Path) -> None:
    digest = "sha256:" + "ab" * 32
    plan = Plan(
        images=(
            _planned("reg.example:5000/proj/app:v1", digest, 1),
            _planned("reg.example:5000/other/app:v1", "sha256:" + "cd" * 32, 2),
            _planned("reg.example:5000/proj/tool@" + digest, digest, 3),
        )
    )
    root = str(tmp_path / "tree")
    unscoped = DirTreeDestination(root).assign(plan)
    assert [image.describe_destination() for image in unscoped.images] == [f"dir:{root}/tool@{digest}"]
    assert len(unscoped.errors) == 1 and "neither is copied" in str(unscoped.errors[0])
    scoped = DirTreeDestination(root, scoped=True, append_suffix="").assign(plan)
    assert [image.describe_destination() for image in scoped.images] == [
        f"dir:{root}/reg.example:5000/proj/app:v1",
        f"dir:{root}/reg.example:5000/other/app:v1",
        f"dir:{root}/reg.example:5000/proj/tool@{digest}",
    ]
    suffixed = DirTreeDestination(root, scoped=True, append_suffix="-mirror").assign(plan)
    assert suffixed.images[0].describe_destination().endswith("/proj/app:v1-mirror")
    assert "--append-suffix cannot apply to a digest reference" in str(suffixed.errors[0])


def test_dir_tree_source_plans_every_image_directory(tmp_path: Path, rng_seed: int) -> None:
    root = tmp_path / "tree"
    first = make_image(f"{rng_seed}/a", layers=1, layer_size=128)
    write_dir_image(root / "app:v1", first)
    write_dir_image(root / "nested" / "tool", make_image(f"{rng_seed}/b", layers=1, layer_size=128))
    write_dir_image(root / "x" / "dup:1", first)
    write_dir_image(root / "y" / "dup:1", make_image(f"{rng_seed}/c", layers=1, layer_size=128))
    (root / "broken").mkdir()
    (root / "broken" / "manifest.json").write_bytes(b"[]")

    async def plan() -> Plan:
        source = DirTreeSource(str(root), "reg.example:5000/mirror")
        return await source.plan(local_sync_spec(), _NoLister())

    result = anyio.run(plan)
    by_destination = {str(image.destination): image for image in result.images}
    assert sorted(by_destination) == ["reg.example:5000/mirror/app:v1", "reg.example:5000/mirror/tool:latest"]
    app = by_destination["reg.example:5000/mirror/app:v1"]
    assert app.digest == Digest.parse(first.digest) and app.source_local is not None
    assert app.describe_source() == f"dir:{root}/app:v1 ({first.digest[:19]})"
    messages = sorted(str(error) for error in result.errors)
    assert len(messages) == 2
    assert messages[0].startswith(f"{root}/broken: reading dir:{root}/broken: manifest.json")
    assert "reg.example:5000/mirror/dup:1 is written twice" in messages[1]
    with pytest.raises(LocalStorageError, match="not a directory"):
        anyio.run(DirTreeSource(str(tmp_path / "none"), "reg.example/x").plan, local_sync_spec(), _NoLister())


class _NoLister:
    """A :class:`SourceLister` that fails the test when used (a dir source reads no registry)."""

    async def list_tags(self, registry: str, repository: str) -> list[str]:
        raise AssertionError("no registry listing expected")

    async def list_repositories(self, registry: str, prefix: str) -> list[str]:
        raise AssertionError("no registry listing expected")

    async def resolve(self, registry: str, repository: str, reference: str) -> Any:
        raise AssertionError("no registry listing expected")


def local_sync_spec() -> Any:
    run = local_sync(SyncArguments("dir", "docker", "/unused", "reg.example/x"))
    assert run is not None
    return run.spec


def test_local_sync_refuses_what_skopeo_refuses() -> None:
    assert local_sync(SyncArguments("docker", "docker", "reg.example/a", "reg.example/b")) is None
    with pytest.raises(UsageError, match="from 'dir' to 'dir' is not supported"):
        local_sync(SyncArguments("dir", "dir", "/a", "/b"))
    with pytest.raises(UsageError, match="missing DESTINATION argument"):
        local_sync(SyncArguments("docker", "dir", "reg.example/a", None))
    with pytest.raises(UsageError, match="--prune needs registries on both sides"):
        local_sync(SyncArguments("dir", "docker", "/a", "reg.example/b", prune=True))
    with pytest.raises(UsageError, match="cannot be used with --dest dir"):
        local_sync(SyncArguments("docker", "dir", "reg.example/a", "/b", create_projects=True))
    result = invoke("sync", "--src", "dir", "--dest", "dir", "/a", "/b")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


# ------------------------------------------------------------------------------------ end to end

PLAIN_SRC = "--src-tls-verify=false"
PLAIN_DEST = "--dest-tls-verify=false"


@pytest.fixture
def seeded(registry_anon: RegistryServer, rng_seed: int) -> tuple[str, dict[str, str]]:
    """``ag-<hex>/app`` with a Docker image, an OCI image and a multi-arch index; tag -> digest."""
    repo = f"ag-{secrets.token_hex(4)}/app"
    digests = {}
    for tag, fmt in (("v1", "docker"), ("v2", "oci")):
        image = make_image(f"{rng_seed}/{tag}", layers=2, layer_size=1024, fmt=fmt)  # type: ignore[arg-type]
        push_image_sync(registry_anon, repo, tag, image)
        digests[tag] = image.digest
    index = make_multiarch(f"{rng_seed}/multi", layer_size=1024)
    push_index_sync(registry_anon, repo, "multi", index)
    digests["multi"] = index.digest
    return repo, digests


def _sync(*args: str, report: Path) -> dict[str, Any]:
    result = invoke("sync", "--all", "--report", str(report), *args)
    assert result.returncode == 0, result.stderr + result.out
    document: dict[str, Any] = json.loads(report.read_bytes())
    return document


def _outcomes(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {image["destination"]: (image["outcome"], image["reason"]) for image in report["images"]}


def _digests(server: RegistryServer, repo: str, tags: list[str]) -> dict[str, str]:
    return {tag: Digest.of(get_manifest_sync(server, repo, tag)[1]).__str__() for tag in tags}


def test_asyncsync_tree_pushed_by_skopeo_round_trip_and_reruns_skip(
    registry_anon: RegistryServer, seeded: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    repo, digests = seeded
    host, tree = registry_anon.host, tmp_path / "tree"
    source = f"{host}/{repo}"
    first = _sync(
        "--src", "docker", "--dest", "dir", PLAIN_SRC, source, str(tree), report=tmp_path / "1.json"
    )
    assert {d: o for d, (o, _) in _outcomes(first).items()} == {
        f"dir:{tree}/app:{tag}": "copied" for tag in digests
    }
    assert sorted(os.listdir(tree)) == sorted(f"app:{tag}" for tag in digests)
    for tag, digest in digests.items():
        assert str(Digest.of((tree / f"app:{tag}" / "manifest.json").read_bytes())) == digest

    # skopeo pushes the tree with the source's digests.
    prefix = repo.split("/")[0]
    skopeo("sync", "--all", "--src", "dir", "--dest", "docker", PLAIN_DEST, str(tree), f"{host}/{prefix}-sk")
    assert _digests(registry_anon, f"{prefix}-sk/app", list(digests)) == digests

    # A re-run reads no blob and writes nothing; a damaged image is copied again.
    blob_gets = registry_anon.count("GET", rf"/v2/{repo}/blobs/.*")
    assert blob_gets > 0
    stamp = (tree / "app:v2" / "manifest.json").stat().st_mtime_ns
    second = _sync(
        "--src", "docker", "--dest", "dir", PLAIN_SRC, source, str(tree), report=tmp_path / "2.json"
    )
    assert set(_outcomes(second).values()) == {("skipped", "destination digest equal")}
    assert registry_anon.count("GET", rf"/v2/{repo}/blobs/.*") == blob_gets
    assert (tree / "app:v2" / "manifest.json").stat().st_mtime_ns == stamp
    damaged = next(p for p in (tree / "app:v1").iterdir() if len(p.name) == 64)
    damaged.unlink()
    preview = invoke(
        "sync", "--all", "--dry-run", "--src", "docker", "--dest", "dir", PLAIN_SRC, source, str(tree)
    )
    assert f'to="dir:{tree}/app:v1" (' in preview.out
    assert f"): destination directory incomplete ({damaged.name} missing)" in preview.out
    assert "plan: 1 to copy, 2 to skip, 0 error(s)" in preview.out
    third = _sync(
        "--src", "docker", "--dest", "dir", PLAIN_SRC, source, str(tree), report=tmp_path / "3.json"
    )
    assert _outcomes(third)[f"dir:{tree}/app:v1"][0] == "copied" and damaged.exists()
    assert sorted(o for o, _ in _outcomes(third).values()) == ["copied", "skipped", "skipped"]

    # The air-gapped round trip: the tree back into a registry keeps every digest; a re-run skips.
    back = _sync(
        "--src",
        "dir",
        "--dest",
        "docker",
        PLAIN_DEST,
        str(tree),
        f"{host}/{prefix}-back",
        report=tmp_path / "4.json",
    )
    assert {o for o, _ in _outcomes(back).values()} == {"copied"}
    assert _digests(registry_anon, f"{prefix}-back/app", list(digests)) == digests
    again = _sync(
        "--src",
        "dir",
        "--dest",
        "docker",
        PLAIN_DEST,
        str(tree),
        f"{host}/{prefix}-back",
        report=tmp_path / "5.json",
    )
    assert set(_outcomes(again).values()) == {("skipped", "destination digest equal")}


def test_skopeo_tree_pushed_by_asyncsync_and_yaml_naming_matches(
    registry_anon: RegistryServer, seeded: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    repo, digests = seeded
    host, prefix = registry_anon.host, repo.split("/")[0]
    theirs = tmp_path / "skopeo-tree"
    skopeo("sync", "--all", "--src", "docker", "--dest", "dir", PLAIN_SRC, f"{host}/{repo}", str(theirs))
    _sync(
        "--src",
        "dir",
        "--dest",
        "docker",
        PLAIN_DEST,
        str(theirs),
        f"{host}/{prefix}-from-sk",
        report=tmp_path / "a.json",
    )
    assert _digests(registry_anon, f"{prefix}-from-sk/app", list(digests)) == digests

    # --src yaml --dest dir, scoped: the same tree layout and manifests as skopeo's.
    spec = tmp_path / "sync.yaml"
    spec.write_text(f"{host}:\n  tls-verify: false\n  images:\n    {repo}: [v1, multi]\n")
    ours, skopeo_scoped = tmp_path / "ours", tmp_path / "skopeo-scoped"
    _sync("--src", "yaml", "--dest", "dir", "--scoped", str(spec), str(ours), report=tmp_path / "b.json")
    skopeo("sync", "--all", "--scoped", "--src", "yaml", "--dest", "dir", str(spec), str(skopeo_scoped))

    def images(root: Path) -> dict[str, bytes]:
        return {
            str(Path(d).relative_to(root)): (Path(d) / "manifest.json").read_bytes()
            for d, _, files in os.walk(root)
            if "manifest.json" in files
        }

    assert images(ours) == images(skopeo_scoped)
    assert sorted(images(ours)) == [f"{host}/{repo}:multi", f"{host}/{repo}:v1"]
