"""--prune: delete destination tags the spec selects but the source no longer has, and nothing else.

One mirror, after the source lost a tag, holds: the lost tag (pruned), a selected tag that shares
its digest with a kept tag (left: deleting the manifest would take the kept tag too), a tag the
spec's filter does not select (untouched), a repository outside the spec (untouched), and a
repository whose source vanished from the listing (untouched). ``--dry-run`` prints the same
decisions and deletes nothing; the real run deletes exactly the lost tag.
"""

from __future__ import annotations

import http.client
import json
import shutil
from pathlib import Path

import pytest

from asyncsync.digest import Digest
from asyncsync.specs.filters import TagFilter, compile_tag_regex
from asyncsync.specs.model import CopySettings, Destination, Origin, SourceSelector, SyncEntry
from asyncsync.sync.prune import _Mapping, _Target
from tests.helpers.asyncsync_cli import run_cli
from tests.helpers.images import (
    get_manifest_sync,
    list_tags_sync,
    make_image,
    make_index,
    push_image_sync,
    push_index_sync,
    push_manifest_sync,
)
from tests.helpers.registry import RegistryFactory, RegistryServer


def _delete_tagged(server: RegistryServer, repo: str, tag: str) -> None:
    _, raw = get_manifest_sync(server, repo, tag)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request("DELETE", f"/v2/{repo}/manifests/{Digest.of(raw)}")
        assert connection.getresponse().status == 202
    finally:
        connection.close()


def _entry(tags: TagFilter, suffix: str = "") -> SyncEntry:
    return SyncEntry(
        origin=Origin("spec.yaml", 3),
        sources=(SourceSelector("src.example", "team/app", 3),),
        destination=Destination("repository", "dst.example", "mirror/app"),
        tags=tags,
        settings=CopySettings(),
        tag_suffix=suffix,
    )


DESTINATION_TAGS = {"v1", "v2", "v3", "latest", "v2-m", "2.0-rc1"}


@pytest.mark.parametrize(
    ("tags", "suffix", "source_tags", "expected"),
    [
        # include regex: every selected tag the source lacks ("latest" is not selected)
        (TagFilter(include=compile_tag_regex("^v")), "", {"v1"}, {"v2", "v3", "v2-m"}),
        # explicit list: only the listed tags
        (TagFilter(tags=(("v1", 4), ("v2", 5))), "", {"v1"}, {"v2"}),
        # a tag suffix: only tags carrying it, mapped back to the source tag
        (TagFilter(include=compile_tag_regex("^v")), "-m", {"v1"}, {"v2-m"}),
        # latest: v2 would not rank among the latest 1 next to v3, so it is not the spec's
        (TagFilter(latest=1), "", {"v3"}, set()),
        (TagFilter(latest=1), "", {"v1"}, {"v2", "v3", "v2-m", "2.0-rc1"}),
        # the source still has everything: nothing
        (TagFilter(), "", DESTINATION_TAGS, set()),
    ],
)
def test_a_tag_is_prunable_when_the_spec_selects_it_and_the_source_lost_it(
    tags: TagFilter, suffix: str, source_tags: set[str], expected: set[str]
) -> None:
    entry = _entry(tags, suffix)
    mapping = _Mapping(entry, entry.sources[0], "team/app", frozenset(source_tags))
    target = _Target("dst.example", "mirror/app", [mapping])
    assert {tag for tag in DESTINATION_TAGS if target.prunable(tag)} == expected


