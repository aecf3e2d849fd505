"""Shared command-line pieces: skopeo's registry flags, their validation, and command helpers.

Every command that reaches a registry declares skopeo's per-registry flags with the option
factories below, in its own signature (Typer builds options from signatures, so each command
lists them explicitly and mypy sees every parameter)::

    @app.command("inspect", cls=SkopeoCommand)
    def inspect(
        image: str,
        creds: Annotated[str | None, creds_option()] = None,
        tls_verify: Annotated[bool, tls_verify_option()] = True,
        # ... and the other option factories this command needs
    ) -> None:
        flags = RegistryFlags(creds=creds, tls_verify=tls_verify, ...)
        options = flags.to_options()          # UsageError for conflicting flags

Two-sided commands (copy, sync) pass ``prefix="src-"`` or ``prefix="dest-"`` to every factory
and to :class:`RegistryFlags`, which yields ``--src-creds``, ``--dest-tls-verify`` and so on,
with error messages naming the prefixed flag.

:class:`SkopeoCommand` makes boolean flags accept skopeo's ``--flag=false`` / ``--flag=true``
spelling (pflag style) besides ``--flag`` and ``--no-flag``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperCommand

from asyncsync.errors import CredentialsError, InvalidReferenceError, NotFoundError, UsageError
from asyncsync.reference import ImageName, parse_repository
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.registry.credentials import Credentials, parse_creds_flag
from asyncsync.retry import RetryPolicy
from asyncsync.transports import parse_image_name, transport_names
from asyncsync.transports.base import SideOptions, TransportContext

REGISTRY_PANEL = "Registry access"
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_bool(value: str, flag: str) -> bool:
    """Go's ``strconv.ParseBool`` (what pflag accepts for ``--flag=VALUE``)."""
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise typer.BadParameter(f"invalid boolean value {value!r} for {flag} (use true or false)")


