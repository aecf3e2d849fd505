"""The copy engine's layer (re)compression step, as containers/image's for skopeo 1.9.3.

For a destination that compresses layers (:attr:`Capabilities.compresses_layers`: registries,
``oci:`` and ``oci-archive:`` without ``--dest-oci-accept-uncompressed-layers``), each layer of
an image manifest is looked at by media type:

* uncompressed (``...diff.tar``, ``...layer.v1.tar``): compressed to ``--dest-compress-format``
  (default gzip);
* compressed in another format than ``--dest-compress-format`` (gzip -> zstd, zstd -> gzip):
  recompressed;
* anything else (already in the format, foreign or unknown media types, encrypted layers,
  configs): copied unchanged, as before.

A layer to change is first offered to the destination as it is (skopeo 1.9.3 reuses a blob the
destination has or can mount, whatever its compression); ``--dest-force-compress-format`` skips
that. Otherwise it is streamed from the source, verified against its digest as always, and
decompressed and compressed in a worker thread (:mod:`asyncsync.copy.recompress_stream`): into
the upload itself for a registry (which learns the digest at the end), else into a spool file
that then takes the normal blob path (HEAD, mount, single-flight upload with retries). Results
are cached for the run by (source digest, format, level) and, with a state directory, recorded
for later runs (:mod:`asyncsync.copy.recompress_cache`): a layer whose recorded digest the
destination has, or can mount, is not recompressed at all. The manifest is then
rewritten: new digests, sizes and media types for the changed layers, config (so ``diff_ids``)
unchanged. zstd cannot be said in Docker v2s2: without ``--format`` a registry gets an OCI
manifest instead (skopeo tries OCI next); ``--format v2s2`` with zstd is refused before any blob
is written, with skopeo's message. ``--preserve-digests`` turns the step off (skopeo keeps layers
as they are then, too).

The commit order is unchanged: every blob (recompressed ones included) before the manifest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AsyncExitStack, aclosing, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson

from asyncsync.copy.blobs import BlobCopier
from asyncsync.copy.convert import convert_image
from asyncsync.copy.layer_format import (
    DEFAULT_FORMAT,
    DOCKER_LAYER_TAR,
    Format,
    LayerCompression,
    is_known_layer,
    layer_compression_of,
    media_type_for,
)
from asyncsync.copy.options import CopyOptions
from asyncsync.copy.progress import BlobOutcome, NullProgress
from asyncsync.copy.recompress_cache import CachedLayer
from asyncsync.copy.recompress_stream import (
    Recompressed,
    RecompressingStream,
    Spool,
    recompressing,
    spool_recompressed,
)
from asyncsync.digest import Digest
from asyncsync.errors import ContentError
from asyncsync.manifest import DOCKER_LAYER_GZIP, DOCKER_V2S2, OCI_MANIFEST, Descriptor, ImageManifest
from asyncsync.transports.base import (
    BlobLocation,
    Capabilities,
    ImageReference,
    ImageSource,
    StreamedBlobDestination,
)

Step = Callable[[], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class LayerEdit:
    """A layer stored differently at the destination: its new digest, size and compression."""

    digest: Digest
    size: int
    compression: Format


def target_format(layer: Descriptor, wanted: LayerCompression) -> Format | None:
    """The format ``layer`` must be stored in, or ``None`` to copy it unchanged."""
    if layer.is_foreign or not is_known_layer(layer.media_type):
        return None
    current = layer_compression_of(layer.media_type)
    if current is None:
        return wanted.format or DEFAULT_FORMAT
    if wanted.format is not None and current != wanted.format:
        return wanted.format
    return None


class _SpoolSource:
    """An :class:`ImageSource` serving one recompressed layer: from the cached spool while it is
    open, else by recompressing the layer again and checking the result's digest."""

    def __init__(
        self, origin: ImageSource, entry: CachedLayer, remake: Callable[[], Coroutine[Any, Any, Spool]]
    ) -> None:
        self._origin = origin
        self._entry = entry
        self._remake = remake

    @property
    def reference(self) -> ImageReference:
        return self._origin.reference

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(ranged_reads=True)

    async def get_manifest(self, instance: Digest | None = None) -> tuple[bytes, str]:
        return await self._origin.get_manifest(instance)

    @asynccontextmanager
    async def open_blob(self, blob: Descriptor, offset: int = 0) -> AsyncIterator[AsyncIterator[bytes]]:
        spool, own = self._entry.spool, None
        if spool is None:
            own = spool = await self._remake()
            if spool.digest != self._entry.digest:
                own.close()
                raise ContentError(
                    f"layer recompressed again has digest {spool.digest}, not the {self._entry.digest} "
                    "it had earlier in this run"
                )
        try:
            async with aclosing(spool.chunks(offset)) as chunks:  # type: ignore[type-var]
                yield chunks
        finally:
            if own is not None:
                own.close()

    def blob_locations(self) -> Sequence[BlobLocation]:
        # The source's repositories hold the original layer, not this one: no mount candidates.
        return ()

    async def list_tags(self) -> list[str]:
        return await self._origin.list_tags()

    async def close(self) -> None:
        """Nothing to release: the spool belongs to the run's cache."""


