"""``asyncsync sync`` and ``copy`` carry attachments, end to end against real registries
(distribution 2.8: referrers through the fallback tag), and a no-op re-sync's request count."""

from __future__ import annotations

import json
from pathlib import Path

import anyio

from tests.helpers.asyncsync_cli import run_cli
from tests.helpers.attachments import (
    NOTATION,
    OCI_INDEX,
    SBOM_TYPE,
    cosign_signature,
    fallback_tag,
    push_artifact,
    push_referrers,
    referrer,
)
from tests.helpers.images import (
    get_manifest_sync,
    list_tags_sync,
    make_image,
    make_multiarch,
    push_image,
    push_index,
)
from tests.helpers.registry import RegistryFactory, RegistryServer


def _seed(server: RegistryServer, repo: str, seed: str) -> dict[str, str]:
    """Tags v1 (image: cosign .sig, SBOM + notation referrers, a .sig of the SBOM), v2 (no
    attachments) and multi (an index: a .sig of one child, an SBOM of the index)."""

    async def go() -> dict[str, str]:
        image = make_image(seed, fmt="oci")
        digest = await push_image(server, repo, "v1", image)
        await push_image(server, repo, "v2", make_image(f"{seed}-2", fmt="oci"))
        await push_artifact(server, repo, f"{fallback_tag(digest)}.sig", cosign_signature(digest, seed))
        sbom = referrer(digest, image.size, SBOM_TYPE, seed)
        await push_referrers(server, repo, digest, sbom, referrer(digest, image.size, NOTATION, seed))
        await push_artifact(
            server, repo, f"{fallback_tag(sbom.digest)}.sig", cosign_signature(sbom.digest, "s")
        )
        index = make_multiarch(f"{seed}-multi", fmt="oci")
        index_digest = await push_index(server, repo, "multi", index)
        child = index.images[0].digest
        await push_artifact(server, repo, f"{fallback_tag(child)}.sig", cosign_signature(child, "child"))
        index_sbom = referrer(index_digest, index.size, SBOM_TYPE, "index", subject_type=OCI_INDEX)
        await push_referrers(server, repo, index_digest, index_sbom)
        return {"v1": digest, "sbom": sbom.digest, "multi": index_digest, "child": child}

    return anyio.run(go)


def _sync(
    source: RegistryServer, dest: RegistryServer, *extra: str, repo: str = "proj/app"
) -> tuple[int, str, dict]:
    report = Path(source.work_dir) / "report.json"
    result = run_cli(
        "sync",
        "--src",
        "docker",
        "--dest",
        "docker",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--report",
        str(report),
        *extra,
        f"{source.host}/{repo}",
        f"{dest.host}/mirror",
    )
    return result.returncode, result.all_output, json.loads(report.read_text())


def test_whole_repository_sync_then_no_op(make_registry: RegistryFactory) -> None:
    source, dest = make_registry("anon"), make_registry("anon")
    _seed(source, "proj/app", "sync-1")
    code, output, report = _sync(source, dest, "--all")
    assert code == 0, output
    # Attachment tags are not images of their own: three images, their attachments with them.
    assert sorted(i["destination"].rsplit(":", 1)[1] for i in report["images"]) == ["multi", "v1", "v2"]
    assert set(list_tags_sync(dest, "mirror/app")) == set(list_tags_sync(source, "proj/app"))
    for tag in list_tags_sync(source, "proj/app"):
        assert get_manifest_sync(dest, "mirror/app", tag)[1] == get_manifest_sync(source, "proj/app", tag)[1]
    by_tag = {i["destination"].rsplit(":", 1)[1]: i for i in report["images"]}
    assert by_tag["v1"]["attachments"]["copied"] == 4
    assert by_tag["multi"]["attachments"]["copied"] == 2
    assert by_tag["v2"]["attachments"] == {}
    assert report["summary"]["attachments"]["copied"] == 6
    assert "Attachments of 2 images: 6 copied" in output

    source.reset_log()
    dest.reset_log()
    code, output, report = _sync(source, dest, "--all")
    assert code == 0, output
    # Decided by name: v1's .sig and fallback tag, the index's fallback tag (the SBOM's and the
    # child's .sig hang below them and are in place too, so nothing is walked).
    assert report["summary"]["attachments"] == {"copied": 0, "present": 3, "left": 0, "skipped": 0}
    assert dest.count("PUT", ".*") == 0 and dest.count("POST", ".*") == 0
    # The budget: the 2 HEADs per image tag of a plain no-op and one tag list per repository at
    # the destination (the source's is the plan's own). The source's referrers API is not asked:
    # the first run learnt it has none (remembered in the state directory for an hour).
    assert _by_request(source) == {"GET tags/list": 1, "HEAD manifests/<tag>": 3}
    assert _by_request(dest) == {"GET tags/list": 1, "HEAD manifests/<tag>": 3}

    # Without the state directory, each run asks the source once.
    source.reset_log()
    dest.reset_log()
    code, output, report = _sync(source, dest, "--all", "--no-mount-cache")
    assert code == 0, output
    assert report["summary"]["attachments"]["present"] == 3
    assert _by_request(source) == {
        "GET tags/list": 1,
        "HEAD manifests/<tag>": 3,
        "GET referrers/<digest>": 1,
    }


