"""Copying one image manifest: its blobs concurrently, then the manifest (converted if asked)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

from asyncsync.copy.blobs import BlobCopier, run_concurrently
from asyncsync.copy.convert import convert_image, target_image_type
from asyncsync.copy.options import CopyOptions
from asyncsync.copy.recompress import LayerRecompression
from asyncsync.digest import Digest
from asyncsync.errors import DigestMismatchError, ManifestError
from asyncsync.manifest import ImageIndex, ImageManifest, Manifest, manifest_digest, parse_manifest
from asyncsync.transports.base import ImageSource


async def fetch_child(source: ImageSource, digest: Digest) -> Manifest:
    """Read child manifest ``digest`` of an index and check its bytes have that digest."""
    raw, media_type = await source.get_manifest(digest)
    actual = manifest_digest(raw)
    if actual != digest:
        raise DigestMismatchError(f"manifest {digest}: content has digest {actual}")
    return parse_manifest(raw, media_type, digest=digest)


async def copy_image_manifest(
    copier: BlobCopier, manifest: ImageManifest, options: CopyOptions, *, instance: bool
) -> tuple[bytes, str, Digest]:
    """Copy the blobs of ``manifest`` concurrently, then write it.

    With ``instance`` the manifest is written by digest (a child of an index being copied);
    otherwise at the destination reference (the tag), which comes last. Returns the bytes,
    media type and digest written.
    """
    destination = copier.destination
    target = target_image_type(
        manifest.media_type,
        options.format,
        destination.capabilities.manifest_types,
        options.preserve_digests,
    )
    recompression = LayerRecompression.for_copy(copier, manifest, options)
    steps: list[Callable[[], Coroutine[Any, Any, None]]] = (
        recompression.steps(manifest.layers)
        if recompression is not None
        else [partial(copier.copy, layer, "blob") for layer in manifest.layers]
    )
    steps.append(partial(copier.copy, manifest.config, "config"))
    await run_concurrently(steps)
    if recompression is not None:
        raw, media_type = recompression.manifest(manifest, target, options)
    else:
        raw, media_type = convert_image(manifest, target)
    digest = manifest_digest(raw)
    copier.env.progress.manifest_writing()
    written = await destination.put_manifest(raw, media_type, digest if instance else None)
    copier.stats.manifests_written += 1
    return raw, media_type, written


def require_image(manifest: Manifest, what: str) -> ImageManifest | ImageIndex:
    """Refuse manifests the engine cannot copy (schema 1) with a one-line error."""
    if isinstance(manifest, ImageManifest | ImageIndex):
        return manifest
    raise ManifestError(
        f"{what}: {manifest.media_type} (Docker schema 1) manifests are not supported for copying"
    )
