"""Flag groups: options declared once, expanded into a command's signature, delivered as one object.

Probe commands run through Typer's ``CliRunner`` (in-process); the real commands' checks stop
at flag validation, before any registry is contacted.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Annotated

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from asyncsync.cli.app import _register_commands, app
from asyncsync.cli.common import (
    REGISTRY_FLAGS,
    REGISTRY_SIDES,
    RETRY_FLAGS,
    RegistryFlags,
    RegistrySides,
    RetryFlags,
    SkopeoCommand,
    registry_group,
)
from asyncsync.cli.extension_options import EXTENSION_FLAGS, ExtensionFlags
from asyncsync.cli.flag_groups import FlagGroup, flag_option, joined_groups, with_flag_groups
from asyncsync.errors import UsageError
from tests.helpers.asyncsync_cli import invoke

REGISTRY_OPTION_NAMES = [
    "creds",
    "username",
    "password",
    "authfile",
    "tls_verify",
    "cert_dir",
    "no_creds",
    "registry_token",
]

probe_app = typer.Typer()
received: dict[str, object] = {}


@probe_app.command("single", cls=SkopeoCommand)
@with_flag_groups
def _single(
    image: Annotated[str, typer.Argument(metavar="IMAGE")],
    *,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Say less.")] = False,
    registry: Annotated[RegistryFlags, REGISTRY_FLAGS],
    level: Annotated[int, typer.Option("--level", min=1, help="How much.")] = 3,
    retry: Annotated[RetryFlags, RETRY_FLAGS],
) -> None:
    """Probe: one registry."""
    received.update(image=image, quiet=quiet, registry=registry, level=level, retry=retry)


@probe_app.command("sides", cls=SkopeoCommand)
@with_flag_groups
def _sides(*, registries: Annotated[RegistrySides, REGISTRY_SIDES]) -> None:
    """Probe: two registries."""
    received.update(registries=registries)


def _probe(*args: str) -> typer.testing.Result:
    received.clear()
    return CliRunner().invoke(probe_app, list(args), terminal_width=200, env={"COLUMNS": "200"})


# ------------------------------------------------------------------------------- expansion


def test_group_options_replace_the_placeholder_in_place() -> None:
    command = get_command(probe_app).commands["single"]
    names = [param.name for param in command.params]
    assert names == ["image", "quiet", *REGISTRY_OPTION_NAMES, "level", "retry_times", "retry_delay"]
    signature = inspect.signature(_single)
    assert "registry" not in signature.parameters and "retry" not in signature.parameters
    # None = not given: the options verify TLS unless a sync spec's defaults say otherwise.
    assert signature.parameters["tls_verify"].default is None


def test_group_options_are_in_help() -> None:
    result = _probe("single", "--help")
    assert result.exit_code == 0, result.output
    for flag in ("--creds", "--no-tls-verify", "--registry-token", "--retry-delay", "--quiet", "--level"):
        assert flag in result.output
    assert "Registry access" in result.output
    assert "Probe: one registry." in result.output  # the command's docstring survives the wrapper


def test_values_arrive_in_the_objects() -> None:
    result = _probe(
        "single",
        "docker://h/r:t",
        "--creds",
        "u:p",
        "--tls-verify=false",
        "--cert-dir",
        "/certs",
        "--retry-times",
        "2",
        "--retry-delay",
        "1s",
        "-q",
        "--level",
        "7",
    )
    assert result.exit_code == 0, result.output
    assert received["registry"] == RegistryFlags(creds="u:p", tls_verify=False, cert_dir="/certs")
    assert received["retry"] == RetryFlags(times=2, delay="1s")
    # The command's own argument and options are untouched by the expansion.
    assert (received["image"], received["quiet"], received["level"]) == ("docker://h/r:t", True, 7)


def test_defaults_when_no_flag_is_given() -> None:
    result = _probe("single", "img")
    assert result.exit_code == 0, result.output
    assert received["registry"] == RegistryFlags()
    assert received["retry"] == RetryFlags()
    assert not RetryFlags().given


def test_own_option_validation_still_applies() -> None:
    result = _probe("single", "img", "--level", "0")
    assert result.exit_code == 2
    assert "--level" in result.output


def test_two_sides_and_the_shared_authfile() -> None:
    result = _probe(
        "sides",
        "--authfile",
        "/shared.json",
        "--dest-authfile",
        "/dest.json",
        "--src-username",
        "alice",
        "--src-password",
        "secret",
        "--dest-no-creds",
        "--src-tls-verify=false",
    )
    assert result.exit_code == 0, result.output
    sides = received["registries"]
    assert isinstance(sides, RegistrySides)
    assert sides.source == RegistryFlags(
        prefix="src-", username="alice", password="secret", authfile="/shared.json", tls_verify=False
    )
    assert sides.destination == RegistryFlags(prefix="dest-", authfile="/dest.json", no_creds=True)
    with pytest.raises(UsageError, match="--dest-creds and --dest-no-creds"):
        REGISTRY_SIDES.value(dest_creds="u:p", dest_no_creds=True).destination.to_options()


def test_direct_call_uses_the_group_defaults() -> None:
    received.clear()
    _single("img")
    assert received["registry"] == RegistryFlags()
    assert received["level"] == 3
    _single("img", creds="u:p", retry_times=1)
    assert received["registry"] == RegistryFlags(creds="u:p")
    assert received["retry"] == RetryFlags(times=1)


def test_subset_group_and_extension_group() -> None:
    login = registry_group(("authfile", "tls_verify"))
    assert [option.name for option in login.options] == ["authfile", "tls_verify"]
    assert login.value(tls_verify=False) == RegistryFlags(tls_verify=False)
    with pytest.raises(TypeError, match="not registry flags: tls"):
        registry_group(("tls",))
    flags = EXTENSION_FLAGS.value(shard="1/4", prune=True)
    assert flags == ExtensionFlags(shard="1/4", prune=True)
    assert flags.extensions().prune
    with pytest.raises(UsageError, match="--shard and --shard-count cannot be used together"):
        EXTENSION_FLAGS.value(shard="0/2", shard_count=2).extensions()
    with pytest.raises(TypeError, match="not options of this group: nope"):
        RETRY_FLAGS.value(nope=1)


@dataclass(frozen=True)
class _Access:
    registry: RegistryFlags
    retry: RetryFlags


_JOINED = joined_groups(_Access, {"registry": REGISTRY_FLAGS, "retry": RETRY_FLAGS})


def test_joined_groups_deliver_one_object_of_their_parts() -> None:
    joined = _JOINED
    names = [option.name for option in joined.options]
    assert names == [*REGISTRY_OPTION_NAMES, "retry_times", "retry_delay"]  # the parts, in order
    assert joined.value(creds="u:p", retry_times=2) == _Access(
        RegistryFlags(creds="u:p"), RetryFlags(times=2)
    )

    def command(*, access: Annotated[_Access, _JOINED]) -> None:
        """Takes the joined group."""
        received.update(access=access)

    received.clear()
    with_flag_groups(command)(no_creds=True, retry_delay="1s")
    assert received["access"] == _Access(RegistryFlags(no_creds=True), RetryFlags(delay="1s"))
    with pytest.raises(TypeError, match="parameter 'authfile' of the group clashes"):
        joined_groups(_Access, {"registry": REGISTRY_FLAGS, "retry": registry_group(("authfile",))})


# ------------------------------------------------------------------------------- misuse


def test_a_parameter_name_clash_is_rejected_at_decoration() -> None:
    def command(
        *,
        creds: Annotated[str | None, typer.Option("--my-creds")] = None,
        registry: Annotated[RegistryFlags, REGISTRY_FLAGS],
    ) -> None:
        """Declares its own 'creds'."""

    with pytest.raises(TypeError, match="parameter 'creds' of the group of 'registry' clashes"):
        with_flag_groups(command)


def test_a_flag_spelling_clash_is_rejected_at_decoration() -> None:
    def command(
        *,
        user: Annotated[str | None, typer.Option("--username", "-u")] = None,
        registry: Annotated[RegistryFlags, REGISTRY_FLAGS],
    ) -> None:
        """Login-style --username next to the registry group's."""

    with pytest.raises(TypeError, match="option --username of the group of 'registry'"):
        with_flag_groups(command)


