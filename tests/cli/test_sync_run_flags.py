"""The flags ``sync`` and ``mirror`` share (one group), and the command line they make."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncsync.cli.sync_run_flags import SYNC_RUN_FLAGS
from asyncsync.copy.attachments import AttachmentPolicy
from asyncsync.errors import UsageError
from tests.helpers.asyncsync_cli import run_cli


def test_values_reach_the_command_line_settings() -> None:
    flags = SYNC_RUN_FLAGS.value(
        parallel=3,
        image_parallel_copies=5,
        max_requests_per_host=4,
        chunk_size="1MiB",
        retry_times=2,
        retry_delay="1m30s",
    )
    policy = AttachmentPolicy()
    given = flags.command_line(
        fail_fast=True, preserve_digests=True, attachments=policy, remove_signatures=True
    )
    assert (given.parallel, given.blobs_in_flight, given.max_requests_per_host) == (3, 5, 4)
    assert given.chunk_size == 1024 * 1024 and given.fail_fast and given.preserve_digests
    assert (given.retry_times, given.retry_delay) == (2, 90.0)
    assert given.attachments is policy and given.remove_signatures and given.trust is None
    assert given.mount_index_dir is not None
    # Flags not given stay None, so the spec's defaults can decide (asyncsync.sync.settings).
    assert (given.source_tls_verify, given.destination_tls_verify) == (None, None)
    assert SYNC_RUN_FLAGS.value(src_tls_verify=False).command_line().source_tls_verify is False
    assert SYNC_RUN_FLAGS.value(no_mount_cache=True).command_line().mount_index_dir is None


def test_the_group_delivers_each_part() -> None:
    flags = SYNC_RUN_FLAGS.value(quiet=True, shard="1/4", dest_creds="u:p", retry_times=1, parallel=2)
    assert flags.output.quiet and flags.extensions.shard == "1/4" and flags.run.parallel == 2
    assert flags.registries.destination.creds == "u:p" and flags.retry.times == 1


def test_a_bad_chunk_size_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--chunk-size"):
        SYNC_RUN_FLAGS.value(chunk_size="lots").command_line()


@pytest.mark.parametrize("command", ["sync", "mirror"])
def test_both_commands_refuse_it_in_one_line(command: str, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    # A valid spec whose registries do not exist: the flag is refused before any request.
    spec.write_text("version: 1\nsync:\n  - from: 127.0.0.1:9/team/app\n    to: 127.0.0.1:9/mirror/app\n")
    extra = ["--once"] if command == "mirror" else []
    result = run_cli(command, *extra, "--chunk-size", "lots", str(spec))
    assert result.returncode == 2, result.all_output
    assert "--chunk-size" in result.all_output and "Traceback" not in result.all_output
