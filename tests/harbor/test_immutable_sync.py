"""Immutable destination tags on Harbor, end to end against the Harbor-compatible test server.

* Without ``type: harbor`` the sync learns of an immutable tag from Harbor's 412 on the manifest
  PUT: the image is skipped ("immutable"), reported once, never retried.
* With ``type: harbor`` the project's tag-immutability rules are read once per project per run,
  and an image that would move an existing immutable tag is skipped the same way before any
  blob request to the destination (counted in the real registry's access log); tags the rules
  do not select (``excludes`` decorations, disabled rules) and tags pushed for the first time
  are copied. A robot account that may not read the rules (403) falls back to the 412.
* The mirror's cycle summary and JSON report show the skip, and each cycle reads the rules anew.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from asyncsync.digest import Digest
from asyncsync.extensions import Extensions, build_hooks
from asyncsync.mirror.loop import Every, MirrorLoop
from asyncsync.specs.load import load_spec
from asyncsync.sync.engine import run_sync
from asyncsync.sync.image_work import REASON_IMMUTABLE
from asyncsync.sync.report import Outcome, SyncReport
from asyncsync.sync.settings import CommandLine, resolve_settings
from tests.harbor.conftest import HarborFactory
from tests.helpers.asyncsync_cli import run_cli
from tests.helpers.harbor_server import HarborServer
from tests.helpers.images import get_manifest, get_manifest_sync, make_image, push_image, push_image_sync
from tests.helpers.registry import RegistryFactory, RegistryServer

RULES = "/api/v2.0/projects/{}/immutabletagrules"


def _spec(
    tmp_path: Path,
    source: RegistryServer,
    target: HarborServer,
    entries: list[tuple[str, str]],
    *,
    user: str = "admin",
    password: str | None = None,
) -> Path:
    """A native spec: ``type: harbor`` target with ``user``'s credentials, one entry per pair."""
    sync = "".join(f"  - from: {source.host}/{src}\n    to: {target.host}/{dst}\n" for src, dst in entries)
    path = tmp_path / "spec.yaml"
    path.write_text(
        f"""version: 1
registries:
  {source.host}: {{tls-verify: false}}
  {target.host}:
    type: harbor
    tls-verify: false
    credentials: {{username: "{user}", password: "{password or target.admin_password}"}}
sync:
{sync}"""
    )
    return path


async def _sync(spec_path: Path) -> tuple[SyncReport, dict[str, object]]:
    spec = load_spec(spec_path)
    hooks = build_hooks(spec, Extensions())
    report = await run_sync(spec, resolve_settings(spec, CommandLine()), hooks=hooks, handle_signals=False)
    return report, hooks.report_data()


def _outcomes(report: SyncReport) -> dict[str, tuple[str, str]]:
    return {r.destination.split("/", 1)[1]: (r.outcome.value, r.reason) for r in report.results}


def _blob_requests(target: HarborServer, repository: str) -> int:
    assert target.registry is not None
    return target.registry.count(None, rf"/v2/{repository}/blobs/.*")


def test_immutable_tag_is_skipped_not_failed_and_not_retried(
    make_harbor: HarborFactory, make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source = make_registry("anon")
    target = make_harbor()
    target.add_project("frozen", immutable=True)
    pinned = push_image_sync(target.as_registry(), "frozen/app", "1.0", make_image("immutable-old"))
    push_image_sync(source, "team/app", "1.0", make_image("immutable-new"))
    newer = push_image_sync(source, "team/app", "1.1", make_image("immutable-newer"))
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"""version: 1
defaults: {{retry-times: 3, retry-delay: 10ms}}
registries:
  {source.host}: {{tls-verify: false}}
  {target.host}:
    tls-verify: false
    credentials: {{username: admin, password: "{target.admin_password}"}}
sync:
  - from: {source.host}/team/app
    to: {target.host}/frozen/app
"""
    )
    report = tmp_path / "report.json"

    result = run_cli("sync", "--no-mount-cache", "--report", str(report), str(spec))

    assert result.returncode == 0, result.all_output
    images = {image["destination"]: image for image in json.loads(report.read_text())["images"]}
    old = images[f"{target.host}/frozen/app:1.0"]
    assert (old["outcome"], old["reason"]) == (
        "skipped",
        "immutable: the destination tag is immutable (HTTP 412)",
    )
    assert images[f"{target.host}/frozen/app:1.1"]["outcome"] == "copied"
    assert "skipped 1: immutable" in result.out
    # One refused PUT: a 412 is not retried, at blob level or image level.
    assert target.refusals == ["PUT frozen/app:1.0"]
    # The immutable tag still names what it named; the new tag arrived.
    registry = target.as_registry()
    assert str(Digest.of(get_manifest_sync(registry, "frozen/app", "1.0")[1])) == pinned
    assert str(Digest.of(get_manifest_sync(registry, "frozen/app", "1.1")[1])) == newer
    # No ``type: harbor``: the rules are never read, the 412 is the only signal.
    assert target.api_count("GET", RULES.format("frozen")) == 0


