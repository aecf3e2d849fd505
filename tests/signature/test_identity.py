"""signedIdentity rules, with containers/image's policy_reference_match tables (v5.22)."""

from __future__ import annotations

import pytest

from asyncsync.reference import ImageName, parse_reference
from asyncsync.signature.identity import (
    ExactReference,
    ExactRepository,
    IdentityRule,
    MatchExact,
    MatchRepoDigestOrExact,
    MatchRepository,
    RemapIdentity,
    valid_remap_prefix,
)

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


def named(text: str) -> ImageName:
    return parse_reference(text, default_tag=False)


CASES: list[tuple[IdentityRule, str, str, bool]] = [
    # matchExact: same tag, or same digest; never name-only
    (MatchExact(), "busybox:latest", "docker.io/library/busybox:latest", True),
    (MatchExact(), "busybox:latest", "busybox:other", False),
    (MatchExact(), f"busybox@{DIGEST}", f"busybox@{DIGEST}", True),
    (MatchExact(), f"busybox@{DIGEST}", "busybox:latest", False),
    (MatchExact(), "busybox:latest", "busybox", False),
    # matchRepoDigestOrExact: tag -> exact; digest -> same repository
    (MatchRepoDigestOrExact(), "busybox:latest", "busybox:latest", True),
    (MatchRepoDigestOrExact(), "busybox:latest", "busybox:1", False),
    (MatchRepoDigestOrExact(), f"busybox@{DIGEST}", "busybox:1", True),
    (MatchRepoDigestOrExact(), f"busybox@{DIGEST}", f"busybox@{OTHER}", True),
    (MatchRepoDigestOrExact(), f"busybox@{DIGEST}", "quay.io/busybox:1", False),
    (MatchRepoDigestOrExact(), f"busybox@{DIGEST}", "busybox", False),
    # matchRepository: any tag of the repository
    (MatchRepository(), "busybox:latest", "busybox:1", True),
    (MatchRepository(), "busybox:latest", "busybox", True),
    (MatchRepository(), "busybox:latest", "other:latest", False),
    # exactReference / exactRepository: the policy's reference, whatever the image's
    (ExactReference(named("quay.io/a/b:1")), "busybox:latest", "quay.io/a/b:1", True),
    (ExactReference(named("quay.io/a/b:1")), "busybox:latest", "quay.io/a/b:2", False),
    (ExactRepository(named("quay.io/a/b")), "busybox:latest", "quay.io/a/b:anything", True),
    (ExactRepository(named("quay.io/a/b")), "busybox:latest", "quay.io/a/c:1", False),
    # remapIdentity: prefix replaced, then matchRepoDigestOrExact
    (RemapIdentity("mirror.local:5000", "quay.io"), "mirror.local:5000/ns/app:1", "quay.io/ns/app:1", True),
    (RemapIdentity("mirror.local:5000", "quay.io"), "mirror.local:5000/ns/app:1", "quay.io/ns/app:2", False),
    (
        RemapIdentity("mirror.local:5000/ns", "quay.io/up"),
        "mirror.local:5000/ns/app:1",
        "quay.io/up/app:1",
        True,
    ),
    (
        RemapIdentity("mirror.local:5000/ns", "quay.io/up"),
        "mirror.local:5000/nsx/app:1",
        "quay.io/up/app:1",
        False,
    ),
    (
        RemapIdentity("other.local", "quay.io"),
        "mirror.local:5000/ns/app:1",
        "mirror.local:5000/ns/app:1",
        True,
    ),
    # an unparseable claim never matches
    (MatchRepository(), "busybox:latest", "Not A Reference", False),
]


@pytest.mark.parametrize(("rule", "image", "signed", "expected"), CASES)
def test_rules(rule: IdentityRule, image: str, signed: str, expected: bool) -> None:
    assert rule.matches(named(image), signed) is expected


@pytest.mark.parametrize("rule", [MatchExact(), MatchRepoDigestOrExact(), MatchRepository()])
def test_images_without_docker_reference_never_match(rule: IdentityRule) -> None:
    assert rule.matches(None, "busybox:latest") is False


def test_exact_rules_ignore_the_image() -> None:
    assert ExactReference(named("busybox:1")).matches(None, "busybox:1")
    assert ExactRepository(named("busybox")).matches(None, "busybox:2")


@pytest.mark.parametrize(
    ("prefix", "valid"),
    [
        ("example.com", True),
        ("localhost:5000", True),
        ("example.com/ns/repo", True),
        ("example.com/Bad", False),
        ("", False),
        ("example.com/", False),
    ],
)
def test_remap_prefixes(prefix: str, valid: bool) -> None:
    assert valid_remap_prefix(prefix) is valid
