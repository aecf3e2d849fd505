"""Harbor's 412 for an immutable tag is a skipped image ("immutable"), reported once, never retried."""

from __future__ import annotations

import json
from pathlib import Path

from asyncsync.digest import Digest
from tests.harbor.conftest import HarborFactory
from tests.helpers.asyncsync_cli import run_cli
from tests.helpers.images import get_manifest_sync, make_image, push_image_sync
from tests.helpers.registry import RegistryFactory


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