@pytest.mark.anyio
async def test_an_existing_immutable_tag_is_skipped_before_any_blob_request(
    make_harbor: HarborFactory, make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source = make_registry("anon")
    target = make_harbor()
    target.add_project("frozen")
    target.rules.add("frozen", repositories="**", tags="v*")
    registry = target.as_registry()
    pinned = await push_image(registry, "frozen/app", "v1.0", make_image("rules-app-old"))
    await push_image(registry, "frozen/web", "dev", make_image("rules-web-old"))
    await push_image(source, "team/app", "v1.0", make_image("rules-app-new"))
    web_dev = await push_image(source, "team/web", "dev", make_image("rules-web-dev"))
    web_v2 = await push_image(source, "team/web", "v2.0", make_image("rules-web-v2"))
    spec = _spec(tmp_path, source, target, [("team/app", "frozen/app"), ("team/web", "frozen/web")])
    app_blobs_before = _blob_requests(target, "frozen/app")
    target.api_requests.clear()

    report, extra = await _sync(spec)

    assert report.ok
    assert _outcomes(report) == {
        "frozen/app:v1.0": ("skipped", REASON_IMMUTABLE),  # exists, differs, matches "v*"
        "frozen/web:dev": ("copied", ""),  # exists, differs, not selected: moved
        "frozen/web:v2.0": ("copied", ""),  # selected but new: an immutable tag is pushed once
    }
    # Nothing of the skipped image reached the destination: no blob HEAD, upload or mount,
    # and no manifest PUT (Harbor refused nothing: the rules said it first).
    assert _blob_requests(target, "frozen/app") == app_blobs_before
    assert target.refusals == []
    # Two images of project "frozen" needed the rules: one read.
    assert target.api_count("GET", RULES.format("frozen")) == 1
    assert extra == {"harbor": {"immutable_skipped_by_rule": 1}}
    assert str(Digest.of((await get_manifest(registry, "frozen/app", "v1.0"))[1])) == pinned
    assert str(Digest.of((await get_manifest(registry, "frozen/web", "dev"))[1])) == web_dev
    assert str(Digest.of((await get_manifest(registry, "frozen/web", "v2.0"))[1])) == web_v2


@pytest.mark.anyio
async def test_excludes_decorations_and_disabled_rules(
    make_harbor: HarborFactory, make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source = make_registry("anon")
    target = make_harbor()
    target.add_project("team")
    # Every tag but dev-* is immutable, in every repository but legacy/...
    target.rules.add(
        "team", repositories="legacy/**", exclude_repositories=True, tags="dev-*", exclude_tags=True
    )
    # Would make everything immutable, but it is disabled.
    target.rules.add("team", repositories="**", tags="**", disabled=True)
    registry = target.as_registry()
    entries = []
    for repository in ("app", "legacy/app"):
        for tag in ("1.0", "dev-1"):
            await push_image(registry, f"team/{repository}", tag, make_image(f"excl-old-{repository}-{tag}"))
            await push_image(source, f"src/{repository}", tag, make_image(f"excl-new-{repository}-{tag}"))
        entries.append((f"src/{repository}", f"team/{repository}"))
    spec = _spec(tmp_path, source, target, entries)

    report, _ = await _sync(spec)

    assert report.ok
    assert _outcomes(report) == {
        "team/app:1.0": ("skipped", REASON_IMMUTABLE),
        "team/app:dev-1": ("copied", ""),  # tag excluded
        "team/legacy/app:1.0": ("copied", ""),  # repository excluded
        "team/legacy/app:dev-1": ("copied", ""),
    }
    # The server (its own matcher) agrees: nothing the sync pushed was refused.
    assert target.refusals == []
    assert target.api_count("GET", RULES.format("team")) == 1


@pytest.mark.anyio
async def test_a_robot_that_may_not_read_the_rules_falls_back_to_the_412(
    make_harbor: HarborFactory,
    make_registry: RegistryFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = make_registry("anon")
    target = make_harbor()
    target.add_project("frozen", immutable=True)
    secret = "robot-secret-Zq9"
    robot = target.add_robot("ci", secret, project="frozen").name
    registry = target.as_registry()
    for tag in ("1.0", "2.0"):
        await push_image(registry, "frozen/app", tag, make_image(f"robot-old-{tag}"))
        await push_image(source, "team/app", tag, make_image(f"robot-new-{tag}"))
    spec = _spec(tmp_path, source, target, [("team/app", "frozen/app")], user=robot, password=secret)
    target.api_requests.clear()

    with caplog.at_level(logging.INFO, logger="asyncsync.harbor"):
        report, extra = await _sync(spec)

    assert report.ok
    assert _outcomes(report) == {
        "frozen/app:1.0": ("skipped", REASON_IMMUTABLE),
        "frozen/app:2.0": ("skipped", REASON_IMMUTABLE),
    }
    # Harbor said 403 once; both images went on to the upload and Harbor's 412.
    assert [status for method, path, status in target.api_requests if "immutabletagrules" in path] == [403]
    assert sorted(target.refusals) == ["PUT frozen/app:1.0", "PUT frozen/app:2.0"]
    assert extra == {"harbor": {"immutable_rules_unreadable": [f"{target.host}/frozen"]}}
    notes = [r for r in caplog.records if "immutability rules" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.INFO
    assert "HTTP 403" in notes[0].getMessage() and secret not in caplog.text


@pytest.mark.anyio
async def test_the_mirror_cycle_report_shows_the_skip_and_rereads_the_rules(
    make_harbor: HarborFactory, make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source = make_registry("anon")
    target = make_harbor()
    target.add_project("frozen")
    target.rules.add("frozen", repositories="app", tags="{1.0,1.1}")
    await push_image(target.as_registry(), "frozen/app", "1.0", make_image("mirror-rules-old"))
    await push_image(source, "team/app", "1.0", make_image("mirror-rules-new"))
    spec = _spec(tmp_path, source, target, [("team/app", "frozen/app")])
    blobs_before = _blob_requests(target, "frozen/app")
    lines: list[str] = []
    report_path = tmp_path / "cycle.json"
    target.api_requests.clear()

    loop = MirrorLoop(
        lambda: load_spec(spec),
        CommandLine(),
        Every(0.05),
        jitter=0.0,
        echo=lines.append,
        report_path=report_path,
        max_cycles=2,
    )
    assert await loop.run(handle_signals=False) is True

    assert lines.count(f"  skipped 1: {REASON_IMMUTABLE}") == 2  # once per cycle summary
    document = json.loads(report_path.read_text())
    assert [(i["outcome"], i["reason"]) for i in document["images"]] == [
        (Outcome.SKIPPED.value, REASON_IMMUTABLE)
    ]
    assert document["harbor"] == {"immutable_skipped_by_rule": 1}
    assert _blob_requests(target, "frozen/app") == blobs_before
    assert target.refusals == []
    # Rules are cached for one run: each cycle reads them again (they may have changed).
    assert target.api_count("GET", RULES.format("frozen")) == 2


def test_dry_run_shows_what_the_rules_keep(
    make_harbor: HarborFactory, make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source = make_registry("anon")
    target = make_harbor()
    target.add_project("frozen")
    target.rules.add("frozen", repositories="**", tags="v*")
    push_image_sync(target.as_registry(), "frozen/app", "v1.0", make_image("dry-rules-old"))
    push_image_sync(source, "team/app", "v1.0", make_image("dry-rules-new"))
    push_image_sync(source, "team/app", "dev", make_image("dry-rules-dev"))
    spec = _spec(tmp_path, source, target, [("team/app", "frozen/app")])

    preview = run_cli("sync", "--dry-run", "--no-mount-cache", str(spec))

    assert preview.returncode == 0, preview.all_output
    lines = preview.out.splitlines()
    [frozen] = [line for line in lines if line.endswith("(registry rule)")]
    assert frozen.startswith("Would have skipped") and "frozen/app:v1.0" in frozen
    assert any(line.startswith("Would have copied") and "frozen/app:dev" in line for line in lines)
    assert target.api_count("GET", RULES.format("frozen")) == 1
