"""Copying a manifest list / image index according to ``--multi-arch``.

* ``system``: the instance for the requested platform (default: this host's) is copied and
  written at the destination reference; the result's digest is that instance's (as skopeo
  without ``--all``).
* ``all``: every instance concurrently (each: blobs, then its manifest by digest), then the
  index at the reference. With a format conversion the index is rewritten to point at the
  converted instances.
* ``index-only``: the index alone (registries refuse it unless the instances exist there).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

import orjson

from asyncsync.copy.blobs import BlobCopier, run_concurrently
from asyncsync.copy.convert import IMAGE_TYPE_FOR, convert_index, index_type_for
from asyncsync.copy.image import copy_image_manifest, fetch_child, require_image
from asyncsync.copy.options import CopyOptions
from asyncsync.digest import Digest
from asyncsync.errors import ManifestError, UsageError
from asyncsync.manifest import (
    DOCKER_LIST,
    INDEX_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    ImageIndex,
    ImageManifest,
    Platform,
    choose_platform,
    host_platform,
    manifest_digest,
    no_instance_message,
    parse_manifest,
)

#: Indexes nested deeper than this are refused (a loop or a hostile source).
MAX_NESTING = 4


def _platforms(index: ImageIndex) -> str:
    found = sorted({str(d.platform) for d in index.manifests if d.platform is not None})
    return ", ".join(found) or "none"


def _index_target(index: ImageIndex, copier: BlobCopier, options: CopyOptions) -> str:
    if options.format is not None:
        target = index_type_for(IMAGE_TYPE_FOR[options.format])
    else:
        accepted = copier.destination.capabilities.manifest_types
        if accepted is None or index.media_type in accepted:
            target = index.media_type
        else:
            target = next((t for t in accepted if t in INDEX_TYPES), "")
            if not target:
                raise ManifestError(f"the destination cannot store an index ({index.media_type})")
    if target != index.media_type and options.preserve_digests:
        raise UsageError(
            f"cannot preserve digests: the index must be converted from {index.media_type} to {target}"
        )
    return target


async def copy_index(
    copier: BlobCopier, index: ImageIndex, options: CopyOptions, *, instance: bool = False, depth: int = 0
) -> tuple[bytes, str, Digest]:
    """Copy ``index`` per ``options.multi_arch``; returns the bytes, type and digest written last."""
    if depth > MAX_NESTING:
        raise ManifestError(f"index {index.digest} nests indexes more than {MAX_NESTING} deep")
    if options.multi_arch == "system":
        return await _copy_system(copier, index, options, depth)
    if options.multi_arch == "index-only":
        return await _copy_index_only(copier, index, options, instance=instance)
    return await _copy_all(copier, index, options, instance=instance, depth=depth)


async def _copy_system(
    copier: BlobCopier, index: ImageIndex, options: CopyOptions, depth: int
) -> tuple[bytes, str, Digest]:
    platform: Platform = options.platform or host_platform()
    chosen = choose_platform(index, platform.os, platform.architecture, platform.variant)
    if chosen is None:
        # containers/image's words ("choosing an image from manifest list ..."), then what the index has.
        raise ManifestError(
            f"choosing an image from manifest list {index.digest}: {no_instance_message(index, platform)} "
            f"(it has: {_platforms(index)})"
        )
    child = require_image(await fetch_child(copier.source, chosen.digest), f"manifest {chosen.digest}")
    if isinstance(child, ImageIndex):
        return await copy_index(copier, child, options, depth=depth + 1)
    return await copy_image_manifest(copier, child, options, instance=False)


async def _copy_index_only(
    copier: BlobCopier, index: ImageIndex, options: CopyOptions, *, instance: bool
) -> tuple[bytes, str, Digest]:
    target = _index_target(index, copier, options)
    if target != index.media_type:
        raise UsageError(
            "cannot convert an index copied without its images (--multi-arch index-only with a format change)"
        )
    copier.env.progress.manifest_writing()
    written = await copier.destination.put_manifest(
        index.raw, index.media_type, index.digest if instance else None
    )
    copier.stats.manifests_written += 1
    return index.raw, index.media_type, written


def _matches(platform: Platform | None, wanted: tuple[Platform, ...]) -> bool:
    if platform is None:
        return False
    return any(
        platform.os == w.os
        and platform.architecture == w.architecture
        and (not w.variant or platform.variant == w.variant)
        for w in wanted
    )


def select_platforms(index: ImageIndex, wanted: tuple[Platform, ...]) -> ImageIndex:
    """``index`` with only the instances of the ``wanted`` platforms (bytes unchanged if all match).

    Entries without a platform (attestations) are dropped with the rest. Raises
    :class:`ManifestError` when no instance matches.
    """
    keep = [_matches(d.platform, wanted) for d in index.manifests]
    if all(keep):
        return index
    if not any(keep):
        wanted_text = ", ".join(str(w) for w in wanted)
        raise ManifestError(
            f"no image for platforms {wanted_text} in index {index.digest} (it has: {_platforms(index)})"
        )
    data = orjson.loads(index.raw)
    entries = data.get("manifests")
    if not isinstance(entries, list) or len(entries) != len(keep):
        raise ManifestError("index has no 'manifests' list")
    data["manifests"] = [entry for entry, kept in zip(entries, keep, strict=True) if kept]
    raw = orjson.dumps(data)
    selected = parse_manifest(raw, index.media_type)
    assert isinstance(selected, ImageIndex)
    return selected


async def _copy_all(
    copier: BlobCopier, index: ImageIndex, options: CopyOptions, *, instance: bool, depth: int
) -> tuple[bytes, str, Digest]:
    if not copier.destination.capabilities.multi_image:
        raise UsageError("the destination cannot store more than one image: use --multi-arch system")
    if options.platforms:
        selected = select_platforms(index, options.platforms)
        if selected is not index and options.preserve_digests:
            raise UsageError("cannot preserve digests: selecting platforms rewrites the index")
        index = selected
    target = _index_target(index, copier, options)
    replaced: dict[Digest, tuple[Digest, int, str]] = {}
    total = len(index.manifests)

    async def copy_child(position: int, entry: Descriptor) -> None:
        copier.env.progress.image_started(entry.digest, position, total)
        child = require_image(await fetch_child(copier.source, entry.digest), f"manifest {entry.digest}")
        if isinstance(child, ImageManifest):
            raw, media_type, digest = await copy_image_manifest(copier, child, options, instance=True)
        else:
            raw, media_type, digest = await copy_index(copier, child, options, instance=True, depth=depth + 1)
        replaced[entry.digest] = (digest, len(raw), media_type)

    steps: list[Callable[[], Coroutine[Any, Any, None]]] = [
        partial(copy_child, position, entry) for position, entry in enumerate(index.manifests, 1)
    ]
    await run_concurrently(steps)
    if (
        target == DOCKER_LIST
        and options.format is None
        and any(child_type == OCI_MANIFEST for _, _, child_type in replaced.values())
    ):
        # A child became OCI (zstd layers pushed to a registry): its list must be an OCI index.
        target = OCI_INDEX
    raw, media_type = convert_index(index, replaced, target)
    digest = manifest_digest(raw)
    copier.env.progress.manifest_writing()
    written = await copier.destination.put_manifest(raw, media_type, digest if instance else None)
    copier.stats.manifests_written += 1
    return raw, media_type, written
