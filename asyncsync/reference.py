"""Docker image references: parse, validate and normalise; pure functions, no I/O.

Grammar (from distribution's ``reference`` package)::

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] path-component ( "/" path-component )*
    domain     := host [ ":" port ]           host: DNS labels, "localhost" or "[ipv6]"
    path-comp  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}

Normalisation as in docker: the first component is a domain only if it contains "." or ":",
or is "localhost"; otherwise the domain is ``docker.io`` and single-component names on
Docker Hub get the ``library/`` prefix. A name with neither tag nor digest gets ``latest``
only when :func:`parse_reference` is asked to (``default_tag=True``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from asyncsync.digest import Digest
from asyncsync.errors import InvalidReferenceError

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
_DOMAIN_LABEL = re.compile(r"^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])\Z")
_IPV6 = re.compile(r"^\[[0-9a-fA-F:.]+\]\Z")
_PORT = re.compile(r"^[0-9]+\Z")
TAG_PATTERN = re.compile(r"^[\w][\w.-]{0,127}\Z", re.ASCII)


@dataclass(frozen=True, slots=True)
class ImageName:
    """A normalised Docker reference: ``registry/repository[:tag][@digest]``.

    ``registry`` is the domain as used to reach the registry (``docker.io`` for Docker Hub);
    ``repository`` the path inside it. At least one of ``tag``/``digest`` is set when the
    reference was parsed with ``default_tag=True``.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @property
    def name(self) -> str:
        """``registry/repository`` without tag or digest (skopeo's inspect ``Name``)."""
        return f"{self.registry}/{self.repository}"

    @property
    def familiar_name(self) -> str:
        """The short form users type: ``alpine`` for ``docker.io/library/alpine``."""
        if self.registry != DEFAULT_DOMAIN:
            return self.name
        repo = self.repository
        return repo[len(OFFICIAL_REPO_PREFIX) :] if repo.startswith(OFFICIAL_REPO_PREFIX) else repo

    @property
    def reference(self) -> str:
        """What goes in ``/v2/<repo>/manifests/<reference>``: the digest if pinned, else the tag."""
        if self.digest is not None:
            return str(self.digest)
        return self.tag or DEFAULT_TAG

    def with_tag(self, tag: str) -> ImageName:
        validate_tag(tag, context=self.name)
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: Digest) -> ImageName:
        return replace(self, digest=digest)

    def without_tag_or_digest(self) -> ImageName:
        return replace(self, tag=None, digest=None)

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def validate_tag(tag: str, *, context: str = "") -> str:
    """Return ``tag`` if it is a valid tag, else raise naming it (and ``context``)."""
    if not TAG_PATTERN.match(tag):
        where = f" in {context!r}" if context else ""
        reason = " (longer than 128 characters)" if len(tag) > 128 else ""
        raise InvalidReferenceError(f"invalid tag {tag!r}{where}{reason}")
    return tag


def _is_domain(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost" or component != component.lower()


def _validate_domain(domain: str, text: str) -> None:
    host, port = domain, ""
    if domain.startswith("["):
        end = domain.find("]")
        host, rest = domain[: end + 1], domain[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise InvalidReferenceError(f"invalid registry host {domain!r} in {text!r}")
            port = rest[1:]
        if not _IPV6.match(host):
            raise InvalidReferenceError(f"invalid registry host {domain!r} in {text!r}")
    else:
        if ":" in domain:
            host, port = domain.rsplit(":", 1)
        if not host or not all(_DOMAIN_LABEL.match(label) for label in host.split(".")):
            raise InvalidReferenceError(f"invalid registry host {domain!r} in {text!r}")
    if ":" in domain[len(host) :] and (not _PORT.match(port) or not 0 < int(port) < 65536):
        raise InvalidReferenceError(f"invalid port {port!r} in {text!r}")


def parse_reference(text: str, *, default_tag: bool = True) -> ImageName:
    """Parse a Docker reference such as ``alpine``, ``host:5000/a/b:tag`` or ``a/b@sha256:...``.

    Raises :class:`InvalidReferenceError` with a message naming the offending part.
    With ``default_tag``, a reference with neither tag nor digest gets the tag ``latest``.
    """
    if not text:
        raise InvalidReferenceError("empty image reference")
    remainder = text
    digest: Digest | None = None
    if "@" in remainder:
        remainder, digest_text = remainder.split("@", 1)
        digest = Digest.parse(digest_text)
    tag: str | None = None
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > slash:
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        validate_tag(tag, context=text)
    if not remainder:
        raise InvalidReferenceError(f"invalid image reference {text!r}: missing repository name")
    first, sep, rest = remainder.partition("/")
    if sep and _is_domain(first):
        domain, path = first, rest
        _validate_domain(domain, text)
    else:
        domain, path = DEFAULT_DOMAIN, remainder
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if not path:
        raise InvalidReferenceError(f"invalid image reference {text!r}: missing repository name")
    for component in path.split("/"):
        if not _PATH_COMPONENT.match(component):
            if component.lower() != component and _PATH_COMPONENT.match(component.lower()):
                raise InvalidReferenceError(
                    f"invalid repository name {path!r} in {text!r}: must be lowercase"
                )
            raise InvalidReferenceError(f"invalid repository path component {component!r} in {text!r}")
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_REPO_PREFIX + path
    if len(domain) + 1 + len(path) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReferenceError(f"repository name in {text!r} is longer than {NAME_TOTAL_LENGTH_MAX}")
    if default_tag and tag is None and digest is None:
        tag = DEFAULT_TAG
    return ImageName(domain, path, tag, digest)


def parse_repository(text: str) -> ImageName:
    """Parse a repository name (no tag, no digest), as ``list-tags`` and sync sources take."""
    name = parse_reference(text, default_tag=False)
    if name.tag is not None or name.digest is not None:
        raise InvalidReferenceError(f"{text!r} must be a repository without tag or digest")
    return name
