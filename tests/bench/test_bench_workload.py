"""bench.workload and bench.push: a deterministic Harbor-like workload that seeds a real registry."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import yaml

from bench.push import push_workload
from bench.registries import Registry
from bench.verify import verify_destination
from bench.workload import MEDIA, SCALES, Workload, generate, params_from, write_skopeo_yaml


def _image_manifests(workload: Workload) -> list[tuple[str, dict[str, object]]]:
    """(repo, manifest) for every image manifest, children of indexes included."""
    out: list[tuple[str, dict[str, object]]] = []
    for entry in workload.tags:
        document = json.loads(workload.read(entry.digest))
        children = [c["digest"] for c in document["manifests"]] if entry.is_index else [entry.digest]
        out.extend((entry.repo, json.loads(workload.read(d))) for d in children)
    return out


def test_same_params_give_identical_digests_and_other_seeds_differ(tmp_path: Path) -> None:
    first = generate(SCALES["small"], tmp_path / "a")
    second = generate(SCALES["small"], tmp_path / "b")
    other = generate(params_from("small", seed=2), tmp_path / "c")
    assert [e.digest for e in first.tags] == [e.digest for e in second.tags]
    assert {e.digest for e in first.tags}.isdisjoint({e.digest for e in other.tags})


def test_cached_workload_is_loaded_without_regenerating(tmp_path: Path) -> None:
    first = generate(SCALES["small"], tmp_path)
    stamp = (first.root / "workload.json").stat().st_mtime_ns
    again = generate(SCALES["small"], tmp_path)
    assert again.tags == first.tags
    assert (again.root / "workload.json").stat().st_mtime_ns == stamp


def test_shape_media_types_multiarch_and_sharing(small_workload: Workload) -> None:
    params = small_workload.params
    assert len(small_workload.tags) == params.repos * params.tags_per_repo == 10
    assert len({e.repo for e in small_workload.tags}) == params.repos
    assert all(e.repo.count("/") == 1 for e in small_workload.tags)
    indexes = [e for e in small_workload.tags if e.is_index]
    assert len(indexes) == 2 and all(e.platforms == 2 for e in indexes)
    kinds = {e.media_type for e in small_workload.tags}
    assert MEDIA["docker"].manifest in kinds and MEDIA["oci"].manifest in kinds
    layers_by_repo: dict[str, list[list[str]]] = {}
    for repo, manifest in _image_manifests(small_workload):
        layers_by_repo.setdefault(repo, []).append([layer["digest"] for layer in manifest["layers"]])  # type: ignore[attr-defined]
    repo0, repo2 = layers_by_repo["proj/app-00"], layers_by_repo["proj/app-02"]
    # Repos 0 and 2 share base 0 (two layers); tags of one repo share its dependency layer.
    assert repo0[0][:2] == repo2[0][:2]
    assert repo0[0][2] == repo0[1][2] != repo2[0][2]
    unique = [layers[3] for layers in (*repo0, *repo2)]
    assert len(set(unique)) == len(unique)


def test_layers_are_gzip_tars_matching_the_config_diff_ids(small_workload: Workload) -> None:
    repo, manifest = _image_manifests(small_workload)[0]
    config = json.loads(small_workload.read(manifest["config"]["digest"]))  # type: ignore[index]
    layers = manifest["layers"]
    assert isinstance(layers, list)
    assert len(config["rootfs"]["diff_ids"]) == len(layers) == 4
    for layer, diff_id in zip(layers, config["rootfs"]["diff_ids"], strict=True):
        blob = small_workload.read(layer["digest"])
        assert len(blob) == layer["size"]
        assert "sha256:" + hashlib.sha256(blob).hexdigest() == layer["digest"]
        raw = gzip.decompress(blob)
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == diff_id
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            assert any(member.isfile() and member.size > 0 for member in tar.getmembers())
    assert config["config"]["Labels"]["bench.repo"] == repo


def test_push_seeds_a_registry_and_a_reseed_only_heads_tags(
    fresh_registry: Registry, small_workload: Workload
) -> None:
    stats = asyncio.run(push_workload(small_workload, fresh_registry.url))
    assert stats.tags_pushed == 10 and stats.tags_skipped == 0
    assert stats.blobs_mounted > 0  # base layers are shared across repos: uploaded once, then mounted
    report = asyncio.run(verify_destination(fresh_registry.url, small_workload.tags, lambda repo: repo))
    assert report.ok, report.summary()
    fresh_registry.truncate_log()
    again = asyncio.run(push_workload(small_workload, fresh_registry.url))
    assert (again.tags_pushed, again.tags_skipped, again.blobs_uploaded) == (0, 10, 0)
    assert fresh_registry.counts() == {"HEAD": 10}


def test_skopeo_yaml_lists_every_tag_under_the_registry_key(small_workload: Workload, tmp_path: Path) -> None:
    path = write_skopeo_yaml(small_workload, "127.0.0.1:5000", tmp_path / "sync.yaml")
    spec = yaml.safe_load(path.read_text())
    assert list(spec) == ["127.0.0.1:5000"]
    assert spec["127.0.0.1:5000"]["tls-verify"] is False
    images = spec["127.0.0.1:5000"]["images"]
    assert sum(len(tags) for tags in images.values()) == 10
    assert images["proj/app-00"] == ["v1.0.0", "v1.1.0"]
