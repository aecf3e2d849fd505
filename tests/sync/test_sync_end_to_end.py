"""``asyncsync sync`` end to end against real docker-registry instances.

Covers the skopeo-format spec and the native spec, dedup of shared layers (uploaded once),
cross-repo mounts, skip-unchanged re-runs that write nothing, a failing image reported while
the others complete, and the JSON report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.asyncsync_cli import run_cli
from tests.helpers.images import (
    get_manifest_sync,
    list_tags_sync,
    make_image,
    make_layer,
    make_multiarch,
    push_image_sync,
    push_index_sync,
)
from tests.helpers.registry import RegistryFactory, RegistryServer


def _seed(source: RegistryServer, seed: int, blobs: set[str] | None = None) -> dict[tuple[str, str], str]:
    """Three repos under ``proj/``: two tags each sharing a base layer, one multi-arch tag.

    Returns ``(repo, tag) -> manifest digest``; adds every distinct blob digest to ``blobs``.
    """
    base = make_layer(f"base-{seed}", 64 * 1024)
    expected: dict[tuple[str, str], str] = {}
    seen = blobs if blobs is not None else set()
    for r in range(3):
        repo = f"proj/app{r}"
        for t in range(2):
            image = make_image(
                f"{seed}-{r}-{t}", layers=1, shared_layers=[base], fmt="oci" if t else "docker"
            )
            push_image_sync(source, repo, f"v1.{t}", image)
            expected[(repo, f"v1.{t}")] = image.digest
            seen.update(image.blobs())
    index = make_multiarch(f"{seed}-multi")
    push_index_sync(source, "proj/multi", "latest", index)
    expected[("proj/multi", "latest")] = index.digest
    seen.update(index.blobs())
    return expected


def _skopeo_spec(tmp_path: Path, source: RegistryServer, expected: dict[tuple[str, str], str]) -> Path:
    images: dict[str, list[str]] = {}
    for repo, tag in expected:
        images.setdefault(repo, []).append(tag)
    lines = [f"{source.host}:", "  tls-verify: false", "  images:"]
    for repo, tags in images.items():
        lines.append(f"    {repo}: [{', '.join(tags)}]")
    spec = tmp_path / "sync.yaml"
    spec.write_text("\n".join(lines) + "\n")
    return spec


def _blob_uploads(server: RegistryServer) -> int:
    return server.count("PUT", r"/v2/.+/blobs/uploads/.*")


def test_skopeo_spec_sync_copies_everything_digest_equal_and_dedups(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source, dest = make_registry("anon"), make_registry("anon")
    blobs: set[str] = set()
    expected = _seed(source, 1, blobs)
    spec = _skopeo_spec(tmp_path, source, expected)
    report = tmp_path / "report.json"

    result = run_cli(
        "sync",
        "--src",
        "yaml",
        "--dest",
        "docker",
        "--all",
        "--dest-tls-verify=false",
        "--no-mount-cache",
        "--report",
        str(report),
        str(spec),
        f"{dest.host}/mirror",
    )

    assert result.returncode == 0, result.all_output
    for (repo, tag), digest in expected.items():
        name = repo.rsplit("/", 1)[-1]  # skopeo naming: last path component under DEST
        _, raw = get_manifest_sync(dest, f"mirror/{name}", tag)
        from hashlib import sha256

        assert "sha256:" + sha256(raw).hexdigest() == digest, (repo, tag)
    data = json.loads(report.read_text())
    assert data["summary"]["copied"] == len(expected)
    assert data["summary"]["failed"] == 0
    # Every distinct blob was uploaded exactly once; the shared base layer reached the other
    # two repositories by cross-repo mount (201), not by upload.
    assert _blob_uploads(dest) == len(blobs)
    assert dest.count("POST", r"/v2/.+/blobs/uploads/", status=201) >= 2


def test_resync_skips_unchanged_with_head_only_and_writes_nothing(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source, dest = make_registry("anon"), make_registry("anon")
    expected = _seed(source, 2)
    spec = _skopeo_spec(tmp_path, source, expected)
    args = (
        "sync",
        "--src",
        "yaml",
        "--dest",
        "docker",
        "--all",
        "--dest-tls-verify=false",
        "--no-mount-cache",
    )
    first = run_cli(*args, str(spec), dest.host)
    assert first.returncode == 0, first.all_output
    source.reset_log()
    dest.reset_log()

    second = run_cli(*args, str(spec), dest.host)

    assert second.returncode == 0, second.all_output
    assert f"{len(expected)} skipped" in second.out
    writes = [r for r in dest.requests() if r.method in ("PUT", "POST", "PATCH", "DELETE")]
    assert writes == []
    # No manifest GET anywhere (Harbor counts GETs as pulls): HEADs and tag lists only.
    assert source.count("GET", r"/v2/.+/manifests/.+") == 0
    assert dest.count("GET", r"/v2/.+/manifests/.+") == 0
    requests = len(source.requests()) + len(dest.requests())
    assert requests <= 2 * len(expected) + 8  # one HEAD per side per tag, plus pings/tag lists


def test_failing_image_is_reported_and_the_others_complete(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source, dest = make_registry("anon"), make_registry("anon")
    good = make_image("good", layers=1)
    bad = make_image("bad", layers=1)
    push_image_sync(source, "proj/good", "1", good)
    push_image_sync(source, "proj/bad", "1", bad)
    # Delete one layer of the bad image at the source: the copy of that image must fail.
    layer_path = (
        Path(source.data_dir)
        / "docker/registry/v2/repositories/proj/bad/_layers/sha256"
        / bad.layer_digests[0].split(":")[1]
    )
    for child in layer_path.iterdir():
        child.unlink()
    layer_path.rmdir()
    spec = tmp_path / "s.yaml"
    spec.write_text(
        f"{source.host}:\n  tls-verify: false\n  images:\n    proj/good: ['1']\n    proj/bad: ['1']\n"
    )

    result = run_cli(
        "sync",
        "--src",
        "yaml",
        "--dest",
        "docker",
        "--dest-tls-verify=false",
        "--no-mount-cache",
        "--retry-times",
        "0",
        str(spec),
        dest.host,
    )

    assert result.returncode == 1
    assert "FAILED" in result.all_output and "bad" in result.all_output
    assert "Traceback" not in result.all_output
    assert list_tags_sync(dest, "good") == ["1"]
    assert list_tags_sync(dest, "bad") == []


def test_native_spec_renames_project_and_filters_tags(make_registry: RegistryFactory, tmp_path: Path) -> None:
    source, dest = make_registry("anon"), make_registry("basic")
    for tag in ("1.0.0", "1.2.0", "2.0.0", "2.0.0-rc1"):
        push_image_sync(source, "proj/svc", tag, make_image(f"svc-{tag}", layers=1))
    spec = tmp_path / "migrate.yaml"
    spec.write_text(
        f"""version: 1
