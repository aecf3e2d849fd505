"""What an attachment is: its kind (signature, attestation, SBOM, other), its type, and the policy
that decides which ones travel with their image.

Two families of attachments are recognised (see :mod:`asyncsync.copy.attachments`):

* **referrers** (OCI 1.1): manifests whose ``subject`` names the image; their type is the
  manifest's ``artifactType`` (or, as the OCI distribution spec says, the config's media type
  when ``artifactType`` is empty);
* **cosign tag attachments**: tags ``sha256-<hex>.sig``, ``.att`` and ``.sbom`` next to the
  image; their type is ``cosign.sig``, ``cosign.att`` or ``cosign.sbom``.

Kinds group types for the options: ``--remove-signatures`` drops every ``signature`` (cosign
``.sig``, sigstore bundles, notation signatures, cosign's OCI 1.1 signatures) and keeps
attestations and SBOMs; ``--attachment-type`` keeps only the named kinds or exact types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from asyncsync.digest import Digest
from asyncsync.errors import UsageError


class Kind(StrEnum):
    SIGNATURE = "signature"
    ATTESTATION = "attestation"
    SBOM = "sbom"
    OTHER = "other"


#: The cosign tag suffixes and the pseudo artifact type each is matched as.
COSIGN_SUFFIXES = {"sig": "cosign.sig", "att": "cosign.att", "sbom": "cosign.sbom"}
_COSIGN_KINDS = {"cosign.sig": Kind.SIGNATURE, "cosign.att": Kind.ATTESTATION, "cosign.sbom": Kind.SBOM}

_SIGNATURE_TYPES = (
    "application/vnd.dev.cosign.artifact.sig.v1+json",
    "application/vnd.dev.cosign.simplesigning.v1+json",
    "application/vnd.cncf.notary.signature",
)
_SIGNATURE_PREFIXES = ("application/vnd.dev.sigstore.bundle",)
_ATTESTATION_MARKERS = ("in-toto", "dsse", "attestation", "provenance", "vex")
_SBOM_MARKERS = ("spdx", "cyclonedx", "syft", "sbom")

#: ``sha256-<hex>`` (the referrers fallback tag) and ``sha256-<hex>.sig|att|sbom`` (cosign).
ATTACHMENT_TAG = re.compile(r"^(sha256)-([0-9a-f]{64})(?:\.(sig|att|sbom))?$")


def kind_of(artifact_type: str) -> Kind:
    """The kind of an artifact type (a media type, or ``cosign.sig``/``.att``/``.sbom``)."""
    if artifact_type in _COSIGN_KINDS:
        return _COSIGN_KINDS[artifact_type]
    lowered = artifact_type.lower()
    if lowered in _SIGNATURE_TYPES or lowered.startswith(_SIGNATURE_PREFIXES):
        return Kind.SIGNATURE
    if any(marker in lowered for marker in _SBOM_MARKERS):
        return Kind.SBOM
    if any(marker in lowered for marker in _ATTESTATION_MARKERS):
        return Kind.ATTESTATION
    return Kind.OTHER


def fallback_tag(subject: Digest) -> str:
    """The OCI referrers fallback tag of ``subject``: ``sha256-<hex>``."""
    return f"{subject.algorithm}-{subject.hex}"


def cosign_tag(subject: Digest, suffix: str) -> str:
    """cosign's tag for an attachment of ``subject``: ``sha256-<hex>.<suffix>``."""
    return f"{subject.algorithm}-{subject.hex}.{suffix}"


def is_attachment_tag(tag: str) -> bool:
    """Whether ``tag`` names an attachment (a fallback index or a cosign attachment), not an image."""
    return ATTACHMENT_TAG.match(tag) is not None


@dataclass(frozen=True, slots=True)
class AttachmentPolicy:
    """Which attachments travel with their image.

    ``types`` empty keeps every type; otherwise an attachment is kept when its kind
    (``signature``, ``attestation``, ``sbom``, ``other``) or its exact type is listed.
    ``remove_signatures`` then drops signatures whatever ``types`` says. ``strict`` makes an
    attachment left behind (its subject's digest changed, or the destination cannot hold it)
    a failure of the image instead of a note. ``max_depth`` bounds the walk (1: only what
    refers to the image itself; 2: also a signature of an SBOM; ...).
    """

    types: tuple[str, ...] = ()
    remove_signatures: bool = False
    strict: bool = False
    max_depth: int = 3

    @classmethod
    def from_flags(
        cls, types: tuple[str, ...] = (), *, remove_signatures: bool = False, strict: bool = False
    ) -> AttachmentPolicy:
        """A policy from user input; raises :class:`UsageError` for an empty type name."""
        cleaned = tuple(t.strip() for t in types)
        if any(not t for t in cleaned):
            raise UsageError("--attachment-type: an empty type name")
        return cls(types=cleaned, remove_signatures=remove_signatures, strict=strict)

    @property
    def server_filter(self) -> str | None:
        """The ``artifactType`` a referrers API may filter by: the one type asked for, when it is
        an exact media type (not a kind, not a cosign tag type)."""
        if len(self.types) != 1:
            return None
        only = self.types[0]
        if only in {kind.value for kind in Kind} or only in _COSIGN_KINDS:
            return None
        return only

    def keeps(self, artifact_type: str) -> tuple[bool, str]:
        """``(True, "")`` when an attachment of ``artifact_type`` travels, else ``(False, why)``."""
        kind = kind_of(artifact_type)
        if self.remove_signatures and kind is Kind.SIGNATURE:
            return False, "signature (--remove-signatures)"
        if self.types and kind.value not in self.types and artifact_type not in self.types:
            return False, f"type {artifact_type or '(none)'} not selected (--attachment-type)"
        return True, ""
