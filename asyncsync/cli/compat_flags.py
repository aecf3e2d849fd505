"""skopeo 1.9.3 flags kept for drop-in compatibility, as flag groups (:mod:`asyncsync.cli.flag_groups`).

Every flag skopeo 1.9.3 accepts parses here. A flag asyncsync honours does what skopeo's does; a
flag it cannot honour is accepted with one ``warning:`` line on stderr saying so, except where
going on would be unsafe (layer encryption: copying in clear what the user asked to encrypt is
refused, exit 2). Groups:

* :data:`GLOBAL_COMPAT_FLAGS` (``asyncsync`` itself): ``--tmpdir DIR`` (honoured: big temporary
  files and spools go there, :mod:`asyncsync.tempdirs`); the hidden, deprecated global
  ``--tls-verify`` and the hidden ``--registries-conf`` (not honoured: a warning).
* :data:`LOCAL_STORE_FLAGS` (``delete``, ``inspect``): ``--shared-blob-dir`` (``oci:``) and ``--daemon-host``
  (``docker-daemon:``).
* :data:`COPY_COMPAT_FLAGS` (``copy``): ``--dest-precompute-digests`` (honoured: asyncsync always
  checks a blob's presence before uploading it), ``--decryption-key`` (warning: encrypted layers are
  copied as they are), ``--encryption-key``/``--encrypt-layer`` (refused).

:class:`SkopeoGroup` lets the top-level command take skopeo's ``--flag=false`` spelling for its
boolean flags, as :class:`~asyncsync.cli.common.SkopeoCommand` does for commands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from asyncsync.cli.flag_groups import FlagGroup, flag_option
from asyncsync.errors import UsageError

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_bool(value: str, flag: str) -> bool:
    """Go's ``strconv.ParseBool`` (what pflag accepts for ``--flag=VALUE``)."""
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise typer.BadParameter(f"invalid boolean value {value!r} for {flag} (use true or false)")


def _warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def rewrite_bool_flags(params: list[Any], args: list[str], *, stop_at_word: bool) -> list[str]:
    """``args`` with ``--flag=true|false`` turned into the forms click parses, for ``params``' boolean
    flags (``--no-flag`` for false; false on a flag without a negative form drops earlier mentions,
    pflag's last-one-wins). Stops at ``--``, and with ``stop_at_word`` at the first argument that is
    not an option (a group's command name: what follows belongs to the command)."""
    flags: dict[str, tuple[str, str | None]] = {}
    for param in params:
        # Duck-typed: Typer ships its own click, so isinstance checks against click would not match.
        if getattr(param, "is_flag", False) and getattr(param, "is_bool_flag", False):
            negative = param.secondary_opts[0] if param.secondary_opts else None
            for opt in param.opts:
                flags[opt] = (opt, negative)
    rewritten: list[str] = []
    for index, arg in enumerate(args):
        if arg == "--" or (stop_at_word and not arg.startswith("-")):
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
                rewritten = [a for a in rewritten if flags.get(a, ("", None))[0] != positive]
            continue
        rewritten.append(arg)
    return rewritten


class SkopeoGroup(TyperGroup):
    """The top-level command: its boolean flags also take ``--flag=true|false`` (before the command)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, rewrite_bool_flags(self.params, args, stop_at_word=True))


# ------------------------------------------------------------------------------------------ global


@dataclass(frozen=True, slots=True)
class GlobalCompatFlags:
    """skopeo's global ``--tmpdir``, and its hidden ``--tls-verify`` and ``--registries-conf``."""

    tmpdir: str | None = None
    tls_verify: bool | None = None
    registries_conf: str | None = None

    def apply(self) -> None:
        """Configure the temp dir and say what is not honoured; :class:`UsageError` for a bad --tmpdir."""
        from asyncsync import tempdirs

        tempdirs.configure(self.tmpdir)
        if self.tls_verify is not None:
            _warn(
                "the global --tls-verify is deprecated (as in skopeo) and not honoured by asyncsync: "
                "set --tls-verify, --src-tls-verify or --dest-tls-verify on the command"
            )
        if self.registries_conf is not None:
            _warn("--registries-conf is not honoured: asyncsync does not read registries.conf")