def test_prune_dry_run_then_real_run_deletes_only_what_it_should(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source, target = make_registry("anon"), make_registry("anon")
    images = {tag: make_image(f"prune-{tag}", layers=1) for tag in ("v1", "v2", "v3")}
    for tag, image in images.items():
        push_image_sync(source, "team/app", tag, image)
    push_image_sync(source, "team/gone", "v1", make_image("prune-gone", layers=1))
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"""version: 1
registries:
  {source.host}: {{tls-verify: false}}
  {target.host}: {{tls-verify: false}}
sync:
  - from: {source.host}/team/*
    to: {target.host}/mirror/
    tags: {{include: '^v'}}
"""
    )
    assert run_cli("sync", "--no-mount-cache", str(spec)).returncode == 0
    # The source loses v2 and the whole team/gone repository.
    _delete_tagged(source, "team/app", "v2")
    # A repository deleted outright (as Harbor deletes one) leaves the catalog; distribution
    # keeps an emptied repository listed, so its directory goes.
    shutil.rmtree(source.data_dir / "docker/registry/v2/repositories/team/gone")
    # The destination gains: a selected tag sharing v1's digest, an unselected tag, a repo outside the spec.
    v1 = images["v1"]
    push_manifest_sync(target, "mirror/app", "v9", v1.manifest, v1.media_type)
    push_image_sync(target, "mirror/app", "handmade", make_image("prune-handmade", layers=1))
    push_image_sync(target, "other/app", "v2", make_image("prune-other", layers=1))
    before = {repo: list_tags_sync(target, repo) for repo in ("mirror/app", "mirror/gone", "other/app")}

    preview = run_cli("sync", "--no-mount-cache", "--prune", "--dry-run", str(spec))

    assert preview.returncode == 0, preview.all_output
    lines = [line for line in preview.out.splitlines() if line.startswith(("prune", "keep"))]
    assert len(lines) == 3, preview.out
    assert lines[0].startswith(f"prune   {target.host}/mirror/app:v2 (sha256:")
    assert lines[0].endswith("selected by the spec, no longer in the source")
    assert lines[1].startswith(f"keep    {target.host}/mirror/app:v9 (sha256:")
    assert lines[1].endswith("digest also tagged 'v1', which is kept")
    assert lines[2] == "prune: 1 tag(s) to delete"
    assert {repo: list_tags_sync(target, repo) for repo in before} == before  # nothing deleted

    report = tmp_path / "report.json"
    result = run_cli("sync", "--no-mount-cache", "--prune", "--report", str(report), str(spec))

    assert result.returncode == 0, result.all_output
    assert list_tags_sync(target, "mirror/app") == ["handmade", "v1", "v3", "v9"]
    assert list_tags_sync(target, "mirror/gone") == ["v1"]  # its source is not listed any more: untouched
    assert list_tags_sync(target, "other/app") == ["v2"]  # outside the spec
    assert "Pruned 1 tag(s); left 1 with a reason; 0 error(s)" in result.out
    pruned = json.loads(report.read_text())["prune"]["tags"]
    assert sorted((t["destination"], t["action"]) for t in pruned) == [
        (f"{target.host}/mirror/app:v2", "deleted"),
        (f"{target.host}/mirror/app:v9", "keep"),
    ]


def test_prune_keeps_children_of_kept_indexes_and_is_skipped_when_the_source_listing_fails(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source, target = make_registry("anon"), make_registry("anon")
    child = make_image("prune-child", layers=1)
    index = make_index([child])
    push_index_sync(source, "team/multi", "v1", index)
    push_image_sync(source, "team/multi", "v2", child)  # the child is also tagged on its own
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"""version: 1
registries:
  {source.host}: {{tls-verify: false}}
  {target.host}: {{tls-verify: false}}
sync:
  - from: {source.host}/team/multi
    to: {target.host}/mirror/multi
"""
    )
    assert run_cli("sync", "--no-mount-cache", str(spec)).returncode == 0
    _delete_tagged(source, "team/multi", "v2")  # deletes the child manifest in the source

    result = run_cli("sync", "--no-mount-cache", "--prune", str(spec))

    # v2 left the source, but its manifest is a child of v1, which stays: deleting it would break v1.
    assert "a child of kept index tag 'v1'" in result.out, result.all_output
    assert list_tags_sync(target, "mirror/multi") == ["v1", "v2"]

    missing = tmp_path / "missing.yaml"
    missing.write_text(spec.read_text().replace("team/multi\n", "team/never-existed\n"))
    result = run_cli("sync", "--no-mount-cache", "--prune", "--dry-run", str(missing))
    assert "not listed, nothing pruned" in result.out, result.all_output
    assert "prune: 0 tag(s) to delete" in result.out
