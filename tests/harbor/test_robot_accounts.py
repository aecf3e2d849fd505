"""Harbor robot accounts (``robot$name``, ``robot$project+name``) from the spec, an auth file and --creds.

``$`` and ``+`` must survive YAML, JSON, base64 Basic credentials, the token request's
``account`` query parameter (where a raw ``+`` would read as a space) and the API's Basic
header: the token service must see exactly the robot's name, and the pushes must succeed.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.harbor.conftest import HarborFactory
from tests.helpers.asyncsync_cli import run_cli
from tests.helpers.harbor_server import HarborServer
from tests.helpers.images import list_tags_sync, make_image, push_image_sync
from tests.helpers.registry import RegistryFactory

PASSWORD = "p@ss+w$rd:with colon"


def _users_seen(harbor: HarborServer) -> set[str | None]:
    return {request.user for request in harbor.token_service.requests if request.status == 200}


def test_project_robot_works_from_spec_auth_file_and_creds(
    make_harbor: HarborFactory, make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source = make_registry("anon")
    target = make_harbor()
    target.add_project("team")
    robot = target.add_robot("ci", PASSWORD, project="team").name
    assert robot == "robot$team+ci"
    push_image_sync(source, "src/app", "1", make_image("robot-accounts"))

    def spec(name: str, credentials: str) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(
            f"""version: 1
registries:
  {source.host}: {{tls-verify: false}}
  {target.host}:
    tls-verify: false
{credentials}
sync:
  - from: {source.host}/src/app
    to: {target.host}/team/{name}
"""
        )
        return path

    in_spec = spec("from-spec", f"    credentials: {{username: {robot}, password: '{PASSWORD}'}}")
    auth_file = tmp_path / "auth.json"
    encoded = base64.b64encode(f"{robot}:{PASSWORD}".encode()).decode()
    auth_file.write_text(json.dumps({"auths": {target.host: {"auth": encoded}}}))
    auth_file.chmod(0o600)
    by_auth_file = spec("from-authfile", f"    authfile: {auth_file}")
    by_flag = spec("from-creds", "")

    for path, extra in ((in_spec, []), (by_auth_file, []), (by_flag, [f"--dest-creds={robot}:{PASSWORD}"])):
        target.token_service.reset()
        target.token_accounts.clear()
        result = run_cli("sync", "--no-mount-cache", *extra, str(path))
        assert result.returncode == 0, (path.name, result.all_output)
        assert _users_seen(target) == {robot}, path.name
        assert set(target.token_accounts) == {robot}, path.name
        assert PASSWORD not in result.all_output
    registry = target.as_registry()
    for name in ("from-spec", "from-authfile", "from-creds"):
        assert list_tags_sync(registry, f"team/{name}") == ["1"]


def test_system_robot_discovers_a_harbor_source_through_the_api(
    make_harbor: HarborFactory, make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source = make_harbor()
    target = make_registry("anon")
    source.add_project("apps")
    push_image_sync(source.as_registry(), "apps/web/frontend", "2", make_image("robot-discovery"))
    robot = source.add_robot("reader+mirror", PASSWORD).name  # robot$reader+mirror
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"""version: 1
registries:
  {source.host}:
    type: harbor
    tls-verify: false
    credentials: {{username: {robot}, password: '{PASSWORD}'}}
  {target.host}: {{tls-verify: false}}
sync:
  - from: {source.host}/apps/**
    to: {target.host}/mirror/
"""
    )

    result = run_cli("sync", "--no-mount-cache", str(spec))

    assert result.returncode == 0, result.all_output
    assert list_tags_sync(target, "mirror/web/frontend") == ["2"]
    api = [
        status for method, path, status in source.api_requests if path.startswith("/api/v2.0/projects/apps")
    ]
    assert api and all(status == 200 for status in api)  # Basic auth with "$" and "+" accepted
    assert _users_seen(source) == {robot}
