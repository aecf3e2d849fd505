"""Manifest media types, descriptors and parsing. The raw bytes are always kept.

A manifest's identity is the digest of its exact bytes, so every parsed manifest carries
``raw`` and copies push ``raw`` unchanged; the parsed fields are only for reading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from asyncsync.digest import Digest
from asyncsync.errors import AsyncSyncError, ContentError, ManifestError
from asyncsync.jsondoc import load_json_object

MAX_MANIFEST_SIZE = 4 * 1024 * 1024

DOCKER_V2S2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_V2S1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_V2S1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_NONDIST_LAYER_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"

INDEX_TYPES = frozenset({DOCKER_LIST, OCI_INDEX})
IMAGE_TYPES = frozenset({DOCKER_V2S2, OCI_MANIFEST})
SCHEMA1_TYPES = frozenset({DOCKER_V2S1, DOCKER_V2S1_SIGNED})
ALL_MANIFEST_TYPES = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_V2S2, DOCKER_V2S1_SIGNED, DOCKER_V2S1)

#: The Accept header for manifest requests: every type we can read.
MANIFEST_ACCEPT = ", ".join(ALL_MANIFEST_TYPES)


@dataclass(frozen=True, slots=True)
class Platform:
    """The platform of an index entry (``os``/``architecture`` as in GOOS/GOARCH)."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Platform:
        return cls(
            os=str(data.get("os", "")),
            architecture=str(data.get("architecture", "")),
            variant=data.get("variant") or None,
            os_version=data.get("os.version") or None,
            os_features=tuple(data.get("os.features") or ()),
        )

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


@dataclass(frozen=True, slots=True)
class Descriptor:
    """An OCI content descriptor: what a manifest says about a blob or a child manifest."""

    media_type: str
    digest: Digest
    size: int
    urls: tuple[str, ...] = ()
    annotations: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    platform: Platform | None = None

    @classmethod
    def from_json(cls, data: Any, where: str) -> Descriptor:
        if not isinstance(data, dict):
            raise ManifestError(f"{where}: descriptor is not an object")
        try:
            digest = Digest.parse(str(data["digest"]))
            size = int(data["size"])
        except KeyError as exc:
            raise ManifestError(f"{where}: descriptor lacks {exc.args[0]!r}") from None
        except (AsyncSyncError, ValueError, TypeError) as exc:
            raise ManifestError(f"{where}: {exc}") from None
        if size < 0:
            raise ManifestError(f"{where}: negative size {size}")
        platform = data.get("platform")
        return cls(
            media_type=str(data.get("mediaType", "")),
            digest=digest,
            size=size,
            urls=tuple(data.get("urls") or ()),
            annotations=dict(data.get("annotations") or {}),
            platform=Platform.from_json(platform) if isinstance(platform, dict) else None,
        )

    @property
    def is_foreign(self) -> bool:
        """A non-distributable layer (Windows base layers): skopeo does not copy these by default."""
        return bool(self.urls) and self.media_type in (DOCKER_FOREIGN_LAYER, OCI_NONDIST_LAYER_GZIP)


@dataclass(frozen=True, slots=True)
class ImageManifest:
    """A single-platform image manifest (Docker v2s2 or OCI)."""

    raw: bytes
    media_type: str
    digest: Digest
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    def blobs(self) -> tuple[Descriptor, ...]:
        """Layers then config: the order in which a copy pushes them."""
        return (*self.layers, self.config)


@dataclass(frozen=True, slots=True)
class ImageIndex:
    """A multi-platform manifest list (Docker) or image index (OCI)."""

    raw: bytes
    media_type: str
    digest: Digest
    manifests: tuple[Descriptor, ...]
    annotations: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True, slots=True)
class Schema1Manifest:
    """A legacy Docker schema 1 manifest; readable (inspect) but not a copy target format."""

    raw: bytes
    media_type: str
    digest: Digest
    architecture: str
    fs_layers: tuple[Digest, ...]
    history: tuple[dict[str, Any], ...]


Manifest = ImageManifest | ImageIndex | Schema1Manifest


def guess_media_type(data: dict[str, Any]) -> str:
    """The media type of a manifest document whose transport did not say (oci:, dir:, files)."""
    declared = data.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if data.get("schemaVersion") == 1:
        return DOCKER_V2S1_SIGNED if "signatures" in data else DOCKER_V2S1
    if "manifests" in data:
        return OCI_INDEX
    if isinstance(data.get("config"), dict) and data["config"].get("mediaType") == DOCKER_CONFIG:
        return DOCKER_V2S2
    return OCI_MANIFEST