registries:
  {source.host}:
    tls-verify: false
  {dest.host}:
    tls-verify: false
    credentials: {{username: {dest.username}, password-env: DEST_PASSWORD}}
sync:
  - from: {source.host}/proj/*
    to: {dest.host}/newproj/
    tags:
      semver: ">=1.1 <3"
      exclude: "-rc"
"""
    )

    result = run_cli("sync", "--no-mount-cache", str(spec), extra_env={"DEST_PASSWORD": dest.password or ""})

    assert result.returncode == 0, result.all_output
    assert (dest.password or "") not in result.all_output
    assert sorted(list_tags_sync(dest, "newproj/svc")) == ["1.2.0", "2.0.0"]


def test_dry_run_prints_the_plan_and_writes_nothing(make_registry: RegistryFactory, tmp_path: Path) -> None:
    source, dest = make_registry("anon"), make_registry("anon")
    push_image_sync(source, "proj/a", "1", make_image("dry", layers=1))
    spec = tmp_path / "s.yaml"
    spec.write_text(f"{source.host}:\n  tls-verify: false\n  images:\n    proj/a: []\n")
    dest.reset_log()

    result = run_cli(
        "sync",
        "--src",
        "yaml",
        "--dest",
        "docker",
        "--dest-tls-verify=false",
        "--dry-run",
        str(spec),
        dest.host,
    )

    assert result.returncode == 0, result.all_output
    assert "copy" in result.out and "destination absent" in result.out
    assert [r for r in dest.requests() if r.method not in ("GET", "HEAD")] == []


@pytest.mark.parametrize("bad", ["registry.example:\n  images:\n    repo: 5\n", "- just a list\n"])
def test_bad_spec_is_a_one_line_error_with_file_and_line(tmp_path: Path, bad: str) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(bad)
    result = run_cli("sync", "--src", "yaml", "--dest", "docker", str(spec), "127.0.0.1:1")
    assert result.returncode == 2
    assert f"{spec}:" in result.stderr
    assert "Traceback" not in result.all_output
    assert len(result.stderr.strip().splitlines()) == 1


def test_fresh_destination_repositories_need_no_blob_heads_and_a_crash_journal_keeps_rerun_safe(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source, dest = make_registry("anon"), make_registry("anon")
    blobs: set[str] = set()
    expected = _seed(source, 3, blobs)
    spec = _skopeo_spec(tmp_path, source, expected)
    args = ("sync", "--src", "yaml", "--dest", "docker", "--all", "--dest-tls-verify=false")

    first = run_cli(*args, str(spec), dest.host)

    assert first.returncode == 0, first.all_output
    # Every destination repository was new: no blob was asked about, each was uploaded once.
    assert dest.count("HEAD", r"/v2/.+/blobs/.+") == 0
    assert _blob_uploads(dest) == len(blobs)
    # Simulate a crash that left blobs but no tags: delete the tags' manifests' tag links.
    tags_root = Path(dest.data_dir) / "docker/registry/v2/repositories/app0/_manifests/tags"
    for tag_dir in list(tags_root.iterdir()):
        for path in sorted(tag_dir.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        tag_dir.rmdir()
    tags_root.rmdir()
    dest.reset_log()

    second = run_cli(*args, str(spec), dest.host)

    assert second.returncode == 0, second.all_output
    # The journal named the blobs the first run uploaded into app0: HEADed, found, not re-sent.
    assert _blob_uploads(dest) == 0
    assert dest.count("HEAD", r"/v2/app0/blobs/.+") > 0


def test_destination_username_and_password_flags_reach_a_basic_auth_registry(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source, dest = make_registry("anon"), make_registry("basic")
    push_image_sync(source, "proj/auth", "1", make_image("auth-flags", layers=1))
    spec = tmp_path / "s.yaml"
    spec.write_text(f"{source.host}:\n  tls-verify: false\n  images:\n    proj/auth: ['1']\n")
    base = ("sync", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false", "--no-mount-cache")

    denied = run_cli(*base, str(spec), dest.host)
    accepted = run_cli(
        *base,
        "--dest-username",
        dest.username or "",
        "--dest-password",
        dest.password or "",
        str(spec),
        dest.host,
    )

    assert denied.returncode == 1 and "unauthorized" in denied.all_output.lower()
    assert accepted.returncode == 0, accepted.all_output
    assert list_tags_sync(dest, "auth") == ["1"]
    assert (dest.password or "") not in accepted.all_output
