"""Attachments out of Harbor (the Harbor-compatible test server, tests/helpers/harbor_server.py):
accessories (a cosign signature, an untagged OCI referrer) are not images of their own; they come
along with their subject, the referrer found through Harbor's referrers API."""

from __future__ import annotations

import json
from pathlib import Path

import anyio

from tests.harbor.conftest import HarborFactory
from tests.helpers.asyncsync_cli import run_cli
from tests.helpers.attachments import SBOM_TYPE, cosign_signature, fallback_tag, push_artifact, referrer
from tests.helpers.images import get_manifest_sync, list_tags_sync, make_image, push_image
from tests.helpers.registry import RegistryFactory


def test_accessories_follow_their_subject_and_are_not_listed_as_images(
    make_harbor: HarborFactory, make_registry: RegistryFactory, tmp_path: Path
) -> None:
    harbor, dest = make_harbor(), make_registry("anon")
    harbor.add_project("proj")
    registry = harbor.as_registry()

    async def seed() -> tuple[str, str, str]:
        image = make_image("harbor-att", fmt="oci")
        digest = await push_image(registry, "proj/app", "1.0", image)
        sig = cosign_signature(digest, "harbor")
        await push_artifact(registry, "proj/app", f"{fallback_tag(digest)}.sig", sig)
        sbom = referrer(digest, image.size, SBOM_TYPE, "harbor")
        await push_artifact(registry, "proj/app", None, sbom)  # untagged: Harbor lists it by API only
        return digest, sig.digest, sbom.digest

    digest, sig, sbom = anyio.run(seed)
    spec = tmp_path / "harbor.yaml"
    spec.write_text(
        f"""version: 1
registries:
  {harbor.host}:
    type: harbor
    tls-verify: false
    credentials:
      username: admin
      password-env: HARBOR_PASSWORD
  {dest.host}:
    tls-verify: false
sync:
  - from: {harbor.host}/proj/app
    to: {dest.host}/mirror/app
"""
    )
    report = tmp_path / "report.json"
    result = run_cli(
        "sync", str(spec), "--report", str(report), extra_env={"HARBOR_PASSWORD": harbor.admin_password}
    )
    assert result.returncode == 0, result.all_output
    images = json.loads(report.read_text())["images"]
    assert [i["destination"] for i in images] == [f"{dest.host}/mirror/app:1.0"]
    assert images[0]["attachments"]["copied"] == 2
    assert set(list_tags_sync(dest, "mirror/app")) == {
        "1.0",
        f"{fallback_tag(digest)}.sig",
        fallback_tag(digest),
    }
    index = json.loads(get_manifest_sync(dest, "mirror/app", fallback_tag(digest))[1])
    assert [e["digest"] for e in index["manifests"]] == [sbom]
    assert (
        get_manifest_sync(dest, "mirror/app", f"{fallback_tag(digest)}.sig")[1]
        == get_manifest_sync(registry, "proj/app", sig)[1]
    )
