"""``asyncsync inspect`` on every registry flavour, cross-checked byte for byte against skopeo 1.9.

skopeo 1.9 predates ``LayersData``, so that block is cut out of our output before comparing; every
other byte (key order, HTML escaping, nulls, indentation) must be identical.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.asyncsync_cli import invoke, run_cli
from tests.helpers.fake_registry import Canned, FakeRegistry
from tests.helpers.images import make_image, make_multiarch, push_image_sync, push_index_sync
from tests.helpers.registry import RegistryServer
from tests.helpers.skopeo import skopeo

LABELS = {"org.opencontainers.image.title": "a<b>&c", "k": "v"}


def _without_layers_data(text: str) -> str:
    lines = text.splitlines(keepends=True)
    start = lines.index('    "LayersData": [\n')
    end = lines.index("    ],\n", start)
    return "".join(lines[:start] + lines[end + 1 :])


def _ref(server: RegistryServer, name: str) -> str:
    return f"docker://{server.host}/{name}"


@pytest.fixture
def pushed(any_registry: RegistryServer) -> RegistryServer:
    """``cli/inspect`` with a Docker image (v1, latest), an OCI image (oci) and a multi-arch index (multi)."""
    repo = "cli/inspect"
    seed = f"inspect-{any_registry.flavour}"
    docker = make_image(seed, labels=LABELS, env=["A=1", "B=<2>"], layers=2, layer_size=256)
    push_image_sync(any_registry, repo, "v1", docker)
    push_image_sync(any_registry, repo, "latest", docker)
    push_image_sync(any_registry, repo, "oci", make_image(f"{seed}-oci", fmt="oci", layers=1, layer_size=256))
    push_index_sync(any_registry, repo, "multi", make_multiarch(f"{seed}-multi", layers=1, layer_size=128))
    return any_registry


@pytest.mark.parametrize("tag", ["v1", "oci", "multi"])
def test_inspect_equals_skopeo(pushed: RegistryServer, tag: str) -> None:
    flags = pushed.skopeo_flags()
    ours = invoke("inspect", *flags, _ref(pushed, f"cli/inspect:{tag}"))
    assert ours.returncode == 0, ours.stderr
    theirs = skopeo("inspect", *flags, _ref(pushed, f"cli/inspect:{tag}"))
    assert _without_layers_data(ours.out) == theirs
    document = json.loads(ours.out)
    assert [entry["Digest"] for entry in document["LayersData"]] == document["Layers"]


def test_index_digest_and_platform_override(pushed: RegistryServer) -> None:
    flags = pushed.skopeo_flags()
    ref = _ref(pushed, "cli/inspect:multi")
    override = ["--override-arch", "arm64", "--override-variant", "v8"]
    ours = json.loads(invoke("inspect", *flags, *override, ref).out)
    theirs = json.loads(skopeo(*override, "inspect", *flags, ref))
    assert (ours["Architecture"], ours["Variant"]) == ("arm64", "v8")
    for key in ("Name", "Digest", "Layers", "Architecture", "Os", "Labels", "Env", "Created"):
        assert ours[key] == theirs[key], key
    # skopeo's spelling: the overrides as global options, before the command.
    global_form = json.loads(invoke(*override, "inspect", *flags, ref).out)
    assert global_form == ours
    host = json.loads(invoke("inspect", *flags, ref).out)
    assert host["Digest"] == ours["Digest"]  # the index digest, whichever platform is described
    assert host["Layers"] != ours["Layers"]


@pytest.mark.parametrize(
    ("options", "tag"),
    [
        (["--raw"], "v1"),
        (["--raw"], "oci"),
        (["--raw"], "multi"),
        (["--config"], "v1"),
        (["--config"], "multi"),
        (["--config", "--raw"], "oci"),
        (["--config", "--raw"], "multi"),
        (["--no-tags"], "v1"),
        (["--config", "--format", "{{.OS}}/{{.Architecture}} {{.Config.Env}} {{.RootFS.DiffIDs}}"], "v1"),
    ],
)
def test_raw_config_and_no_tags_equal_skopeo(pushed: RegistryServer, options: list[str], tag: str) -> None:
    flags = pushed.skopeo_flags()
    ref = _ref(pushed, f"cli/inspect:{tag}")
    ours = invoke("inspect", *flags, *options, ref)
    assert ours.returncode == 0, ours.stderr
    theirs = skopeo("inspect", *flags, *options, ref)
    if options == ["--no-tags"]:
        assert json.loads(ours.out)["RepoTags"] == []
        assert _without_layers_data(ours.out) == theirs
    else:
        assert ours.out == theirs


FORMATS = [
    "{{.Name}} {{.Digest}}",
    "{{.Labels}} {{.Env}} {{.Layers}} {{.Created}}",
    '{{index .Labels "org.opencontainers.image.title"}} {{.Labels.k}} {{.Labels.absent}}',
    "{{range .RepoTags}}{{.}},{{end}} {{len .Layers}} {{.Os}}-{{.Architecture}}",
    "{{if .Labels}}labelled{{else}}plain{{end}}\\n{{.DockerVersion}}|{{.Tag}}",
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_format_equals_skopeo(registry_anon: RegistryServer, fmt: str) -> None:
    image = make_image("inspect-format", labels=LABELS, layers=2, layer_size=128)
    push_image_sync(registry_anon, "cli/format", "a", image)
    push_image_sync(registry_anon, "cli/format", "b", image)
    flags = registry_anon.skopeo_flags()
    ref = _ref(registry_anon, "cli/format:a")
    ours = invoke("inspect", *flags, "--format", fmt, ref)
    assert ours.returncode == 0, ours.stderr
    assert ours.out == skopeo("inspect", *flags, "--format", fmt, ref)


def test_json_format_extension(registry_anon: RegistryServer) -> None:
    """``{{json .X}}`` is podman's function (skopeo 1.9 lacks it): compact JSON, no HTML escaping."""
    push_image_sync(registry_anon, "cli/json", "a", make_image("inspect-json", labels=LABELS))
    ours = invoke(
        "inspect", "--tls-verify=false", "-f", "{{json .Labels}}", _ref(registry_anon, "cli/json:a")
    )
    assert ours.out == json.dumps(dict(sorted(LABELS.items())), separators=(",", ":")) + "\n"
    assert "<b>&c" in ours.out