def test_two_groups_sharing_an_option_are_rejected() -> None:
    def command(
        *,
        registry: Annotated[RegistryFlags, REGISTRY_FLAGS],
        registries: Annotated[RegistrySides, REGISTRY_SIDES],
    ) -> None:
        """Both groups declare --authfile."""

    with pytest.raises(TypeError, match="parameter 'authfile' of the group of 'registries' clashes"):
        with_flag_groups(command)


def test_placeholder_names_are_claimed_too() -> None:
    def command(
        *,
        retry_times: Annotated[RegistryFlags, REGISTRY_FLAGS],
        retry: Annotated[RetryFlags, RETRY_FLAGS],
    ) -> None:
        """A placeholder named like another group's option."""

    with pytest.raises(TypeError, match="'retry_times'"):
        with_flag_groups(command)


def test_misdeclared_placeholders_are_rejected() -> None:
    def positional(registry: Annotated[RegistryFlags, REGISTRY_FLAGS]) -> None:
        """Not keyword-only."""

    def defaulted(*, registry: Annotated[RegistryFlags, REGISTRY_FLAGS] = RegistryFlags()) -> None:
        """Has a default."""

    def wrong_type(*, registry: Annotated[RetryFlags, REGISTRY_FLAGS]) -> None:
        """Annotated with another group's type."""

    def mixed(*, registry: Annotated[RegistryFlags, REGISTRY_FLAGS, typer.Option("--x")]) -> None:
        """A typer.Option next to the group."""

    def no_group(image: str) -> None:
        """Nothing to expand."""

    with pytest.raises(TypeError, match="keyword-only"):
        with_flag_groups(positional)
    with pytest.raises(TypeError, match="keyword-only"):
        with_flag_groups(defaulted)
    with pytest.raises(TypeError, match="annotated RetryFlags but its group delivers RegistryFlags"):
        with_flag_groups(wrong_type)
    with pytest.raises(TypeError, match="one FlagGroup and nothing else"):
        with_flag_groups(mixed)
    with pytest.raises(TypeError, match="no Annotated"):
        with_flag_groups(no_group)


