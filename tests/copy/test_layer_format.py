"""The layer compression request (flag validation) and the media types that express it."""

from __future__ import annotations

import pytest

from asyncsync.copy.layer_format import (
    DOCKER_LAYER_TAR,
    LayerCompression,
    is_known_layer,
    layer_compression_of,
    media_type_for,
)
from asyncsync.copy.recompress import target_format
from asyncsync.digest import Digest
from asyncsync.errors import ManifestError, UsageError
from asyncsync.manifest import (
    DOCKER_FOREIGN_LAYER,
    DOCKER_LAYER_GZIP,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    Descriptor,
)

DIGEST = Digest.of(b"layer")


def _layer(media_type: str, urls: tuple[str, ...] = ()) -> Descriptor:
    return Descriptor(media_type, DIGEST, 5, urls=urls)


def test_parse_accepts_both_formats_any_case_and_their_level_ranges() -> None:
    assert LayerCompression.parse("ZSTD", 20, True) == LayerCompression("zstd", 20, True)
    assert LayerCompression.parse("gzip", 1, False) == LayerCompression("gzip", 1, False)
    assert LayerCompression.parse(None, 9, False).level_for("gzip") == 9
    assert LayerCompression.parse(None, None, False).level_for("zstd") == 3
    assert LayerCompression().level_for("gzip") == 6


@pytest.mark.parametrize(
    ("fmt", "level", "force", "message"),
    [
        (
            "lz4",
            None,
            False,
            '--dest-compress-format: cannot find compressor for "lz4" (supported: gzip, zstd)',
        ),
        ("bzip2", None, False, 'cannot find compressor for "bzip2"'),
        ("zstd:chunked", None, False, 'cannot find compressor for "zstd:chunked"'),
        ("zstd", 21, False, "--dest-compress-level 21: out of range for zstd (1-20)"),
        ("gzip", 10, False, "--dest-compress-level 10: out of range for gzip (1-9)"),
        (None, 0, False, "--dest-compress-level 0: out of range for gzip (1-9)"),
        (None, None, True, "--dest-force-compress-format needs --dest-compress-format"),
    ],
)
def test_parse_refuses_what_cannot_work_in_one_line(
    fmt: str | None, level: int | None, force: bool, message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        LayerCompression.parse(fmt, level, force)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_media_types_follow_the_compression_within_their_family() -> None:
    assert media_type_for(DOCKER_LAYER_TAR, "gzip", "d") == DOCKER_LAYER_GZIP
    assert media_type_for(OCI_LAYER, "zstd", "d") == OCI_LAYER_ZSTD
    assert media_type_for(OCI_LAYER_ZSTD, "gzip", "d") == OCI_LAYER_GZIP
    assert layer_compression_of(OCI_LAYER_ZSTD) == "zstd"
    assert layer_compression_of(DOCKER_LAYER_TAR) is None
    assert not is_known_layer(DOCKER_FOREIGN_LAYER)


def test_zstd_in_docker_v2s2_is_refused_with_skopeos_message() -> None:
    with pytest.raises(ManifestError) as caught:
        media_type_for(DOCKER_LAYER_GZIP, "zstd", "sha256:abc")
    assert str(caught.value) == (
        'creating an updated image manifest: preparing updated manifest, layer "sha256:abc": '
        'zstd compression is not supported for type "application/vnd.docker.image.rootfs.diff.tar.gzip"'
    )


def test_target_format_changes_only_layers_that_must_change() -> None:
    default, zstd = LayerCompression(), LayerCompression("zstd")
    assert target_format(_layer(DOCKER_LAYER_TAR), default) == "gzip"
    assert target_format(_layer(OCI_LAYER), zstd) == "zstd"
    assert target_format(_layer(OCI_LAYER_GZIP), default) is None
    assert target_format(_layer(OCI_LAYER_GZIP), zstd) == "zstd"
    assert target_format(_layer(OCI_LAYER_ZSTD), zstd) is None
    assert target_format(_layer(OCI_LAYER_ZSTD), LayerCompression("gzip")) == "gzip"
    assert target_format(_layer(OCI_LAYER_ZSTD), default) is None
    # Foreign layers and blobs of unknown types (artifacts) are never touched.
    assert target_format(_layer(DOCKER_FOREIGN_LAYER, ("https://example.com/l",)), zstd) is None
    assert target_format(_layer("application/vnd.cncf.helm.chart.content.v1.tar+gzip"), zstd) is None
