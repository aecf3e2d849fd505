"""Harbor-to-Harbor migration end to end (``asyncsync sync`` on a ``type: harbor`` spec).

A seeded source project moves into a fresh Harbor test server: API discovery on the source
(no ``_catalog``), the target project created on the way, one repository renamed, a large
shared layer mounted from a repository the blob query found instead of uploaded, and a re-run
that copies nothing. Without ``create-projects`` the missing project is a plan error that says
so; a robot account that may not create it gets Harbor's refusal in that error.
"""

from __future__ import annotations

import json
from pathlib import Path

from asyncsync.digest import Digest
from tests.harbor.conftest import HarborFactory
from tests.helpers.asyncsync_cli import run_cli
from tests.helpers.harbor_server import HarborServer
from tests.helpers.images import (
    get_manifest_sync,
    make_image,
    make_layer,
    make_multiarch,
    push_image_sync,
    push_index_sync,
)

SHARED_LAYER = make_layer("harbor-migration-runtime", 320 * 1024)  # above the blob-query threshold


def _seed_source(harbor: HarborServer) -> dict[tuple[str, str], str]:
    harbor.add_project("payments")
    harbor.add_project("legacy")
    registry = harbor.as_registry()
    expected: dict[tuple[str, str], str] = {}
    for repo in ("payments/api", "payments/batch/worker"):
        for tag in ("1.0", "1.1"):
            image = make_image(f"{repo}:{tag}", layers=1, shared_layers=[SHARED_LAYER])
            expected[(repo, tag)] = push_image_sync(registry, repo, tag, image)
    expected[("payments/api", "multi")] = push_index_sync(
        registry, "payments/api", "multi", make_multiarch("mig")
    )
    expected[("legacy/ledger", "2.0.0")] = push_image_sync(
        registry, "legacy/ledger", "2.0.0", make_image("ledger")
    )
    return expected


def _spec(
    tmp_path: Path, source: HarborServer, target: HarborServer, *, create: bool, target_user: str
) -> Path:
    (tmp_path / "target-password").write_text(target.admin_password + "\n")
    spec = tmp_path / "migration.yaml"
    spec.write_text(
        f"""version: 1
registries:
  {source.host}:
    type: harbor
    tls-verify: false
    credentials:
      username: robot$migration
      password-env: SOURCE_ROBOT_PASSWORD
  {target.host}:
    type: harbor
    create-projects: {"true" if create else "false"}
    tls-verify: false
    credentials:
      username: {target_user}
      password-file: target-password
sync:
  - from: {source.host}/payments/**
    to: {target.host}/fintech/
  - from: {source.host}/legacy/ledger
    to: {target.host}/fintech/ledger-service
"""
    )
    return spec


DESTINATIONS = {
    "payments/api": "fintech/api",
    "payments/batch/worker": "fintech/batch/worker",
    "legacy/ledger": "fintech/ledger-service",
}
ENV = {"SOURCE_ROBOT_PASSWORD": "robot-secret"}


def test_migration_creates_the_project_renames_mounts_and_reruns_as_a_no_op(
    make_harbor: HarborFactory, tmp_path: Path
) -> None:
    source, target = make_harbor(), make_harbor()
    expected = _seed_source(source)
    source.add_robot("migration", "robot-secret")
    # The target already holds the big runtime layer in another project: the migration mounts it.
    target.add_project("base")
    push_image_sync(
        target.as_registry(), "base/runtime", "1", make_image("runtime", shared_layers=[SHARED_LAYER])
    )
    spec = _spec(tmp_path, source, target, create=True, target_user="admin")
    report = tmp_path / "report.json"

    preview = run_cli("sync", "--dry-run", str(spec), extra_env=ENV)
    assert preview.returncode == 0, preview.all_output
    assert f"create Harbor project {target.host}/fintech (missing; create-projects)" in preview.out
    assert "plan: 6 to copy, 0 to skip, 0 error(s)" in preview.out
    assert "fintech" not in target.state.projects  # a dry run creates nothing

    result = run_cli("sync", "--no-mount-cache", "--report", str(report), str(spec), extra_env=ENV)

    assert result.returncode == 0, result.all_output
    assert f"Created Harbor project {target.host}/fintech" in result.out
    assert "fintech" in target.state.projects
    for (repo, tag), digest in expected.items():
        _, raw = get_manifest_sync(target.as_registry(), DESTINATIONS[repo], tag)
        assert str(Digest.of(raw)) == digest, (repo, tag)
    # Discovery went through the project API; the source's catalog was never needed.
    assert source.api_count("GET", "/api/v2.0/projects/payments/repositories") >= 1
    assert source.registry is not None and source.registry.count(None, r"/v2/_catalog") == 0
    # The large layer came by mount from base/runtime (found by the blob query), never uploaded.
    data = json.loads(report.read_text())
    assert data["summary"]["copied"] == 6
    assert data["harbor"]["created_projects"] == [f"{target.host}/fintech"]
    assert sum(image["blobs_mounted"] for image in data["images"]) >= 1
    assert data["summary"]["bytes_uploaded"] < len(SHARED_LAYER)
    assert target.api_count("GET", "/api/v2.0/repositories?q=blob_digest") >= 1

    again = run_cli("sync", "--no-mount-cache", "--report", str(report), str(spec), extra_env=ENV)
    assert again.returncode == 0, again.all_output
    summary = json.loads(report.read_text())["summary"]
    assert (summary["copied"], summary["skipped"], summary["bytes_uploaded"]) == (0, 6, 0)
    assert target.api_count("POST", "/api/v2.0/projects") == 1


def test_missing_project_without_create_projects_is_a_plan_error_naming_the_fix(
    make_harbor: HarborFactory, tmp_path: Path
) -> None:
    source, target = make_harbor(), make_harbor()
    _seed_source(source)
    source.add_robot("migration", "robot-secret")
    spec = _spec(tmp_path, source, target, create=False, target_user="admin")

    result = run_cli("sync", "--no-mount-cache", str(spec), extra_env=ENV)

    assert result.returncode == 1, result.all_output
    assert "Harbor project 'fintech' does not exist" in result.out
    assert "create-projects" in result.out
    assert "fintech" not in target.state.projects
    assert "0 copied, 0 skipped, 0 failed" in result.out  # none was sent to be refused as "unauthorized"
    assert target.registry is not None and target.registry.count(None, r"/v2/fintech/.*") == 0


def test_robot_account_that_may_not_create_projects_gets_harbors_refusal(
    make_harbor: HarborFactory, tmp_path: Path
) -> None:
    source, target = make_harbor(), make_harbor()
    _seed_source(source)
    source.add_robot("migration", "robot-secret")
    robot = target.add_robot("pusher", target.admin_password)
    spec = _spec(tmp_path, source, target, create=True, target_user=robot.name)

    result = run_cli("sync", "--no-mount-cache", str(spec), extra_env=ENV)

    assert result.returncode == 1, result.all_output
    assert "Harbor project 'fintech' is missing" in result.out
    assert "could not be created" in result.out and "HTTP 403" in result.out
