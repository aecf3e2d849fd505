"""The local-transport flags of one copy side (asyncsync.cli.local_flags)."""

from __future__ import annotations

from dataclasses import fields

import pytest

from asyncsync.cli.local_flags import LocalFlags
from asyncsync.errors import UsageError
from asyncsync.registry.client import RegistryOptions
from asyncsync.transports.base import SideOptions


def test_every_flag_sets_the_side_option_of_its_name() -> None:
    side_fields = {field.name for field in fields(SideOptions)}
    assert {field.name for field in fields(LocalFlags)} <= side_fields
    flags = LocalFlags(
        shared_blob_dir="/blobs",
        daemon_host="unix:///d.sock",
        compress=True,
        additional_tags=("a:1",),
        oci_accept_uncompressed_layers=True,
    )
    registry = RegistryOptions(tls_verify=False)
    side = flags.side_options(registry, chunk_size=1024)
    assert side == SideOptions(
        registry=registry,
        chunk_size=1024,
        shared_blob_dir="/blobs",
        daemon_host="unix:///d.sock",
        compress=True,
        additional_tags=("a:1",),
        oci_accept_uncompressed_layers=True,
    )


def test_compress_and_decompress_contradict() -> None:
    with pytest.raises(UsageError, match="--dest-compress and --dest-decompress cannot be used together"):
        LocalFlags(compress=True, decompress=True).side_options(RegistryOptions())
