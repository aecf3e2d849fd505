"""The memory of destination digests a copy changed (platform selection): unit behaviour of
:class:`ResultMemory` (missing/damaged file, concurrent saves, bounds) and, against real
registries, a platform-filtered no-op re-sync at <= 2 requests per tag."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from asyncsync.digest import Digest
from asyncsync.manifest import DOCKER_LIST, DOCKER_V2S2, Platform
from asyncsync.reference import ImageName
from asyncsync.specs.model import CopySettings, Origin
from asyncsync.sync import result_memory
from asyncsync.sync.plan import PlannedImage
from asyncsync.sync.result_memory import RESULTS_FILE, ResultMemory, remembers
from tests.helpers.asyncsync_cli import run_cli
from tests.helpers.images import make_image, make_multiarch, push_image_sync, push_index_sync
from tests.helpers.registry import RegistryFactory

SOURCE = Digest.of(b"index")
WRITTEN = Digest.of(b"child")
TAG = "reg.example/mirror/app:v1"
SYSTEM = CopySettings()


def _planned(media_type: str, settings: CopySettings, tag: str | None = "v1") -> PlannedImage:
    source = ImageName("src.example", "app", "v1", SOURCE)
    destination = ImageName("reg.example", "mirror/app", tag, None if tag else SOURCE)
    return PlannedImage(source, destination, media_type, Origin("sync.yaml", 1), settings)


def test_only_one_platform_out_of_an_index_unconverted_to_a_tag_is_remembered() -> None:
    assert remembers(_planned(DOCKER_LIST, SYSTEM))
    assert not remembers(_planned(DOCKER_V2S2, SYSTEM))  # predictable: the source digest
    assert not remembers(_planned(DOCKER_LIST, CopySettings(format="oci")))
    assert not remembers(
        _planned(DOCKER_LIST, CopySettings(multi_arch="all", platforms=(Platform("linux", "amd64"),)))
    )
    assert not remembers(_planned(DOCKER_LIST, SYSTEM, tag=None))


def test_a_recorded_result_is_expected_for_the_same_source_and_settings_only(tmp_path: Path) -> None:
    memory = ResultMemory(tmp_path)
    memory.record(TAG, SOURCE, SYSTEM, WRITTEN)
    memory.save()

    later = ResultMemory(tmp_path)
    assert later.expected(TAG, SOURCE, SYSTEM) == WRITTEN
    assert later.expected(TAG, Digest.of(b"moved"), SYSTEM) is None  # the source tag moved
    assert later.expected("reg.example/mirror/app:v2", SOURCE, SYSTEM) is None
    other_platform = CopySettings(platform=Platform("linux", "arm64", "v8"))
    assert later.expected(TAG, SOURCE, other_platform) is None
    assert later.expected(TAG, SOURCE, CopySettings(format="oci")) is None


@pytest.mark.parametrize("content", [b"", b"{not json", b"[1, 2]", b'{"version": 99, "entries": {}}'])
def test_a_missing_or_damaged_file_is_an_empty_memory_and_is_replaced(tmp_path: Path, content: bytes) -> None:
    (tmp_path / RESULTS_FILE).write_bytes(content)
    memory = ResultMemory(tmp_path)
    assert memory.expected(TAG, SOURCE, SYSTEM) is None
    memory.record(TAG, SOURCE, SYSTEM, WRITTEN)
    memory.save()
    assert ResultMemory(tmp_path).expected(TAG, SOURCE, SYSTEM) == WRITTEN
    assert ResultMemory(tmp_path / "absent").expected(TAG, SOURCE, SYSTEM) is None


def test_concurrent_runs_merge_their_entries_and_leave_no_temporary_file(tmp_path: Path) -> None:
    first, second = ResultMemory(tmp_path), ResultMemory(tmp_path)  # both loaded before either saved
    first.record(TAG, SOURCE, SYSTEM, WRITTEN)
    second.record("reg.example/mirror/other:v1", SOURCE, SYSTEM, WRITTEN)
    first.save()
    second.save()

    merged = ResultMemory(tmp_path)
    assert merged.expected(TAG, SOURCE, SYSTEM) == WRITTEN
    assert merged.expected("reg.example/mirror/other:v1", SOURCE, SYSTEM) == WRITTEN
    assert [p.name for p in tmp_path.iterdir()] == [RESULTS_FILE]


def test_an_unwritable_directory_is_ignored(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    memory = ResultMemory(blocker / "state")
    memory.record(TAG, SOURCE, SYSTEM, WRITTEN)
    memory.save()  # no exception: the memory is an optimisation
    assert ResultMemory(None).expected(TAG, SOURCE, SYSTEM) is None


def test_entries_are_bounded_keeping_the_most_recently_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(result_memory, "MAX_ENTRIES", 2)
    clock = iter(range(1000, 2000))
    monkeypatch.setattr(result_memory.time, "time", lambda: next(clock))
    memory = ResultMemory(tmp_path)
    for name in ("a", "b", "c"):
        memory.record(f"reg.example/r:{name}", SOURCE, SYSTEM, WRITTEN)
    memory.save()
    data = orjson.loads((tmp_path / RESULTS_FILE).read_bytes())
    assert sorted(data["entries"]) == ["reg.example/r:b", "reg.example/r:c"]


def test_platform_filtered_noop_resync_costs_two_requests_per_tag(
    make_registry: RegistryFactory, tmp_path: Path, isolated_home: Path
) -> None:
    """Without ``--all`` a multi-arch source tag is copied as this host's image: its digest differs
    from the source's, and only the memory lets a re-run skip it with one HEAD per side."""
    source, dest = make_registry("anon"), make_registry("anon")
    tags = {("proj/multi", "v1"), ("proj/multi", "v2"), ("proj/single", "v1")}
    push_index_sync(source, "proj/multi", "v1", make_multiarch("mem-1"))
    push_index_sync(source, "proj/multi", "v2", make_multiarch("mem-2", fmt="oci"))
    push_image_sync(source, "proj/single", "v1", make_image("mem-3"))
    spec = tmp_path / "sync.yaml"
    spec.write_text(
        f"{source.host}:\n  tls-verify: false\n  images:\n    proj/multi: [v1, v2]\n    proj/single: [v1]\n"
    )
    args = ("sync", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false", str(spec), dest.host)

    first = run_cli(*args)
    assert first.returncode == 0, first.all_output
    assert (isolated_home / ".cache" / "asyncsync" / RESULTS_FILE).is_file()
    source.reset_log()
    dest.reset_log()

    second = run_cli(*args)

    assert second.returncode == 0, second.all_output
    assert f"{len(tags)} skipped" in second.out
    assert source.count("GET", r"/v2/.+/manifests/.+") == 0
    assert [r for r in dest.requests() if r.method != "HEAD"] == []
    # One HEAD per tag on each side; for attachments the source's tag list per repository and one
    # referrers probe (this registry has no referrers API), the attachments' own budget.
    assert source.count("HEAD", r"/v2/.+/manifests/.+") == len(tags)
    assert dest.count("HEAD", r"/v2/.+/manifests/.+") == len(tags)
    assert source.count("GET", r"/v2/.+/tags/list") <= 2
    assert source.count("GET", r"/v2/.+/referrers/.+") <= 1
    assert len(source.requests()) <= len(tags) + 3

    # Someone overwrites a destination tag: the remembered digest no longer matches, it is copied.
    push_image_sync(dest, "multi", "v1", make_image("intruder"))
    third = run_cli(*args)
    assert third.returncode == 0, third.all_output
    assert "1 copied" in third.out and "2 skipped" in third.out, third.out

    # A damaged memory costs copies (GET of the index, blob checks), never a wrong result.
    (isolated_home / ".cache" / "asyncsync" / RESULTS_FILE).write_bytes(b"\x00garbage")
    source.reset_log()
    fourth = run_cli(*args)
    assert fourth.returncode == 0, fourth.all_output
    assert source.count("GET", r"/v2/proj/multi/manifests/.+") >= 2
