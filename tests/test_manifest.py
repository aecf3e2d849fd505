"""Manifest parsing: media types, descriptors, size cap, schema 1 digests, platform choice."""

from __future__ import annotations

import json
from typing import Any

import pytest

from asyncsync.digest import Digest
from asyncsync.errors import ManifestError
from asyncsync.manifest import (
    DOCKER_CONFIG,
    DOCKER_LIST,
    DOCKER_V2S1,
    DOCKER_V2S1_SIGNED,
    DOCKER_V2S2,
    MAX_MANIFEST_SIZE,
    OCI_INDEX,
    OCI_MANIFEST,
    ImageIndex,
    ImageManifest,
    Schema1Manifest,
    choose_platform,
    guess_media_type,
    host_platform,
    manifest_digest,
    parse_manifest,
)
from tests.helpers.images import make_image, make_multiarch
from tests.helpers.schema1 import signed_schema1

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def _desc(digest: str = D1, size: int = 10, **extra: Any) -> dict[str, Any]:
    return {"mediaType": "x", "digest": digest, "size": size, **extra}


def test_docker_image_keeps_raw_bytes_and_digest() -> None:
    image = make_image("m1")
    parsed = parse_manifest(image.manifest, DOCKER_V2S2)
    assert isinstance(parsed, ImageManifest)
    assert parsed.raw == image.manifest
    assert str(parsed.digest) == image.digest
    assert str(parsed.config.digest) == image.config_digest
    assert [str(d.digest) for d in parsed.layers] == image.layer_digests
    assert parsed.blobs()[-1] == parsed.config


def test_oci_image_and_index() -> None:
    index = make_multiarch("m2", fmt="oci")
    parsed = parse_manifest(index.manifest, "application/vnd.oci.image.index.v1+json; charset=utf-8")
    assert isinstance(parsed, ImageIndex)
    assert parsed.media_type == OCI_INDEX
    platforms = [str(d.platform) for d in parsed.manifests]
    assert platforms == ["linux/amd64", "linux/arm64/v8"]
    child = parse_manifest(index.images[0].manifest, None)
    assert isinstance(child, ImageManifest) and child.media_type == OCI_MANIFEST


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"mediaType": DOCKER_LIST, "manifests": []}, DOCKER_LIST),
        ({"schemaVersion": 2, "manifests": []}, OCI_INDEX),
        ({"schemaVersion": 2, "config": {"mediaType": DOCKER_CONFIG}, "layers": []}, DOCKER_V2S2),
        ({"schemaVersion": 2, "config": {"mediaType": "other"}, "layers": []}, OCI_MANIFEST),
        ({"schemaVersion": 1, "fsLayers": []}, DOCKER_V2S1),
        ({"schemaVersion": 1, "fsLayers": [], "signatures": []}, DOCKER_V2S1_SIGNED),
    ],
)
def test_guess_media_type(document: dict[str, Any], expected: str) -> None:
    assert guess_media_type(document) == expected


@pytest.mark.parametrize(
    ("raw", "media_type", "message"),
    [
        (b"{not json", DOCKER_V2S2, "not valid JSON"),
        (b"[1, 2]", DOCKER_V2S2, "not a JSON object"),
        (b'{"layers": []}', DOCKER_V2S2, "descriptor is not an object"),
        (json.dumps({"config": _desc(), "layers": "x"}).encode(), DOCKER_V2S2, "no 'layers' list"),
        (json.dumps({"config": {"size": 1}, "layers": []}).encode(), DOCKER_V2S2, "lacks 'digest'"),
        (json.dumps({"config": _desc("sha256:zz"), "layers": []}).encode(), DOCKER_V2S2, "invalid digest"),
        (json.dumps({"config": _desc(size=-1), "layers": []}).encode(), DOCKER_V2S2, "negative size"),
        (json.dumps({"manifests": {}}).encode(), OCI_INDEX, "no 'manifests' list"),
        (b'{"schemaVersion": 2}', "application/vnd.example+json", "unsupported manifest media type"),
    ],
)
def test_structural_errors(raw: bytes, media_type: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_manifest(raw, media_type)


def test_size_cap() -> None:
    raw = b'{"pad": "' + b"x" * MAX_MANIFEST_SIZE + b'"}'
    with pytest.raises(ManifestError, match="over the 4194304 byte limit"):
        parse_manifest(raw, DOCKER_V2S2)


def test_signed_schema1_digest_is_the_payload_digest() -> None:
    raw, expected = signed_schema1([D1, D2])
    assert str(manifest_digest(raw)) == expected
    assert manifest_digest(raw) != Digest.of(raw)
    parsed = parse_manifest(raw, DOCKER_V2S1_SIGNED, digest=manifest_digest(raw))
    assert isinstance(parsed, Schema1Manifest)
    assert [str(d) for d in parsed.fs_layers] == [D2, D1]


def test_unsigned_and_non_json_digests_are_plain() -> None:
    unsigned = json.dumps({"schemaVersion": 1, "fsLayers": []}).encode()
    assert manifest_digest(unsigned) == Digest.of(unsigned)
    assert manifest_digest(b"\x00garbage") == Digest.of(b"\x00garbage")


def test_broken_schema1_signature_header_is_a_manifest_error() -> None:
    raw = json.dumps({"schemaVersion": 1, "signatures": [{"protected": "!!!"}]}).encode()
    with pytest.raises(ManifestError, match="invalid signature header"):
        manifest_digest(raw)


def test_choose_platform() -> None:
    index = parse_manifest(make_multiarch("m3").manifest, DOCKER_LIST)
    assert isinstance(index, ImageIndex)
    amd64 = choose_platform(index, "linux", "amd64")
    assert amd64 is not None and amd64.platform is not None and amd64.platform.architecture == "amd64"
    arm = choose_platform(index, "linux", "arm64", "v8")
    assert arm is not None and arm.platform is not None and arm.platform.variant == "v8"
    assert choose_platform(index, "linux", "arm64", "v9") == arm  # any variant when no exact one
    assert choose_platform(index, "windows", "amd64") is None


def test_host_platform_uses_go_names() -> None:
    platform = host_platform()
    assert platform.os == "linux"
    assert platform.architecture in {"amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64"}
