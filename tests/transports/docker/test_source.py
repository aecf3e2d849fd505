"""DockerSource: manifests by tag and digest, blob streams from an offset, tags, locations."""

from __future__ import annotations

import pytest

from asyncsync.manifest import DOCKER_LIST, DOCKER_V2S2, Descriptor, parse_manifest
from asyncsync.registry.client import RegistryOptions
from asyncsync.transports.base import BlobLocation, ImageSource
from asyncsync.transports.docker.source import DockerSource
from tests.copy.support import ScriptedSource, copy_run, ref, registry_options, serve_scripted
from tests.helpers.images import make_image, make_multiarch, push_index
from tests.helpers.registry import RegistryServer

pytestmark = pytest.mark.anyio


async def test_reads_index_children_blobs_and_tags(registry_basic: RegistryServer) -> None:
    index = make_multiarch("source-index", layers=1)
    await push_index(registry_basic, "source/multi", "v1", index)
    child = index.images[0]
    async with copy_run() as run:
        source = await ref(registry_basic, "source/multi:v1").new_source(
            run.context(registry_options(registry_basic))
        )
        assert isinstance(source, ImageSource) and isinstance(source, DockerSource)
        raw, media_type = await source.get_manifest()
        assert (raw, media_type) == (index.manifest, DOCKER_LIST)
        child_raw, child_type = await source.get_manifest(parse_manifest(raw).manifests[0].digest)  # type: ignore[union-attr]
        assert (child_raw, child_type) == (child.manifest, DOCKER_V2S2)
        layer = parse_manifest(child_raw).layers[0]  # type: ignore[union-attr]
        async with source.open_blob(layer, 100) as chunks:
            tail = b"".join([chunk async for chunk in chunks])
        assert tail == child.layers[0][100:]
        assert source.last_range_honoured is True
        assert await source.list_tags() == ["v1"]
        assert source.blob_locations() == (BlobLocation(registry_basic.host, "source/multi"),)
        await source.close()


async def test_offset_without_range_support_skips_delivered_bytes() -> None:
    image = make_image("no-range", layers=1, layer_size=100_000)
    scripted = ScriptedSource({"v1": (image.media_type, image.manifest)}, image.blobs())
    layer = parse_manifest(image.manifest, image.media_type).layers[0]  # type: ignore[union-attr]
    assert isinstance(layer, Descriptor)
    async with serve_scripted(scripted), copy_run() as run:
        source = await ref(scripted.host, "x/y:v1").new_source(run.context(RegistryOptions(tls_verify=False)))
        assert isinstance(source, DockerSource)
        async with source.open_blob(layer, 70_000) as chunks:
            tail = b"".join([chunk async for chunk in chunks])
    assert tail == image.layers[0][70_000:]
    assert source.last_range_honoured is False
    assert scripted.gets[-1][1] == "bytes=70000-"


async def test_media_type_falls_back_to_the_document() -> None:
    image = make_image("generic-type", layers=1)
    scripted = ScriptedSource({"v1": ("application/octet-stream", image.manifest)}, image.blobs())
    async with serve_scripted(scripted), copy_run() as run:
        source = await ref(scripted.host, "x/y:v1").new_source(run.context(RegistryOptions(tls_verify=False)))
        assert (await source.get_manifest())[1] == DOCKER_V2S2
