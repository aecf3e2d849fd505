"""Shared command-line pieces: skopeo's registry flags, their validation, and command helpers.

Commands receive skopeo's per-registry flags as flag groups (:mod:`asyncsync.cli.flag_groups`):
each set of options is declared once here and a command asks for it with a keyword-only
placeholder, getting one object back::

    @app.command("inspect", cls=SkopeoCommand)
    @with_flag_groups
    def inspect(
        image: str,
        *,
        registry: Annotated[RegistryFlags, REGISTRY_FLAGS],  # --creds, --tls-verify and the rest
        retry: Annotated[RetryFlags, RETRY_FLAGS],  # --retry-times, --retry-delay
    ) -> None:
        options = registry.to_options()  # UsageError for conflicting flags

Two-sided commands (copy, sync, mirror) take :data:`REGISTRY_SIDES`, a :class:`RegistrySides`
with the ``--src-*`` and ``--dest-*`` flags (and the shared ``--authfile``); error messages name
the prefixed flag. Each flag is described once, in ``_REGISTRY_FLAGS``; :func:`registry_option`
makes its ``typer.Option`` for a prefix, and :func:`registry_group` a group of a subset
(``login`` takes three of the flags).

:class:`SkopeoCommand` makes boolean flags accept skopeo's ``--flag=false`` / ``--flag=true``
spelling (pflag style) besides ``--flag`` and ``--no-flag``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand

from asyncsync.cli.compat_flags import LOCAL_STORE_FLAGS, LocalStoreFlags, rewrite_bool_flags
from asyncsync.cli.flag_groups import FlagGroup, flag_option, joined_groups
from asyncsync.errors import CredentialsError, InvalidReferenceError, NotFoundError, UsageError
from asyncsync.reference import ImageName, parse_repository
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.registry.credentials import Credentials, parse_creds_flag
from asyncsync.retry import RetryPolicy
from asyncsync.transports import parse_image_name, transport_names
from asyncsync.transports.base import SideOptions, TransportContext
from asyncsync.units import duration_flag, size_flag

T = TypeVar("T")

REGISTRY_PANEL = "Registry access"


class SkopeoCommand(TyperCommand):
    """A Typer command whose boolean flags also accept ``--flag=true|false`` as skopeo's do.

    ``--tls-verify=false`` becomes the flag's ``--no-tls-verify`` form before click parses;
    ``--raw=false`` on a flag without a negative form drops earlier ``--raw`` mentions (such
    flags default to false; the last mention wins, as in pflag). Arguments after ``--`` are
    left alone (:func:`~asyncsync.cli.compat_flags.rewrite_bool_flags`).
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: Typer's vendored click Context
        return super().parse_args(ctx, rewrite_bool_flags(self.params, args, stop_at_word=False))


# ------------------------------------------------------------------------------- option factories


def _side(prefix: str) -> str:
    return {"src-": "the source registry", "dest-": "the destination registry"}.get(prefix, "the registry")


@dataclass(frozen=True, slots=True)
class _RegistryFlag:
    """One of skopeo's registry flags. ``help`` is a template: ``{side}`` names the registry,
    ``{prefix}`` is the flag's prefix. A ``negatable`` flag also has ``--no-`` form."""

    kind: object
    default: object
    metavar: str | None
    help: str
    negatable: bool = False


#: skopeo's registry flags by :class:`RegistryFlags` field, in --help order.
_REGISTRY_FLAGS: dict[str, _RegistryFlag] = {
    "creds": _RegistryFlag(
        str | None,
        None,
        "USERNAME[:PASSWORD]",
        "Credentials for {side} (prompts for a missing password on a terminal).",
    ),
    "username": _RegistryFlag(str | None, None, "USERNAME", "Username for {side}."),
    "password": _RegistryFlag(str | None, None, "PASSWORD", "Password for {side}."),
    "authfile": _RegistryFlag(
        str | None,
        None,
        "PATH",
        "Path of the authentication file. Default is ${{XDG_RUNTIME_DIR}}/containers/auth.json.",
    ),
    # None = not given: true, unless a sync spec's defaults say otherwise (asyncsync.sync.settings).
    "tls_verify": _RegistryFlag(
        bool | None,
        None,
        None,
        "Require HTTPS and verify certificates for {side} (--{prefix}tls-verify=false: skip).",
        negatable=True,
    ),
    "cert_dir": _RegistryFlag(
        str | None, None, "PATH", "Use certificates at PATH (*.crt, *.cert, *.key) to connect to {side}."
    ),
    "no_creds": _RegistryFlag(bool, False, None, "Access {side} anonymously."),
    "registry_token": _RegistryFlag(str | None, None, "TOKEN", "A bearer token for accessing {side}."),
}


