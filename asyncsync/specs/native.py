"""The native asyncsync spec (``version: 1``).

The format (``asyncsync sync SPEC.yaml``)::

    version: 1                      # required; the only version so far
    defaults:                       # all optional
      parallel: 8                   # images in flight
      parallel-blobs: 16            # blobs in flight, run-wide
      retry-times: 3                # retries after the first attempt
      retry-delay: 2s               # fixed wait between retries (Go duration or seconds; units.py)
      tls-verify: true              # default for every registry
      max-concurrent-requests: 16   # per registry host
      requests-per-second: 50       # per registry host
      chunk-size: 16MiB             # upload chunk size (64MiB, 1GB, 512k or bytes; units.py)
      multi-arch: all               # all | system | index-only   (default all)
      platforms: [linux/amd64]      # or "all"; a list implies multi-arch all
      format: oci                   # oci | v2s2; default: keep the source's format
      skip-existing: false          # treat destination tags as immutable
      attachments: true             # signatures, SBOMs, referrers follow their images
      attachment-types: [sbom]      # only these kinds or artifact types (default: all)
    registries:                     # per host; keys as in defaults where they make sense
      harbor-a.example:
        type: harbor                # optional: Harbor API discovery, project creation, mounts
        create-projects: true       # Harbor only: create missing destination projects
        credentials: {username: robot$sync, password-env: HARBOR_A_PASSWORD}
        # or password: ..., or password-file: secrets/a.txt (relative to this file)
        authfile: auth.json         # instead of credentials; no-creds: true for anonymous
        tls-verify: true
        cert-dir: certs/harbor-a
        max-concurrent-requests: 8
        requests-per-second: 20
        chunk-size: 8MiB
    sync:                           # entries, copied in this order
      - from: harbor-a.example/proj/*     # a repository, a glob, or a list of them
        to: harbor-b.example/newproj/     # prefix (ends in "/" or "/*") or one repository
        tags:                             # optional; default every tag
          include: '^v?\\d+\\.'           # regex (RE2, unanchored) or a list of tags
          exclude: '-rc'                  # regex
          semver: '>=1.2 <2'              # version range (skopeo's images-by-semver syntax)
          latest: 5                       # the 5 highest versions left after the filters
          digests: [sha256:...]           # also copy these manifests by digest
        platforms: [linux/amd64, linux/arm64]
        multi-arch: all
        format: oci
        skip-existing: true
        tag-suffix: -mirror               # appended to destination tags
      - from: harbor-a.example/proj/*     # registry -> skopeo's directory tree (air gap)
        to: dir:/media/usb                # one dir: image per tag: /media/usb/app:v1
        scoped: true                      # optional: /media/usb/harbor-a.example/proj/app:v1
      - from: dir:/media/usb              # directory tree -> registry: every image in it
        to: harbor-b.example/imported/    # a prefix; tag filters apply to the images' tags

Source globs: ``*`` matches within one path component, a final ``**`` matches one or more
components (``proj/**`` = every repository under ``proj`` at any depth); globs need the
registry's ``/v2/_catalog``. Destinations: with a prefix ``to``, a glob source keeps the path
after its literal part (``proj/*`` -> ``newproj/<name>``), a plain repository keeps its last
component; an exact ``to`` needs exactly one plain source repository. ``dir:PATH`` (relative to the
spec's directory) on one side of an entry reads or writes a local tree as ``skopeo sync``
does; such entries are planned by :mod:`asyncsync.sync.spec_plan`.


Secrets stay out of the file: ``password-env`` names an environment variable and
``password-file`` a file (relative paths are relative to the spec's directory; one trailing
newline is dropped). Both are read at load time so a missing secret is a ``file:line`` error
before any network call; the values live only in :class:`~asyncsync.registry.credentials.Credentials`,
whose ``repr`` hides them.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from asyncsync.digest import Digest
from asyncsync.errors import InvalidReferenceError, SpecError
from asyncsync.manifest import Platform
from asyncsync.reference import parse_repository
from asyncsync.registry.credentials import Credentials
from asyncsync.specs.filters import TagFilter
from asyncsync.specs.model import (
    FORMAT_VALUES,
    LOCAL_DESTINATIONS,
    MULTI_ARCH_VALUES,
    REGISTRY_KINDS,
    CopySettings,
    Destination,
    Origin,
    RegistryConfig,
    RunDefaults,
    SourceSelector,
    SyncEntry,
    SyncSpec,
    registry_host,
    split_host,
    validate_glob,
)
from asyncsync.specs.tag_keys import reference_list, tag_regex, version_range
from asyncsync.specs.yaml_lines import Doc, YMap, YNode, YScalar, YSeq
from asyncsync.units import parse_duration, parse_size

SUPPORTED_VERSIONS = (1,)
TOP_KEYS = ("version", "defaults", "registries", "sync")
SETTING_KEYS = ("platforms", "multi-arch", "format", "skip-existing", "attachments", "attachment-types")
LIMIT_KEYS = ("tls-verify", "max-concurrent-requests", "requests-per-second", "chunk-size")
DEFAULT_KEYS = (
    "parallel",
    "parallel-blobs",
    "retry-times",
    "retry-delay",
    "pull-quota-reserve",
    *LIMIT_KEYS,
    *SETTING_KEYS,
)
REGISTRY_KEYS = ("type", "create-projects", "credentials", "authfile", "no-creds", "cert-dir", *LIMIT_KEYS)
CREDENTIAL_KEYS = ("username", "password", "password-env", "password-file")
ENTRY_KEYS = ("from", "to", "tags", "tag-suffix", "scoped", *SETTING_KEYS)
#: The prefix of a local directory tree on either side of an entry (skopeo's ``dir:`` transport).
DIR_PREFIX = "dir:"
#: The prefix of podman's local image store as a destination (skopeo's ``containers-storage:``).
STORAGE_PREFIX = "containers-storage:"
TAG_KEYS = ("include", "exclude", "semver", "latest", "digests")

_PLATFORM = re.compile(r"^([a-z0-9_]+)/([a-z0-9_]+)(?:/([a-z0-9_]+))?$")
_TAG_SUFFIX = re.compile(r"^[\w.-]{1,127}$", re.ASCII)
MAX_CHUNK_SIZE = 1 << 30
T = TypeVar("T", bound=str)


class _NativeParser:
    def __init__(self, file: str, base_dir: Path) -> None:
        self.doc = Doc(file)
        self.file = file
        self.base_dir = base_dir
        #: Hosts declared ``type: harbor`` (registries are parsed before entries).
        self.harbor_hosts: set[str] = set()

    # -- scalars -------------------------------------------------------------------------------

    def duration(self, node: YNode, what: str) -> float:
        """Seconds: a YAML number, or a string in :mod:`asyncsync.units`' duration grammar."""
        if (
            isinstance(node, YScalar)
            and isinstance(node.value, int | float)
            and not isinstance(node.value, bool)
        ):
            return self.doc.number(node, what, positive=False)
        try:
            return parse_duration(self.doc.string(node, what))
        except ValueError as exc:
            raise self.doc.error(node.line, f"{what}: {exc}") from None

    def size(self, node: YNode, what: str) -> int:
        """An upload chunk size in bytes: a YAML integer, or a string in :mod:`asyncsync.units`'
        size grammar; between 1KiB and 1GiB."""
        if isinstance(node, YScalar) and isinstance(node.value, int) and not isinstance(node.value, bool):
            value = self.doc.integer(node, what, minimum=1)
        else:
            try:
                value = parse_size(self.doc.string(node, what))
            except ValueError as exc:
                raise self.doc.error(node.line, f"{what}: {exc}") from None
        if not 1024 <= value <= MAX_CHUNK_SIZE:
            raise self.doc.error(node.line, f"{what} must be between 1KiB and 1GiB")
        return value

    def choice(self, node: YNode, what: str, values: tuple[T, ...]) -> T:
        """A string that must be one of ``values`` (an error names them)."""
        value = self.doc.string(node, what)
        for allowed in values:
            if value == allowed:
                return allowed
        raise self.doc.error(node.line, f"{what} must be one of {', '.join(values)}")

    def path(self, node: YNode, what: str) -> Path:
        path = Path(os.path.expanduser(self.doc.string(node, what)))
        return path if path.is_absolute() else self.base_dir / path

    # -- settings ------------------------------------------------------------------------------

    def settings(self, block: YMap, base: CopySettings, where: str) -> CopySettings:
        doc = self.doc
        settings = base
        multi = block.get("multi-arch")
        if multi is not None:
            chosen = self.choice(multi.value, f"'multi-arch' of {where}", MULTI_ARCH_VALUES)
            settings = replace(
                settings, multi_arch=chosen, platforms=() if chosen != "all" else settings.platforms
            )
        platforms = block.get("platforms")
        if platforms is not None:
            if isinstance(platforms.value, YScalar) and platforms.value.text == "all":
                settings = replace(settings, platforms=(), multi_arch="all")
            else:
                parsed = tuple(
                    self.platform(text, line, where)
                    for text, line in doc.strings(platforms.value, f"'platforms' of {where}")
                )
                if not parsed:
                    raise doc.error(
                        platforms.value.line, f"'platforms' of {where} must not be empty (use 'all')"
                    )
                if multi is not None and settings.multi_arch != "all":
                    raise doc.error(multi.value.line, f"a 'platforms' list needs multi-arch 'all' in {where}")
                settings = replace(settings, platforms=parsed, multi_arch="all")
        fmt = block.get("format")
        if fmt is not None:
            settings = replace(settings, format=self.choice(fmt.value, f"'format' of {where}", FORMAT_VALUES))
        skip = block.get("skip-existing")
        if skip is not None:
            settings = replace(settings, skip_existing=doc.boolean(skip.value, f"'skip-existing' of {where}"))
        attachments = block.get("attachments")
        if attachments is not None:
            enabled = doc.boolean(attachments.value, f"'attachments' of {where}")
            settings = replace(settings, attachments=enabled)
        types = block.get("attachment-types")
        if types is not None:
            listed = tuple(text for text, _ in doc.strings(types.value, f"'attachment-types' of {where}"))
            if not listed or any(not text.strip() for text in listed):
                raise doc.error(types.value.line, f"'attachment-types' of {where} must list type names")
            settings = replace(settings, attachment_types=listed)
        return settings

    def platform(self, text: str, line: int, where: str) -> Platform:
        match = _PLATFORM.match(text)
        if match is None:
            raise self.doc.error(line, f"invalid platform {text!r} in {where} (expected os/arch[/variant])")
        return Platform(os=match.group(1), architecture=match.group(2), variant=match.group(3))

    def defaults(self, node: YNode) -> RunDefaults:
        doc = self.doc
        where = "'defaults'"
        block = doc.mapping(node, where, DEFAULT_KEYS)
        ints: dict[str, int] = {}
        for key, minimum in (
            ("parallel", 1),
            ("parallel-blobs", 1),
            ("retry-times", 0),
            ("max-concurrent-requests", 1),
            ("pull-quota-reserve", 0),
        ):
            if (item := block.get(key)) is not None:
                ints[key] = doc.integer(item.value, f"{key!r} of {where}", minimum=minimum)
        delay = rate = chunk = tls = None
        if (item := block.get("retry-delay")) is not None:
            delay = self.duration(item.value, f"'retry-delay' of {where}")
        if (item := block.get("requests-per-second")) is not None:
            rate = doc.number(item.value, f"'requests-per-second' of {where}")
        if (item := block.get("chunk-size")) is not None:
            chunk = self.size(item.value, f"'chunk-size' of {where}")
        if (item := block.get("tls-verify")) is not None:
            tls = doc.boolean(item.value, f"'tls-verify' of {where}")
        return RunDefaults(
            parallel=ints.get("parallel"),
            parallel_blobs=ints.get("parallel-blobs"),
            retry_times=ints.get("retry-times"),
            retry_delay=delay,
            tls_verify=tls,
            max_concurrent_requests=ints.get("max-concurrent-requests"),
            requests_per_second=rate,
            chunk_size=chunk,
            pull_quota_reserve=ints.get("pull-quota-reserve"),
            settings=self.settings(block, CopySettings(multi_arch="all"), where),
        )

    # -- registries ----------------------------------------------------------------------------

    def registry(self, host: str, line: int, node: YNode) -> RegistryConfig:
        doc = self.doc
        where = f"registry {host!r}"
        try:
            parsed = registry_host(host)
        except InvalidReferenceError as exc:
            raise doc.error(line, f"{exc} (expected e.g. registry.example.com)") from None
        block = doc.mapping(node, where, REGISTRY_KEYS)
        config = RegistryConfig(host=parsed, origin=Origin(self.file, line))
        if (item := block.get("type")) is not None:
            config = replace(config, kind=self.choice(item.value, f"'type' of {where}", REGISTRY_KINDS))
        if (item := block.get("create-projects")) is not None:
            create = doc.boolean(item.value, f"'create-projects' of {where}")
            if create and config.kind != "harbor":
                raise doc.error(
                    item.key_line,
                    f"'create-projects' of {where} needs 'type: harbor' (only Harbor has projects to create)",
                )
            config = replace(config, create_projects=create)
        if (item := block.get("credentials")) is not None:
            config = replace(config, credentials=self.credentials(item.value, where))
        if (item := block.get("no-creds")) is not None and doc.boolean(item.value, f"'no-creds' of {where}"):
            if config.credentials is not None:
                raise doc.error(item.key_line, f"'no-creds' and 'credentials' conflict in {where}")
            config = replace(config, no_creds=True)
        if (item := block.get("authfile")) is not None:
            if config.credentials is not None or config.no_creds:
                raise doc.error(
                    item.key_line, f"'authfile' conflicts with 'credentials'/'no-creds' in {where}"
                )
            authfile = self.path(item.value, f"'authfile' of {where}")
            if not authfile.is_file():
                raise doc.error(item.value.line, f"authfile {str(authfile)!r} of {where} does not exist")
            config = replace(config, authfile=str(authfile))
        if (item := block.get("cert-dir")) is not None:
            cert_dir = self.path(item.value, f"'cert-dir' of {where}")
            if not cert_dir.is_dir():
                raise doc.error(item.value.line, f"cert-dir {str(cert_dir)!r} of {where} is not a directory")
            config = replace(config, cert_dir=str(cert_dir))
        if (item := block.get("tls-verify")) is not None:
            config = replace(config, tls_verify=doc.boolean(item.value, f"'tls-verify' of {where}"))
        if (item := block.get("max-concurrent-requests")) is not None:
            limit = doc.integer(item.value, f"'max-concurrent-requests' of {where}", minimum=1)
            config = replace(config, max_concurrent_requests=limit)
        if (item := block.get("requests-per-second")) is not None:
            rate = doc.number(item.value, f"'requests-per-second' of {where}")
            config = replace(config, requests_per_second=rate)
        if (item := block.get("chunk-size")) is not None:
            config = replace(config, chunk_size=self.size(item.value, f"'chunk-size' of {where}"))
        return config

    def credentials(self, node: YNode, where: str) -> Credentials:
        doc = self.doc
        what = f"'credentials' of {where}"
        block = doc.mapping(node, what, CREDENTIAL_KEYS)
        user = block.get("username")
        if user is None:
            raise doc.error(block.line, f"{what} need a 'username'")
        username = doc.string(user.value, f"'username' of {where}")
        sources = [e for e in block if e.key != "username"]
        if len(sources) != 1:
            line = sources[1].key_line if len(sources) > 1 else block.line
            raise doc.error(line, f"{what} need exactly one of 'password', 'password-env', 'password-file'")
        source = sources[0]
        if source.key == "password":
            password = doc.string(source.value, f"'password' of {where}")
        elif source.key == "password-env":
            name = doc.string(source.value, f"'password-env' of {where}")
            env = os.environ.get(name)
            if not env:
                raise doc.error(
                    source.value.line, f"environment variable {name} (password of {where}) is not set"
                )
            password = env
        else:
            path = self.path(source.value, f"'password-file' of {where}")
            try:
                password = path.read_text(encoding="utf-8").removesuffix("\n").removesuffix("\r")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise doc.error(
                    source.value.line, f"cannot read password file {str(path)!r}: {reason}"
                ) from None
            if not password:
                raise doc.error(source.value.line, f"password file {str(path)!r} is empty")
        return Credentials(username=username, password=password)

    # -- entries -------------------------------------------------------------------------------

    def source(self, text: str, line: int, where: str) -> SourceSelector:
        last = text.rsplit("/", 1)[-1]
        if "@" in text or (":" in last and "/" in text) or (":" in text and "/" not in text):
            raise self.doc.error(
                line, f"'from' of {where} names repositories; put tags under 'tags' ({text!r})"
            )
        host, path = split_host(text)
        if "*" in path:
            reason = validate_glob(path)
            if reason is not None:
                raise self.doc.error(line, f"invalid source glob {text!r} in {where}: {reason}")
            try:
                host = registry_host(host)
            except InvalidReferenceError as exc:
                raise self.doc.error(line, f"invalid source {text!r} in {where}: {exc}") from None
            return SourceSelector(host, path, line)
        try:
            name = parse_repository(text)
        except InvalidReferenceError as exc:
            raise self.doc.error(line, f"invalid source {text!r} in {where}: {exc}") from None
        return SourceSelector(name.registry, name.repository, line)

    def destination(
        self, text: str, line: int, where: str, sources: tuple[SourceSelector, ...]
    ) -> Destination:
        is_prefix = text.endswith(("/", "/*"))
        stripped = text.removesuffix("*").rstrip("/")
        if "*" in stripped or "@" in text:
            raise self.doc.error(
                line, f"'to' of {where} must be a repository or a prefix ending in '/', not {text!r}"
            )
        if is_prefix:
            # A prefix is kept literally (no "library/" for Docker Hub); only its syntax is checked.
            host, path = split_host(stripped, bare_host=True)
            try:
                registry = parse_repository(f"{host}/{path}").registry if path else registry_host(host)
            except InvalidReferenceError as exc:
                raise self.doc.error(line, f"invalid destination {text!r} in {where}: {exc}") from None
            return Destination(kind="prefix", registry=registry, path=path)
        try:
            name = parse_repository(stripped)
        except InvalidReferenceError as exc:
            raise self.doc.error(line, f"invalid destination {text!r} in {where}: {exc}") from None
        if len(sources) != 1 or sources[0].is_glob:
            raise self.doc.error(
                line,
                f"'to' of {where} names one repository but 'from' can match several; "
                "end it with '/' to put each repository under it",
            )
        return Destination(kind="repository", registry=name.registry, path=name.repository)

    def tags(self, node: YNode, where: str) -> TagFilter:
        doc = self.doc
        what = f"'tags' of {where}"
        if isinstance(node, YScalar) and node.is_null:
            return TagFilter()
        if isinstance(node, YSeq):
            return self.explicit(node, what)
        block = doc.mapping(node, f"{what} (a list of tags or a mapping)", TAG_KEYS)
        result = TagFilter()
        include = block.get("include")
        if include is not None and isinstance(include.value, YSeq):
            result = self.explicit(include.value, f"'include' of {where}")
            for key in ("exclude", "semver", "latest"):
                if (clash := block.get(key)) is not None:
                    raise doc.error(
                        clash.key_line, f"{key!r} cannot be combined with a list of tags in {what}"
                    )
        elif include is not None:
            result = replace(result, include=tag_regex(doc, include.value, f"'include' of {where}"))
        if (item := block.get("exclude")) is not None:
            result = replace(result, exclude=tag_regex(doc, item.value, f"'exclude' of {where}"))
        if (item := block.get("semver")) is not None:
            semver = version_range(doc, item.value, f"'semver' of {where}", within=what)
            result = replace(result, semver=semver)
        if (item := block.get("latest")) is not None:
            result = replace(result, latest=doc.integer(item.value, f"'latest' of {where}", minimum=1))
        if (item := block.get("digests")) is not None:
            digests = list(result.digests)
            for text, line in doc.strings(item.value, f"'digests' of {where}"):
                try:
                    digests.append((Digest.parse(text), line))
                except InvalidReferenceError as exc:
                    raise doc.error(line, f"{exc} in {what}") from None
            result = replace(result, digests=tuple(digests))
        return result

    def explicit(self, node: YSeq, what: str) -> TagFilter:
        found = reference_list(self.doc, node, what)
        if not found.tags and not found.digests:
            raise self.doc.error(node.line, f"{what} is an empty list (leave 'tags' out to copy every tag)")
        return found

    def storage(self, text: str, line: int, where: str, source_dir: str | None) -> Destination:
        """``to: containers-storage:[SPEC]``: images keep their source names, so only a storage
        specifier may follow (checked in full when planning, where the transport is known)."""
        spec = text[len(STORAGE_PREFIX) :]
        if source_dir is not None:
            raise self.doc.error(line, f"{where} cannot copy a directory tree into containers-storage")
        if spec and not (spec.startswith("[") and spec.endswith("]")):
            raise self.doc.error(
                line,
                f"'to' of {where} must be containers-storage: or containers-storage:[STORAGE-SPECIFIER] "
                f"(images keep their source names), not {text!r}",
            )
        return Destination(kind="containers-storage", registry="", path=spec)

    def storage_sources(
        self, items: list[tuple[str, int]], to_line: int, to_text: str, where: str
    ) -> tuple[str, tuple[SourceSelector, ...]]:
        """``from: containers-storage:[SPEC]REPO`` (one value or a list, one store): the storage
        specifier (``""``: podman's default store, checked in full when planning) and the
        repositories (globs allowed) whose named images in that store are copied to a registry."""
        specs: set[str] = set()
        sources: list[SourceSelector] = []
        for text, line in items:
            if not text.startswith(STORAGE_PREFIX):
                raise self.doc.error(line, f"'from' of {where} mixes containers-storage: with other sources")
            rest = text[len(STORAGE_PREFIX) :]
            spec = ""
            if rest.startswith("["):
                close = rest.find("]")
                if close < 0:
                    raise self.doc.error(line, f"the storage specifier of {text!r} does not end with ']'")
                spec, rest = rest[: close + 1], rest[close + 1 :]
            if not rest:
                raise self.doc.error(
                    line,
                    f"'from' of {where} must name repositories: containers-storage:[SPEC]REPO ({text!r})",
                )
            specs.add(spec)
            sources.append(self.source(rest, line, where))
        if len(specs) > 1:
            raise self.doc.error(
                items[0][1], f"'from' of {where} names more than one containers-storage store"
            )
        if to_text.startswith((DIR_PREFIX, STORAGE_PREFIX)):
            raise self.doc.error(to_line, f"{where} copies from containers-storage to a registry only")
        return specs.pop(), tuple(sources)

    def local_dir(self, text: str, line: int, what: str) -> str:
        """The absolute directory of a ``dir:PATH`` value (relative to the spec's directory)."""
        raw = text[len(DIR_PREFIX) :]
        if not raw.strip():
            raise self.doc.error(line, f"{what} names no directory after 'dir:'")
        path = Path(os.path.expanduser(raw))
        return os.path.abspath(path if path.is_absolute() else self.base_dir / path)

    def entry(self, node: YNode, index: int, defaults: CopySettings) -> SyncEntry:
        doc = self.doc
        where = f"sync entry {index}"
        block = doc.mapping(node, where, ENTRY_KEYS)
        from_node = block.value("from")
        to_node = block.value("to")
        if from_node is None or to_node is None:
            missing = "from" if from_node is None else "to"
            raise doc.error(block.line, f"{where} needs a {missing!r} key")
        if isinstance(from_node, YSeq):
            items = doc.strings(from_node, f"'from' of {where}")
            if not items:
                raise doc.error(from_node.line, f"'from' of {where} is an empty list")
        else:
            items = [(doc.string(from_node, f"'from' of {where}"), from_node.line)]
        to_text = doc.string(to_node, f"'to' of {where}")
        source_dir: str | None = None
        source_storage: str | None = None
        local_items = [(text, line) for text, line in items if text.startswith(DIR_PREFIX)]
        if local_items:
            text, line = local_items[0]
            if len(items) > 1:
                raise doc.error(line, f"a 'dir:' source must be the only 'from' value of {where}")
            if to_text.startswith(DIR_PREFIX):
                raise doc.error(
                    to_node.line,
                    f"{where} copies a directory tree to a directory tree, which is not supported "
                    "(as in skopeo): copy the tree itself",
                )
            source_dir = self.local_dir(text, line, f"'from' of {where}")
            sources: tuple[SourceSelector, ...] = ()
        elif any(text.startswith(STORAGE_PREFIX) for text, _ in items):
            source_storage, sources = self.storage_sources(items, to_node.line, to_text, where)
        else:
            sources = tuple(self.source(text, line, where) for text, line in items)
        if to_text.startswith(DIR_PREFIX):
            destination = Destination(
                kind="dir", registry="", path=self.local_dir(to_text, to_node.line, f"'to' of {where}")
            )
        elif to_text.startswith(STORAGE_PREFIX):
            destination = self.storage(to_text, to_node.line, where, source_dir)
        elif source_dir is not None and not to_text.endswith(("/", "/*")):
            raise doc.error(
                to_node.line,
                f"'to' of {where} must be a registry prefix ending in '/' "
                f"(every image of the directory tree goes below it), not {to_text!r}",
            )
        else:
            destination = self.destination(to_text, to_node.line, where, sources)
        tags_node = block.value("tags")
        tags = self.tags(tags_node, where) if tags_node is not None else TagFilter()
        is_local = source_dir is not None or destination.kind in LOCAL_DESTINATIONS
        local_side = "containers-storage:" if destination.kind == "containers-storage" else "'dir:'"
        scoped = False
        if (item := block.get("scoped")) is not None:
            scoped = doc.boolean(item.value, f"'scoped' of {where}")
            if not is_local:
                raise doc.error(
                    item.key_line, f"'scoped' of {where} needs a 'dir:' side (it names directories)"
                )
        suffix = ""
        if (item := block.get("tag-suffix")) is not None:
            suffix = doc.string(item.value, f"'tag-suffix' of {where}")
            if is_local:
                raise doc.error(
                    item.key_line, f"'tag-suffix' cannot be used with the {local_side} side of {where}"
                )
            if not _TAG_SUFFIX.match(suffix):
                raise doc.error(
                    item.value.line,
                    f"'tag-suffix' of {where} may only contain letters, digits, '_', '.', '-'",
                )
            if tags.digests:
                raise doc.error(item.key_line, f"'tag-suffix' cannot apply to the digests of {where}")
        if source_dir is not None and tags.digests:
            raise doc.error(
                tags.digests[0][1],
                f"'digests' cannot select images of the directory tree of {where} (use tags)",
            )
        settings = self.settings(block, defaults, where)
        if (
            destination.kind == "containers-storage"
            and block.get("multi-arch") is None
            and block.get("platforms") is None
        ):
            # One image per name there: this host's platform, as podman pull takes it, unless the
            # entry itself asks for something else.
            settings = replace(settings, multi_arch="system", platforms=())
        entry = SyncEntry(
            origin=Origin(self.file, block.line),
            sources=sources,
            destination=destination,
            tags=tags,
            settings=settings,
            tag_suffix=suffix,
            source_dir=source_dir,
            scoped=scoped,
            source_storage=source_storage,
        )
        if destination.kind in LOCAL_DESTINATIONS:
            return entry
        for selector in sources:
            if selector.is_glob:
                continue
            try:
                target = entry.destination_for(selector, selector.pattern, tag="latest", digest=None)
            except InvalidReferenceError as exc:
                raise doc.error(
                    to_node.line, f"invalid destination for {selector} in {where}: {exc}"
                ) from None
            if target.registry in self.harbor_hosts and "/" not in target.repository:
                # Harbor keeps every repository in a project (the first path component).
                raise doc.error(
                    to_node.line,
                    f"destination {target.registry}/{target.repository} of {where} has no project: "
                    "Harbor repositories are PROJECT/NAME",
                )
        return entry


