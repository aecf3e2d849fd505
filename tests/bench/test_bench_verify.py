"""bench.verify: a whole destination passes; a missing blob, a wrong digest and a missing tag are reported."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import aiohttp

from bench.push import push_workload
from bench.registries import Registry
from bench.verify import last_component_under, verify_destination
from bench.workload import Workload


def test_last_component_naming_matches_skopeo_sync_without_scoped() -> None:
    assert last_component_under("mirror")("proj/app-07") == "mirror/app-07"
    assert last_component_under("/a/b/")("x/y/z") == "a/b/z"
    assert last_component_under("")("proj/app-07") == "app-07"


def test_verifier_passes_a_whole_copy_and_names_each_damaged_tag(
    fresh_registry: Registry, small_workload: Workload
) -> None:
    asyncio.run(push_workload(small_workload, fresh_registry.url))
    identity = lambda repo: repo  # noqa: E731
    whole = asyncio.run(verify_destination(fresh_registry.url, small_workload.tags, identity))
    assert whole.ok, whole.summary()
    assert (whole.tags_checked, whole.manifests_checked) == (10, 14)  # 8 images + 2 indexes of 2

    single = [e for e in small_workload.tags if not e.is_index]
    unique_layer_of = single[0]
    manifest = json.loads(small_workload.read(unique_layer_of.digest))
    victim_blob = manifest["layers"][3]["digest"]  # the tag's own layer: only this tag uses it
    swapped = next(e for e in single if e.repo != unique_layer_of.repo)
    donor = next(e for e in single if e.repo == swapped.repo and e.tag != swapped.tag)

    async def damage() -> None:
        base = fresh_registry.url
        async with aiohttp.ClientSession() as session:
            url = f"{base}/v2/{unique_layer_of.repo}/blobs/{victim_blob}"
            async with session.delete(url) as resp:
                assert resp.status == 202
            body = small_workload.read(donor.digest)
            headers = {"Content-Type": donor.media_type}
            url = f"{base}/v2/{swapped.repo}/manifests/{swapped.tag}"
            async with session.put(url, data=body, headers=headers) as resp:
                assert resp.status == 201

    asyncio.run(damage())
    ghost = replace(single[-1], tag="v9.9.9")
    report = asyncio.run(verify_destination(fresh_registry.url, [*small_workload.tags, ghost], identity))
    assert not report.ok
    assert set(report.problems) == {
        f"{unique_layer_of.repo}:{unique_layer_of.tag}",
        f"{swapped.repo}:{swapped.tag}",
        f"{ghost.repo}:v9.9.9",
    }
    assert "missing" in report.problems[f"{unique_layer_of.repo}:{unique_layer_of.tag}"][0]
    assert "blob" in report.problems[f"{unique_layer_of.repo}:{unique_layer_of.tag}"][0]
    assert "digest mismatch" in report.problems[f"{swapped.repo}:{swapped.tag}"][0]
    assert "missing" in report.problems[f"{ghost.repo}:v9.9.9"][0]
    assert "3 of 11 tags" in report.summary()