def test_skip_existing_still_brings_attachments_from_the_tag_list(make_registry: RegistryFactory) -> None:
    """Images ``--skip-existing`` skips are looked at for attachments too, with the destination tag
    list the skip decision already holds: a no-op then costs nothing more."""
    source, dest = make_registry("anon"), make_registry("anon")
    _seed(source, "proj/app", "sync-skip")
    code, output, _ = _sync(source, dest, "--all", "--attachments=false")
    assert code == 0, output
    assert set(list_tags_sync(dest, "mirror/app")) == {"v1", "v2", "multi"}
    code, output, report = _sync(source, dest, "--all", "--skip-existing")
    assert code == 0, output
    assert {i["outcome"] for i in report["images"]} == {"skipped"}
    assert set(list_tags_sync(dest, "mirror/app")) == set(list_tags_sync(source, "proj/app"))
    assert report["summary"]["attachments"]["copied"] == 6

    source.reset_log()
    dest.reset_log()
    code, output, report = _sync(source, dest, "--all", "--skip-existing")
    assert code == 0, output
    assert report["summary"]["attachments"]["copied"] == 0
    assert _by_request(dest) == {"GET tags/list": 1}
    # No referrers request: the earlier runs learnt the source has no API (the state directory).
    assert _by_request(source) == {"GET tags/list": 1, "HEAD manifests/<tag>": 3}


def _by_request(server: RegistryServer) -> dict[str, int]:
    """Requests by method and path shape (``tags/list``, ``manifests/<tag>``, ``referrers/<digest>``...)."""
    counts: dict[str, int] = {}
    for entry in server.requests():
        kind, reference = entry.path.split("/")[-2:]
        if entry.path == "/v2/":
            shape = "/v2/"
        elif kind == "tags":
            shape = "tags/list"
        else:
            shape = f"{kind}/{'<digest>' if reference.startswith('sha256:') else '<tag>'}"
        counts[f"{entry.method} {shape}"] = counts.get(f"{entry.method} {shape}", 0) + 1
    return counts


def test_tag_filtered_sync_brings_attachments(make_registry: RegistryFactory, tmp_path: Path) -> None:
    source, dest = make_registry("anon"), make_registry("anon")
    d = _seed(source, "proj/app", "sync-2")
    spec = tmp_path / "sync.yaml"
    spec.write_text(f"{source.host}:\n  tls-verify: false\n  images:\n    proj/app: [v1]\n")
    result = run_cli(
        "sync",
        "--src",
        "yaml",
        "--dest",
        "docker",
        "--dest-tls-verify=false",
        str(spec),
        f"{dest.host}/mirror",
    )
    assert result.returncode == 0, result.all_output
    assert set(list_tags_sync(dest, "mirror/app")) == {
        "v1",
        f"{fallback_tag(d['v1'])}.sig",
        fallback_tag(d["v1"]),
        f"{fallback_tag(d['sbom'])}.sig",
    }


