"""The spec model: the frozen values both spec parsers build, and the checks they share.

A :class:`SyncSpec` holds :class:`SyncEntry` values (sources, :class:`Destination` rule, tag
filter, :class:`CopySettings`), per-host :class:`RegistryConfig` and the native format's
:class:`RunDefaults`; :class:`Origin` carries the ``file:line`` every error names. Parsing is in
:mod:`asyncsync.specs.skopeo` and :mod:`asyncsync.specs.native`, which import this module;
:mod:`asyncsync.specs.load` chooses between them.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Literal

from asyncsync.digest import Digest
from asyncsync.errors import InvalidReferenceError, SpecError
from asyncsync.manifest import Platform
from asyncsync.reference import DEFAULT_DOMAIN, ImageName, parse_reference, validate_tag
from asyncsync.registry.credentials import Credentials
from asyncsync.specs.filters import TagFilter

MultiArch = Literal["system", "all", "index-only"]
ManifestFormat = Literal["oci", "v2s2"]
SpecKind = Literal["skopeo", "native", "command-line"]
#: What a registry is: any Distribution API registry, or a Harbor (projects, ``/api/v2.0``).
RegistryKind = Literal["distribution", "harbor"]
REGISTRY_KINDS: tuple[RegistryKind, ...] = ("distribution", "harbor")
MULTI_ARCH_VALUES: tuple[MultiArch, ...] = ("all", "system", "index-only")
FORMAT_VALUES: tuple[ManifestFormat, ...] = ("oci", "v2s2")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where something was declared: a spec file and 1-based line (0 = no line, e.g. the command line)."""

    file: str
    line: int

    def error(self, message: str) -> SpecError:
        return SpecError(self.file, self.line, message)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


@dataclass(frozen=True, slots=True)
class CopySettings:
    """How each image of an entry is copied.

    ``platforms`` empty means no restriction; a non-empty tuple comes with ``multi_arch="all"``
    and copies only those instances of a multi-arch image. ``platform`` is the one instance
    ``multi_arch="system"`` copies (``--override-os/--override-arch/--override-variant``);
    ``None`` = this host's. ``format`` ``None`` keeps the source's.
    """

    multi_arch: MultiArch = "system"
    platform: Platform | None = None
    platforms: tuple[Platform, ...] = ()
    format: ManifestFormat | None = None
    skip_existing: bool = False
    #: ``attachments:`` (``False``: images alone); ``attachment-types:`` keeps only those kinds or
    #: types (empty: every type). The command line's ``--attachments=false`` and
    #: ``--attachment-type`` win over both.
    attachments: bool = True
    attachment_types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    """Per-host settings from a spec. ``None`` fields inherit; how they combine with the command
    line and ``defaults:`` is decided in :func:`asyncsync.sync.settings.resolve_settings`.

    ``kind`` ``"harbor"`` turns on the Harbor API (:mod:`asyncsync.harbor`) for this host;
    ``create_projects`` (Harbor only) creates missing destination projects before pushing.
    """

    host: str
    origin: Origin
    credentials: Credentials | None = None
    no_creds: bool = False
    authfile: str | None = None
    tls_verify: bool | None = None
    cert_dir: str | None = None
    max_concurrent_requests: int | None = None
    requests_per_second: float | None = None
    chunk_size: int | None = None
    kind: RegistryKind = "distribution"
    create_projects: bool = False


@dataclass(frozen=True, slots=True)
class RunDefaults:
    """Run-wide settings of a native spec (``defaults:``); ``None`` = the command's default."""

    parallel: int | None = None
    parallel_blobs: int | None = None
    retry_times: int | None = None
    retry_delay: float | None = None
    tls_verify: bool | None = None
    max_concurrent_requests: int | None = None
    requests_per_second: float | None = None
    chunk_size: int | None = None
    #: pulls of a source's quota (``ratelimit-*`` headers) never spent; see asyncsync.quota
    pull_quota_reserve: int | None = None
    settings: CopySettings = field(default_factory=CopySettings)


_GLOB_COMPONENT = re.compile(r"^[a-z0-9*]+(?:(?:[._]|__|-+)[a-z0-9*]+)*$|^\*+$")


@dataclass(frozen=True, slots=True)
class SourceSelector:
    """One ``from`` value: a repository path, or a glob (``*`` in a component, final ``**``)."""

    registry: str
    pattern: str
    line: int

    @property
    def is_glob(self) -> bool:
        return "*" in self.pattern

    @property
    def literal_prefix(self) -> str:
        """The components before the first wildcard (what a catalog listing is filtered by)."""
        literal: list[str] = []
        for component in self.pattern.split("/"):
            if "*" in component:
                break
            literal.append(component)
        return "/".join(literal)

    def matches(self, repository: str) -> bool:
        return _glob_regex(self.pattern).fullmatch(repository) is not None

    def remainder(self, repository: str) -> str:
        """What a prefix destination appends: the path after the literal prefix, or the last component."""
        if not self.is_glob:
            return repository.rsplit("/", 1)[-1]
        prefix = self.literal_prefix
        return repository[len(prefix) + 1 :] if prefix else repository

    def __str__(self) -> str:
        return f"{self.registry}/{self.pattern}"