def test_inspect_by_digest(pushed: RegistryServer) -> None:
    flags = pushed.skopeo_flags()
    digest = json.loads(invoke("inspect", *flags, _ref(pushed, "cli/inspect:v1")).out)["Digest"]
    ours = json.loads(invoke("inspect", *flags, _ref(pushed, f"cli/inspect@{digest}")).out)
    assert ours["Digest"] == digest
    assert (
        ours["RepoTags"]
        == json.loads(skopeo("inspect", *flags, _ref(pushed, f"cli/inspect@{digest}")))["RepoTags"]
    )


def test_subprocess_inspect_and_raw_bytes(registry_anon: RegistryServer) -> None:
    image = make_image("inspect-subprocess", layers=1, layer_size=64)
    push_image_sync(registry_anon, "cli/sub", "v1", image)
    result = run_cli("inspect", "--raw", "--tls-verify=false", _ref(registry_anon, "cli/sub:v1"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == image.manifest  # exact bytes, no newline added
    assert result.stderr == ""


@pytest.mark.parametrize("layout", ["oci", "dir"])
@pytest.mark.parametrize("tag", ["v1", "multi"])
def test_local_layouts_equal_skopeo(
    registry_anon: RegistryServer, tmp_path: Path, layout: str, tag: str
) -> None:
    """Other transports go through their ImageSource; skopeo writes the layout, both read it."""
    push_image_sync(registry_anon, "cli/local", "v1", make_image("inspect-local", labels=LABELS, layers=1))
    push_index_sync(registry_anon, "cli/local", "multi", make_multiarch("inspect-local-multi", layers=1))
    name = f"oci:{tmp_path / 'layout'}:{tag}" if layout == "oci" else f"dir:{tmp_path / 'dir'}"
    skopeo("copy", "--all", "--src-tls-verify=false", _ref(registry_anon, f"cli/local:{tag}"), name)
    for options in ([], ["--raw"], ["--config"], ["--override-arch", "arm64"]):
        ours = invoke("inspect", *options, name)
        assert ours.returncode == 0, ours.stderr
        if options[:1] == ["--override-arch"]:
            theirs = skopeo("--override-arch", "arm64", "inspect", name)
        else:
            theirs = skopeo("inspect", *options, name)
        if not options:
            assert _without_layers_data(ours.out) == theirs
        elif options[0] == "--override-arch":
            document = json.loads(_without_layers_data(ours.out))
            document.pop("Variant", None)  # skopeo 1.9 never prints it
            assert document == json.loads(theirs)
        else:
            assert ours.out == theirs


def test_refused_tag_list_is_skipped_with_a_warning() -> None:
    """Some registries refuse the tag list but serve manifests; skopeo warns and goes on, so do we."""
    image = make_image("inspect-no-list", layers=1)
    with FakeRegistry() as fake:
        fake.route(
            "GET", "/v2/r/manifests/v1", Canned(200, image.manifest, {"Content-Type": image.media_type})
        )
        fake.route("GET", f"/v2/r/blobs/{image.config_digest}", Canned(200, image.config))
        fake.route("GET", "/v2/r/tags/list", Canned(403, b'{"errors":[{"code":"DENIED","message":"no"}]}'))
        result = invoke("inspect", "--tls-verify=false", f"docker://{fake.host}/r:v1")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.out)["RepoTags"] == []
    assert result.stderr == "warning: registry disallows tag list retrieval; skipping\n"
