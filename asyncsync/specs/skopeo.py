"""skopeo's sync YAML (``--src yaml``) and ``--src docker`` sources, with skopeo's naming.

The YAML is a mapping of registry -> settings, as skopeo's ``registrySyncConfig``::

    registry.example.com:              # a host, optionally with a path ("quay.io/coreos")
      images:                          # repo -> tags/digests; [] or nothing = every tag
        busybox: []
        redis: ["1.0", "sha256:..."]
      images-by-tag-regex:             # repo -> RE2 regex, unanchored (Go's MatchString)
        nginx: ^1\\.13\\.[12]-alpine-perl$
      images-by-semver:                # repo -> Masterminds semver range
        alpine: ">= 3.12.0"
      credentials: {username: john, password: secret}   # (identitytoken also accepted)
      tls-verify: true                 # absent: keep the command line's --src-tls-verify
      cert-dir: /home/john/certs

Naming, as ``skopeo sync`` (cmd/skopeo/sync.go) does it: the destination of a source
``reg/path/repo:tag`` is ``path.Join(DEST, "repo:tag") + append-suffix``; with ``--scoped``
it is ``path.Join(DEST, "reg/path/repo:tag") + append-suffix`` (the normalised name, so
Docker Hub images get ``docker.io/library/...``). A digest reference keeps its digest and
gets no tag. Each ``images`` repository, each regex and each semver range becomes one
:class:`~asyncsync.specs.model.SyncEntry`, in that order per registry, registries in file order.

Where skopeo only logs and skips (a bad repository name, a bad regex), asyncsync refuses the
spec with ``file:line``; keys skopeo would silently ignore are refused too, with a suggestion.
A destination written by two different explicit sources (e.g. ``a/app:1`` and ``b/app:1``
without ``--scoped``) is an error here, where skopeo would let the second overwrite the first.
"""

from __future__ import annotations

import os

from asyncsync.errors import AsyncSyncError, InvalidReferenceError, SpecError
from asyncsync.reference import ImageName, parse_reference, parse_repository
from asyncsync.registry.credentials import Credentials
from asyncsync.specs.filters import TagFilter
from asyncsync.specs.model import (
    CopySettings,
    Destination,
    Origin,
    RegistryConfig,
    SourceSelector,
    SyncEntry,
    SyncSpec,
    registry_host,
    split_host,
)
from asyncsync.specs.tag_keys import reference_list, tag_regex, version_range
from asyncsync.specs.yaml_lines import Doc, YMap, YNode, YScalar

REGISTRY_KEYS = ("images", "images-by-tag-regex", "images-by-semver", "credentials", "tls-verify", "cert-dir")
CREDENTIAL_KEYS = ("username", "password", "identitytoken")
COMMAND_LINE = "<command line>"


def parse_reference_list(doc: Doc, node: YNode, what: str) -> TagFilter:
    """A list of tags and ``algo:hex`` digests (skopeo tries each as a digest first); null/[] = all."""
    if isinstance(node, YScalar) and node.is_null:
        return TagFilter()
    return reference_list(doc, node, what)


def _destination(destination: str, scoped: bool) -> Destination:
    return Destination(kind="skopeo", registry="", path=destination, scoped=scoped)


def _check_entry(entry: SyncEntry) -> None:
    """Validate the destination names an entry can produce (placeholder tag for listed tags)."""
    selector = entry.sources[0]
    if entry.tag_suffix and entry.tags.digests:
        line = entry.tags.digests[0][1]
        raise entry.origin.error(f"--append-suffix cannot apply to a digest reference (line {line})")
    try:
        entry.destination_for(selector, selector.pattern, tag="latest", digest=None)
    except InvalidReferenceError as exc:
        raise entry.origin.error(f"invalid destination for {selector}: {exc}") from None


