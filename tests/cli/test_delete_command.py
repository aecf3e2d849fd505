"""``asyncsync delete`` on every flavour: the image is gone (skopeo agrees), other tags are named."""

from __future__ import annotations

import pytest

from tests.conftest import RegistryFactory
from tests.helpers.asyncsync_cli import invoke, run_cli
from tests.helpers.images import list_tags_sync, make_image, push_image_sync
from tests.helpers.registry import RegistryServer
from tests.helpers.skopeo import SkopeoError, skopeo


def test_delete_on_every_flavour(any_registry: RegistryServer) -> None:
    repo = f"cli/delete-{any_registry.flavour}"
    image = make_image(f"delete-{any_registry.flavour}", layers=1, layer_size=64)
    digest = push_image_sync(any_registry, repo, "v1", image)
    push_image_sync(any_registry, repo, "alias", image)
    push_image_sync(any_registry, repo, "keep", make_image(f"keep-{any_registry.flavour}", layers=1))
    flags = any_registry.skopeo_flags()
    result = invoke("delete", *flags, f"docker://{any_registry.host}/{repo}:v1")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""  # like skopeo
    assert (
        result.stderr
        == f"tag {any_registry.host}/{repo}:alias also pointed at {digest} and was removed too\n"
    )
    assert list_tags_sync(any_registry, repo) == ["keep"]
    with pytest.raises(SkopeoError, match="manifest unknown"):
        skopeo("inspect", *flags, f"docker://{any_registry.host}/{repo}:v1")


def test_delete_missing_image_subprocess(registry_anon: RegistryServer) -> None:
    push_image_sync(registry_anon, "cli/delete-missing", "keep", make_image("delete-missing", layers=1))
    ref = f"docker://{registry_anon.host}/cli/delete-missing:absent"
    result = run_cli("delete", "--tls-verify=false", ref)
    assert result.returncode == 1
    assert result.stderr == f"Error: image {ref} not found: manifest unknown: manifest unknown (HTTP 404)\n"
    assert list_tags_sync(registry_anon, "cli/delete-missing") == ["keep"]


def test_delete_by_digest_matches_skopeo_semantics(registry_anon: RegistryServer) -> None:
    image = make_image("delete-digest", layers=1)
    digest = push_image_sync(registry_anon, "cli/delete-digest", "a", image)
    result = invoke(
        "delete", "--tls-verify=false", f"docker://{registry_anon.host}/cli/delete-digest@{digest}"
    )
    assert result.returncode == 0, result.stderr
    assert "cli/delete-digest:a also pointed at" in result.stderr
    assert list_tags_sync(registry_anon, "cli/delete-digest") == []


def test_delete_refused_by_a_read_only_registry(make_registry: RegistryFactory) -> None:
    server = make_registry("anon")
    push_image_sync(server, "cli/ro", "v1", make_image("delete-ro", layers=1))
    server.stop()
    readonly = make_registry("anon", base_dir=server.work_dir, readonly=True)
    result = invoke("delete", "--tls-verify=false", f"docker://{readonly.host}/cli/ro:v1")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: deleting ")
    assert "operation not supported by the registry (HTTP 405)" in result.stderr