def parse_native(tree: YNode, file: str, *, base_dir: Path) -> SyncSpec:
    """Validate a composed native spec (the caller saw its top-level ``version`` key)."""
    parser = _NativeParser(file, base_dir)
    doc = parser.doc
    top = doc.mapping(tree, "the spec", TOP_KEYS)
    version = top.get("version")
    assert version is not None
    number = doc.integer(version.value, "'version'", minimum=1)
    if number not in SUPPORTED_VERSIONS:
        raise doc.error(
            version.value.line, f"unsupported spec version {number} (this asyncsync reads version 1)"
        )
    defaults_node = top.value("defaults")
    if defaults_node is not None:
        defaults = parser.defaults(defaults_node)
    else:
        defaults = RunDefaults(settings=CopySettings(multi_arch="all"))
    registries: list[RegistryConfig] = []
    if (item := top.get("registries")) is not None:
        seen: dict[str, int] = {}
        for entry in doc.mapping(item.value, "'registries'"):
            config = parser.registry(entry.key, entry.key_line, entry.value)
            if config.host in seen:
                raise doc.error(
                    entry.key_line,
                    f"registry {config.host!r} is configured twice (first at line {seen[config.host]})",
                )
            seen[config.host] = entry.key_line
            registries.append(config)
            if config.kind == "harbor":
                parser.harbor_hosts.add(config.host)
    sync = top.get("sync")
    if sync is None:
        raise SpecError(file, top.line, "the spec has no 'sync' entries")
    items = doc.sequence(sync.value, "'sync'").items
    if not items:
        raise doc.error(sync.value.line, "'sync' lists no entries")
    entries = tuple(parser.entry(node, index, defaults.settings) for index, node in enumerate(items, 1))
    return SyncSpec.checked(file, "native", entries, registries=tuple(registries), defaults=defaults)
