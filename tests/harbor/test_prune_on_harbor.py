"""--prune on a ``type: harbor`` destination: tags go through Harbor's tag API, one tag at a time.

There a tag sharing its digest with a kept tag can go (the artifact and its other tags stay),
and an immutable tag is left with Harbor's reason (412) instead of failing the run.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path

from asyncsync.digest import Digest
from tests.harbor.conftest import HarborFactory
from tests.helpers.asyncsync_cli import run_cli
from tests.helpers.images import (
    get_manifest_sync,
    list_tags_sync,
    make_image,
    push_image_sync,
    push_manifest_sync,
)
from tests.helpers.registry import RegistryFactory


def test_harbor_prune_removes_single_tags_and_leaves_immutable_ones(
    make_harbor: HarborFactory, make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source = make_registry("anon")
    target = make_harbor()
    target.add_project("mirror")
    target.add_project("frozen", immutable=True)
    v1 = make_image("harbor-prune-v1", layers=1)
    push_image_sync(source, "team/app", "v1", v1)
    v2_digest = push_image_sync(source, "team/app", "v2", make_image("harbor-prune-v2", layers=1))
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"""version: 1
registries:
  {source.host}: {{tls-verify: false}}
  {target.host}:
    type: harbor
    tls-verify: false
    credentials: {{username: admin, password: "{target.admin_password}"}}
sync:
  - from: {source.host}/team/app
    to: {target.host}/mirror/app
  - from: {source.host}/team/app
    to: {target.host}/frozen/app
"""
    )
    assert run_cli("sync", "--no-mount-cache", str(spec)).returncode == 0
    registry = target.as_registry()
    push_manifest_sync(registry, "mirror/app", "v9", v1.manifest, v1.media_type)  # shares v1's digest
    connection = http.client.HTTPConnection("127.0.0.1", source.port, timeout=5)
    connection.request("DELETE", f"/v2/team/app/manifests/{v2_digest}")
    assert connection.getresponse().status == 202
    connection.close()
    report = tmp_path / "report.json"

    result = run_cli("sync", "--no-mount-cache", "--prune", "--report", str(report), str(spec))

    assert result.returncode == 0, result.all_output
    assert list_tags_sync(registry, "mirror/app") == ["v1"]  # v2 and v9 gone, v1's artifact intact
    assert str(Digest.of(get_manifest_sync(registry, "mirror/app", "v1")[1])) == str(Digest.of(v1.manifest))
    assert list_tags_sync(registry, "frozen/app") == ["v1", "v2"]
    assert target.refusals == ["DELETE frozen/app:v2"]
    actions = {
        t["destination"]: (t["action"], t["reason"]) for t in json.loads(report.read_text())["prune"]["tags"]
    }
    assert actions[f"{target.host}/frozen/app:v2"] == ("keep", "immutable tag (HTTP 412)")
    assert actions[f"{target.host}/mirror/app:v9"][0] == "deleted"
    assert actions[f"{target.host}/mirror/app:v2"][0] == "deleted"
    assert target.api_count("DELETE", "/api/v2.0/projects/mirror/repositories/app/artifacts/") == 2
    assert target.registry is not None
    assert target.registry.count("DELETE", r"/v2/.*") == 0  # no manifest deletion on Harbor
