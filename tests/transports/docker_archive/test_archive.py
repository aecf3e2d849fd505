"""manifest.json items, tags and the legacy metadata of the docker save format."""

from __future__ import annotations

import json

import pytest

from asyncsync.digest import Digest
from asyncsync.errors import InvalidReferenceError, LocalStorageError, UsageError
from asyncsync.manifest import DOCKER_CONFIG, DOCKER_V2S2, OCI_INDEX
from asyncsync.reference import parse_reference
from asyncsync.transports.docker_archive.archive import (
    ManifestItem,
    archive_manifest,
    choose_item,
    config_diff_ids,
    go_json,
    legacy_layers,
    parse_archive_manifest,
    repositories,
    single_image_manifest,
    tagged_names,
)

ITEMS = [
    ManifestItem("a.json", ("docker.io/library/busybox:latest", "example.com/x/y:1"), ("l1.tar",)),
    ManifestItem("b.json", ("alpine:3",), ("l2.tar",)),
]


def test_choose_item_by_tag_index_or_only() -> None:
    assert choose_item(ITEMS, parse_reference("busybox"), None, "w") is ITEMS[0]
    assert choose_item(ITEMS, parse_reference("example.com/x/y:1"), None, "w") is ITEMS[0]
    assert choose_item(ITEMS, parse_reference("docker.io/library/alpine:3"), None, "w") is ITEMS[1]
    assert choose_item(ITEMS, None, 1, "w") is ITEMS[1]
    assert choose_item(ITEMS[:1], None, None, "w") is ITEMS[0]
    with pytest.raises(LocalStorageError, match="not found"):
        choose_item(ITEMS, parse_reference("busybox:2"), None, "w")
    with pytest.raises(LocalStorageError, match="only 2 image"):
        choose_item(ITEMS, None, 2, "w")
    with pytest.raises(LocalStorageError, match="holds 2 images"):
        choose_item(ITEMS, None, None, "w")


def test_parse_archive_manifest_refuses_malformed_documents() -> None:
    good = json.dumps([{"Config": "c.json", "RepoTags": None, "Layers": ["l.tar"]}]).encode()
    assert parse_archive_manifest(good, "w") == [ManifestItem("c.json", (), ("l.tar",))]
    for bad in (b"{}", b"not json", b'[{"RepoTags": []}]', b'[{"Config": "c", "Layers": [1]}]'):
        with pytest.raises(LocalStorageError):
            parse_archive_manifest(bad, "w")


def test_tags_are_full_names_and_unique() -> None:
    names = tagged_names(parse_reference("busybox"), ("busybox:latest", "example.com/a:b"))
    assert [str(n) for n in names] == ["docker.io/library/busybox:latest", "example.com/a:b"]
    manifest = json.loads(archive_manifest("c.json", names, ["l.tar"]))
    assert manifest == [
        {
            "Config": "c.json",
            "RepoTags": ["docker.io/library/busybox:latest", "example.com/a:b"],
            "Layers": ["l.tar"],
        }
    ]
    assert json.loads(repositories(names, "top")) == {
        "docker.io/library/busybox": {"latest": "top"},
        "example.com/a": {"b": "top"},
    }
    for bad in ("busybox", "busybox@sha256:" + "a" * 64):
        with pytest.raises(InvalidReferenceError):
            tagged_names(None, (bad,))


def test_config_diff_ids_are_validated() -> None:
    digest = "sha256:" + "b" * 64
    assert config_diff_ids(json.dumps({"rootfs": {"diff_ids": [digest]}}).encode(), "w") == [
        Digest.parse(digest)
    ]
    for bad in (b"{}", b"[]", b"nope", json.dumps({"rootfs": {"diff_ids": ["sha256:../x"]}}).encode()):
        with pytest.raises(LocalStorageError):
            config_diff_ids(bad, "w")


def test_go_json_escapes_like_encoding_json() -> None:
    assert go_json({"a": "<&>\u2028"}) == b'{"a":"\\u003c\\u0026\\u003e\\u2028"}'


def test_legacy_layers_chain_and_top_layer_fields() -> None:
    config = json.dumps({"os": "linux", "architecture": "amd64", "config": {"Cmd": ["sh"]}}).encode()
    diff_ids = [Digest.of(b"one"), Digest.of(b"two")]
    first, second = legacy_layers(diff_ids, config)
    assert first.id == Digest.of(go_json({"layer_id": str(diff_ids[0])})).hex
    assert json.loads(first.json) == {"id": first.id}
    top = json.loads(second.json)
    assert top["parent"] == first.id and top["id"] == second.id
    assert top["os"] == "linux" and top["config"] == {"Cmd": ["sh"]} and top["created"] is None
    # The same layer twice gets two different ids (the chain differs), so parents never loop.
    again = legacy_layers([diff_ids[0], diff_ids[0]], config)
    assert again[0].id != again[1].id


def _image_manifest(config_type: str) -> bytes:
    blob = {"digest": str(Digest.of(b"x")), "size": 1}
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_V2S2,
            "config": {**blob, "mediaType": config_type},
            "layers": [{**blob, "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip"}],
        }
    ).encode()


def test_single_image_manifest_accepts_a_container_image() -> None:
    manifest = single_image_manifest(
        _image_manifest(DOCKER_CONFIG), DOCKER_V2S2, None, "here", "a docker archive"
    )
    assert manifest.config.media_type == DOCKER_CONFIG


@pytest.mark.parametrize(
    ("raw", "media_type", "instance", "message"),
    [
        (b"{}", OCI_INDEX, None, "here: containers-storage holds a single image, not a manifest list"),
        (_image_manifest(DOCKER_CONFIG), DOCKER_V2S2, Digest.of(b"child"), "not a manifest list"),
        (_image_manifest("application/vnd.example.artifact"), DOCKER_V2S2, None, "holds container images"),
    ],
)
def test_single_image_manifest_refuses_lists_children_and_other_configs(
    raw: bytes, media_type: str, instance: Digest | None, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        single_image_manifest(raw, media_type, instance, "here", "containers-storage")
