"""copy_between: one copy run between two local transports, its limits and its clean-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncsync.copy import CopyOptions
from asyncsync.copy.run import copy_between
from asyncsync.registry.client import RegistryOptions
from asyncsync.retry import RetryPolicy
from asyncsync.transports import parse_image_name
from asyncsync.transports.base import SideOptions
from tests.helpers.images import make_multiarch
from tests.local_support import write_dir_image
from tests.transports.roundtrip import read_back, transport_context

pytestmark = pytest.mark.anyio


async def test_a_multi_arch_image_goes_whole_and_digest_equal(tmp_path: Path, rng_seed: int) -> None:
    index = make_multiarch(f"{rng_seed}/run", fmt="oci")
    source = write_dir_image(tmp_path / "src", index)
    side = SideOptions(registry=RegistryOptions())
    result = await copy_between(
        parse_image_name(f"dir:{source}"),
        parse_image_name(f"oci:{tmp_path / 'layout'}:v1"),
        CopyOptions(multi_arch="all", preserve_digests=True),
        side,
        side,
        retry=RetryPolicy(attempts=1),
        parallel=1,  # one blob in flight still finishes: the host limits stay above it
    )
    assert str(result.digest) == index.digest
    async with transport_context() as ctx:
        copied = await read_back(await parse_image_name(f"oci:{tmp_path / 'layout'}:v1").new_source(ctx))
    assert str(copied.digest) == index.digest
