"""One sync, several repositories on one registry, one auth.json entry per repository: each
repository gets its own credentials (containers/image looks up ``host/namespace/repo`` entries
from the most specific to the registry-wide one).

The registry is a real ``docker-registry`` with token auth whose token service grants ``alice``
only ``team-a/*`` and ``bob`` only ``team-b/*``, so a push with the wrong entry's credentials is
refused, as it would be on a real multi-tenant registry.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.helpers.asyncsync_cli import run_cli
from tests.helpers.images import GeneratedImage, get_manifest_sync, make_image
from tests.helpers.registry import RegistryFactory, RegistryServer
from tests.helpers.token_service import Scope, TokenService

_USERS = {"alice": "alice-secret", "bob": "bob-secret"}
_TEAMS = {"alice": "team-a/", "bob": "team-b/"}


def _policy(user: str | None, scope: Scope) -> tuple[str, ...]:
    if user is not None and scope.type == "repository" and scope.name.startswith(_TEAMS[user]):
        return scope.actions
    return ()


def _write_dir_image(path: Path, image: GeneratedImage) -> None:
    """``image`` as a ``dir:`` image (skopeo's layout: blobs named by hex, manifest.json, version)."""
    path.mkdir(parents=True)
    (path / "manifest.json").write_bytes(image.manifest)
    (path / "version").write_text("Directory Transport Version: 1.1\n")
    for digest, blob in image.blobs().items():
        (path / digest.split(":")[1]).write_bytes(blob)


def _auth_entry(user: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{_USERS[user]}".encode()).decode()}


def _registry(make_registry: RegistryFactory, service: TokenService) -> RegistryServer:
    return make_registry("token", token_service=service, username="alice", password=_USERS["alice"])


def test_each_repository_uses_its_own_auth_file_entry(make_registry: RegistryFactory, tmp_path: Path) -> None:
    with TokenService(users=_USERS, policy=_policy, anonymous_actions=()) as service:
        registry = _registry(make_registry, service)
        tree = tmp_path / "tree"
        images = {
            "team-a/app": make_image("per-repo-auth/a", layers=1),
            "team-b/app": make_image("per-repo-auth/b", layers=1),
        }
        for repo, image in images.items():
            _write_dir_image(tree / f"{repo}:v1", image)
        authfile = tmp_path / "auth.json"
        # Only repository entries: the registry-wide fallback must not be what makes this work.
        authfile.touch(mode=0o600)
        authfile.write_text(
            json.dumps(
                {
                    "auths": {
                        f"{registry.host}/team-a": _auth_entry("alice"),
                        f"{registry.host}/team-b": _auth_entry("bob"),
                    }
                }
            )
        )

        result = run_cli(
            "sync", "--src", "dir", "--dest", "docker", "--scoped", "--dest-tls-verify=false",
            "--dest-authfile", str(authfile), "--no-mount-cache", str(tree), registry.host,
            timeout=180,
        )  # fmt: skip

        assert result.returncode == 0, result.all_output
        users = {request.user for request in service.requests if request.user is not None}
        assert users == {"alice", "bob"}
        service.policy = None  # let the checking helper (alice's token) read both repositories
        for repo, image in images.items():
            _, manifest = get_manifest_sync(registry, repo, "v1")
            assert manifest == image.manifest, repo
