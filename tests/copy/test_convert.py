"""Manifest conversion between Docker v2s2 and OCI."""

from __future__ import annotations

import orjson
import pytest

from asyncsync.copy.convert import convert_image, convert_index, target_image_type
from asyncsync.digest import Digest
from asyncsync.errors import ManifestError, UsageError
from asyncsync.manifest import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_LIST,
    DOCKER_V2S2,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    ImageIndex,
    ImageManifest,
    parse_manifest,
)
from tests.helpers.images import make_image, make_multiarch


def _image(fmt: str = "docker") -> ImageManifest:
    image = make_image("convert", layers=2, fmt=fmt)  # type: ignore[arg-type]
    parsed = parse_manifest(image.manifest, image.media_type)
    assert isinstance(parsed, ImageManifest)
    return parsed


def test_v2s2_to_oci_and_back_keeps_blobs() -> None:
    docker = _image()
    raw, media_type = convert_image(docker, OCI_MANIFEST)
    oci = parse_manifest(raw, media_type)
    assert isinstance(oci, ImageManifest) and media_type == OCI_MANIFEST
    assert oci.config.media_type == OCI_CONFIG and oci.config.digest == docker.config.digest
    assert [layer.media_type for layer in oci.layers] == [OCI_LAYER_GZIP, OCI_LAYER_GZIP]
    assert [layer.digest for layer in oci.layers] == [layer.digest for layer in docker.layers]
    assert oci.digest != docker.digest
    back_raw, back_type = convert_image(oci, DOCKER_V2S2)
    back = parse_manifest(back_raw, back_type)
    assert isinstance(back, ImageManifest)
    assert back.config.media_type == DOCKER_CONFIG
    assert [layer.media_type for layer in back.layers] == [DOCKER_LAYER_GZIP] * 2


def test_same_type_keeps_the_bytes() -> None:
    docker = _image()
    assert convert_image(docker, DOCKER_V2S2) == (docker.raw, DOCKER_V2S2)


def test_zstd_layers_cannot_become_v2s2() -> None:
    data = orjson.loads(_image("oci").raw)
    data["layers"][0]["mediaType"] = OCI_LAYER_ZSTD
    oci = parse_manifest(orjson.dumps(data), OCI_MANIFEST)
    assert isinstance(oci, ImageManifest)
    with pytest.raises(ManifestError, match="zstd"):
        convert_image(oci, DOCKER_V2S2)


def test_target_type_rules() -> None:
    assert target_image_type(DOCKER_V2S2, None, None, False) == DOCKER_V2S2
    assert target_image_type(DOCKER_V2S2, "oci", None, False) == OCI_MANIFEST
    assert target_image_type(DOCKER_V2S2, None, (OCI_MANIFEST, OCI_INDEX), False) == OCI_MANIFEST
    assert target_image_type(OCI_MANIFEST, "oci", None, True) == OCI_MANIFEST
    with pytest.raises(UsageError, match="preserve digests"):
        target_image_type(DOCKER_V2S2, "oci", None, True)


def test_index_conversion_points_at_converted_children() -> None:
    generated = make_multiarch("convert-index", layers=1)
    index = parse_manifest(generated.manifest, generated.media_type)
    assert isinstance(index, ImageIndex)
    replaced = {
        entry.digest: (Digest.of(entry.digest.hex.encode()), 123, OCI_MANIFEST) for entry in index.manifests
    }
    raw, media_type = convert_index(index, replaced, OCI_INDEX)
    converted = parse_manifest(raw, media_type)
    assert isinstance(converted, ImageIndex) and media_type == OCI_INDEX
    assert [(e.digest, e.size, e.media_type) for e in converted.manifests] == list(replaced.values())
    assert [e.platform for e in converted.manifests] == [e.platform for e in index.manifests]
    # Nothing changes: the same bytes.
    assert convert_index(index, {}, DOCKER_LIST) == (index.raw, DOCKER_LIST)
