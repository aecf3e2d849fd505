"""``--attachments``, ``--attachment-type``, ``--attachments-strict``: what follows an image.

Attachments (OCI referrers, cosign ``.sig``/``.att``/``.sbom`` tags; see
:mod:`asyncsync.copy.attachments`) follow their images in ``copy`` and ``sync`` unless
``--attachments=false``. ``--attachment-type`` (repeatable) keeps only the given kinds
(``signature``, ``attestation``, ``sbom``, ``other``) or exact artifact types
(``application/spdx+json``; cosign's tags are ``cosign.sig``, ``cosign.att``, ``cosign.sbom``).
skopeo's ``--remove-signatures`` (declared by each command) drops the signature kind.
``--attachments-strict`` fails the image when an attachment is left behind because the copy
changed its subject's digest (``--format``, platform selection).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from asyncsync.cli.flag_groups import FlagGroup, flag_option
from asyncsync.copy.attachments import AttachmentPolicy

_PANEL = "Attachments"


@dataclass(frozen=True, slots=True)
class AttachmentFlags:
    """The attachment flags as given."""

    enabled: bool = True
    types: tuple[str, ...] = ()
    strict: bool = False

    def policy(self, remove_signatures: bool) -> AttachmentPolicy | None:
        """The policy (``None``: attachments off); raises UsageError for an empty type name."""
        if not self.enabled:
            return None
        return AttachmentPolicy.from_flags(
            self.types, remove_signatures=remove_signatures, strict=self.strict
        )


ATTACHMENT_FLAGS: FlagGroup[AttachmentFlags] = FlagGroup(
    AttachmentFlags,
    (
        flag_option(
            "attachments",
            Annotated[
                bool,
                typer.Option(
                    "--attachments/--no-attachments",
                    help="Copy what refers to each image (OCI referrers, cosign .sig/.att/.sbom tags); "
                    "--attachments=false copies images alone.",
                    rich_help_panel=_PANEL,
                ),
            ],
            True,
        ),
        flag_option(
            "attachment_type",
            Annotated[
                list[str] | None,
                typer.Option(
                    "--attachment-type",
                    metavar="TYPE",
                    help="Copy only attachments of this kind (signature, attestation, sbom, other) or "
                    "artifact type (application/spdx+json, cosign.sig, ...); repeatable.",
                    rich_help_panel=_PANEL,
                ),
            ],
            None,
        ),
        flag_option(
            "attachments_strict",
            Annotated[
                bool,
                typer.Option(
                    "--attachments-strict",
                    help="Fail when attachments are left behind because the copy changed their "
                    "image's digest (--format, platform selection).",
                    rich_help_panel=_PANEL,
                ),
            ],
            False,
        ),
    ),
    lambda values: AttachmentFlags(
        values["attachments"], tuple(values["attachment_type"] or ()), values["attachments_strict"]
    ),
)
