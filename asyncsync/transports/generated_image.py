"""An image whose OCI manifest and config are generated from local files (``sif:`` and ``tarball:``).

containers/image builds these two transports the same way: an OCI image config and manifest,
serialised by Go's ``encoding/json`` (struct field order, compact, HTML characters escaped), over
layers that are plain local files. :class:`GeneratedImageSource` serves such an image: the config
from memory, each layer streamed from its file (ranged reads from an offset). It holds no
manifest lists. ``list_tags`` is refused, as skopeo refuses ``list-tags`` for these transports.

:func:`go_time` formats a timestamp as Go marshals a ``time.Time`` (RFC 3339 with nanoseconds,
trailing zeros dropped, the local zone: ``Z`` when it is UTC), so generated configs match skopeo's
byte for byte on the same machine.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from asyncsync.digest import Digest
from asyncsync.errors import LocalStorageError, UsageError
from asyncsync.manifest import OCI_CONFIG, OCI_MANIFEST, Descriptor
from asyncsync.transports.base import BlobLocation, Capabilities, ImageReference
from asyncsync.transports.docker_archive.archive import go_json
from asyncsync.transports.local_files import open_chunks

_CAPABILITIES = Capabilities(ranged_reads=True)
_HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileLayer:
    """One layer blob: its descriptor fields and the file (or, for stdin, the bytes) holding it."""

    digest: Digest
    size: int
    media_type: str
    path: str | None = None
    data: bytes | None = None


def go_time(seconds: int, nanoseconds: int = 0) -> str:
    """``time.Unix(seconds, nanoseconds)`` as Go's JSON writes it, in the local time zone."""
    when = dt.datetime.fromtimestamp(seconds, dt.UTC).astimezone()
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if nanoseconds:
        text += "." + f"{nanoseconds:09d}".rstrip("0")
    offset = when.utcoffset() or dt.timedelta()
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def hash_file(path: str) -> tuple[Digest, int]:
    """sha256 digest and size of a file, read in 1 MiB pieces (blocking)."""
    hasher = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return Digest("sha256", hasher.hexdigest()), size


def oci_manifest(config: bytes, layers: Sequence[FileLayer], *, media_type_field: bool) -> bytes:
    """The OCI image manifest containers/image writes for ``config`` and ``layers``.

    ``media_type_field``: whether the manifest names its own media type (``sif:`` does,
    ``tarball:`` does not)."""
    document: dict[str, Any] = {"schemaVersion": 2}
    if media_type_field:
        document["mediaType"] = OCI_MANIFEST
    document["config"] = {"mediaType": OCI_CONFIG, "digest": str(Digest.of(config)), "size": len(config)}
    document["layers"] = [
        {"mediaType": layer.media_type, "digest": str(layer.digest), "size": layer.size} for layer in layers
    ]
    return go_json(document)


class GeneratedImageSource:
    """One generated image: ``manifest`` and ``config`` bytes, and the files of its ``layers``."""

    def __init__(
        self,
        reference: ImageReference,
        manifest: bytes,
        config: bytes,
        layers: Sequence[FileLayer],
        where: str,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._reference = reference
        self._manifest = manifest
        self._config = config
        self._config_digest = Digest.of(config)
        self._layers = {layer.digest: layer for layer in layers}
        self._where = where
        self._on_close = on_close

    @property
    def reference(self) -> ImageReference:
        return self._reference

    @property
    def capabilities(self) -> Capabilities:
        return _CAPABILITIES

    async def get_manifest(self, instance: Digest | None = None) -> tuple[bytes, str]:
        if instance is not None:
            raise LocalStorageError(
                f"{self._where}: manifest lists are not supported by the "
                f"{self._reference.transport_name} transport"
            )
        return self._manifest, OCI_MANIFEST

    @asynccontextmanager
    async def open_blob(self, blob: Descriptor, offset: int = 0) -> AsyncIterator[AsyncIterator[bytes]]:
        if blob.digest == self._config_digest:
            yield _once(self._config[offset:])
            return
        layer = self._layers.get(blob.digest)
        if layer is None:
            raise LocalStorageError(f"{self._where}: no blob with digest {blob.digest} found")
        if layer.data is not None:
            yield _once(layer.data[offset:])
            return
        assert layer.path is not None  # a FileLayer has a path or data
        async with open_chunks(layer.path, offset, what=f"{self._where}: {layer.path}") as chunks:
            yield chunks

    def blob_locations(self) -> Sequence[BlobLocation]:
        return ()

    async def list_tags(self) -> list[str]:
        raise UsageError(
            f"{self._where}: listing tags is not supported for {self._reference.transport_name}: images"
        )

    async def close(self) -> None:
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            await on_close()


async def _once(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data
