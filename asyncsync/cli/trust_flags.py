"""Trust flags: skopeo's global ``--policy``/``--insecure-policy``/``--registries.d`` and the
signing flags of ``copy`` and ``sync``, resolved once into the run's trust objects.

* :func:`trust_settings` loads the policy (``--insecure-policy``: accept anything; else
  ``--policy FILE``, the user's or the system's policy.json, a missing file being an error, as
  skopeo) and builds the signers, so a malformed policy, an unreadable key or a wrong sigstore
  passphrase is reported before any image is touched.
* :func:`registries_d` loads the lookaside configuration for the transports (:class:`SideOptions`).

Signing flags (:data:`SIGN_FLAGS` for copy, :data:`SYNC_SIGN_FLAGS` for sync, which has no
``--sign-identity`` in skopeo): ``--sign-by KEY`` (GPG: fingerprint, key ID or e-mail),
``--sign-by-sigstore-private-key PATH``, ``--sign-passphrase-file PATH`` (for either, not both, as
skopeo), ``--sign-identity REF``. Without a passphrase file, a GPG key asks gpg-agent as skopeo does,
and a sigstore key is asked for on the terminal (an error when there is none).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from getpass import getpass
from typing import Annotated

import typer

from asyncsync.cli._run import GLOBAL
from asyncsync.cli.flag_groups import FlagGroup, flag_option
from asyncsync.copy import TrustSettings
from asyncsync.errors import InvalidReferenceError, UsageError
from asyncsync.reference import parse_reference
from asyncsync.signature.evaluate import PolicyContext
from asyncsync.signature.policy import insecure_policy, load_policy, policy_path
from asyncsync.signature.registries_d import RegistriesD, load_registries_d, registries_d_path
from asyncsync.signature.signing import GpgSigner, Signer, SigstoreSigner, read_passphrase_file

_PANEL = "Signing"


@dataclass(frozen=True, slots=True)
class SignFlags:
    """The signing flags as given (unvalidated)."""

    sign_by: str | None = None
    sigstore_key: str | None = None
    passphrase_file: str | None = None
    identity: str | None = None


def _options(with_identity: bool) -> tuple[object, ...]:
    options = [
        flag_option(
            "sign_by",
            Annotated[
                str | None,
                typer.Option(
                    "--sign-by",
                    metavar="FINGERPRINT",
                    help="Sign the image using a GPG key with the specified FINGERPRINT (or key ID, e-mail).",
                    rich_help_panel=_PANEL,
                ),
            ],
            None,
        ),
        flag_option(
            "sign_by_sigstore_private_key",
            Annotated[
                str | None,
                typer.Option(
                    "--sign-by-sigstore-private-key",
                    metavar="PATH",
                    help="Sign the image using a sigstore private key at PATH.",
                    rich_help_panel=_PANEL,
                ),
            ],
            None,
        ),
        flag_option(
            "sign_passphrase_file",
            Annotated[
                str | None,
                typer.Option(
                    "--sign-passphrase-file",
                    metavar="PATH",
                    help="Read a passphrase for signing an image from PATH.",
                    rich_help_panel=_PANEL,
                ),
            ],
            None,
        ),
    ]
    if with_identity:
        options.append(
            flag_option(
                "sign_identity",
                Annotated[
                    str | None,
                    typer.Option(
                        "--sign-identity",
                        metavar="REFERENCE",
                        help="Identity of the signed image, a fully specified docker reference "
                        "(default: the destination's).",
                        rich_help_panel=_PANEL,
                    ),
                ],
                None,
            )
        )
    return tuple(options)


SIGN_FLAGS: FlagGroup[SignFlags] = FlagGroup(
    SignFlags,
    _options(with_identity=True),  # type: ignore[arg-type]
    lambda v: SignFlags(
        v["sign_by"], v["sign_by_sigstore_private_key"], v["sign_passphrase_file"], v["sign_identity"]
    ),
)
SYNC_SIGN_FLAGS: FlagGroup[SignFlags] = FlagGroup(
    SignFlags,
    _options(with_identity=False),  # type: ignore[arg-type]
    lambda v: SignFlags(v["sign_by"], v["sign_by_sigstore_private_key"], v["sign_passphrase_file"]),
)


def _signers(flags: SignFlags) -> tuple[Signer, ...]:
    if flags.passphrase_file and flags.sign_by and flags.sigstore_key:
        raise UsageError(
            "Only one of --sign-by and sign-by-sigstore-private-key can be used with sign-passphrase-file"
        )
    passphrase = read_passphrase_file(flags.passphrase_file) if flags.passphrase_file else None
    signers: list[Signer] = []
    if flags.sign_by:
        signers.append(GpgSigner(flags.sign_by, passphrase))
    if flags.sigstore_key:
        if passphrase is None:
            if not sys.stdin.isatty():
                raise UsageError(
                    "--sign-by-sigstore-private-key: no --sign-passphrase-file and no terminal to ask for "
                    "the passphrase"
                )
            passphrase = getpass(f"Passphrase for key {flags.sigstore_key}: ")
        signers.append(SigstoreSigner(flags.sigstore_key, passphrase.encode("utf-8")))
    return tuple(signers)


def policy_context() -> PolicyContext:
    """The run's policy from the global options (see the module docstring)."""
    if GLOBAL.insecure_policy:
        return PolicyContext(insecure_policy())
    return PolicyContext(load_policy(policy_path(GLOBAL.policy)))


def trust_settings(flags: SignFlags = SignFlags()) -> TrustSettings:
    """Policy, signers and ``--sign-identity`` for a copy or sync; raises one-line errors."""
    identity = None
    if flags.identity:
        try:
            identity = parse_reference(flags.identity, default_tag=False)
        except InvalidReferenceError as exc:
            raise UsageError(f"Could not parse --sign-identity: {exc}") from None
    context = policy_context()
    return TrustSettings(policy=context, signers=_signers(flags), sign_identity=identity)


def close_trust(trust: TrustSettings | None) -> None:
    """Release what a run's trust settings hold (the policy's temporary GPG homes)."""
    if trust is not None and trust.policy is not None:
        trust.policy.close()


def registries_d() -> RegistriesD:
    """The lookaside configuration from ``--registries.d`` or the default directories."""
    return load_registries_d(registries_d_path(GLOBAL.registries_d))
