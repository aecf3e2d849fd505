"""``--override-os/-arch/-variant``: per command, and global as skopeo has them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from asyncsync.cli._run import GLOBAL
from asyncsync.cli.platform_flags import PlatformFlags
from asyncsync.manifest import Platform, host_platform


@pytest.fixture
def global_overrides() -> Iterator[None]:
    saved = (GLOBAL.override_os, GLOBAL.override_arch, GLOBAL.override_variant)
    yield
    GLOBAL.override_os, GLOBAL.override_arch, GLOBAL.override_variant = saved


def test_nothing_given_means_the_host(global_overrides: None) -> None:
    GLOBAL.override_os = GLOBAL.override_arch = GLOBAL.override_variant = None
    assert PlatformFlags().override() is None
    assert PlatformFlags().wanted() == host_platform()


def test_arch_override_drops_the_host_variant(global_overrides: None) -> None:
    GLOBAL.override_os = GLOBAL.override_arch = GLOBAL.override_variant = None
    assert PlatformFlags(arch="arm64").wanted() == Platform(os=host_platform().os, architecture="arm64")
    assert PlatformFlags(arch="arm", variant="v7").override() == Platform(
        os=host_platform().os, architecture="arm", variant="v7"
    )


def test_global_values_apply_and_the_command_wins(global_overrides: None) -> None:
    GLOBAL.override_os, GLOBAL.override_arch, GLOBAL.override_variant = ("linux", "arm64", "v8")
    assert PlatformFlags().wanted() == Platform(os="linux", architecture="arm64", variant="v8")
    assert PlatformFlags(arch="s390x").wanted() == Platform(os="linux", architecture="s390x", variant="v8")
