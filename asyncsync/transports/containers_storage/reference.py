"""``containers-storage:[[storage-specifier]]{image-id|docker-reference[@digest]}`` references.

Parsed as containers/image's ``storage`` transport parses them (``storage_transport.go``), except
that no store is opened while parsing: a short hexadecimal name that might be a truncated image
ID is resolved when the image is opened (:attr:`StorageReference.maybe_id`).

The storage specifier is ``[driver@graphroot+runroot:options]``; every part but the graph root is
optional (``[graphroot]``, ``[driver@graphroot]``, ``[driver@graphroot+runroot]``,
``[driver@graphroot:opt1,opt2]`` ...), paths must be absolute, and an empty driver or root is
refused. The image part is a name (normalised as Docker names are, ``:latest`` added when it has
neither tag nor digest), optionally followed by ``@digest`` and/or ``@<64-hex image id>``, or an
image ID alone (``@ID``, a full ``ID``, or an unambiguous ID prefix of at least 3 characters).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from asyncsync.digest import Digest
from asyncsync.errors import InvalidReferenceError
from asyncsync.reference import ImageName, parse_reference

if TYPE_CHECKING:
    from asyncsync.transports.base import ImageDestination, ImageSource, TransportContext

TRANSPORT = "containers-storage"
_FULL_ID = re.compile(r"^[a-f0-9]{64}$")
_ID_PREFIX = re.compile(r"^[a-f0-9]{3,64}$")
#: containers/image's ``minimumTruncatedIDLength``.
MIN_ID_PREFIX = 3


@dataclass(frozen=True, slots=True)
class StorageSpecifier:
    """Which store: ``[driver@graphroot+runroot:options]``; ``None``/empty parts use the defaults."""

    graph_root: str
    driver: str | None = None
    run_root: str | None = None
    options: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.driver}@{self.graph_root}" if self.driver else self.graph_root
        if self.run_root:
            text += f"+{self.run_root}"
        if self.options:
            text += ":" + ",".join(self.options)
        return f"[{text}]"

    def podman_flags(self) -> list[str]:
        """podman's global flags that select this store."""
        flags = ["--root", self.graph_root]
        if self.run_root:
            flags += ["--runroot", self.run_root]
        if self.driver:
            flags += ["--storage-driver", self.driver]
        for option in self.options:
            flags += ["--storage-opt", option]
        return flags


@dataclass(frozen=True, slots=True)
class StorageReference:
    """An image in containers-storage: a name and/or an image ID, in the default or a given store.

    ``image_id`` is a full ID (64 hex digits, the config digest's hex); ``id_prefix`` a truncated
    one given after ``@``; ``maybe_id`` marks a bare hexadecimal ``name`` that is an image ID
    prefix if the store has such an image (else it is the name), as containers/image decides.
    """

    specifier: StorageSpecifier | None = None
    name: ImageName | None = None
    image_id: str | None = None
    id_prefix: str | None = None
    maybe_id: str | None = None

    @property
    def transport_name(self) -> str:
        return TRANSPORT

    def within_transport(self) -> str:
        text = str(self.specifier) if self.specifier is not None else ""
        if self.name is not None:
            text += str(self.name)
        if self.image_id is not None:
            text += f"@{self.image_id}"
        elif self.id_prefix is not None:
            text += f"@{self.id_prefix}"
        return text

    def docker_reference(self) -> ImageName | None:
        return self.name

    def __str__(self) -> str:
        return f"{TRANSPORT}:{self.within_transport()}"

    async def new_source(self, ctx: TransportContext) -> ImageSource:
        from asyncsync.transports.containers_storage.source import open_storage_source

        return await open_storage_source(self, ctx)

    async def new_destination(self, ctx: TransportContext) -> ImageDestination:
        from asyncsync.transports.containers_storage.destination import open_storage_destination

        return await open_storage_destination(self, ctx)

    async def delete(self, ctx: TransportContext) -> list[str]:
        from asyncsync.transports.containers_storage.source import delete_storage_image

        return await delete_storage_image(self)


def _invalid(text: str, reason: str) -> InvalidReferenceError:
    return InvalidReferenceError(f"invalid image name {text!r}: {reason}")


def parse_specifier(spec: str, text: str) -> StorageSpecifier:
    """Parse what is between ``[`` and ``]`` as containers/image's ``ParseReference`` does."""
    driver: str | None = None
    rest = spec
    if "@" in spec:
        driver, rest = spec.split("@", 1)
        if not driver:
            raise _invalid(text, f"storage specifier [{spec}]: the driver before '@' is empty")
        if not rest:
            raise _invalid(text, f"storage specifier [{spec}]: no graph root after '{driver}@'")
    elif not spec:
        raise _invalid(text, "storage specifier []: expected [driver@graphroot+runroot:options]")
    rest, colon, options_text = rest.partition(":")
    options = tuple(options_text.split(",")) if colon else ()
    graph_root, _, run_root = rest.partition("+")
    for label, path in (("graph root", graph_root), ("run root", run_root)):
        if path and not path.startswith("/"):
            raise _invalid(text, f"storage specifier [{spec}]: {label} {path!r} is not an absolute path")
    if not graph_root:
        # containers/image would take the configured graph root; podman's --root needs one.
        raise _invalid(text, f"storage specifier [{spec}]: no graph root (expected [driver@/graph/root])")
    return StorageSpecifier(graph_root, driver, run_root or None, options)


def _peel_id(ref: str, text: str) -> tuple[str, str | None, str | None]:
    """Split a trailing ``@ID`` (full or truncated) off ``ref``; a trailing ``@digest`` stays."""
    head, at, tail = ref.rpartition("@")
    if not at:
        return ref, None, None
    if not tail:
        raise _invalid(text, "empty trailing digest or ID")
    algorithm, colon, _ = tail.partition(":")
    if colon and algorithm:
        Digest.parse(tail)  # a digest: validated here, kept in the name
        return ref, None, None
    if _FULL_ID.match(tail):
        return head, tail, None
    if _ID_PREFIX.match(tail):
        return head, None, tail
    raise _invalid(text, f"{tail!r} does not look like an image ID or digest")


def parse_storage_reference(rest: str) -> StorageReference:
    """Parse the part after ``containers-storage:``; raises :class:`InvalidReferenceError`."""
    text = f"{TRANSPORT}:{rest}"
    if not rest:
        raise _invalid(text, "expected containers-storage:[[storage-specifier]]NAME[:TAG] or an image ID")
    specifier: StorageSpecifier | None = None
    ref = rest
    if ref.startswith("["):
        close = ref.find("]")
        if close < 1:
            raise _invalid(text, "the storage specifier does not end with ']'")
        specifier = parse_specifier(ref[1:close], text)
        ref = ref[close + 1 :]
    ref, image_id, id_prefix = _peel_id(ref, text)
    maybe_id: str | None = None
    if (
        image_id is None
        and id_prefix is None
        and len(ref) >= MIN_ID_PREFIX
        and not any(c in ref for c in "@:")
    ):
        if _FULL_ID.match(ref):
            return StorageReference(specifier, image_id=ref)
        if _ID_PREFIX.match(ref):
            maybe_id = ref
    name: ImageName | None = None
    if ref:
        name = parse_reference(ref, default_tag=True)
    elif image_id is None and id_prefix is None:
        raise _invalid(text, "no image name or ID after the storage specifier")
    return StorageReference(specifier, name, image_id, id_prefix, maybe_id)
