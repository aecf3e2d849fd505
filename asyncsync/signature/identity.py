"""``signedIdentity`` rules: which Docker reference a signature may claim (containers-policy.json(5)).

Each rule answers one question, :meth:`matches`: does the identity a signature claims
(``signed``, the ``docker-reference`` of its payload) fit the image being checked (``image``, its
Docker reference, or ``None`` for transports without one, such as ``dir:``)? The semantics are
containers/image's ``policy_reference_match.go`` (v5.22, skopeo 1.9.3):

* ``matchExact``: both have a tag or digest and are equal.
* ``matchRepoDigestOrExact``: an image named by tag needs the same reference; named by digest,
  the same repository (the digest is checked separately). The default rule.
* ``matchRepository``: the same repository, whatever the tag.
* ``exactReference`` / ``exactRepository``: compare with a fixed reference/repository from
  the policy instead of the image's (for images whose name differs from what was signed).
* ``remapIdentity``: the image's name with ``prefix`` replaced by ``signedPrefix``, then as
  ``matchRepoDigestOrExact``.

A signed identity that does not parse never matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from asyncsync.errors import InvalidReferenceError
from asyncsync.reference import ImageName, parse_reference


def parse_signed(text: str) -> ImageName | None:
    """The reference a signature claims, normalised (``busybox`` -> ``docker.io/library/busybox``)."""
    try:
        return parse_reference(text, default_tag=False)
    except InvalidReferenceError:
        return None


def _name_only(name: ImageName) -> bool:
    return name.tag is None and name.digest is None


def repo_digest_or_exact(intended: ImageName, signed: ImageName) -> bool:
    """containers/image's ``matchRepoDigestOrExactReferenceValues``."""
    if _name_only(signed):
        return False
    if intended.tag is not None:
        return str(signed) == str(intended)
    if intended.digest is not None:
        return signed.name == intended.name
    return False


@dataclass(frozen=True, slots=True)
class MatchExact:
    type_name = "matchExact"

    def matches(self, image: ImageName | None, signed: str) -> bool:
        claimed = parse_signed(signed)
        if image is None or claimed is None or _name_only(image) or _name_only(claimed):
            return False
        return str(claimed) == str(image)


@dataclass(frozen=True, slots=True)
class MatchRepoDigestOrExact:
    type_name = "matchRepoDigestOrExact"

    def matches(self, image: ImageName | None, signed: str) -> bool:
        claimed = parse_signed(signed)
        if image is None or claimed is None:
            return False
        return repo_digest_or_exact(image, claimed)


@dataclass(frozen=True, slots=True)
class MatchRepository:
    type_name = "matchRepository"

    def matches(self, image: ImageName | None, signed: str) -> bool:
        claimed = parse_signed(signed)
        if image is None or claimed is None:
            return False
        return claimed.name == image.name


@dataclass(frozen=True, slots=True)
class ExactReference:
    """``dockerReference`` has a tag or a digest (checked when the policy is read)."""

    docker_reference: ImageName
    type_name = "exactReference"

    def matches(self, image: ImageName | None, signed: str) -> bool:
        claimed = parse_signed(signed)
        if claimed is None or _name_only(claimed):
            return False
        return str(claimed) == str(self.docker_reference)


@dataclass(frozen=True, slots=True)
class ExactRepository:
    docker_repository: ImageName
    type_name = "exactRepository"

    def matches(self, image: ImageName | None, signed: str) -> bool:
        claimed = parse_signed(signed)
        if claimed is None:
            return False
        return claimed.name == self.docker_repository.name


# containers/image's reference.DomainRegexp (v5.22): DNS-ish components and an optional port.
_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*"
_DOMAIN_ONLY = re.compile(f"^{_DOMAIN}$")
_DOMAIN_PREFIX = re.compile(f"^{_DOMAIN}/")
_NAME = re.compile(f"^(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")


def valid_remap_prefix(prefix: str) -> bool:
    """containers/image's ``validateIdentityRemappingPrefix``: a registry, or a name with one."""
    return bool(_DOMAIN_ONLY.match(prefix) or (_NAME.match(prefix) and _DOMAIN_PREFIX.match(prefix)))


@dataclass(frozen=True, slots=True)
class RemapIdentity:
    """``prefix`` and ``signed_prefix`` passed :func:`valid_remap_prefix` when the policy was read."""

    prefix: str
    signed_prefix: str
    type_name = "remapIdentity"

    def remapped(self, image: ImageName) -> ImageName | None:
        """``image`` with ``prefix`` replaced, or unchanged when it does not start with it;
        ``None`` when the result is not a canonical reference."""
        name = image.name
        if not (name == self.prefix or (name.startswith(self.prefix) and name[len(self.prefix)] == "/")):
            return image
        text = str(image).replace(self.prefix, self.signed_prefix, 1)
        result = parse_signed(text)
        if result is None or str(result) != text:  # ParseNamed: only canonical names
            return None
        return result

    def matches(self, image: ImageName | None, signed: str) -> bool:
        claimed = parse_signed(signed)
        if image is None or claimed is None:
            return False
        intended = self.remapped(image)
        return intended is not None and repo_digest_or_exact(intended, claimed)


IdentityRule = (
    MatchExact | MatchRepoDigestOrExact | MatchRepository | ExactReference | ExactRepository | RemapIdentity
)
