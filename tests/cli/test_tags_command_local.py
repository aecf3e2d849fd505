"""``list-tags`` of local collections: ``docker-archive:`` (as skopeo 1.9, byte for byte) and ``oci:``
(an asyncsync extension: the ref names of ``index.json``)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from tests.helpers.asyncsync_cli import invoke
from tests.helpers.images import make_image
from tests.helpers.skopeo import skopeo
from tests.local_support import write_dir_image


def _rewrite_archive(source: Path, target: Path, repo_tags: list[list[str]]) -> None:
    """``target``: ``source`` with one ``manifest.json`` item per entry of ``repo_tags`` (same image)."""
    with tarfile.open(source) as original, tarfile.open(target, "w") as out:
        for member in original.getmembers():
            data = original.extractfile(member) if member.isfile() else None
            if member.name == "manifest.json":
                assert data is not None
                item = json.loads(data.read())[0]
                raw = json.dumps([dict(item, RepoTags=tags) for tags in repo_tags]).encode()
                member.size = len(raw)
                out.addfile(member, io.BytesIO(raw))
            else:
                out.addfile(member, data)


def test_docker_archive_tags_match_skopeo(tmp_path: Path, rng_seed: int) -> None:
    source = write_dir_image(tmp_path / "img", make_image(f"{rng_seed}/tags", layers=1, layer_size=512))
    single = tmp_path / "single.tar"
    skopeo("copy", "-q", f"dir:{source}", f"docker-archive:{single}:example.com/proj/app:v1")
    several = tmp_path / "several.tar"
    # Unnormalised names stay as written; an untagged image is listed by index.
    _rewrite_archive(single, several, [["busybox:latest", "quay.io/a/b:1"], [], ["c:2"]])
    for name in (f"docker-archive:{single}", f"docker-archive:{several}", f"docker-archive:{several}:@1"):
        ours = invoke("list-tags", name)
        assert ours.returncode == 0, ours.stderr
        assert ours.out == skopeo("list-tags", name)
    assert json.loads(invoke("list-tags", f"docker-archive:{several}").out) == {
        "Tags": ["busybox:latest", "quay.io/a/b:1", "@1", "c:2"]
    }


def test_oci_layout_lists_ref_names(tmp_path: Path, rng_seed: int) -> None:
    layout = tmp_path / "layout"
    for position, name in enumerate(("v1", "v2", "")):
        image = make_image(f"{rng_seed}/oci/{position}", layers=1, layer_size=512)
        source = write_dir_image(tmp_path / f"img{position}", image)
        skopeo("copy", "-q", f"dir:{source}", f"oci:{layout}" + (f":{name}" if name else ""))
    result = invoke("list-tags", f"oci:{layout}")
    assert result.returncode == 0, result.stderr
    # The docker:// document's shape; no Repository (omitempty) and the unnamed entry is not a tag.
    assert result.out == '{\n    "Tags": [\n        "v1",\n        "v2"\n    ]\n}\n'
    assert invoke("list-tags", f"oci:{layout}:v2").out == result.out
    missing = invoke("list-tags", f"oci:{tmp_path}/img0")
    assert missing.returncode == 1 and "not an OCI image layout (no index.json)" in missing.stderr
    help_text = invoke("list-tags", "--help").out
    assert "oci:PATH" in help_text and "docker-archive:PATH" in help_text
