"""The ``docker save`` archive format: ``manifest.json`` items, tags, and the legacy metadata.

An archive holds ``manifest.json`` (a list of ``{"Config", "RepoTags", "Layers"}`` items, paths
relative to the archive root), each image's config and its layers as uncompressed tars. Writers
also add the legacy format read by old Docker versions: one directory per layer with
``VERSION``, ``json`` and a ``layer.tar`` symlink, and a ``repositories`` file mapping
``name -> tag -> top layer id``.

This module reproduces containers/image's writer (skopeo 1.9) byte for byte where it can:
``<config hex>.json``, ``<diff id hex>.tar``, RepoTags as ``docker.io/library/name:tag`` (the full
normalised name), and the same legacy layer ids (sha256 of the layer's legacy json with the
chain id mixed in), so archives written by asyncsync and skopeo list the same members.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from asyncsync.digest import Digest
from asyncsync.errors import AsyncSyncError, InvalidReferenceError, LocalStorageError, UsageError
from asyncsync.jsondoc import load_json_list
from asyncsync.manifest import INDEX_TYPES, ImageManifest, parse_manifest
from asyncsync.reference import ImageName, parse_reference
from asyncsync.transports.layer_compression import CONFIG_TYPES

MANIFEST_FILE = "manifest.json"
REPOSITORIES_FILE = "repositories"
LEGACY_LAYER_FILE = "layer.tar"
LEGACY_VERSION_FILE = "VERSION"
LEGACY_CONFIG_FILE = "json"
#: containers/image's limits for manifest.json and configs read from an archive.
MAX_TAR_MANIFEST_SIZE = 1024 * 1024
MAX_CONFIG_SIZE = 4 * 1024 * 1024
#: Top-level config fields copied into the top layer's legacy json, as containers/image does.
_LEGACY_ATTRIBUTES = (
    "architecture",
    "config",
    "container",
    "container_config",
    "created",
    "docker_version",
    "os",
)


def single_image_manifest(
    raw: bytes, media_type: str, instance: Digest | None, where: str, place: str
) -> ImageManifest:
    """The manifest of the one container image a docker archive (or what loads one: ``place``,
    for messages) can store; :class:`UsageError` for a manifest list, a child of one, another
    manifest kind, or a config that is not a container image's."""
    if instance is not None or media_type in INDEX_TYPES:
        raise UsageError(
            f"{where}: {place} holds a single image, not a manifest list; "
            "copy one platform (without --all / --multi-arch all)"
        )
    manifest = parse_manifest(raw, media_type)
    if not isinstance(manifest, ImageManifest):
        raise UsageError(f"{where}: cannot store a {manifest.media_type} manifest in {place}")
    if manifest.config.media_type not in CONFIG_TYPES:
        raise UsageError(
            f"{where}: {place} holds container images; config "
            f"{manifest.config.digest} is {manifest.config.media_type}"
        )
    return manifest


@dataclass(frozen=True, slots=True)
class ManifestItem:
    """One image of an archive's ``manifest.json``."""

    config: str
    repo_tags: tuple[str, ...]
    layers: tuple[str, ...]


def parse_archive_manifest(raw: bytes, where: str) -> list[ManifestItem]:
    """Parse ``manifest.json``; refuses anything but a list of well-formed items."""
    data = load_json_list(raw, f"{where}: manifest.json", LocalStorageError, shape="a list of images")
    items = []
    for position, entry in enumerate(data):
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise LocalStorageError(f"{where}: manifest.json item @{position} has no Config")
        tags = entry.get("RepoTags") or []
        layers = entry.get("Layers") or []
        if not all(isinstance(t, str) for t in tags) or not all(isinstance(x, str) for x in layers):
            raise LocalStorageError(f"{where}: manifest.json item @{position} is malformed")
        items.append(ManifestItem(entry["Config"], tuple(tags), tuple(layers)))
    return items


def choose_item(
    items: list[ManifestItem], name: ImageName | None, index: int | None, where: str
) -> ManifestItem:
    """The item a reference selects: by tag, by ``@N``, or the only one (as containers/image)."""
    if name is not None:
        wanted = str(name)
        for position, item in enumerate(items):
            for tag in item.repo_tags:
                try:
                    parsed = parse_reference(tag, default_tag=False)
                except AsyncSyncError:
                    raise LocalStorageError(
                        f"{where}: invalid tag {tag!r} in manifest.json item @{position}"
                    ) from None
                if str(parsed) == wanted:
                    return item
        raise LocalStorageError(f"{where}: tag {wanted!r} not found in the archive")
    if index is not None:
        if index >= len(items):
            raise LocalStorageError(
                f"{where}: invalid source index @{index}, only {len(items)} image(s) in the archive"
            )
        return items[index]
    if len(items) != 1:
        raise LocalStorageError(
            f"{where}: the archive holds {len(items)} images; choose one with :NAME:TAG or :@N"
        )
    return items[0]