def registry_option(field: str, prefix: str = "") -> Any:
    """The ``typer.Option`` of the registry flag for :class:`RegistryFlags` field ``field``.

    ``prefix`` (``"src-"``, ``"dest-"``) is put after the dashes: ``--src-creds``. A negatable
    flag also gets its negative form, ``--no-[prefix]tls-verify``.
    """
    flag = _REGISTRY_FLAGS[field]
    spelling = f"--{prefix}{field.replace('_', '-')}"
    if flag.negatable:
        spelling += f"/--no-{prefix}{field.replace('_', '-')}"
    return typer.Option(
        spelling,
        metavar=flag.metavar,
        help=flag.help.format(side=_side(prefix), prefix=prefix),
        rich_help_panel=REGISTRY_PANEL,
    )


# The option of one flag, for a command that takes a single flag outside the groups below:
# ``creds_option("src-")`` is ``registry_option("creds", "src-")``.
creds_option = partial(registry_option, "creds")
username_option = partial(registry_option, "username")
password_option = partial(registry_option, "password")
authfile_option = partial(registry_option, "authfile")
tls_verify_option = partial(registry_option, "tls_verify")
cert_dir_option = partial(registry_option, "cert_dir")
no_creds_option = partial(registry_option, "no_creds")
registry_token_option = partial(registry_option, "registry_token")


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


@dataclass(frozen=True, slots=True)
class ChunkSizeFlag:
    """The ``--chunk-size`` flag as given (:func:`chunk_size_flag`), and the one place it is
    parsed: the flags of ``copy`` and of ``sync``/``mirror`` derive from this class."""

    chunk_size: str | None = None

    def chunk_bytes(self) -> int | None:
        """``--chunk-size`` in bytes (``None``: not given); raises
        :class:`~asyncsync.errors.UsageError` when malformed."""
        return size_flag(self.chunk_size, "--chunk-size") if self.chunk_size is not None else None


def chunk_size_flag(panel: str | None = None) -> inspect.Parameter:
    """``--chunk-size SIZE`` (``copy``, ``sync``, ``mirror``), a group option named ``chunk_size``
    for a :class:`ChunkSizeFlag` field; parsed by :meth:`ChunkSizeFlag.chunk_bytes`."""
    return flag_option(
        "chunk_size",
        Annotated[
            str | None,
            typer.Option(
                "--chunk-size",
                metavar="SIZE",
                help="Upload blobs to destination registries in chunks of SIZE (e.g. 8MiB), not in one go.",
                rich_help_panel=panel,
            ),
        ],
        None,
    )


# ------------------------------------------------------------------------------- flag values


def retry_policy(retry_times: int | None, retry_delay: str | None) -> RetryPolicy:
    """The run's retry policy from ``--retry-times`` / ``--retry-delay``."""
    delay = duration_flag(retry_delay, "--retry-delay") if retry_delay is not None else None
    return RetryPolicy.from_flags(retry_times, delay)


@dataclass(frozen=True, slots=True)
class RegistryFlags:
    """skopeo's per-registry flags for one side (``prefix`` is ``""``, ``"src-"`` or ``"dest-"``).

    ``None`` means "not given" (``tls_verify`` too: :meth:`to_options` then verifies).
    :meth:`to_options` validates combinations as skopeo does.
    """

    prefix: str = ""
    creds: str | None = None
    username: str | None = None
    password: str | None = None
    authfile: str | None = None
    tls_verify: bool | None = None
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
            tls_verify=self.tls_verify is not False,
            cert_dir=self.cert_dir,
            credentials=credentials,
            registry_token=self.registry_token,
            no_creds=self.no_creds,
            authfile=self.authfile,
        )


# ------------------------------------------------------------------------------- flag groups

#: Two-sided commands list the flags source then destination, field by field, the pair
#: --username/--password kept together per side.
_SIDES_ORDER = (
    ("authfile",),
    ("creds",),
    ("username", "password"),
    ("tls_verify",),
    ("cert_dir",),
    ("no_creds",),
    ("registry_token",),
)
_SIDE_PREFIXES = ("src-", "dest-")


def _registry_option(field: str, prefix: str = "") -> inspect.Parameter:
    flag = _REGISTRY_FLAGS[field]
    return flag_option(
        prefix.replace("-", "_") + field, Annotated[flag.kind, registry_option(field, prefix)], flag.default
    )


def registry_group(fields: Sequence[str] = tuple(_REGISTRY_FLAGS)) -> FlagGroup[RegistryFlags]:
    """A group of skopeo's unprefixed registry flags delivering one :class:`RegistryFlags`.

    ``fields`` (names of :class:`RegistryFlags` fields, in --help order) picks a subset; the flags
    left out keep their defaults in the object.
    """
    unknown = [field for field in fields if field not in _REGISTRY_FLAGS]
    if unknown:
        raise TypeError(f"not registry flags: {', '.join(unknown)}")
    return FlagGroup(
        RegistryFlags, tuple(_registry_option(field) for field in fields), lambda v: RegistryFlags(**v)
    )


@dataclass(frozen=True, slots=True)
class RegistrySides:
    """The registry flags of a two-sided command: ``--src-*`` and ``--dest-*``."""

    source: RegistryFlags
    destination: RegistryFlags


#: skopeo's hidden aliases of --src-creds and --dest-creds (kept from its first releases).
_CREDS_ALIASES = {"src-": "screds", "dest-": "dcreds"}


