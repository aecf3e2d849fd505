"""``asyncsync list-tags``: byte-identical to ``skopeo list-tags`` on every flavour; clear errors."""

from __future__ import annotations

import json

import pytest

from tests.helpers.asyncsync_cli import invoke, run_cli
from tests.helpers.images import make_image, push_image_sync
from tests.helpers.registry import RegistryServer
from tests.helpers.skopeo import skopeo


def test_list_tags_equals_skopeo(any_registry: RegistryServer) -> None:
    repo = f"cli/tags-{any_registry.flavour}"
    image = make_image(f"tags-{any_registry.flavour}", layers=1, layer_size=64)
    for tag in ("1.0", "latest", "v2", "a_b-c.d"):
        push_image_sync(any_registry, repo, tag, image)
    flags = any_registry.skopeo_flags()
    ours = invoke("list-tags", *flags, f"docker://{any_registry.host}/{repo}")
    assert ours.returncode == 0, ours.stderr
    assert ours.out == skopeo("list-tags", *flags, f"docker://{any_registry.host}/{repo}")
    document = json.loads(ours.out)
    assert document["Repository"] == f"{any_registry.host}/{repo}"
    assert sorted(document["Tags"]) == ["1.0", "a_b-c.d", "latest", "v2"]


def test_subprocess_output_shape(registry_anon: RegistryServer) -> None:
    push_image_sync(
        registry_anon, "cli/tags-shape", "only", make_image("tags-shape", layers=1, layer_size=64)
    )
    result = run_cli("list-tags", "--tls-verify=false", f"docker://{registry_anon.host}/cli/tags-shape")
    assert result.returncode == 0, result.stderr
    assert result.out == (
        "{\n"
        f'    "Repository": "{registry_anon.host}/cli/tags-shape",\n'
        '    "Tags": [\n'
        '        "only"\n'
        "    ]\n"
        "}\n"
    )


@pytest.mark.parametrize(
    ("name", "code", "message"),
    [
        ("docker://{host}/cli/tags-x:v1", 2, "list-tags takes a repository without tag or digest"),
        ("docker://{host}/cli/tags-x@sha256:" + "a" * 64, 2, "without tag or digest"),
        ("docker://{host}/cli/never-pushed", 1, "repository docker://{host}/cli/never-pushed not found"),
        ("dir:/tmp/layout", 2, "unsupported transport 'dir' for list-tags"),
        ("nosuch://{host}/cli/x", 2, "unknown transport 'nosuch'"),
        ("docker:{host}/cli/x", 2, "must start with docker://"),
        ("just-a-name", 2, "expected TRANSPORT:NAME"),
    ],
)
def test_errors(registry_anon: RegistryServer, name: str, code: int, message: str) -> None:
    result = invoke("list-tags", "--tls-verify=false", name.format(host=registry_anon.host))
    assert result.returncode == code
    assert message.format(host=registry_anon.host) in result.stderr
    assert result.stdout == b""