def repo_tag(name: ImageName) -> str:
    """The RepoTags string of a tagged name: ``docker.io/library/busybox:latest``."""
    return f"{name.name}:{name.tag}"


def tagged_names(primary: ImageName | None, additional: tuple[str, ...]) -> list[ImageName]:
    """The reference's name plus ``--additional-tag`` values, each a tagged name; no duplicates."""
    names: list[ImageName] = [primary] if primary is not None else []
    for text in additional:
        parsed = parse_reference(text, default_tag=False)
        if parsed.tag is None or parsed.digest is not None:
            raise InvalidReferenceError(f"additional tag {text!r} must be NAME:TAG, without a digest")
        names.append(parsed)
    unique: dict[str, ImageName] = {}
    for name in names:
        unique.setdefault(repo_tag(name), name)
    return list(unique.values())


def config_diff_ids(config: bytes, where: str) -> list[Digest]:
    """The ``rootfs.diff_ids`` of an image config (validated digests)."""
    try:
        data = orjson.loads(config)
        rootfs = data.get("rootfs") if isinstance(data, dict) else None
        if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
            raise LocalStorageError(f"{where}: the image config has no rootfs.diff_ids")
        return [Digest.parse(str(d)) for d in rootfs["diff_ids"]]
    except orjson.JSONDecodeError:
        raise LocalStorageError(f"{where}: the image config is not valid JSON") from None
    except InvalidReferenceError as exc:
        raise LocalStorageError(f"{where}: the image config lists {exc}") from None


def go_json(value: Any) -> bytes:
    """Compact JSON as Go's encoding/json writes it (map keys sorted at the top level only,
    since raw config values keep their own order; ``<``, ``>``, ``&`` escaped)."""
    raw = orjson.dumps(value)
    for char, escaped in ((b"<", b"\\u003c"), (b">", b"\\u003e"), (b"&", b"\\u0026")):
        raw = raw.replace(char, escaped)
    return raw.replace("\u2028".encode(), b"\\u2028").replace("\u2029".encode(), b"\\u2029")


@dataclass(frozen=True, slots=True)
class LegacyLayer:
    """One legacy ``<id>/`` directory: the layer's id and its ``json`` document."""

    id: str
    json: bytes
    diff_id: Digest


def legacy_layers(diff_ids: list[Digest], config: bytes) -> list[LegacyLayer]:
    """The legacy layer ids and json documents for an image, as containers/image computes them."""
    try:
        config_data = orjson.loads(config)
    except orjson.JSONDecodeError:
        config_data = {}
    if not isinstance(config_data, dict):
        config_data = {}
    result: list[LegacyLayer] = []
    chain: Digest | None = None
    parent = ""
    for position, diff_id in enumerate(diff_ids):
        fields: dict[str, Any] = {}
        if parent:
            fields["parent"] = parent
        if position == len(diff_ids) - 1:
            for attribute in _LEGACY_ATTRIBUTES:
                fields[attribute] = config_data.get(attribute)
        chain = diff_id if chain is None else Digest.of(f"{chain} {diff_id}".encode())
        with_chain = dict(sorted({**fields, "layer_id": str(chain)}.items()))
        layer_id = Digest.of(go_json(with_chain)).hex
        document = dict(sorted({**fields, "id": layer_id}.items()))
        result.append(LegacyLayer(layer_id, go_json(document), diff_id))
        parent = layer_id
    return result


def archive_manifest(config_name: str, tags: list[ImageName], layer_names: list[str]) -> bytes:
    """``manifest.json`` for one image, in Go's field order."""
    item = {"Config": config_name, "RepoTags": [repo_tag(t) for t in tags], "Layers": layer_names}
    return go_json([item])


def repositories(tags: list[ImageName], top_layer_id: str) -> bytes:
    """The legacy ``repositories`` file: ``{name: {tag: top layer id}}``, keys sorted."""
    table: dict[str, dict[str, str]] = {}
    for name in tags:
        table.setdefault(name.name, {})[name.tag or "latest"] = top_layer_id
    return go_json({key: dict(sorted(value.items())) for key, value in sorted(table.items())})