class SkopeoCommand(TyperCommand):
    """A Typer command whose boolean flags also accept ``--flag=true|false`` as skopeo's do.

    ``--tls-verify=false`` becomes the flag's ``--no-tls-verify`` form before click parses;
    ``--raw=false`` on a flag without a negative form drops earlier ``--raw`` mentions (such
    flags default to false; the last mention wins, as in pflag). Arguments after ``--`` are
    left alone.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: Typer's vendored click Context
        flags: dict[str, tuple[str, str | None]] = {}
        for param in self.params:
            # Duck-typed: Typer ships its own copy of click, so isinstance checks against
            # the click package would never match.
            if getattr(param, "is_flag", False) and getattr(param, "is_bool_flag", False):
                negative = param.secondary_opts[0] if param.secondary_opts else None
                for opt in param.opts:
                    flags[opt] = (opt, negative)
        rewritten: list[str] = []
        for index, arg in enumerate(args):
            if arg == "--":
                rewritten.extend(args[index:])
                break
            name, sep, value = arg.partition("=")
            if sep and name in flags:
                positive, negative = flags[name]
                if parse_bool(value, name):
                    rewritten.append(positive)
                elif negative is not None:
                    rewritten.append(negative)
                else:
                    # No negative form: "false" restores the default by dropping earlier mentions
                    # (pflag's last-one-wins).
                    rewritten = [a for a in rewritten if flags.get(a, ("", None))[0] != positive]
                continue
            rewritten.append(arg)
        return super().parse_args(ctx, rewritten)


# ------------------------------------------------------------------------------- option factories


def _side(prefix: str) -> str:
    return {"src-": "the source registry", "dest-": "the destination registry"}.get(prefix, "the registry")


def creds_option(prefix: str = "") -> Any:
    """``--[prefix]creds USERNAME[:PASSWORD]``."""
    return typer.Option(
        f"--{prefix}creds",
        metavar="USERNAME[:PASSWORD]",
        help=f"Credentials for {_side(prefix)} (prompts for a missing password on a terminal).",
        rich_help_panel=REGISTRY_PANEL,
    )


def username_option(prefix: str = "") -> Any:
    """``--[prefix]username USERNAME`` (with ``--[prefix]password``)."""
    return typer.Option(
        f"--{prefix}username",
        metavar="USERNAME",
        help=f"Username for {_side(prefix)}.",
        rich_help_panel=REGISTRY_PANEL,
    )


def password_option(prefix: str = "") -> Any:
    """``--[prefix]password PASSWORD`` (with ``--[prefix]username``)."""
    return typer.Option(
        f"--{prefix}password",
        metavar="PASSWORD",
        help=f"Password for {_side(prefix)}.",
        rich_help_panel=REGISTRY_PANEL,
    )


def authfile_option(prefix: str = "") -> Any:
    """``--[prefix]authfile PATH``."""
    return typer.Option(
        f"--{prefix}authfile",
        metavar="PATH",
        help="Path of the authentication file. Default is ${XDG_RUNTIME_DIR}/containers/auth.json.",
        rich_help_panel=REGISTRY_PANEL,
    )


def tls_verify_option(prefix: str = "") -> Any:
    """``--[prefix]tls-verify[=false]``; false also allows plain HTTP."""
    return typer.Option(
        f"--{prefix}tls-verify/--no-{prefix}tls-verify",
        help=f"Require HTTPS and verify certificates for {_side(prefix)} (--{prefix}tls-verify=false: skip).",
        rich_help_panel=REGISTRY_PANEL,
    )


def cert_dir_option(prefix: str = "") -> Any:
    """``--[prefix]cert-dir PATH`` (``*.crt`` CAs, ``*.cert``/``*.key`` client certificates)."""
    return typer.Option(
        f"--{prefix}cert-dir",
        metavar="PATH",
        help=f"Use certificates at PATH (*.crt, *.cert, *.key) to connect to {_side(prefix)}.",
        rich_help_panel=REGISTRY_PANEL,
    )


def no_creds_option(prefix: str = "") -> Any:
    """``--[prefix]no-creds``: access the registry anonymously."""
    return typer.Option(
        f"--{prefix}no-creds", help=f"Access {_side(prefix)} anonymously.", rich_help_panel=REGISTRY_PANEL
    )


def registry_token_option(prefix: str = "") -> Any:
    """``--[prefix]registry-token TOKEN``: a bearer token used as is."""
    return typer.Option(
        f"--{prefix}registry-token",
        metavar="TOKEN",
        help=f"A bearer token for accessing {_side(prefix)}.",
        rich_help_panel=REGISTRY_PANEL,
    )


def retry_times_option() -> Any:
    """``--retry-times N``: retries of a failed operation (temporary errors only)."""
    return typer.Option(
        "--retry-times", metavar="N", min=0, help="The number of times to retry a temporary failure."
    )


def retry_delay_option() -> Any:
    """``--retry-delay DURATION``: fixed delay between retries (``2s``, ``500ms``, or seconds)."""
    return typer.Option(
        "--retry-delay",
        metavar="DURATION",
        help="Fixed delay between retries (e.g. 2s, 500ms); exponential backoff when not set.",
    )


# ------------------------------------------------------------------------------- flag values

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, flag: str = "--retry-delay") -> float:
    """Seconds in a Go duration (``1m30s``, ``500ms``) or a plain number of seconds."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise UsageError(f"{flag}: invalid duration {text!r} (e.g. 2s, 500ms, 1m)") from None
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds < 0:
        raise UsageError(f"{flag}: duration must not be negative")
    return seconds


def retry_policy(retry_times: int | None, retry_delay: str | None) -> RetryPolicy:
    """The run's retry policy from ``--retry-times`` / ``--retry-delay``."""
    delay = parse_duration(retry_delay) if retry_delay is not None else None
    return RetryPolicy.from_flags(retry_times, delay)


