"""Test images with uncompressed or zstd layers (and damaged ones), built from generated images.

:func:`relayered` rewrites a :class:`~tests.helpers.images.GeneratedImage` with each layer stored
another way (uncompressed, zstd, or bytes a test supplies) and the matching media types; the
config (so ``diff_ids``) is the original's. :func:`push_relayered` pushes one to a registry and
:func:`write_oci_layout` writes one as an ``oci:`` layout, both without asyncsync.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import zstandard

from tests.helpers.images import GeneratedImage, _Client, digest_of, push_blob, push_manifest
from tests.helpers.registry import RegistryServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@dataclass(frozen=True)
class Relayered:
    """An image manifest, its media type and every blob (config first)."""

    manifest: bytes
    media_type: str
    blobs: dict[str, bytes]
    layer_digests: list[str]
    config_digest: str

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)


def plain(layer: bytes) -> bytes:
    return gzip.decompress(layer)


def zstd(layer: bytes) -> bytes:
    return zstandard.ZstdCompressor(write_checksum=True).compress(gzip.decompress(layer))


def unzstd(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True).read()


def diff_id(data: bytes) -> str:
    """sha256 of a layer blob's uncompressed content, whatever its compression."""
    if data[:4] == b"\x28\xb5\x2f\xfd":
        data = unzstd(data)
    elif data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return "sha256:" + hashlib.sha256(data).hexdigest()


def relayered(
    image: GeneratedImage, store: Callable[[bytes], bytes], layer_type: str, *, oci: bool = True
) -> Relayered:
    """``image`` with each layer replaced by ``store(gzip layer)`` of media type ``layer_type``."""
    layers = [store(layer) for layer in image.layers]
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG if oci else DOCKER_CONFIG,
            "digest": image.config_digest,
            "size": len(image.config),
        },
        "layers": [{"mediaType": layer_type, "digest": digest_of(d), "size": len(d)} for d in layers],
    }
    blobs = {image.config_digest: image.config, **{digest_of(d): d for d in layers}}
    return Relayered(
        json.dumps(manifest).encode(),
        str(manifest["mediaType"]),
        blobs,
        [digest_of(d) for d in layers],
        image.config_digest,
    )


async def push_relayered(server: RegistryServer, repo: str, tag: str, image: Relayered) -> None:
    for data in image.blobs.values():
        await push_blob(server, repo, data)
    await push_manifest(server, repo, tag, image.manifest, image.media_type)


def write_oci_layout(path: Path, image: Relayered, name: str) -> Path:
    """An ``oci:`` layout at ``path`` holding ``image`` as ``name``."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for digest, data in {**image.blobs, image.digest: image.manifest}.items():
        (blobs / digest.removeprefix("sha256:")).write_bytes(data)
    (path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    entry = {
        "mediaType": image.media_type,
        "digest": image.digest,
        "size": len(image.manifest),
        "annotations": {"org.opencontainers.image.ref.name": name},
    }
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    return path


async def fetch_blob(server: RegistryServer, repo: str, digest: str) -> bytes:
    """A blob's bytes as the registry serves them (the raw client of tests.helpers.images)."""
    async with _Client(server, None) as client:
        response = await client.request("GET", repo, f"/v2/{repo}/blobs/{digest}", actions="pull")
    assert response.status == 200, response.status
    return response.body
