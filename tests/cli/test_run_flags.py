"""The engine flags shared by ``sync`` and ``mirror``."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncsync.cli.common import REGISTRY_SIDES, RETRY_FLAGS
from asyncsync.cli.run_flags import RUN_FLAGS
from asyncsync.errors import UsageError
from tests.helpers.asyncsync_cli import run_cli


def test_values_reach_the_engine_settings() -> None:
    flags = RUN_FLAGS.value(parallel=3, image_parallel_copies=5, max_requests_per_host=4, chunk_size="1MiB")
    settings = flags.settings(REGISTRY_SIDES.value(), RETRY_FLAGS.value(), fail_fast=True)
    assert (settings.parallel, settings.parallel_blobs, settings.max_requests_per_host) == (3, 5, 4)
    assert settings.chunk_size == 1024 * 1024 and settings.fail_fast
    assert settings.mount_index_dir is not None
    no_cache = RUN_FLAGS.value(no_mount_cache=True)
    assert no_cache.settings(REGISTRY_SIDES.value(), RETRY_FLAGS.value()).mount_index_dir is None


def test_a_bad_chunk_size_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--chunk-size"):
        RUN_FLAGS.value(chunk_size="lots").settings(REGISTRY_SIDES.value(), RETRY_FLAGS.value())


@pytest.mark.parametrize("command", ["sync", "mirror"])
def test_both_commands_refuse_it_in_one_line(command: str, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    # A valid spec whose registries do not exist: the flag is refused before any request.
    spec.write_text("version: 1\nsync:\n  - from: 127.0.0.1:9/team/app\n    to: 127.0.0.1:9/mirror/app\n")
    extra = ["--once"] if command == "mirror" else []
    result = run_cli(command, *extra, "--chunk-size", "lots", str(spec))
    assert result.returncode == 2, result.all_output
    assert "--chunk-size" in result.all_output and "Traceback" not in result.all_output
