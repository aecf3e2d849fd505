"""The engine flags shared by ``sync`` and ``mirror``."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncsync.cli.common import REGISTRY_SIDES, RETRY_FLAGS
from asyncsync.cli.run_flags import RUN_FLAGS
from asyncsync.errors import UsageError
from tests.helpers.asyncsync_cli import run_cli


def test_values_reach_the_command_line_settings() -> None:
    flags = RUN_FLAGS.value(parallel=3, image_parallel_copies=5, max_requests_per_host=4, chunk_size="1MiB")
    retry = RETRY_FLAGS.value(retry_times=2, retry_delay="1m30s")
    given = flags.command_line(REGISTRY_SIDES.value(), retry, fail_fast=True, preserve_digests=True)
    assert (given.parallel, given.blobs_in_flight, given.max_requests_per_host) == (3, 5, 4)
    assert given.chunk_size == 1024 * 1024 and given.fail_fast and given.preserve_digests
    assert (given.retry_times, given.retry_delay) == (2, 90.0)
    assert given.mount_index_dir is not None
    # Flags not given stay None, so the spec's defaults can decide (asyncsync.sync.settings).
    assert (given.source_tls_verify, given.destination_tls_verify) == (None, None)
    sides = REGISTRY_SIDES.value(src_tls_verify=False)
    assert RUN_FLAGS.value().command_line(sides, RETRY_FLAGS.value()).source_tls_verify is False
    no_cache = RUN_FLAGS.value(no_mount_cache=True)
    assert no_cache.command_line(REGISTRY_SIDES.value(), RETRY_FLAGS.value()).mount_index_dir is None


def test_a_bad_chunk_size_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--chunk-size"):
        RUN_FLAGS.value(chunk_size="lots").command_line(REGISTRY_SIDES.value(), RETRY_FLAGS.value())


@pytest.mark.parametrize("command", ["sync", "mirror"])
def test_both_commands_refuse_it_in_one_line(command: str, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    # A valid spec whose registries do not exist: the flag is refused before any request.
    spec.write_text("version: 1\nsync:\n  - from: 127.0.0.1:9/team/app\n    to: 127.0.0.1:9/mirror/app\n")
    extra = ["--once"] if command == "mirror" else []
    result = run_cli(command, *extra, "--chunk-size", "lots", str(spec))
    assert result.returncode == 2, result.all_output
    assert "--chunk-size" in result.all_output and "Traceback" not in result.all_output