class _SkopeoParser:
    def __init__(
        self, file: str, destination: str, scoped: bool, suffix: str, settings: CopySettings
    ) -> None:
        self.doc = Doc(file)
        self.file = file
        self.destination = _destination(destination, scoped)
        self.suffix = suffix
        self.settings = settings
        self.entries: list[SyncEntry] = []
        self.registries: dict[str, RegistryConfig] = {}
        self.warnings: list[str] = []

    def repository(self, registry_key: str, repo: str, line: int) -> ImageName:
        try:
            return parse_repository(f"{registry_key}/{repo}")
        except InvalidReferenceError as exc:
            raise self.doc.error(line, f"{exc} (registry {registry_key!r})") from None

    def add(self, name: ImageName, line: int, tags: TagFilter) -> None:
        selector = SourceSelector(name.registry, name.repository, line)
        entry = SyncEntry(
            origin=Origin(self.file, line),
            sources=(selector,),
            destination=self.destination,
            tags=tags,
            settings=self.settings,
            tag_suffix=self.suffix,
        )
        _check_entry(entry)
        self.entries.append(entry)

    def registry(self, key: str, key_line: int, node: YNode) -> None:
        doc = self.doc
        where = f"registry {key!r}"
        if isinstance(node, YScalar) and node.is_null:
            node = YMap((), node.line)
        config = doc.mapping(node, where, REGISTRY_KEYS)
        try:
            host = registry_host(split_host(key, bare_host=True)[0])
        except InvalidReferenceError as exc:
            raise doc.error(key_line, str(exc)) from None
        before = len(self.entries)
        for name in ("images", "images-by-tag-regex", "images-by-semver"):
            entry = config.get(name)
            if entry is None:
                continue
            if isinstance(entry.value, YScalar) and entry.value.is_null:
                continue
            for repo in doc.mapping(entry.value, f"{name!r} of {where}"):
                image = self.repository(key, repo.key, repo.key_line)
                what = f"{name!r} entry {repo.key!r} of {where}"
                if name == "images":
                    self.add(image, repo.key_line, parse_reference_list(doc, repo.value, what))
                elif name == "images-by-tag-regex":
                    regex = tag_regex(doc, repo.value, what, allow_empty=True)
                    self.add(image, repo.key_line, TagFilter(include=regex))
                else:
                    self.add(image, repo.key_line, TagFilter(semver=version_range(doc, repo.value, what)))
        if len(self.entries) == before:
            self.warnings.append(f"{self.file}:{key_line}: no images specified for {where}")
        self.merge_registry(self.registry_config(host, key, key_line, config))

    def registry_config(self, host: str, key: str, line: int, config: YMap) -> RegistryConfig:
        doc = self.doc
        where = f"registry {key!r}"
        credentials = None
        creds = config.get("credentials")
        if creds is not None and not (isinstance(creds.value, YScalar) and creds.value.is_null):
            values = {
                e.key: doc.string(e.value, f"{e.key!r} of the credentials of {where}", allow_empty=True)
                for e in doc.mapping(creds.value, f"'credentials' of {where}", CREDENTIAL_KEYS)
            }
            found = Credentials(
                values.get("username", ""), values.get("password", ""), values.get("identitytoken", "")
            )
            credentials = found or None
        tls = config.get("tls-verify")
        cert = config.get("cert-dir")
        cert_dir = doc.string(cert.value, f"'cert-dir' of {where}", allow_empty=True) if cert else None
        if cert_dir and not os.path.isdir(cert_dir):
            self.warnings.append(
                f"{self.file}:{cert.value.line if cert else line}: cert-dir {cert_dir!r} is not a directory"
            )
        return RegistryConfig(
            host=host,
            origin=Origin(self.file, line),
            credentials=credentials,
            tls_verify=doc.boolean(tls.value, f"'tls-verify' of {where}") if tls else None,
            cert_dir=cert_dir or None,
        )

    def merge_registry(self, config: RegistryConfig) -> None:
        previous = self.registries.get(config.host)
        if previous is None:
            self.registries[config.host] = config
            return
        same = (previous.credentials, previous.tls_verify, previous.cert_dir) == (
            config.credentials,
            config.tls_verify,
            config.cert_dir,
        )
        if not same:
            raise config.origin.error(
                f"registry host {config.host!r} is configured again with different settings "
                f"(first at line {previous.origin.line})"
            )


def parse_skopeo(
    tree: YNode,
    file: str,
    *,
    destination: str,
    scoped: bool = False,
    append_suffix: str = "",
    settings: CopySettings | None = None,
) -> SyncSpec:
    """Validate a composed skopeo sync YAML document (see the module docstring)."""
    parser = _SkopeoParser(file, destination, scoped, append_suffix, settings or CopySettings())
    top = parser.doc.mapping(tree, "the spec (a mapping of registry names)")
    if not len(top):
        raise SpecError(file, top.line, "the spec lists no registries")
    for item in top:
        parser.registry(item.key, item.key_line, item.value)
    return SyncSpec.checked(
        file,
        "skopeo",
        tuple(parser.entries),
        registries=tuple(parser.registries.values()),
        warnings=tuple(parser.warnings),
    )


def docker_source_spec(
    source: str,
    destination: str,
    *,
    scoped: bool = False,
    append_suffix: str = "",
    settings: CopySettings | None = None,
) -> SyncSpec:
    """The spec for ``sync --src docker SOURCE DEST``: a repository (every tag) or one ``repo:tag``
    / ``repo@digest``, named as skopeo names it. Bad names raise
    :class:`~asyncsync.errors.InvalidReferenceError` (exit code 2)."""
    name = parse_reference(source, default_tag=False)
    if name.tag is not None and name.digest is not None:
        raise InvalidReferenceError(f"{source!r}: give a tag or a digest, not both")
    tags = TagFilter()
    if name.tag is not None:
        tags = TagFilter(tags=((name.tag, 0),))
    elif name.digest is not None:
        tags = TagFilter(digests=((name.digest, 0),))
    entry = SyncEntry(
        origin=Origin(COMMAND_LINE, 0),
        sources=(SourceSelector(name.registry, name.repository, 0),),
        destination=_destination(destination, scoped),
        tags=tags,
        settings=settings or CopySettings(),
        tag_suffix=append_suffix,
    )
    try:
        _check_entry(entry)
    except AsyncSyncError as exc:
        detail = exc.detail if isinstance(exc, SpecError) else str(exc)
        raise InvalidReferenceError(detail) from None
    return SyncSpec(file=COMMAND_LINE, kind="command-line", entries=(entry,))