def _glob_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    for component in pattern.split("/"):
        if component == "**":
            parts.append("[^/]+(?:/[^/]+)*")
        else:
            parts.append("[^/]*".join(re.escape(piece) for piece in component.split("*")))
    return re.compile("/".join(parts))


def is_host_component(component: str) -> bool:
    """Whether the first component of a name is a registry host (docker's rule: ".", ":" or localhost)."""
    return "." in component or ":" in component or component == "localhost"


def split_host(name: str, *, bare_host: bool = False) -> tuple[str, str]:
    """``(host, path)`` of a name as a spec writes it: the first component when it is a host
    (:func:`is_host_component`), else Docker Hub and the whole name. A name without ``/`` is a
    path (docker's rule) unless ``bare_host`` (a registry key or a destination prefix may be a
    host alone). The host is not validated: see :func:`registry_host`."""
    first, sep, rest = name.partition("/")
    if (sep or bare_host) and is_host_component(first):
        return first, rest
    return DEFAULT_DOMAIN, name


def registry_host(text: str) -> str:
    """``text`` validated as a registry host and normalised (``index.docker.io`` -> ``docker.io``).

    Raises :class:`~asyncsync.errors.InvalidReferenceError` naming ``text``.
    """
    try:
        name = parse_reference(f"{text}/x", default_tag=False)
    except InvalidReferenceError:
        name = None
    if name is None or not is_host_component(text) or name.repository not in ("x", "library/x"):
        raise InvalidReferenceError(f"invalid registry host {text!r}")
    return name.registry


def validate_glob(pattern: str) -> str | None:
    """A reason why ``pattern`` is not a usable repository glob, or ``None``."""
    components = pattern.split("/")
    for index, component in enumerate(components):
        if component == "**":
            if index != len(components) - 1:
                return "'**' is only allowed as the last path component"
        elif "**" in component:
            return f"'**' must be a whole path component, not part of {component!r}"
        elif not _GLOB_COMPONENT.match(component):
            return f"invalid repository path component {component!r}"
    return None


#: Destination kinds that are local stores, not registries (planned in :mod:`asyncsync.sync.spec_plan`).
LOCAL_DESTINATIONS = ("dir", "containers-storage")


@dataclass(frozen=True, slots=True)
class Destination:
    """Where an entry's images go.

    * ``repository``: ``registry/path`` exactly;
    * ``prefix``: ``registry/path/<remainder>`` (``path`` may be empty: the registry root);
    * ``skopeo``: skopeo sync's rule: ``path.Join(DEST, suffix) + append-suffix`` where
      ``suffix`` is the source's full ``registry/repo:tag`` with ``scoped``, else its last
      component; ``path`` holds DEST exactly as given.
    * ``dir``: a local directory tree (``to: dir:PATH`` of a native spec): ``path`` is the
      absolute root, ``registry`` is empty, and each image goes to the ``dir:`` directory
      ``skopeo sync --dest dir`` would use (``scoped`` keeps the full reference;
      :mod:`asyncsync.sync.spec_plan`). Its Docker reference is the source's own name.
    * ``containers-storage``: podman's local image store (``to: containers-storage:[SPEC]`` of a
      native spec): ``path`` is the storage specifier as written (``""``: podman's default store),
      ``registry`` is empty, and each image keeps the source's own name, as ``podman pull`` names it.
    """

    kind: Literal["repository", "prefix", "skopeo", "dir", "containers-storage"]
    registry: str
    path: str
    scoped: bool = False

    def __str__(self) -> str:
        if self.kind == "skopeo":
            return self.path
        if self.kind == "dir":
            return f"dir:{self.path}"
        if self.kind == "containers-storage":
            return f"containers-storage:{self.path}"
        if self.kind == "prefix":
            return f"{self.registry}/{self.path}/" if self.path else f"{self.registry}/"
        return f"{self.registry}/{self.path}"


