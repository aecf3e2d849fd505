"""Building skopeo's inspect output from manifests and configs (pure; the registry side is in tests/cli)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from asyncsync.digest import Digest
from asyncsync.errors import DigestMismatchError, ManifestError
from asyncsync.inspect import (
    GO_ZERO_TIME,
    go_time,
    inspect_image,
    inspect_schema1,
    oci_config_view,
    render_config,
    resolve_image,
    with_reference,
)
from asyncsync.manifest import DOCKER_V2S1_SIGNED, ImageManifest, Platform, Schema1Manifest, parse_manifest
from tests.helpers.images import make_image, make_multiarch
from tests.helpers.schema1 import signed_schema1


@pytest.mark.parametrize(
    ("text", "rfc", "printed"),
    [
        ("2023-06-03T12:22:44Z", "2023-06-03T12:22:44Z", "2023-06-03 12:22:44 +0000 UTC"),
        ("2023-06-03T12:22:44.120000Z", "2023-06-03T12:22:44.12Z", "2023-06-03 12:22:44.12 +0000 UTC"),
        (
            "2023-06-03T12:22:44.1234567891Z",
            "2023-06-03T12:22:44.123456789Z",
            "2023-06-03 12:22:44.123456789 +0000 UTC",
        ),
        ("2023-06-03T12:22:44.000Z", "2023-06-03T12:22:44Z", "2023-06-03 12:22:44 +0000 UTC"),
        ("2023-06-03T12:22:44+00:00", "2023-06-03T12:22:44Z", "2023-06-03 12:22:44 +0000 UTC"),
        ("2023-06-03T12:22:44+02:00", "2023-06-03T12:22:44+02:00", "2023-06-03 12:22:44 +0200 +0200"),
    ],
)
def test_go_time(text: str, rfc: str, printed: str) -> None:
    value = go_time(text)
    assert (value.rfc3339, value.text) == (rfc, printed)


@pytest.mark.parametrize("text", ["", "2023-06-03", "2023-06-03 12:22:44Z", 17, None])
def test_go_time_rejects(text: Any) -> None:
    with pytest.raises(ManifestError, match="invalid created time"):
        go_time(text)


def _parsed(raw: bytes, media_type: str | None = None) -> ImageManifest:
    parsed = parse_manifest(raw, media_type)
    assert isinstance(parsed, ImageManifest)
    return parsed


def test_inspect_docker_image_fields() -> None:
    image = make_image("i1", labels={"a": "1"}, env=["X=1"])
    info = inspect_image(_parsed(image.manifest), image.config)
    config = json.loads(image.config)
    assert info.created is not None and info.created.rfc3339 == config["created"]
    assert (info.architecture, info.os, info.variant) == ("amd64", "linux", "")
    assert info.labels == {"a": "1"}
    assert info.env == ("X=1",)
    assert list(info.layers) == image.layer_digests
    assert [(d.mime_type, d.digest, d.size, d.annotations) for d in info.layers_data] == [
        ("application/vnd.docker.image.rootfs.diff.tar.gzip", digest, len(blob), None)
        for digest, blob in zip(image.layer_digests, image.layers, strict=True)
    ]


def test_json_shape_and_key_order() -> None:
    image = make_image("i2", fmt="oci", arch="arm64", variant="v8")
    info = with_reference(
        inspect_image(_parsed(image.manifest), image.config),
        name="h.example/repo",
        digest=Digest.parse(image.digest),
        repo_tags=["t1", "t2"],
    )
    document = json.loads(info.to_json())
    assert list(document) == [
        "Name", "Digest", "RepoTags", "Created", "DockerVersion", "Labels", "Architecture", "Variant",
        "Os", "Layers", "LayersData", "Env",
    ]  # fmt: skip
    assert document["Digest"] == image.digest
    assert document["Variant"] == "v8"
    assert info.to_json().startswith('{\n    "Name": "h.example/repo",\n')
    assert info.render(None) == info.to_json() + "\n"
    assert info.render("json") == info.to_json() + "\n"
    assert info.render("{{.Name}} {{.Variant}}") == "h.example/repo v8\n"


def test_variant_and_name_omitted_when_empty_and_nulls_like_go() -> None:
    image = make_image("i3")
    config = json.loads(image.config)
    del config["config"]
    del config["created"]
    raw_config = json.dumps(config).encode()
    info = inspect_image(_parsed(image.manifest), raw_config)
    document = json.loads(info.to_json())
    assert "Variant" not in document and "Name" not in document and "Tag" not in document
    assert document["Labels"] is None and document["Env"] is None
    # Docker's config has a non-pointer time: zero when absent. OCI's is a pointer: null.
    assert document["Created"] == GO_ZERO_TIME.rfc3339
    oci = make_image("i3", fmt="oci")
    oci_config = json.loads(oci.config)
    del oci_config["created"]
    assert (
        json.loads(inspect_image(_parsed(oci.manifest), json.dumps(oci_config).encode()).to_json())["Created"]
        is None
    )


def test_oci_layer_annotations_are_reported() -> None:
    image = make_image("i4", fmt="oci")
    manifest = json.loads(image.manifest)
    manifest["layers"][0]["annotations"] = {"org.example": "yes"}
    info = inspect_image(_parsed(json.dumps(manifest).encode()), image.config)
    assert info.layers_data[0].annotations == {"org.example": "yes"}
    assert info.layers_data[1].annotations is None


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c["config"].update(Labels={"a": 1}), "Labels must map strings to strings"),
        (lambda c: c["config"].update(Env="X=1"), "Env must be a list of strings"),
        (lambda c: c.update(architecture=5), "'architecture' must be a string"),
        (lambda c: c.update(created="yesterday"), "invalid created time"),
    ],
)
def test_bad_configs(mutate: Any, message: str) -> None:
    image = make_image("i5")
    config = json.loads(image.config)
    mutate(config)
    with pytest.raises(ManifestError, match=message):
        inspect_image(_parsed(image.manifest), json.dumps(config).encode())
    with pytest.raises(ManifestError, match="not valid JSON"):
        inspect_image(_parsed(image.manifest), b"{")


def test_oci_artifact_is_refused() -> None:
    image = make_image("i6", fmt="oci")
    manifest = json.loads(image.manifest)
    manifest["config"]["mediaType"] = "application/vnd.example.artifact+json"
    with pytest.raises(ManifestError, match="artifact"):
        inspect_image(_parsed(json.dumps(manifest).encode()), image.config)


def test_schema1_inspect() -> None:
    config = {"architecture": "arm", "os": "linux", "variant": "v7", "created": "2020-01-02T03:04:05Z",
              "docker_version": "1.13", "config": {"Labels": {"k": "v"}, "Env": ["A=b"]}}  # fmt: skip
    d1, d2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    raw, digest = signed_schema1([d1, d2], tag="old", v1_config=config)
    parsed = parse_manifest(raw, DOCKER_V2S1_SIGNED)
    assert isinstance(parsed, Schema1Manifest)
    info = inspect_schema1(parsed)
    document = json.loads(info.to_json())
    assert document["Tag"] == "old"
    assert document["Layers"] == [d1, d2]  # base layer first
    assert [entry["Size"] for entry in document["LayersData"]] == [-1, -1]
    assert (document["Architecture"], document["Variant"], document["DockerVersion"]) == ("arm", "v7", "1.13")
    assert document["Labels"] == {"k": "v"} and document["Env"] == ["A=b"]
    assert document["Created"] == "2020-01-02T03:04:05Z"
    assert str(parse_manifest(raw, DOCKER_V2S1_SIGNED).digest) != digest  # parse_manifest hashes bytes...
    assert str(info.digest) != digest  # ...so callers pass manifest_digest (resolve_image does)


def test_oci_config_view_matches_skopeo_shape() -> None:
    config = {
        "created": "2023-01-01T00:00:00.500Z",
        "architecture": "amd64",
        "os": "linux",
        "unknown": "dropped",
        "config": {"ExposedPorts": {"80/tcp": {}}, "Cmd": ["sh"], "Labels": {"b": "2", "a": "1"}, "Env": []},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "3" * 64]},
        "history": [{"created_by": "x", "empty_layer": False}],
    }
    text = render_config(json.dumps(config).encode(), None)
    document = json.loads(text)
    assert list(document) == ["created", "architecture", "os", "config", "rootfs", "history"]
    assert list(document["config"]) == ["ExposedPorts", "Cmd", "Labels"]  # empty Env omitted
    assert list(document["config"]["Labels"]) == ["a", "b"]
    assert document["created"] == "2023-01-01T00:00:00.5Z"
    assert document["history"] == [{"created_by": "x"}]
    assert text.endswith("}\n") and "\n    " in text
    view = oci_config_view(b'{"os": "linux"}')
    assert json.loads(render_config(b'{"os": "linux"}', None)) == {
        "architecture": "", "os": "linux", "config": {}, "rootfs": {"type": "", "diff_ids": None},
    }  # fmt: skip
    assert view.type_name == "v1.Image"
    fmt = "{{.OS}} {{.Config.ExposedPorts}} {{.Config.Env}} {{.RootFS.Type}} {{.History}}"
    assert (
        render_config(json.dumps(config).encode(), fmt)
        == "linux map[80/tcp:{}] [] layers [{<nil> x   false}]\n"
    )


class _Getter:
    def __init__(self, manifests: dict[str | None, tuple[bytes, str]]) -> None:
        self.manifests = manifests
        self.calls: list[str | None] = []

    async def __call__(self, instance: Digest | None) -> tuple[bytes, str]:
        key = str(instance) if instance is not None else None
        self.calls.append(key)
        return self.manifests[key]


@pytest.mark.anyio
async def test_resolve_image_picks_platform_from_index() -> None:
    index = make_multiarch("r1")
    children: dict[str | None, tuple[bytes, str]] = {
        d: (raw, media_type) for d, (media_type, raw) in index.manifests().items()
    }
    getter = _Getter({None: (index.manifest, index.media_type), **children})
    resolved = await resolve_image(getter, Platform("linux", "arm64", "v8"))
    assert str(resolved.digest) == index.digest
    assert resolved.raw == index.manifest
    assert isinstance(resolved.image, ImageManifest)
    assert str(resolved.image.digest) == index.images[1].digest
    assert getter.calls == [None, index.images[1].digest]
    # skopeo's words, which scripts grep: "choosing image instance: no image found in manifest list ..."
    expected = (
        "docker://x: parsing manifest for image: choosing image instance: no image found in manifest list "
        'for architecture s390x, variant "", OS linux (use --override-os'
    )
    with pytest.raises(ManifestError) as caught:
        await resolve_image(getter, Platform("linux", "s390x"), name="docker://x")
    assert str(caught.value).startswith(expected)
    oci = make_multiarch("r1", fmt="oci")
    oci_getter = _Getter({None: (oci.manifest, oci.media_type)})
    with pytest.raises(
        ManifestError, match='no image found in image index for architecture arm, variant "v7", OS'
    ):
        await resolve_image(oci_getter, Platform("linux", "arm", "v7"))


@pytest.mark.anyio
async def test_resolve_image_checks_child_digest_and_parse_errors() -> None:
    index = make_multiarch("r2")
    other = make_image("r2-other")
    getter = _Getter({None: (index.manifest, index.media_type), index.images[0].digest: (other.manifest, "")})
    with pytest.raises(DigestMismatchError, match="another digest"):
        await resolve_image(getter, Platform("linux", "amd64"))
    garbage = _Getter({None: (b"<html>", "application/vnd.docker.distribution.manifest.v2+json")})
    with pytest.raises(ManifestError, match=r"^docker://h/r:t: manifest is not valid JSON$"):
        await resolve_image(garbage, Platform("linux", "amd64"), name="docker://h/r:t")


@pytest.mark.anyio
async def test_resolve_schema1_uses_payload_digest() -> None:
    raw, digest = signed_schema1(["sha256:" + "1" * 64])
    resolved = await resolve_image(_Getter({None: (raw, DOCKER_V2S1_SIGNED)}), Platform("linux", "amd64"))
    assert str(resolved.digest) == digest