GLOBAL_COMPAT_FLAGS: FlagGroup[GlobalCompatFlags] = FlagGroup(
    GlobalCompatFlags,
    (
        flag_option(
            "tmpdir",
            Annotated[
                str | None,
                typer.Option(
                    "--tmpdir",
                    metavar="DIR",
                    help="Directory for temporary files (default $TMPDIR, /var/tmp).",
                ),
            ],
            None,
        ),
        flag_option(
            "tls_verify",
            Annotated[bool | None, typer.Option("--tls-verify/--no-tls-verify", hidden=True)],
            None,
        ),
        flag_option(
            "registries_conf", Annotated[str | None, typer.Option("--registries-conf", hidden=True)], None
        ),
    ),
    lambda v: GlobalCompatFlags(**v),
)

#: The global options above that take a value (the command word is the first word after them).
GLOBAL_COMPAT_OPTIONS_WITH_VALUE = ("--tmpdir", "--registries-conf")


# ------------------------------------------------------------------------------------------ delete


@dataclass(frozen=True, slots=True)
class LocalStoreFlags:
    """``--shared-blob-dir`` (``oci:``) and ``--daemon-host`` (``docker-daemon:``) of one image."""

    shared_blob_dir: str | None = None
    daemon_host: str | None = None


LOCAL_STORE_FLAGS: FlagGroup[LocalStoreFlags] = FlagGroup(
    LocalStoreFlags,
    (
        flag_option(
            "shared_blob_dir",
            Annotated[
                str | None,
                typer.Option(
                    "--shared-blob-dir",
                    metavar="DIRECTORY",
                    help="DIRECTORY to use to share blobs across OCI repositories (oci: only).",
                ),
            ],
            None,
        ),
        flag_option(
            "daemon_host",
            Annotated[
                str | None,
                typer.Option(
                    "--daemon-host",
                    metavar="HOST",
                    help="Use the docker daemon at HOST (docker-daemon: only).",
                ),
            ],
            None,
        ),
    ),
    lambda v: LocalStoreFlags(**v),
)


# ------------------------------------------------------------------------------------------ copy


@dataclass(frozen=True, slots=True)
class CopyCompatFlags:
    """skopeo copy's flags that asyncsync accepts for compatibility (see the module docstring)."""

    precompute_digests: bool = False
    decryption_keys: tuple[str, ...] = ()
    encryption_keys: tuple[str, ...] = ()
    encrypt_layers: tuple[int, ...] = ()

    def check(self, warn: Callable[[str], None] = _warn) -> None:
        """Refuse encryption (:class:`UsageError`), warn about decryption keys."""
        if self.encryption_keys or self.encrypt_layers:
            raise UsageError(
                "--encryption-key/--encrypt-layer: layer encryption is not supported by asyncsync "
                "(refusing to copy in clear an image that was to be encrypted)"
            )
        if self.decryption_keys:
            warn("--decryption-key is not honoured: encrypted layers are copied as they are")


COPY_COMPAT_FLAGS: FlagGroup[CopyCompatFlags] = FlagGroup(
    CopyCompatFlags,
    (
        flag_option(
            "dest_precompute_digests",
            Annotated[
                bool,
                typer.Option(
                    "--dest-precompute-digests",
                    help="Accepted for skopeo compatibility: asyncsync always checks a blob's presence "
                    "before uploading it.",
                ),
            ],
            False,
        ),
        flag_option(
            "decryption_key",
            Annotated[
                list[str] | None,
                typer.Option("--decryption-key", metavar="KEY[:PASSPHRASE]", help="Not supported (warns)."),
            ],
            None,
        ),
        flag_option(
            "encryption_key",
            Annotated[
                list[str] | None,
                typer.Option("--encryption-key", metavar="PROTOCOL:KEY", help="Not supported (refused)."),
            ],
            None,
        ),
        flag_option(
            "encrypt_layer",
            Annotated[
                list[int] | None,
                typer.Option("--encrypt-layer", metavar="N", help="Not supported (refused)."),
            ],
            None,
        ),
    ),
    lambda v: CopyCompatFlags(
        precompute_digests=v["dest_precompute_digests"],
        decryption_keys=tuple(v["decryption_key"] or ()),
        encryption_keys=tuple(v["encryption_key"] or ()),
        encrypt_layers=tuple(v["encrypt_layer"] or ()),
    ),
)
