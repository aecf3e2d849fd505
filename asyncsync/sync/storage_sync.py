"""``sync --src containers-storage`` and ``sync --dest containers-storage``: podman's store on the
command line (skopeo's sync has no such side; asyncsync's native spec has both, and this module
turns the command line into the same spec entries).

* ``sync --src containers-storage --dest docker [containers-storage:][[SPEC]]REPO[:TAG] DEST``:
  every tag of REPO in the store (or the one tag) to DEST, named as ``--src docker`` names images
  (``DEST/<last component>:tag``, ``--scoped`` keeps the full name, ``--append-suffix``); planned by
  :func:`~asyncsync.sync.storage_source.plan_storage_source`.
* ``sync --src docker|yaml --dest containers-storage SOURCE [[containers-storage:][SPEC]]``: the
  images SOURCE selects into the store (podman's default one without a specifier), each under its
  source name (``registry/repo:tag``, as ``podman pull`` names it), this host's platform unless
  ``--all``/``--multi-arch`` says otherwise; planned as a ``to: containers-storage:`` entry.

Either way the run is planned by :func:`~asyncsync.sync.spec_plan.build_plan`, as a native spec
with such entries is.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from asyncsync.errors import UsageError
from asyncsync.specs.model import Destination
from asyncsync.specs.skopeo import docker_source_spec
from asyncsync.sync.local import LocalSync, SyncArguments, source_named_spec
from asyncsync.sync.spec_plan import build_plan
from asyncsync.transports.containers_storage.reference import parse_storage_reference

STORAGE: Final = "containers-storage"
_PREFIX = f"{STORAGE}:"


def split_storage_source(text: str) -> tuple[str, str]:
    """``[containers-storage:][[SPEC]]NAME`` -> (``"[SPEC]"`` or ``""``, ``NAME``); a specifier that
    does not parse raises :class:`~asyncsync.errors.InvalidReferenceError`."""
    rest = text.removeprefix(_PREFIX)
    spec = ""
    if rest.startswith("["):
        close = rest.find("]")
        spec, rest = (rest[: close + 1], rest[close + 1 :]) if close > 0 else (rest, "")
    parse_storage_reference(f"{spec}{rest or 'localhost/check:1'}")
    return spec, rest


def _store(destination: str | None) -> str:
    """The specifier of ``--dest containers-storage``'s DESTINATION (``""``: the default store)."""
    spec, rest = split_storage_source(destination or "")
    if rest:
        raise UsageError(
            f"{destination}: --dest containers-storage takes at most a storage specifier "
            "([driver@graphroot+runroot:options]); images keep their source names"
        )
    return spec


def storage_sync(args: SyncArguments) -> LocalSync | None:
    """The run for ``args`` when a side is containers-storage; ``None`` when neither is.
    :class:`UsageError` for a combination that is not supported (containers-storage with ``dir``
    or with itself, ``--prune``/``--create-projects``, naming flags on the store side) or a
    missing argument."""
    src, dest, source, destination = args.src, args.dest, args.source, args.destination
    scoped, append_suffix, settings = args.scoped, args.append_suffix, args.settings
    if STORAGE not in (src, dest):
        return None
    if src == dest or "dir" in (src, dest):
        raise UsageError(
            f"sync from {src!r} to {dest!r} is not supported: containers-storage syncs with 'docker'"
        )
    if args.prune or args.create_projects:
        flag = "--prune" if args.prune else "--create-projects"
        raise UsageError(f"{flag} needs registries on both sides; it cannot be used with containers-storage")
    if src == STORAGE:
        if dest != "docker":
            raise UsageError(
                f"--dest {dest or '(missing)'}: a containers-storage source syncs to 'docker' only"
            )
        if destination is None:
            raise UsageError("missing DESTINATION argument (a registry host, optionally with a path prefix)")
        spec_text, name = split_storage_source(source)
        if not name:
            raise UsageError(f"{source}: name a repository (REPO or REPO:TAG) in the store")
        if "@" in name:
            raise UsageError(f"{source}: containers-storage keeps images by name: give REPO or REPO:TAG")
        spec = docker_source_spec(
            name, destination, scoped=scoped, append_suffix=append_suffix, settings=settings
        )
        entries = tuple(replace(entry, source_storage=spec_text) for entry in spec.entries)
        return LocalSync(replace(spec, entries=entries), build_plan)
    if scoped or append_suffix:
        flag = "--scoped" if scoped else "--append-suffix"
        raise UsageError(
            f"{flag} cannot be used with --dest containers-storage (images keep their source names)"
        )
    store = Destination(kind=STORAGE, registry="", path=_store(destination))
    spec = source_named_spec(args, "yaml, docker, dir or containers-storage")
    spec = replace(spec, entries=tuple(replace(entry, destination=store) for entry in spec.entries))
    return LocalSync(spec, build_plan)