@dataclass(frozen=True, slots=True)
class SyncEntry:
    """One unit of a spec: sources, destination rule, tag filter and copy settings.

    ``source_dir`` (``from: dir:PATH`` of a native spec) is the absolute root of a local
    directory tree whose every image is copied; ``sources`` is then empty and ``destination``
    a registry prefix. ``scoped`` selects skopeo's scoped naming on the ``dir:`` side.
    ``source_storage`` (``from: containers-storage:[SPEC]REPO`` of a native spec, or ``sync --src
    containers-storage``) is the storage specifier (``""``: podman's default store) whose named
    images ``sources`` select, instead of a registry's.
    """

    origin: Origin
    sources: tuple[SourceSelector, ...]
    destination: Destination
    tags: TagFilter
    settings: CopySettings
    tag_suffix: str = ""
    source_dir: str | None = None
    scoped: bool = False
    source_storage: str | None = None

    @property
    def is_local(self) -> bool:
        """Whether a side of this entry is a local store: a directory tree or containers-storage
        (see :mod:`asyncsync.sync.spec_plan`)."""
        return (
            self.source_dir is not None
            or self.source_storage is not None
            or self.destination.kind in LOCAL_DESTINATIONS
        )

    def destination_for(
        self, selector: SourceSelector, repository: str, *, tag: str | None, digest: Digest | None
    ) -> ImageName:
        """The destination of ``selector.registry/repository`` at ``tag`` (or ``digest``).

        Raises :class:`~asyncsync.errors.InvalidReferenceError` when the result is not a valid name.
        """
        dest = self.destination
        if tag is None and digest is None:
            raise InvalidReferenceError("a destination needs a tag or a digest")
        if dest.kind in LOCAL_DESTINATIONS:
            # The reference a local image keeps is the source's (a dir: directory is named from it).
            return ImageName(selector.registry, repository, tag, None if tag is not None else digest)
        if dest.kind == "skopeo":
            suffix = f"{selector.registry}/{repository}" + (f":{tag}" if tag is not None else f"@{digest}")
            if not dest.scoped:
                suffix = posixpath.basename(suffix)
            joined = posixpath.normpath(posixpath.join(dest.path, suffix)).lstrip("/")
            name = parse_reference(joined + self.tag_suffix, default_tag=False)
            if name.tag is None and name.digest is None:  # pragma: no cover - suffix always has one
                raise InvalidReferenceError(f"invalid destination {joined!r}")
            return name
        if dest.kind == "prefix":
            path = (
                f"{dest.path}/{selector.remainder(repository)}"
                if dest.path
                else selector.remainder(repository)
            )
        else:
            path = dest.path
        base = parse_reference(f"{dest.registry}/{path}", default_tag=False)
        if base.registry != dest.registry:
            raise InvalidReferenceError(f"invalid destination repository {path!r} in {dest.registry}")
        if tag is not None:
            return base.with_tag(validate_tag(tag + self.tag_suffix, context=base.name))
        assert digest is not None
        return base.with_digest(digest)


@dataclass(frozen=True, slots=True)
class SyncSpec:
    """A validated spec. ``entries`` are in file order; ``warnings`` are ``file:line: message`` lines."""

    file: str
    kind: SpecKind
    entries: tuple[SyncEntry, ...]
    registries: tuple[RegistryConfig, ...] = ()
    defaults: RunDefaults = field(default_factory=RunDefaults)
    warnings: tuple[str, ...] = ()

    @classmethod
    def checked(
        cls,
        file: str,
        kind: SpecKind,
        entries: tuple[SyncEntry, ...],
        *,
        registries: tuple[RegistryConfig, ...] = (),
        defaults: RunDefaults | None = None,
        warnings: tuple[str, ...] = (),
    ) -> SyncSpec:
        """The spec of a parsed file, once no two explicit sources write one destination
        (:func:`check_explicit_destinations`, a ``file:line`` error); every format's parser
        ends here."""
        check_explicit_destinations(entries)
        return cls(file, kind, entries, registries, defaults or RunDefaults(), warnings)

    @property
    def has_local_entries(self) -> bool:
        """Whether an entry reads or writes a local directory tree (see :attr:`SyncEntry.is_local`)."""
        return any(entry.is_local for entry in self.entries)

    def registry(self, host: str) -> RegistryConfig | None:
        for config in self.registries:
            if config.host == host:
                return config
        return None


def check_explicit_destinations(entries: tuple[SyncEntry, ...]) -> None:
    """Refuse two explicit references written to the same destination by different sources.

    Only explicit tags/digests of plain repositories are known before listing; the plan
    checks the rest. The same source copied twice with the same settings is not a conflict.
    """
    seen: dict[str, tuple[str, CopySettings, int]] = {}
    for entry in entries:
        if entry.is_local:
            continue  # directories are named at planning; the local planner finds their collisions
        for selector in entry.sources:
            if selector.is_glob:
                continue
            refs: list[tuple[str | None, Digest | None, int]] = [
                (t, None, line) for t, line in entry.tags.tags
            ]
            refs += [(None, d, line) for d, line in entry.tags.digests]
            for tag, digest, line in refs:
                origin = Origin(entry.origin.file, line)
                try:
                    target = entry.destination_for(selector, selector.pattern, tag=tag, digest=digest)
                except InvalidReferenceError as exc:
                    raise origin.error(f"invalid destination for {selector}: {exc}") from None
                source = f"{selector}:{tag}" if tag is not None else f"{selector}@{digest}"
                previous = seen.get(str(target))
                if previous is None:
                    seen[str(target)] = (source, entry.settings, line)
                elif previous[:2] != (source, entry.settings):
                    raise origin.error(
                        f"destination {target} is also written by line {previous[2]} "
                        f"(from {previous[0]}; here from {source})"
                    )