def test_malformed_groups_are_rejected() -> None:
    plain = inspect.Parameter("x", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=str)
    with pytest.raises(TypeError, match="at least one option"):
        FlagGroup(RetryFlags, (), lambda values: RetryFlags())
    with pytest.raises(TypeError, match=r"must be annotated with a typer\.Option"):
        FlagGroup(RetryFlags, (plain,), lambda values: RetryFlags())
    with pytest.raises(TypeError, match="keyword-only with a default"):
        FlagGroup(
            RetryFlags,
            (inspect.Parameter("x", inspect.Parameter.KEYWORD_ONLY, annotation=plain.annotation),),
            lambda values: RetryFlags(),
        )
    option = flag_option("x", Annotated[int, typer.Option("--x")], 0)
    with pytest.raises(TypeError, match="parameter 'x' of the group clashes"):
        FlagGroup(RetryFlags, (option, option), lambda values: RetryFlags())
    spelled_twice = flag_option("y", Annotated[int, typer.Option("--x")], 0)
    with pytest.raises(TypeError, match="option --x of the group"):
        FlagGroup(RetryFlags, (option, spelled_twice), lambda values: RetryFlags())


# ------------------------------------------------------------------------------- the real commands


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["delete", "--creds", "u:p", "--no-creds", "docker://h.example/r:t"],
            "--creds and --no-creds cannot be specified at the same time",
        ),
        (
            ["copy", "--dest-username", "u", "docker://h.example/a:t", "docker://h.example/b:t"],
            "--dest-password must be specified when --dest-username is specified",
        ),
        (
            ["inspect", "--retry-delay", "soon", "docker://h.example/r:t"],
            "--retry-delay: invalid duration 'soon' (e.g. 30s, 1m30s, 1.5h, 300ms)",
        ),
    ],
)
def test_real_commands_validate_their_groups(args: list[str], message: str) -> None:
    result = invoke(*args)
    assert result.returncode == 2, result.all_output
    assert result.stderr == f"Error: {message}\n"


@pytest.mark.parametrize(
    ("command", "present", "absent"),
    [
        ("copy", ["--authfile", "--src-creds", "--dest-registry-token", "--retry-times"], ["--creds"]),
        ("sync", ["--src-cert-dir", "--no-dest-tls-verify", "--shard-count", "--prune"], ["--cert-dir"]),
        ("mirror", ["--dest-authfile", "--src-no-creds", "--create-projects"], ["--no-creds"]),
        ("list-tags", ["--creds", "--registry-token", "--retry-delay"], ["--src-creds"]),
        ("login", ["--authfile", "--tls-verify", "--cert-dir", "--username"], ["--creds", "--no-creds"]),
        ("logout", ["--authfile", "--tls-verify"], ["--creds"]),  # skopeo logout takes --tls-verify
    ],
)
def test_real_commands_take_their_groups(command: str, present: list[str], absent: list[str]) -> None:
    _register_commands()
    params = get_command(app).commands[command].params
    spellings = {spelling for param in params for spelling in [*param.opts, *param.secondary_opts]}
    assert set(present) <= spellings
    assert not set(absent) & spellings
    assert len(spellings) == sum(len(param.opts) + len(param.secondary_opts) for param in params)
