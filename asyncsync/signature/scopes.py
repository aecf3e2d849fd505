"""Policy scopes per transport, as containers/image names them (v5.22, skopeo 1.9.3).

For an image, :func:`image_scopes` gives its *identity* (the most specific scope) and its
*namespaces* (less specific scopes, most specific first). A policy's requirements for the image
are those of the first scope found among: the identity, each namespace, ``""`` (the transport's
default), and finally the policy's ``default`` (``evaluate.requirements_for``).

* ``docker``: ``host/ns/repo:tag`` (or ``@digest``), then ``host/ns/repo``, ``host/ns``,
  ``host``, then wildcards for the host's parent domains (``*.example.com``, ``*.com``).
* ``docker-daemon``: as docker for a named image; an image ID has only ``""``.
* ``dir``: the absolute path with symlinks resolved, then each parent directory (not ``/``).
* ``oci`` / ``oci-archive``: the resolved directory or file, then itself and each parent
  (containers/image lists the path itself again first; harmless).
* ``docker-archive``: only ``""``.
* any other transport: its name after the colon as the identity, no namespaces.

:func:`validate_scope` checks scope names when a policy is read: ``dir``/``oci``/``oci-archive``
scopes must be absolute, canonical and not ``/``; ``docker-archive`` allows only ``""``;
``docker-daemon`` refuses a bare ``algo:digest``.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import replace
from typing import Protocol

from asyncsync.digest import Digest
from asyncsync.errors import AsyncSyncError
from asyncsync.reference import ImageName


class NamedImage(Protocol):
    """What scopes need of an image reference (``transports.base.ImageReference`` has it; this
    package sits below the transports, which use it to store signatures)."""

    @property
    def transport_name(self) -> str: ...

    def within_transport(self) -> str: ...

    def docker_reference(self) -> ImageName | None: ...


def _is_digest(text: str) -> bool:
    try:
        Digest.parse(text)
    except AsyncSyncError:
        return False
    return True


def _path_scope_problem(scope: str) -> str | None:
    if not scope.startswith("/"):
        return f"Invalid scope {scope}: must be an absolute path"
    if scope == "/":
        return 'Invalid scope "/": Use the generic default scope ""'
    cleaned = posixpath.normpath(scope)
    if cleaned != scope:
        return f"Invalid scope {scope}: Uses non-canonical path format, perhaps try with path {cleaned}"
    return None


def validate_scope(transport: str, scope: str) -> str | None:
    """Why ``scope`` is not a valid (non-empty) scope for ``transport``, or ``None`` if it is."""
    if transport in ("dir", "oci", "oci-archive"):
        return _path_scope_problem(scope)
    if transport == "docker-archive":
        return 'docker-archive: does not support any scopes except the default "" one'
    if transport == "docker-daemon" and _is_digest(scope):
        return f"docker-daemon: can not use algo:digest value {scope} as a namespace"
    return None


def as_named(name: ImageName) -> ImageName:
    """The reference a user named: a tag pinned to a digest (how ``sync`` copies) counts as the tag,
    as skopeo copies it by tag; containers/image has no reference with both."""
    if name.tag is not None and name.digest is not None:
        return replace(name, digest=None)
    return name


def docker_identity(name: ImageName) -> str:
    """``host/repo:tag`` or ``host/repo@digest`` (see :func:`as_named` for both)."""
    return str(as_named(name))


def docker_namespaces(name: ImageName) -> list[str]:
    """containers/image's ``DockerReferenceNamespaces``: the repository, its parents, wildcards."""
    result: list[str] = []
    current = name.name
    while True:
        result.append(current)
        slash = current.rfind("/")
        if slash == -1:
            break
        current = current[:slash]
    host = current.split(":", 1)[0]
    while "." in host:
        host = host[host.index(".") + 1 :]
        result.append(f"*.{host}")
    return result


def resolve_path(path: str) -> str:
    """An absolute path with symlinks resolved as far as it exists (containers/image's
    ``ResolvePathToFullyExplicit``: a missing last component is kept as written)."""
    absolute = os.path.abspath(path)
    if os.path.lexists(absolute):
        return os.path.realpath(absolute)
    parent, base = os.path.split(absolute)
    return os.path.join(os.path.realpath(parent), base)


def _parents(path: str, *, include_self: bool) -> list[str]:
    result = [path] if include_self else []
    while True:
        slash = path.rfind("/")
        if slash <= 0:
            return result
        path = path[:slash]
        result.append(path)


def image_scopes(reference: NamedImage) -> tuple[str, list[str]]:
    """The policy identity and namespaces of ``reference`` (see the module docstring)."""
    transport = reference.transport_name
    within = reference.within_transport()
    if transport in ("docker", "docker-daemon"):
        name = reference.docker_reference()
        if name is None:  # docker-daemon: an image ID
            return "", []
        return docker_identity(name), docker_namespaces(name)
    if transport == "dir":
        resolved = resolve_path(within)
        return resolved, _parents(resolved, include_self=False)
    if transport in ("oci", "oci-archive"):
        resolved = resolve_path(within.split(":", 1)[0])
        return resolved, _parents(resolved, include_self=True)
    if transport == "docker-archive":
        return "", []
    return within, []
