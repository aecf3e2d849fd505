"""resolve_settings: one frozen RunSettings per run, with the documented precedence."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from asyncsync.copy.attachments import AttachmentPolicy
from asyncsync.copy.options import TrustSettings
from asyncsync.limits import pool_sizes
from asyncsync.registry.client import RegistryOptions
from asyncsync.registry.credentials import Credentials
from asyncsync.retry import RetryPolicy
from asyncsync.signature.evaluate import PolicyContext
from asyncsync.signature.policy import insecure_policy
from asyncsync.signature.registries_d import RegistriesD
from asyncsync.specs.load import load_spec
from asyncsync.specs.model import SyncSpec
from asyncsync.sync.settings import CommandLine, resolve_settings


def native(tmp_path: Path, body: str) -> SyncSpec:
    path = tmp_path / "sync.yaml"
    path.write_text("version: 1\n" + textwrap.dedent(body))
    return load_spec(path)


def skopeo(tmp_path: Path, body: str) -> SyncSpec:
    path = tmp_path / "skopeo.yaml"
    path.write_text(textwrap.dedent(body))
    return load_spec(path, destination="dest.example/mirror")


def test_registry_access_entry_over_flag_over_defaults(tmp_path: Path) -> None:
    spec = native(
        tmp_path,
        """\
        defaults: {tls-verify: false}
        registries:
          a.example: {credentials: {username: u, password: p}}
          b.example: {tls-verify: true, no-creds: true}
        sync: [{from: a.example/x, to: b.example/}]
        """,
    )
    flags = CommandLine(
        source=RegistryOptions(credentials=Credentials("cli", "cli")),
        destination=RegistryOptions(credentials=Credentials("cli", "cli")),
    )
    settings = resolve_settings(spec, flags)
    a = settings.registry_options("a.example", "source")
    assert (a.tls_verify, a.credentials) == (False, Credentials("u", "p"))
    b = settings.registry_options("b.example", "dest")
    assert (b.tls_verify, b.no_creds, b.credentials) == (True, True, None)
    other = settings.registry_options("c.example", "dest")
    assert (other.tls_verify, other.credentials) == (False, Credentials("cli", "cli"))


def test_a_given_tls_flag_wins_over_spec_defaults(tmp_path: Path) -> None:
    spec = native(
        tmp_path,
        """\
        defaults: {tls-verify: true}
        registries:
          a.example: {tls-verify: true}
        sync: [{from: a.example/x, to: b.example/}]
        """,
    )
    flags = CommandLine(
        source=RegistryOptions(tls_verify=False),
        destination=RegistryOptions(tls_verify=False),
        source_tls_verify=False,
        destination_tls_verify=False,
    )
    settings = resolve_settings(spec, flags)
    assert settings.registry_options("b.example", "dest").tls_verify is False
    assert settings.registry_options("c.example", "source").tls_verify is False
    # The entry names its host: it wins over the side-wide flag.
    assert settings.registry_options("a.example", "source").tls_verify is True
    # A flag not given leaves it to the spec's defaults.
    assert resolve_settings(spec, CommandLine()).registry_options("b.example", "dest").tls_verify is True


def test_skopeo_entries_reach_sources_only(tmp_path: Path) -> None:
    spec = skopeo(
        tmp_path,
        """\
        src.example:
          images: {app: [v1]}
          tls-verify: false
          credentials: {username: u, password: p}
        """,
    )
    settings = resolve_settings(spec, CommandLine())
    source = settings.registry_options("src.example", "source")
    assert (source.tls_verify, source.credentials) == (False, Credentials("u", "p"))
    destination = settings.registry_options("src.example", "dest")
    assert (destination.tls_verify, destination.credentials) == (True, None)


def test_run_wide_values_flag_over_defaults_over_built_in(tmp_path: Path) -> None:
    spec = native(
        tmp_path,
        """\
        defaults: {parallel: 3, parallel-blobs: 5, retry-times: 7, retry-delay: 2s}
        sync: [{from: a.example/x, to: b.example/}]
        """,
    )
    from_spec = resolve_settings(spec, CommandLine())
    assert (from_spec.pool.images, from_spec.pool.blobs) == (3, 5)
    assert (from_spec.retry.attempts, from_spec.retry.delay) == (8, 2.0)
    flagged = resolve_settings(spec, CommandLine(parallel=9, blobs_in_flight=11, retry_times=1))
    assert (flagged.pool.images, flagged.pool.blobs) == (9, 11)
    # Each retry value on its own: the flag's times, the spec's delay.
    assert (flagged.retry.attempts, flagged.retry.delay) == (2, 2.0)
    empty = native(tmp_path, "sync: [{from: a.example/x, to: b.example/}]\n")
    built_in = resolve_settings(empty, CommandLine())
    assert built_in.pool == pool_sizes()  # the built-in sizes, deadlock rule applied
    assert built_in.retry == RetryPolicy()
    assert built_in.other_hosts.max_requests == pool_sizes().requests_per_host


def test_pull_quota_reserve_flag_over_defaults_over_zero(tmp_path: Path) -> None:
    spec = native(
        tmp_path, "defaults: {pull-quota-reserve: 20}\nsync: [{from: a.example/x, to: b.example/}]\n"
    )
    assert resolve_settings(spec, CommandLine()).pull_quota_reserve == 20
    assert resolve_settings(spec, CommandLine(pull_quota_reserve=0)).pull_quota_reserve == 0
    empty = native(tmp_path, "sync: [{from: a.example/x, to: b.example/}]\n")
    assert resolve_settings(empty, CommandLine()).pull_quota_reserve == 0


def test_per_host_limits_and_chunks(tmp_path: Path) -> None:
    spec = native(
        tmp_path,
        """\
        defaults: {max-concurrent-requests: 6, requests-per-second: 40, chunk-size: 4MiB}
        registries:
          a.example: {max-concurrent-requests: 3, requests-per-second: 5, chunk-size: 2MiB}
          b.example: {no-creds: true}
        sync: [{from: a.example/x, to: b.example/}]
        """,
    )
    flags = CommandLine(max_requests_per_host=8, chunk_size=8 << 20)
    settings = resolve_settings(spec, flags)
    a, b, other = settings.host("a.example"), settings.host("b.example"), settings.host("c.example")
    assert (a.max_requests, a.requests_per_second, a.chunk_size) == (3, 5, 2 << 20)
    assert (b.max_requests, b.requests_per_second, b.chunk_size) == (8, 40, 8 << 20)
    assert (other.max_requests, other.requests_per_second, other.chunk_size) == (8, 40, 8 << 20)
    unflagged = resolve_settings(spec, CommandLine()).host("b.example")
    assert (unflagged.max_requests, unflagged.chunk_size) == (6, 4 << 20)


def test_run_settings_are_immutable(tmp_path: Path) -> None:
    spec = native(tmp_path, "sync: [{from: a.example/x, to: b.example/}]\n")
    settings = resolve_settings(spec, CommandLine(preserve_digests=True, fail_fast=True))
    assert (settings.preserve_digests, settings.fail_fast) == (True, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.fail_fast = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.hosts["x.example"] = settings.other_hosts  # type: ignore[index]


def test_trust_and_attachments_come_from_the_command_line_whole(tmp_path: Path) -> None:
    """The CLI lays nothing on the resolved settings: what it loaded (policy, signers,
    registries.d) and the attachment policy pass through resolve_settings as given."""
    spec = native(tmp_path, "sync: [{from: a.example/x, to: b.example/}]\n")
    trust = TrustSettings(policy=PolicyContext(insecure_policy()))
    lookaside = RegistriesD()
    attachments = AttachmentPolicy.from_flags(("sbom",), remove_signatures=True)
    flags = CommandLine(trust=trust, registries_d=lookaside, remove_signatures=True, attachments=attachments)
    settings = resolve_settings(spec, flags)
    assert settings.trust is trust and settings.registries_d is lookaside
    assert settings.remove_signatures and settings.attachments is attachments
    built_in = resolve_settings(spec, CommandLine())
    assert (built_in.trust, built_in.registries_d, built_in.remove_signatures) == (None, None, False)
    assert built_in.attachments is None
