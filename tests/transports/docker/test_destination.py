"""DockerDestination: reuse (HEAD), mounts, refused-mount sessions, uploads and manifests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from asyncsync.digest import Digest
from asyncsync.manifest import DOCKER_V2S2, Descriptor, parse_manifest
from asyncsync.transports.base import BlobLocation, BytesBlobDestination, ImageDestination, ReuseKind
from asyncsync.transports.docker import destination as docker_destination
from asyncsync.transports.docker.destination import SMALL_BLOB_SIZE, DockerDestination
from tests.copy.support import copy_run, ref, registry_options
from tests.helpers import skopeo
from tests.helpers.images import blob_exists, make_image, push_blob, push_image
from tests.helpers.registry import RegistryServer

pytestmark = pytest.mark.anyio
UPLOADS = r"/v2/{}/blobs/uploads/.*"


async def _stream(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 4096):
        yield data[start : start + 4096]


async def test_reuse_exists_mounts_or_keeps_the_refused_session(registry_anon: RegistryServer) -> None:
    image = make_image("destination", layers=2)
    manifest = parse_manifest(image.manifest, image.media_type)
    layers = manifest.layers  # type: ignore[union-attr]
    await push_blob(registry_anon, "dest/target", image.layers[0])
    await push_blob(registry_anon, "dest/elsewhere", image.layers[1])
    here = registry_anon.host
    async with copy_run() as run:
        destination = await ref(registry_anon, "dest/target:v1").new_destination(
            run.context(registry_options(registry_anon))
        )
        assert isinstance(destination, ImageDestination) and isinstance(destination, DockerDestination)
        exists = await destination.try_reuse_blob(layers[0])
        assert exists is not None and exists.kind is ReuseKind.EXISTS and exists.size == layers[0].size
        mounted = await destination.try_reuse_blob(
            layers[1], [BlobLocation("other.example", "x"), BlobLocation(here, "dest/elsewhere")]
        )
        assert mounted is not None and mounted.kind is ReuseKind.MOUNTED
        assert mounted.mounted_from == "dest/elsewhere"
        config = manifest.config  # type: ignore[union-attr]
        registry_anon.reset_log()
        assert await destination.try_reuse_blob(config, [BlobLocation(here, "dest/elsewhere")]) is None
        await destination.put_blob(config, _stream(image.config))
        # The refused mount's 202 session carried the upload: one POST in all.
        assert registry_anon.count("POST", UPLOADS.format("dest/target")) == 1
        assert registry_anon.count("PUT", UPLOADS.format("dest/target"), status=201) == 1
        digest = await destination.put_manifest(image.manifest, DOCKER_V2S2)
        assert str(digest) == image.digest
        await destination.commit()
        await destination.close()
    assert skopeo.inspect(registry_anon, "dest/target:v1")["Digest"] == image.digest


async def test_close_cancels_an_unused_refused_mount_session(registry_anon: RegistryServer) -> None:
    image = make_image("cancel-pending", layers=1)
    layer = parse_manifest(image.manifest, image.media_type).layers[0]  # type: ignore[union-attr]
    async with copy_run() as run:
        destination = await ref(registry_anon, "dest/cancel:v1").new_destination(
            run.context(registry_options(registry_anon))
        )
        registry_anon.reset_log()
        assert (
            await destination.try_reuse_blob(layer, [BlobLocation(registry_anon.host, "dest/none")]) is None
        )
        await destination.close()
    assert registry_anon.count("DELETE", UPLOADS.format("dest/cancel"), status=204) == 1


async def test_failed_stream_cancels_the_upload(registry_anon: RegistryServer) -> None:
    image = make_image("broken-stream", layers=1)
    layer = parse_manifest(image.manifest, image.media_type).layers[0]  # type: ignore[union-attr]

    async def broken() -> AsyncIterator[bytes]:
        yield image.layers[0][:1000]
        raise ValueError("source exploded")

    async with copy_run() as run:
        destination = await ref(registry_anon, "dest/broken:v1").new_destination(
            run.context(registry_options(registry_anon))
        )
        registry_anon.reset_log()
        with pytest.raises(ValueError, match="source exploded"):
            await destination.put_blob(layer, broken())
        await destination.close()
    # The cancel is sent; distribution 2.8 has usually dropped the broken upload already (404).
    assert registry_anon.count("DELETE", UPLOADS.format("dest/broken")) == 1
    assert not await blob_exists(registry_anon, "dest/broken", str(layer.digest))


async def test_put_manifest_by_digest_for_children(registry_anon: RegistryServer) -> None:
    image = make_image("by-digest", layers=1)
    await push_image(registry_anon, "dest/children", "seed", image)
    async with copy_run() as run:
        destination = await ref(registry_anon, "dest/children:v1").new_destination(
            run.context(registry_options(registry_anon))
        )
        digest = await destination.put_manifest(image.manifest, DOCKER_V2S2, Digest.parse(image.digest))
        await destination.close()
    assert str(digest) == image.digest
    assert skopeo.inspect_raw(registry_anon, f"dest/children@{image.digest}") == image.manifest


async def test_small_blobs_go_as_bytes_once_round_trips_are_known_short(
    registry_anon: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = make_image("as-bytes", layers=1)
    manifest = parse_manifest(image.manifest, image.media_type)
    config, layer = manifest.config, manifest.layers[0]  # type: ignore[union-attr]
    big = Descriptor(layer.media_type, layer.digest, SMALL_BLOB_SIZE + 1)
    async with copy_run() as run:
        destination = await ref(registry_anon, "dest/bytes:v1").new_destination(
            run.context(registry_options(registry_anon))
        )
        assert isinstance(destination, BytesBlobDestination)
        # No exchange with the registry yet: its round trip is unknown, so blobs stream.
        assert not destination.wants_bytes(config)
        assert await destination.try_reuse_blob(layer) is None  # a HEAD: now the round trip is known
        # (Any loopback exchange counts as short here: on a loaded machine one may take 5 ms.)
        monkeypatch.setattr(docker_destination, "SHORT_ROUND_TRIP", 60.0)
        assert destination.wants_bytes(config) and destination.wants_bytes(layer)
        assert not destination.wants_bytes(big)
        monkeypatch.setattr(docker_destination, "SHORT_ROUND_TRIP", 0.0)
        assert not destination.wants_bytes(config)  # a long link: the stream overlaps GET and POST
        registry_anon.reset_log()
        await destination.put_blob_bytes(config, image.config)
        await destination.put_blob_bytes(layer, image.layers[0])
        await destination.close()
    assert registry_anon.count("POST", UPLOADS.format("dest/bytes"), status=202) == 2
    assert registry_anon.count("PUT", UPLOADS.format("dest/bytes"), status=201) == 2
    assert await blob_exists(registry_anon, "dest/bytes", str(config.digest))
    assert await blob_exists(registry_anon, "dest/bytes", str(layer.digest))


async def test_small_blobs_stream_where_uploads_are_chunked(registry_anon: RegistryServer) -> None:
    image = make_image("bytes-chunked", layers=1, layer_size=64 * 1024)
    layer = parse_manifest(image.manifest, image.media_type).layers[0]  # type: ignore[union-attr]
    async with copy_run() as run:
        destination = await ref(registry_anon, "dest/chunky:v1").new_destination(
            run.context(registry_options(registry_anon), chunk_size=16 * 1024)
        )
        assert isinstance(destination, DockerDestination)
        assert await destination.try_reuse_blob(layer) is None
        assert not destination.wants_bytes(layer)
        registry_anon.reset_log()
        # Called anyway (the registry turned chunked meanwhile), the bytes go in chunks.
        await destination.put_blob_bytes(layer, image.layers[0])
        await destination.close()
    assert registry_anon.count("PATCH", UPLOADS.format("dest/chunky")) == -(-layer.size // (16 * 1024))
    assert await blob_exists(registry_anon, "dest/chunky", str(layer.digest))
