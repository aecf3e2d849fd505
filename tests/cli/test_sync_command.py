"""``asyncsync sync``: command-line settings that must reach every copy of the run.

Both were lost before the run's settings were resolved into one object (issue 13): a sync
without ``--all`` copied the host's platform whatever ``--override-*`` said, and
``--preserve-digests`` was checked against ``--format`` and then dropped.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.helpers.asyncsync_cli import run_cli
from tests.helpers.images import get_manifest_sync, make_multiarch, push_index_sync
from tests.helpers.registry import RegistryServer


def test_override_arch_picks_the_image_a_sync_without_all_copies(
    registry_anon: RegistryServer, tmp_path: Path
) -> None:
    index = make_multiarch("sync-override")
    push_index_sync(registry_anon, "override/src", "v1", index)
    arm = next(image for image in index.images if b'"arm64"' in image.config)
    result = run_cli(
        "sync",
        "--src",
        "docker",
        "--dest",
        "docker",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--no-mount-cache",
        "--override-arch",
        "arm64",
        "--override-variant",
        "v8",
        f"{registry_anon.host}/override/src:v1",
        f"{registry_anon.host}/override/dest",
    )
    assert result.returncode == 0, result.all_output
    _, raw = get_manifest_sync(registry_anon, "override/dest/src", "v1")
    assert raw == arm.manifest


def test_preserve_digests_reaches_the_copy(registry_anon: RegistryServer, tmp_path: Path) -> None:
    """A native spec's ``platforms:`` rewrites an index; with ``--preserve-digests`` that copy fails."""
    index = make_multiarch("sync-preserve")
    push_index_sync(registry_anon, "preserve/src", "v1", index)
    spec = tmp_path / "sync.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            defaults: {{tls-verify: false}}
            sync:
              - from: {registry_anon.host}/preserve/src
                to: {registry_anon.host}/preserve/dest
                tags: {{include: [v1]}}
                platforms: [linux/amd64]
            """
        )
    )
    report = tmp_path / "report.json"
    args = ("sync", "--no-mount-cache", "--report", str(report), str(spec))
    kept = run_cli(*args, "--preserve-digests")
    assert kept.returncode == 1, kept.all_output
    failed = json.loads(report.read_text())["images"]
    assert [image["outcome"] for image in failed] == ["failed"]
    assert "cannot preserve digests" in failed[0]["reason"]
    assert "Traceback" not in kept.all_output
    rewritten = run_cli(*args)
    assert rewritten.returncode == 0, rewritten.all_output