def test_remove_signatures_and_attachments_off(make_registry: RegistryFactory) -> None:
    source, dest, bare = make_registry("anon"), make_registry("anon"), make_registry("anon")
    d = _seed(source, "proj/app", "sync-3")
    code, output, _ = _sync(source, dest, "--all", "--remove-signatures")
    assert code == 0, output
    assert set(list_tags_sync(dest, "mirror/app")) == {
        "v1",
        "v2",
        "multi",
        fallback_tag(d["v1"]),
        fallback_tag(d["multi"]),
    }
    index = json.loads(get_manifest_sync(dest, "mirror/app", fallback_tag(d["v1"]))[1])
    assert [e["artifactType"] for e in index["manifests"]] == [SBOM_TYPE]
    code, output, _ = _sync(source, bare, "--all", "--attachments=false")
    assert code == 0, output
    assert set(list_tags_sync(bare, "mirror/app")) == {"v1", "v2", "multi"}


def test_platform_choice_leaves_index_attachments_and_strict_fails(make_registry: RegistryFactory) -> None:
    """Without --all the host's instance is copied at the tag: the index's own SBOM cannot follow
    (its subject is not copied) and is reported; the instance's signature follows."""
    source, dest = make_registry("anon"), make_registry("anon")
    _seed(source, "proj/app", "sync-4")
    code, output, report = _sync(source, dest, "--override-arch", "amd64", "--override-os", "linux")
    assert code == 0, output
    multi = next(i for i in report["images"] if i["destination"].endswith(":multi"))
    assert multi["attachments"]["left"] == 1
    assert "attachment left" in output and "--multi-arch system" in output
    code, output, report = _sync(source, dest, "--attachments-strict")
    assert code == 1
    assert "--attachments-strict" in output


def test_copy_to_docker_archive_leaves_attachments_with_one_line(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source = make_registry("anon")
    _seed(source, "proj/app", "sync-5")
    archive = tmp_path / "app.tar"
    result = run_cli(
        "copy",
        "--src-tls-verify=false",
        f"docker://{source.host}/proj/app:v1",
        f"docker-archive:{archive}:app:v1",
    )
    assert result.returncode == 0, result.all_output
    lines = [line for line in result.stderr.splitlines() if "cannot hold attachments" in line]
    assert len(lines) == 1 and "3 left behind" in lines[0]  # what refers to the image itself


def test_dry_run_lists_attachments_it_would_copy(make_registry: RegistryFactory) -> None:
    source, dest = make_registry("anon"), make_registry("anon")
    d = _seed(source, "proj/app", "sync-6")

    def dry() -> list[str]:
        result = run_cli(
            "sync",
            "--src",
            "docker",
            "--dest",
            "docker",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--all",
            "--dry-run",
            f"{source.host}/proj/app",
            f"{dest.host}/mirror",
        )
        assert result.returncode == 0, result.all_output
        return [line for line in result.out.splitlines() if line.startswith("attach")]

    lines = dry()
    assert len(lines) == 6
    assert f"attach tag {fallback_tag(d['v1'])}.sig -> {dest.host}/mirror/app:v1" in lines
    assert dest.count("PUT", ".*") == 0
    code, output, _ = _sync(source, dest, "--all")
    assert code == 0, output
    assert dry() == []


def test_native_spec_keys_turn_attachments_off_or_select_types(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source, dest = make_registry("anon"), make_registry("anon")
    _seed(source, "proj/one", "sync-7")
    two = _seed(source, "proj/two", "sync-8")
    spec = tmp_path / "native.yaml"
    spec.write_text(
        f"""version: 1
defaults:
  tls-verify: false
  multi-arch: all
sync:
  - from: {source.host}/proj/one
    to: {dest.host}/mirror/one
    tags: [v1]
    attachments: false
  - from: {source.host}/proj/two
    to: {dest.host}/mirror/two
    tags: [v1]
    attachment-types: [sbom]
"""
    )
    result = run_cli("sync", str(spec))
    assert result.returncode == 0, result.all_output
    assert set(list_tags_sync(dest, "mirror/one")) == {"v1"}
    assert set(list_tags_sync(dest, "mirror/two")) == {"v1", fallback_tag(two["v1"])}
    index = json.loads(get_manifest_sync(dest, "mirror/two", fallback_tag(two["v1"]))[1])
    assert [e["artifactType"] for e in index["manifests"]] == [SBOM_TYPE]

    spec.write_text(spec.read_text().replace("attachment-types: [sbom]", "attachment-types: []"))
    bad = run_cli("sync", str(spec))
    assert bad.returncode == 2
    assert (
        f"{spec}:13: 'attachment-types' of sync entry 2 must list type names" in bad.stderr
        and "Traceback" not in bad.all_output
    )
