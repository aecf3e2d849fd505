"""The image flags copy and sync share: one set of checks, two kinds of result."""

from __future__ import annotations

import pytest

from asyncsync.cli.image_flags import COPY_IMAGE_FLAGS, SYNC_IMAGE_FLAGS, ImageFlags
from asyncsync.errors import UsageError
from asyncsync.manifest import Platform

ARM = Platform(os="linux", architecture="arm64", variant="v8")


def test_sync_offers_no_multi_arch_flag() -> None:
    assert "multi_arch" in {option.name for option in COPY_IMAGE_FLAGS.options}
    assert "multi_arch" not in {option.name for option in SYNC_IMAGE_FLAGS.options}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (ImageFlags(format="v2s1"), "schema 1"),
        (ImageFlags(format="tar"), "unknown manifest type"),
        (ImageFlags(all_images=True, multi_arch="system"), "--all and --multi-arch=system"),
        (ImageFlags(multi_arch="some"), "--multi-arch: unknown value"),
    ],
)
def test_bad_values_are_usage_errors(flags: ImageFlags, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        flags.copy_options(None)
    with pytest.raises(UsageError, match=message):
        flags.copy_settings(None)


def test_copy_options_carry_every_flag() -> None:
    options = ImageFlags(format="OCI", preserve_digests=True, multi_arch="index-only").copy_options(ARM)
    assert (options.format, options.multi_arch, options.platform, options.preserve_digests) == (
        "oci",
        "index-only",
        ARM,
        True,
    )


def test_sync_settings_keep_the_override_only_without_all() -> None:
    assert ImageFlags().copy_settings(ARM).platform == ARM
    everything = ImageFlags(all_images=True).copy_settings(ARM, skip_existing=True)
    assert (everything.multi_arch, everything.platform, everything.skip_existing) == ("all", None, True)
    with pytest.raises(UsageError, match="--preserve-digests and --format"):
        ImageFlags(format="oci", preserve_digests=True).copy_settings(None)
