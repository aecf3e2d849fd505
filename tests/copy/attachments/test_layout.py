"""Attachments into and out of OCI layouts (``oci:``, ``oci-archive:``): referrers as manifests in
the layout, the fallback tag and cosign tags as named ``index.json`` entries; and the real registry."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tests.helpers.asyncsync_cli import run_cli
from tests.helpers.attachments import (
    SBOM_TYPE,
    cosign_signature,
    fallback_tag,
    push_artifact,
    push_referrers,
    referrer,
)
from tests.helpers.images import get_manifest, list_tags, make_image, push_image
from tests.helpers.registry import RegistryServer

pytestmark = pytest.mark.anyio

REF_NAME = "org.opencontainers.image.ref.name"


async def _seed(server: RegistryServer, repo: str, seed: str) -> tuple[str, str]:
    image = make_image(seed, fmt="oci")
    digest = await push_image(server, repo, "v1", image)
    sbom = referrer(digest, image.size, SBOM_TYPE, seed)
    await push_referrers(server, repo, digest, sbom)
    await push_artifact(server, repo, f"{fallback_tag(digest)}.sig", cosign_signature(digest, seed))
    return digest, sbom.digest


async def test_registry_to_oci_layout_and_back(registry_anon: RegistryServer, tmp_path: Path) -> None:
    server = registry_anon
    digest, sbom = await _seed(server, "lay/src", "layout-1")
    layout = tmp_path / "layout"
    out = run_cli("copy", "--src-tls-verify=false", f"docker://{server.host}/lay/src:v1", f"oci:{layout}:v1")
    assert out.returncode == 0, out.all_output
    index = json.loads((layout / "index.json").read_text())
    names = {entry["annotations"][REF_NAME]: entry["digest"] for entry in index["manifests"]}
    assert set(names) == {"v1", fallback_tag(digest), f"{fallback_tag(digest)}.sig"}
    assert names["v1"] == digest
    fallback = json.loads((layout / "blobs" / "sha256" / names[fallback_tag(digest)][7:]).read_text())
    assert [e["digest"] for e in fallback["manifests"]] == [sbom]
    assert (layout / "blobs" / "sha256" / sbom[7:]).is_file()

    back = run_cli(
        "copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{server.host}/lay/back:v1"
    )
    assert back.returncode == 0, back.all_output
    assert set(await list_tags(server, "lay/back")) == set(await list_tags(server, "lay/src"))
    for tag in await list_tags(server, "lay/src"):
        assert (await get_manifest(server, "lay/back", tag))[1] == (
            await get_manifest(server, "lay/src", tag)
        )[1]


async def test_oci_archive_holds_attachments(registry_anon: RegistryServer, tmp_path: Path) -> None:
    server = registry_anon
    digest, _ = await _seed(server, "lay/src2", "layout-2")
    archive = tmp_path / "app.tar"
    out = run_cli(
        "copy", "--src-tls-verify=false", f"docker://{server.host}/lay/src2:v1", f"oci-archive:{archive}:v1"
    )
    assert out.returncode == 0, out.all_output
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        assert member is not None
        index = json.loads(member.read())
    assert {e["annotations"][REF_NAME] for e in index["manifests"]} == {
        "v1",
        fallback_tag(digest),
        f"{fallback_tag(digest)}.sig",
    }


async def test_dir_destination_gets_the_image_alone_with_one_line(
    registry_anon: RegistryServer, tmp_path: Path
) -> None:
    await _seed(registry_anon, "lay/src3", "layout-3")
    out = run_cli(
        "copy",
        "--src-tls-verify=false",
        f"docker://{registry_anon.host}/lay/src3:v1",
        f"dir:{tmp_path / 'd'}",
    )
    assert out.returncode == 0, out.all_output
    notes = [line for line in out.stderr.splitlines() if "cannot hold attachments" in line]
    assert len(notes) == 1 and "2 left behind" in notes[0]