@dataclass(frozen=True, slots=True)
class RegistryFlags:
    """skopeo's per-registry flags for one side (``prefix`` is ``""``, ``"src-"`` or ``"dest-"``).

    ``None`` means "not given". :meth:`to_options` validates combinations as skopeo does.
    """

    prefix: str = ""
    creds: str | None = None
    username: str | None = None
    password: str | None = None
    authfile: str | None = None
    tls_verify: bool = True
    cert_dir: str | None = None
    no_creds: bool = False
    registry_token: str | None = None

    def __repr__(self) -> str:
        # Never show secrets, even in a --debug traceback's locals.
        return (
            f"RegistryFlags(prefix={self.prefix!r}, tls_verify={self.tls_verify}, no_creds={self.no_creds})"
        )

    def to_options(self) -> RegistryOptions:
        """Validated :class:`RegistryOptions`; raises :class:`UsageError` for conflicting flags."""
        p = f"--{self.prefix}"
        if self.creds is not None and self.no_creds:
            raise UsageError(f"{p}creds and {p}no-creds cannot be specified at the same time")
        if self.username is not None and self.no_creds:
            raise UsageError(f"{p}username and {p}no-creds cannot be specified at the same time")
        if self.creds is not None and self.username is not None:
            raise UsageError(f"{p}creds and {p}username cannot be specified at the same time")
        if (self.username is None) != (self.password is None):
            if self.username is not None:
                raise UsageError(f"{p}password must be specified when {p}username is specified")
            raise UsageError(f"{p}username must be specified when {p}password is specified")
        credentials: Credentials | None = None
        if self.creds is not None:
            try:
                credentials = parse_creds_flag(self.creds)
            except CredentialsError as exc:
                raise UsageError(str(exc).replace("--creds", f"{p}creds", 1)) from None
        elif self.username is not None:
            credentials = Credentials(username=self.username, password=self.password or "")
        return RegistryOptions(
            tls_verify=self.tls_verify,
            cert_dir=self.cert_dir,
            credentials=credentials,
            registry_token=self.registry_token,
            no_creds=self.no_creds,
            authfile=self.authfile,
        )


def transport_context(
    session: RegistrySession, registry: RegistryOptions, retry: RetryPolicy, **side: Any
) -> TransportContext:
    """A :class:`TransportContext` for one side; ``side`` are extra :class:`SideOptions` fields."""
    return TransportContext(session=session, options=SideOptions(registry=registry, **side), retry=retry)


# ------------------------------------------------------------------------------- names and errors


def parse_docker_repository(text: str, command: str) -> ImageName:
    """``docker://HOST/REPO`` (no tag, no digest), as ``list-tags`` takes it."""
    transport, sep, rest = text.partition(":")
    if not sep or transport != "docker":
        if sep and transport in transport_names():
            raise InvalidReferenceError(
                f"unsupported transport {transport!r} for {command}: only docker:// repositories work here"
            )
        parse_image_name(text)  # raises the precise "unknown transport" / "expected TRANSPORT:NAME" error
        raise InvalidReferenceError(f"invalid repository name {text!r}")  # pragma: no cover - defensive
    if not rest.startswith("//"):
        raise InvalidReferenceError(f"invalid docker reference {text!r}: must start with docker://")
    try:
        return parse_repository(rest[2:])
    except InvalidReferenceError as exc:
        if "must be a repository" in str(exc):
            raise InvalidReferenceError(
                f"{text!r}: {command} takes a repository without tag or digest (docker://HOST/REPO)"
            ) from None
        raise


@contextmanager
def not_found_as(subject: str) -> Iterator[None]:
    """Re-raise a registry 404 inside the block as ``"<subject> not found (HTTP 404 CODE)"``.

    Registries word absence as "manifest unknown" or "repository name not known to registry";
    users asked about an image or repository, so the message names that and says "not found".
    """
    try:
        yield
    except NotFoundError as exc:
        raise NotFoundError(exc.status, exc.code, f"{subject} not found") from exc


def warn(message: str) -> None:
    """A one-line warning on stderr."""
    typer.echo(f"warning: {message}", err=True)
