"""Kinds, tag names and the attachment policy (pure)."""

from __future__ import annotations

import pytest

from asyncsync.copy.attachments.kinds import AttachmentPolicy, Kind, is_attachment_tag, kind_of
from asyncsync.errors import UsageError

HEX = "ab" * 32


@pytest.mark.parametrize(
    ("artifact_type", "kind"),
    [
        ("cosign.sig", Kind.SIGNATURE),
        ("cosign.att", Kind.ATTESTATION),
        ("cosign.sbom", Kind.SBOM),
        ("application/vnd.cncf.notary.signature", Kind.SIGNATURE),
        ("application/vnd.dev.sigstore.bundle.v0.3+json", Kind.SIGNATURE),
        ("application/vnd.dev.sigstore.bundle+json;version=0.2", Kind.SIGNATURE),
        ("application/vnd.dev.cosign.artifact.sig.v1+json", Kind.SIGNATURE),
        ("application/spdx+json", Kind.SBOM),
        ("application/vnd.cyclonedx+json", Kind.SBOM),
        ("application/vnd.in-toto+json", Kind.ATTESTATION),
        ("application/vnd.example.scan+json", Kind.OTHER),
        ("", Kind.OTHER),
    ],
)
def test_kind_of(artifact_type: str, kind: Kind) -> None:
    assert kind_of(artifact_type) is kind


def test_attachment_tags() -> None:
    assert is_attachment_tag(f"sha256-{HEX}")
    assert all(is_attachment_tag(f"sha256-{HEX}.{suffix}") for suffix in ("sig", "att", "sbom"))
    assert not is_attachment_tag(f"sha256-{HEX}.txt")
    assert not is_attachment_tag(f"sha256-{HEX[:-2]}")
    assert not is_attachment_tag("v1.0")


def test_policy_remove_signatures_and_types() -> None:
    assert AttachmentPolicy().keeps("cosign.sig") == (True, "")
    kept, why = AttachmentPolicy(remove_signatures=True).keeps("application/vnd.cncf.notary.signature")
    assert not kept and "--remove-signatures" in why
    assert AttachmentPolicy(remove_signatures=True).keeps("cosign.sbom")[0]
    only_sboms = AttachmentPolicy(types=("sbom",))
    assert only_sboms.keeps("application/spdx+json")[0] and only_sboms.keeps("cosign.sbom")[0]
    assert not only_sboms.keeps("cosign.sig")[0]
    exact = AttachmentPolicy(types=("application/vnd.example.scan+json",))
    assert exact.keeps("application/vnd.example.scan+json")[0] and not exact.keeps("application/spdx+json")[0]
    # Signatures stay out with --remove-signatures even when named.
    assert not AttachmentPolicy(types=("signature",), remove_signatures=True).keeps("cosign.sig")[0]


def test_server_filter_only_for_one_exact_type() -> None:
    assert AttachmentPolicy(types=("application/spdx+json",)).server_filter == "application/spdx+json"
    assert AttachmentPolicy(types=("sbom",)).server_filter is None
    assert AttachmentPolicy(types=("cosign.sig",)).server_filter is None
    assert AttachmentPolicy(types=("a/b", "c/d")).server_filter is None


def test_empty_type_name_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--attachment-type: an empty type name"):
        AttachmentPolicy.from_flags(("sbom", " "))