class LayerRecompression:
    """The (re)compression step of one image manifest copy; see the module docstring."""

    def __init__(self, copier: BlobCopier, wanted: LayerCompression) -> None:
        self.copier = copier
        self.wanted = wanted
        self.edits: dict[int, LayerEdit] = {}

    @classmethod
    def for_copy(
        cls, copier: BlobCopier, manifest: ImageManifest, options: CopyOptions
    ) -> LayerRecompression | None:
        """The step for this copy, or ``None`` when no layer can change (the destination keeps
        layers as they are, or ``--preserve-digests``). Refuses ``--format v2s2`` with zstd."""
        if options.preserve_digests or not copier.destination.capabilities.compresses_layers:
            return None
        wanted = options.compression
        if options.format == "v2s2" and wanted.format == "zstd":
            for layer in manifest.layers:
                if target_format(layer, wanted) is not None:
                    current = layer_compression_of(layer.media_type)
                    docker_type = DOCKER_LAYER_TAR if current is None else DOCKER_LAYER_GZIP
                    media_type_for(docker_type, "zstd", str(layer.digest))  # raises skopeo's error
        return cls(copier, wanted)

    def steps(self, layers: Sequence[Descriptor]) -> list[Step]:
        """One step per layer, for the engine to run concurrently with the config's."""
        return [partial(self._copy_layer, index, layer) for index, layer in enumerate(layers)]

    async def _copy_layer(self, index: int, layer: Descriptor) -> None:
        fmt = target_format(layer, self.wanted)
        copier = self.copier
        if fmt is None:
            await copier.copy(layer, "blob")
            return
        copier.env.progress.blob_started(layer, "blob")
        if not self.wanted.force and await copier.try_reuse(layer, "blob"):
            return
        level = self.wanted.level_for(fmt)
        key = (layer.digest, fmt, level)
        cache = copier.env.recompressed
        make = partial(self._spool, layer, fmt, level)
        # An upload's source makes the spool again under that upload's blob slot.
        remake = partial(self._spool, layer, fmt, level, slot=False)
        streamed = False
        if isinstance(copier.destination, StreamedBlobDestination) and cache.made(key) is None:
            recorded = cache.recorded(key)
            if recorded is not None and await self._uploader(recorded, remake).try_reuse(
                self._descriptor(layer, recorded), "blob"
            ):
                # An earlier run recompressed it and the destination has (or mounted) it.
                self._finished(index, layer, recorded, fmt, "skipped")
                return

            async def stream() -> Recompressed:
                nonlocal streamed
                done = await self._stream(layer, fmt, level)
                streamed = True
                return done

            entry = await cache.get(key, stream, fmt, use_record=False)
        else:
            entry = await cache.get(key, make, fmt)
        try:
            if not streamed:
                # Known from another copy of this run (or an earlier run, for a destination that
                # takes no stream): reuse (HEAD, mount) or upload again.
                await self._uploader(entry, remake).copy(self._descriptor(layer, entry), "blob")
        finally:
            entry.release()
        self._finished(index, layer, entry, fmt)

    @staticmethod
    def _descriptor(layer: Descriptor, entry: CachedLayer) -> Descriptor:
        """The recompressed blob of ``layer`` (its media type is set by :meth:`manifest`)."""
        return Descriptor(layer.media_type, entry.digest, entry.size)

    def _uploader(self, entry: CachedLayer, remake: Callable[[], Coroutine[Any, Any, Spool]]) -> BlobCopier:
        """A copier of ``entry``'s recompressed blob to this destination (no mount candidates
        in the source's repositories; progress is the layer's own, so quiet here)."""
        copier = self.copier
        quiet = dataclasses.replace(copier.env, progress=NullProgress())
        return BlobCopier(_SpoolSource(copier.source, entry, remake), copier.destination, quiet, copier.stats)

    def _finished(
        self, index: int, layer: Descriptor, entry: CachedLayer, fmt: Format, outcome: BlobOutcome = "done"
    ) -> None:
        self.copier.env.progress.blob_finished(layer, "blob", outcome)
        self.edits[index] = LayerEdit(entry.digest, entry.size, fmt)

    async def _stream(self, layer: Descriptor, fmt: Format, level: int) -> Recompressed:
        """Recompress ``layer`` while uploading it (the destination learns the digest at the end)."""
        results: list[Recompressed] = []

        @asynccontextmanager
        async def transform(chunks: AsyncGenerator[bytes, None]) -> AsyncIterator[RecompressingStream]:
            async with recompressing(chunks, fmt, level, f"layer {layer.digest}") as output:
                yield output
            results.append(output.result())

        await self.copier.transfer_streamed(layer, transform)
        return results[-1]

    async def _spool(self, layer: Descriptor, fmt: Format, level: int, *, slot: bool = True) -> Spool:
        """Stream ``layer`` from the source (verified) and recompress it into a spool file, under
        a blob slot of its own unless ``slot`` is false: the spool a :class:`_SpoolSource` makes
        again is read by an upload that holds its blob's slot already (maybe in the same task:
        a small blob is read whole there, and a task cannot take a second slot)."""
        copier = self.copier
        async with AsyncExitStack() as stack:
            if slot:
                await stack.enter_async_context(copier.env.blob_limiter.hold())
            chunks = await stack.enter_async_context(aclosing(copier.open_verified(layer)))
            return await spool_recompressed(chunks, fmt, level, None, f"layer {layer.digest}")

    def manifest(self, manifest: ImageManifest, target: str, options: CopyOptions) -> tuple[bytes, str]:
        """``manifest`` as ``target`` with the changed layers' digests, sizes and media types.

        zstd layers cannot be said in Docker v2s2: without ``--format`` a destination that takes
        OCI gets an OCI manifest instead; otherwise skopeo's error is raised.
        """
        if not self.edits:
            return convert_image(manifest, target)
        zstd = any(edit.compression == "zstd" for edit in self.edits.values())
        if (
            target == DOCKER_V2S2
            and zstd
            and options.format is None
            and self.copier.destination.capabilities.oci_fallback
        ):
            target = OCI_MANIFEST
        raw, media_type = convert_image(manifest, target)
        data = orjson.loads(raw)
        layers = data["layers"]
        for index, edit in sorted(self.edits.items()):
            entry = layers[index]
            entry["mediaType"] = media_type_for(str(entry["mediaType"]), edit.compression, str(edit.digest))
            entry["digest"] = str(edit.digest)
            entry["size"] = edit.size
        return orjson.dumps(data), media_type
