"""The destination crawler finds every kind of dangling reference (so "0 corrupt tags" means something)."""

from __future__ import annotations

import aiohttp
import pytest

from tests.helpers.crawl import crawl
from tests.helpers.images import make_image, make_multiarch, push_image, push_index
from tests.helpers.registry import RegistryServer


async def _delete(server: RegistryServer, repo: str, kind: str, digest: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.delete(f"{server.url}/v2/{repo}/{kind}/{digest}") as response,
    ):
        assert response.status == 202, await response.text()


@pytest.mark.anyio
async def test_complete_images_have_no_problems(registry_anon: RegistryServer) -> None:
    image = make_image("crawl-ok", layers=2)
    index = make_multiarch("crawl-ok-index")
    await push_image(registry_anon, "crawl/ok", "single", image)
    await push_index(registry_anon, "crawl/ok", "multi", index)
    result = await crawl(registry_anon, ["crawl/ok", "crawl/absent"])
    assert result.tags == {"crawl/ok:single": image.digest, "crawl/ok:multi": index.digest}
    assert result.corrupt_tags() == []
    assert result.complete({"crawl/ok:single": image.digest, "crawl/ok:multi": "sha256:" + "0" * 64}) == [
        "crawl/ok:single"
    ]
    assert result.blobs_checked == len(image.blobs()) + len(index.blobs())


@pytest.mark.anyio
async def test_missing_blob_and_missing_child_are_reported(registry_anon: RegistryServer) -> None:
    image = make_image("crawl-blob", layers=2)
    index = make_multiarch("crawl-child")
    await push_image(registry_anon, "crawl/broken", "single", image)
    await push_index(registry_anon, "crawl/broken", "multi", index)
    await _delete(registry_anon, "crawl/broken", "blobs", image.layer_digests[1])
    await _delete(registry_anon, "crawl/broken", "manifests", index.images[1].digest)
    result = await crawl(registry_anon, ["crawl/broken"])
    assert result.corrupt_tags() == ["crawl/broken:multi", "crawl/broken:single"]
    assert image.layer_digests[1] in " ".join(result.problems["crawl/broken:single"])
    assert index.images[1].digest in " ".join(result.problems["crawl/broken:multi"])