def parse_manifest(raw: bytes, media_type: str | None = None, *, digest: Digest | None = None) -> Manifest:
    """Parse ``raw`` into a manifest object. ``media_type`` is the Content-Type if known.

    The digest is computed from ``raw`` unless given; raises :class:`ManifestError` for
    oversized, non-JSON or structurally wrong documents and unsupported types.
    """
    if len(raw) > MAX_MANIFEST_SIZE:
        raise ManifestError(f"manifest is {len(raw)} bytes, over the {MAX_MANIFEST_SIZE} byte limit")
    data = load_json_object(raw, "manifest", ManifestError)
    media_type = (media_type or "").split(";")[0].strip()
    if not media_type or media_type in ("application/json", "text/plain", "application/octet-stream"):
        media_type = guess_media_type(data)
    digest = digest or Digest.of(raw)
    annotations = dict(data.get("annotations") or {})
    if media_type in INDEX_TYPES:
        entries = data.get("manifests")
        if not isinstance(entries, list):
            raise ManifestError("index has no 'manifests' list")
        manifests = tuple(Descriptor.from_json(m, f"manifests[{i}]") for i, m in enumerate(entries))
        return ImageIndex(raw, media_type, digest, manifests, annotations)
    if media_type in IMAGE_TYPES:
        layers = data.get("layers")
        if not isinstance(layers, list):
            raise ManifestError("manifest has no 'layers' list")
        config = Descriptor.from_json(data.get("config"), "config")
        layer_descs = tuple(Descriptor.from_json(m, f"layers[{i}]") for i, m in enumerate(layers))
        return ImageManifest(raw, media_type, digest, config, layer_descs, annotations)
    if media_type in SCHEMA1_TYPES:
        try:
            fs_layers = tuple(Digest.parse(str(entry["blobSum"])) for entry in data.get("fsLayers", []))
        except (KeyError, TypeError, AsyncSyncError) as exc:
            raise ManifestError(f"schema 1 manifest has a bad fsLayers entry: {exc}") from None
        history = tuple(h for h in data.get("history", []) if isinstance(h, dict))
        return Schema1Manifest(raw, media_type, digest, str(data.get("architecture", "")), fs_layers, history)
    raise ManifestError(f"unsupported manifest media type {media_type!r}")


def manifest_digest(raw: bytes) -> Digest:
    """The digest of a manifest as a registry computes it.

    For a signed schema 1 manifest that is the digest of the payload without the JWS
    signatures (as in docker/libtrust); for everything else the digest of the bytes.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return Digest.of(raw)
    if isinstance(data, dict) and data.get("schemaVersion") == 1 and data.get("signatures"):
        try:
            return Digest.of(_schema1_payload(raw, data))
        except (KeyError, IndexError, TypeError, AttributeError, ValueError, orjson.JSONDecodeError):
            raise ManifestError("signed schema 1 manifest has an invalid signature header") from None
    return Digest.of(raw)


def _schema1_payload(raw: bytes, data: dict[str, Any]) -> bytes:
    import base64

    protected = data["signatures"][0].get("protected", "")
    header = orjson.loads(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))
    format_length = int(header["formatLength"])
    tail = base64.urlsafe_b64decode(header["formatTail"] + "=" * (-len(header["formatTail"]) % 4))
    return raw[:format_length] + tail


def choose_platform(
    index: ImageIndex, os: str, architecture: str, variant: str | None = None
) -> Descriptor | None:
    """The index entry best matching the platform: exact variant first, then any variant."""
    candidates = [
        d
        for d in index.manifests
        if d.platform is not None and d.platform.os == os and d.platform.architecture == architecture
    ]
    if variant:
        exact = [d for d in candidates if d.platform is not None and d.platform.variant == variant]
        if exact:
            return exact[0]
    return candidates[0] if candidates else None


def no_instance_message(index: ImageIndex, platform: Platform) -> str:
    """containers/image's words when ``index`` has no image for ``platform`` (scripts grep them):
    ``no image found in manifest list for architecture amd64, variant "", OS linux`` (``image
    index`` for an OCI index; the variant quoted as Go's ``%q`` does)."""
    kind = "manifest list" if index.media_type == DOCKER_LIST else "image index"
    variant = orjson.dumps(platform.variant or "").decode()
    wanted = f"architecture {platform.architecture}, variant {variant}, OS {platform.os}"
    return f"no image found in {kind} for {wanted}"


_MACHINE_TO_GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i386": "386",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


def host_platform() -> Platform:
    """The platform of this machine in GOOS/GOARCH terms, as skopeo picks by default."""
    import platform as _platform

    machine = _platform.machine().lower()
    arch = _MACHINE_TO_GOARCH.get(machine, machine)
    variant = {"armv7l": "v7", "armv6l": "v6", "aarch64": "v8", "arm64": "v8"}.get(machine)
    return Platform(os="linux", architecture=arch, variant=variant)


def referrers_entries(body: bytes, what: str) -> list[Any]:
    """The ``manifests`` list of a referrers index (the referrers API's answer or the document at a
    fallback tag ``sha256-<hex>``); a one-line :class:`ContentError` when it is not one."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ContentError(f"{what}: the referrers index is not JSON") from None
    if not isinstance(data, dict):
        raise ContentError(f"{what}: the referrers index is not a JSON object")
    entries = data.get("manifests")
    if not isinstance(entries, list):
        raise ContentError(f"{what}: the referrers index has no 'manifests' list")
    return entries
