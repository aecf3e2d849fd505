"""Shared CLI pieces: skopeo-style boolean flags, registry flag validation, durations, names."""

from __future__ import annotations

from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from asyncsync.cli.common import (
    IMAGE_ACCESS_FLAGS,
    ChunkSizeFlag,
    RegistryFlags,
    SkopeoCommand,
    creds_option,
    no_creds_option,
    not_found_as,
    parse_docker_repository,
    retry_policy,
    tls_verify_option,
)
from asyncsync.cli.copy_command import COPY_FLAGS, CopyFlags
from asyncsync.cli.run_flags import RUN_FLAGS, RunFlags
from asyncsync.errors import InvalidReferenceError, NotFoundError, UsageError
from asyncsync.registry.client import RegistrySession
from asyncsync.registry.credentials import Credentials

probe = typer.Typer()


@probe.command(cls=SkopeoCommand)
def _probe(
    args: Annotated[list[str] | None, typer.Argument()] = None,
    raw: Annotated[bool, typer.Option("--raw")] = False,
    tls_verify: Annotated[bool, tls_verify_option("src-")] = True,
    no_creds: Annotated[bool, no_creds_option()] = False,
    creds: Annotated[str | None, creds_option("dest-")] = None,
) -> None:
    typer.echo(f"raw={raw} tls={tls_verify} no_creds={no_creds} creds={creds} args={args or []}")


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(probe, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "raw=False tls=True no_creds=False"),
        (["--src-tls-verify=false"], "tls=False"),
        (["--src-tls-verify=FALSE", "--src-tls-verify=true"], "tls=True"),
        (["--src-tls-verify=0"], "tls=False"),
        (["--no-src-tls-verify"], "tls=False"),
        (["--src-tls-verify"], "tls=True"),
        (["--raw=true"], "raw=True"),
        (["--raw=false"], "raw=False"),
        (["--raw", "--raw=f"], "raw=False"),
        (["--no-creds=T"], "no_creds=True"),
        (["--dest-creds=a:b=c"], "creds=a:b=c"),  # values of non-boolean options are untouched
        (["--", "--raw=true"], "raw=False tls=True no_creds=False creds=None args=['--raw=true']"),
    ],
)
def test_pflag_style_booleans(args: list[str], expected: str) -> None:
    code, output = _run(*args)
    assert code == 0, output
    assert expected in output


def test_bad_boolean_is_a_usage_error() -> None:
    code, output = _run("--src-tls-verify=maybe")
    assert code == 2
    assert "invalid boolean value 'maybe' for --src-tls-verify" in output


def test_registry_flags_to_options() -> None:
    options = RegistryFlags(
        creds="u:p", tls_verify=False, cert_dir="/c", authfile="/a", registry_token="t"
    ).to_options()
    assert options.credentials == Credentials("u", "p")
    assert (options.tls_verify, options.cert_dir, options.authfile, options.registry_token) == (
        False,
        "/c",
        "/a",
        "t",
    )
    assert RegistryFlags(username="u", password="p").to_options().credentials == Credentials("u", "p")
    assert RegistryFlags(no_creds=True).to_options().no_creds
    assert RegistryFlags().to_options().credentials is None


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            RegistryFlags(prefix="src-", creds="u:p", no_creds=True),
            "--src-creds and --src-no-creds cannot be",
        ),
        (RegistryFlags(username="u", password="p", no_creds=True), "--username and --no-creds cannot be"),
        (
            RegistryFlags(prefix="dest-", creds="u:p", username="u", password="p"),
            "--dest-creds and --dest-username",
        ),
        (RegistryFlags(username="u"), "--password must be specified when --username is specified"),
        (RegistryFlags(password="p"), "--username must be specified when --password is specified"),
        (RegistryFlags(prefix="dest-", creds=":p"), "--dest-creds: missing username"),
    ],
)
def test_registry_flag_conflicts(flags: RegistryFlags, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        flags.to_options()


def test_registry_flags_repr_hides_secrets() -> None:
    text = repr(RegistryFlags(creds="u:MARKER1", password="MARKER2", registry_token="MARKER3"))
    assert "MARKER" not in text


def test_retry_policy_rejects_a_bad_delay_naming_the_flag() -> None:
    with pytest.raises(UsageError, match=r"^--retry-delay: invalid duration 'soon'"):
        retry_policy(3, "soon")


def test_retry_policy_from_flags() -> None:
    assert retry_policy(0, None).attempts == 1
    assert retry_policy(3, "2s").attempts == 4
    assert retry_policy(3, "2s").delay == 2.0
    assert retry_policy(None, None).delay is None


def test_parse_docker_repository() -> None:
    name = parse_docker_repository("docker://h.example:5000/a/b", "list-tags")
    assert (name.registry, name.repository, name.tag) == ("h.example:5000", "a/b", None)
    assert parse_docker_repository("docker://alpine", "list-tags").name == "docker.io/library/alpine"
    with pytest.raises(InvalidReferenceError, match="list-tags takes a repository without tag or digest"):
        parse_docker_repository("docker://h.example/a:t", "list-tags")
    with pytest.raises(InvalidReferenceError, match="must start with docker://"):
        parse_docker_repository("docker:h.example/a", "list-tags")
    with pytest.raises(InvalidReferenceError, match="unknown transport 'nope'"):
        parse_docker_repository("nope:x", "list-tags")
    with pytest.raises(InvalidReferenceError, match="must be lowercase"):
        parse_docker_repository("docker://h.example/Upper", "list-tags")


def test_not_found_as_rewords_only_not_found() -> None:
    with pytest.raises(NotFoundError) as info, not_found_as("image docker://h/r:t"):
        raise NotFoundError(404, "MANIFEST_UNKNOWN", "manifest unknown", what="reading manifest h/r:t")
    assert str(info.value) == "image docker://h/r:t not found: manifest unknown: manifest unknown (HTTP 404)"
    with pytest.raises(UsageError, match="other"), not_found_as("x"):
        raise UsageError("other")


@pytest.mark.anyio
async def test_image_access_builds_the_transport_context_once_validated() -> None:
    access = IMAGE_ACCESS_FLAGS.value(
        creds="u:p", tls_verify=False, shared_blob_dir="/blobs", daemon_host="unix:///d.sock", retry_times=2
    )
    async with RegistrySession() as session:
        ctx = access.context(session)
        assert ctx.options.registry.credentials == Credentials("u", "p")
        assert ctx.options.registry.tls_verify is False
        assert (ctx.options.shared_blob_dir, ctx.options.daemon_host) == ("/blobs", "unix:///d.sock")
        assert ctx.retry == access.retry.policy() and ctx.session is session
        with pytest.raises(UsageError, match="--creds and --no-creds"):
            IMAGE_ACCESS_FLAGS.value(creds="u:p", no_creds=True).context(session)


def test_copy_and_sync_parse_chunk_size_in_one_place() -> None:
    """``--chunk-size`` has one parser, which copy's flags and sync's/mirror's share."""
    assert CopyFlags.chunk_bytes is RunFlags.chunk_bytes is ChunkSizeFlag.chunk_bytes
    for group in (COPY_FLAGS, RUN_FLAGS):
        assert group.value(chunk_size="8MiB").chunk_bytes() == 8 * 1024 * 1024
        assert group.value().chunk_bytes() is None
        with pytest.raises(UsageError, match="--chunk-size"):
            group.value(chunk_size="lots").chunk_bytes()
