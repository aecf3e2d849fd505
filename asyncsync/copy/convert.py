"""Manifest format conversion (``--format oci|v2s2``) between Docker v2s2 and OCI.

Only manifests change: blob bytes (config included) stay the same, so a conversion rewrites
media types and re-serialises the manifest, which changes its digest. Indexes are converted
with their children: each entry gets the converted child's media type, digest and size.

Docker v2s2 cannot express zstd layers, annotations, ``subject`` or ``artifactType``; converting
such an OCI manifest to v2s2 is refused (annotations alone are dropped, as containers/image does).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from asyncsync.digest import Digest
from asyncsync.errors import ManifestError, UsageError
from asyncsync.manifest import (
    DOCKER_CONFIG,
    DOCKER_FOREIGN_LAYER,
    DOCKER_LAYER_GZIP,
    DOCKER_LIST,
    DOCKER_V2S2,
    INDEX_TYPES,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    OCI_NONDIST_LAYER_GZIP,
    Descriptor,
    ImageIndex,
    ImageManifest,
)

DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
OCI_NONDIST_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar"

_TO_OCI = {
    DOCKER_CONFIG: OCI_CONFIG,
    DOCKER_LAYER_GZIP: OCI_LAYER_GZIP,
    DOCKER_LAYER_TAR: OCI_LAYER,
    DOCKER_FOREIGN_LAYER: OCI_NONDIST_LAYER_GZIP,
}
_TO_DOCKER = {
    OCI_CONFIG: DOCKER_CONFIG,
    OCI_LAYER_GZIP: DOCKER_LAYER_GZIP,
    OCI_LAYER: DOCKER_LAYER_TAR,
    OCI_NONDIST_LAYER_GZIP: DOCKER_FOREIGN_LAYER,
}
IMAGE_TYPE_FOR = {"oci": OCI_MANIFEST, "v2s2": DOCKER_V2S2}
INDEX_TYPE_FOR_IMAGE = {OCI_MANIFEST: OCI_INDEX, DOCKER_V2S2: DOCKER_LIST}


def target_image_type(
    media_type: str, fmt: str | None, accepted: tuple[str, ...] | None, preserve_digests: bool
) -> str:
    """The manifest type to write for a source image manifest of ``media_type``.

    ``fmt`` (``--format``) wins; otherwise the source type when the destination accepts it,
    else the first image type it accepts. A change with ``preserve_digests`` is a usage error.
    """
    if fmt is not None:
        target = IMAGE_TYPE_FOR[fmt]
    elif accepted is None or media_type in accepted:
        target = media_type
    else:
        target = next((t for t in accepted if t in (OCI_MANIFEST, DOCKER_V2S2)), "")
        if not target:
            raise ManifestError(f"the destination accepts none of the image manifest types ({media_type})")
    if target != media_type and preserve_digests:
        raise UsageError(
            f"cannot preserve digests: the manifest must be converted from {media_type} to {target}"
        )
    return target


def index_type_for(image_type: str) -> str:
    """The index type that goes with an image manifest type."""
    return INDEX_TYPE_FOR_IMAGE[image_type]


def _descriptor_json(desc: Descriptor, media_type: str, *, oci: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"mediaType": media_type}
    if oci:
        data["digest"] = str(desc.digest)
        data["size"] = desc.size
    else:
        data["size"] = desc.size
        data["digest"] = str(desc.digest)
    if desc.urls:
        data["urls"] = list(desc.urls)
    if oci and desc.annotations:
        data["annotations"] = dict(desc.annotations)
    return data


def _convert_type(media_type: str, table: Mapping[str, str], target: str, what: str) -> str:
    if media_type in table.values():
        return media_type
    converted = table.get(media_type)
    if converted is None:
        raise ManifestError(f"cannot convert {what} of media type {media_type!r} to {target}")
    return converted


def convert_image(manifest: ImageManifest, target: str) -> tuple[bytes, str]:
    """Re-serialise ``manifest`` as ``target`` (OCI or v2s2); unchanged bytes if already that type."""
    if manifest.media_type == target:
        return manifest.raw, manifest.media_type
    data = orjson.loads(manifest.raw)
    oci = target == OCI_MANIFEST
    table = _TO_OCI if oci else _TO_DOCKER
    name = "OCI" if oci else "Docker v2s2"
    if not oci:
        for key in ("subject", "artifactType"):
            if key in data:
                raise ManifestError(f"cannot convert an OCI manifest with {key!r} to Docker v2s2")
    config_type = _convert_type(manifest.config.media_type, table, name, "a config")
    layers = [
        _descriptor_json(layer, _convert_type(layer.media_type, table, name, "a layer"), oci=oci)
        for layer in manifest.layers
    ]
    out: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": target,
        "config": _descriptor_json(manifest.config, config_type, oci=oci),
        "layers": layers,
    }
    if oci and manifest.annotations:
        out["annotations"] = dict(manifest.annotations)
    return orjson.dumps(out), target


def convert_index(
    index: ImageIndex, children: Mapping[Digest, tuple[Digest, int, str]], target: str
) -> tuple[bytes, str]:
    """Rewrite ``index`` as ``target`` with each child replaced per ``children``.

    ``children`` maps an original child digest to ``(new digest, new size, new media type)``;
    unlisted entries are kept. Bytes are unchanged when nothing changes.
    """
    if target not in INDEX_TYPES:
        raise ManifestError(f"{target!r} is not an index type")
    changed = any(new[0] != old for old, new in children.items())
    if index.media_type == target and not changed:
        return index.raw, index.media_type
    data = orjson.loads(index.raw)
    entries = data.get("manifests")
    if not isinstance(entries, list):
        raise ManifestError("index has no 'manifests' list")
    oci = target == OCI_INDEX
    new_entries = []
    for entry, desc in zip(entries, index.manifests, strict=True):
        replacement = children.get(desc.digest)
        item = dict(entry)
        if replacement is not None:
            digest, size, media_type = replacement
            item["digest"], item["size"], item["mediaType"] = str(digest), size, media_type
        if not oci:
            item.pop("annotations", None)
        new_entries.append(item)
    data["mediaType"] = target
    data["manifests"] = new_entries
    if not oci:
        for key in ("annotations", "subject", "artifactType"):
            data.pop(key, None)
    return orjson.dumps(data), target