def _registry_sides(values: Mapping[str, Any]) -> RegistrySides:
    def side(prefix: str) -> RegistryFlags:
        key = prefix.replace("-", "_")
        fields = {field: values[key + field] for field in _REGISTRY_FLAGS}
        # The side's own --src-/--dest-authfile wins over the shared --authfile.
        fields["authfile"] = fields["authfile"] or values["authfile"]
        # --src-creds/--dest-creds win over their hidden aliases --screds/--dcreds.
        fields["creds"] = fields["creds"] or values[_CREDS_ALIASES[prefix]]
        return RegistryFlags(prefix=prefix, **fields)

    return RegistrySides(source=side("src-"), destination=side("dest-"))


@dataclass(frozen=True, slots=True)
class RetryFlags:
    """``--retry-times`` and ``--retry-delay`` as given (``None``: not given); unvalidated."""

    times: int | None = None
    delay: str | None = None

    @property
    def given(self) -> bool:
        """Whether either flag was given (an empty ``--retry-delay`` counts as not given)."""
        return self.times is not None or bool(self.delay)

    def delay_seconds(self) -> float | None:
        """``--retry-delay`` in seconds (``None``: not given); raises :class:`UsageError` when malformed."""
        return duration_flag(self.delay, "--retry-delay") if self.delay else None

    def policy(self) -> RetryPolicy:
        """The run's retry policy; raises :class:`UsageError` for a malformed ``--retry-delay``."""
        return retry_policy(self.times, self.delay)


#: ``--creds``, ``--username``, ``--password``, ``--authfile``, ``--tls-verify``, ``--cert-dir``,
#: ``--no-creds``, ``--registry-token``: commands that reach one registry.
REGISTRY_FLAGS: FlagGroup[RegistryFlags] = registry_group()

#: ``--authfile`` then each ``--src-*``/``--dest-*`` registry flag: copy, sync, mirror.
REGISTRY_SIDES: FlagGroup[RegistrySides] = FlagGroup(
    RegistrySides,
    (
        _registry_option("authfile"),
        *(
            _registry_option(field, prefix)
            for fields in _SIDES_ORDER
            for prefix in _SIDE_PREFIXES
            for field in fields
        ),
        *(
            flag_option(alias, Annotated[str | None, typer.Option(f"--{alias}", hidden=True)], None)
            for alias in _CREDS_ALIASES.values()
        ),
    ),
    _registry_sides,
)

#: ``--retry-times`` and ``--retry-delay``.
RETRY_FLAGS: FlagGroup[RetryFlags] = FlagGroup(
    RetryFlags,
    (
        flag_option("retry_times", Annotated[int | None, retry_times_option()], None),
        flag_option("retry_delay", Annotated[str | None, retry_delay_option()], None),
    ),
    lambda v: RetryFlags(times=v["retry_times"], delay=v["retry_delay"]),
)


def transport_context(
    session: RegistrySession, registry: RegistryOptions, retry: RetryPolicy, **side: Any
) -> TransportContext:
    """A :class:`TransportContext` for one side; ``side`` are extra :class:`SideOptions` fields."""
    return TransportContext(session=session, options=SideOptions(registry=registry, **side), retry=retry)


@dataclass(frozen=True, slots=True)
class ImageAccess:
    """How a command that reads or deletes one image reaches it (``inspect``, ``delete``): the
    registry flags, ``--shared-blob-dir``/``--daemon-host`` and the retry flags, as given."""

    registry: RegistryFlags
    local: LocalStoreFlags
    retry: RetryFlags

    def context(self, session: RegistrySession) -> TransportContext:
        """The image's transport context in ``session``; raises :class:`UsageError` for
        conflicting or malformed flags."""
        return transport_context(
            session,
            self.registry.to_options(),
            self.retry.policy(),
            shared_blob_dir=self.local.shared_blob_dir,
            daemon_host=self.local.daemon_host,
        )


#: The registry flags, ``--shared-blob-dir``, ``--daemon-host``, ``--retry-times``, ``--retry-delay``.
IMAGE_ACCESS_FLAGS: FlagGroup[ImageAccess] = joined_groups(
    ImageAccess, {"registry": REGISTRY_FLAGS, "local": LOCAL_STORE_FLAGS, "retry": RETRY_FLAGS}
)


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
    """Re-raise a registry 404 inside the block as ``"<subject> not found: <the registry's words>"``.

    Users asked about an image or repository, so the message names it and says "not found"; the
    registry's own words follow as skopeo prints them ("manifest unknown: manifest unknown"), since
    scripts grep those.
    """
    try:
        yield
    except NotFoundError as exc:
        raise exc.naming(subject) from exc


def warn(message: str) -> None:
    """A one-line warning on stderr."""
    typer.echo(f"warning: {message}", err=True)


async def shown(view: object, work: Awaitable[T]) -> T:
    """Await ``work`` while ``view`` is shown: a live display (a context manager, as the rich
    views are) is entered for the duration; plain and JSON views need no entering."""
    if isinstance(view, AbstractContextManager):
        with view:
            return await work
    return await work
