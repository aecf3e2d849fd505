"""``asyncsync manifest-digest`` equals ``skopeo manifest-digest`` for every manifest kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.asyncsync_cli import invoke, run_cli
from tests.helpers.images import make_image, make_multiarch
from tests.helpers.schema1 import signed_schema1
from tests.helpers.skopeo import skopeo


def _manifests() -> dict[str, tuple[bytes, str]]:
    docker = make_image("digest-docker", layers=1, layer_size=64)
    oci = make_image("digest-oci", fmt="oci", layers=1, layer_size=64)
    index = make_multiarch("digest-index", layers=1, layer_size=64)
    schema1, schema1_digest = signed_schema1(["sha256:" + "1" * 64, "sha256:" + "2" * 64])
    return {
        "docker": (docker.manifest, docker.digest),
        "oci": (oci.manifest, oci.digest),
        "index": (index.manifest, index.digest),
        "schema1-signed": (schema1, schema1_digest),
        "not-json": (b"\x00\x01 arbitrary bytes", ""),
    }


@pytest.mark.parametrize("kind", ["docker", "oci", "index", "schema1-signed", "not-json"])
def test_manifest_digest_equals_skopeo(tmp_path: Path, kind: str) -> None:
    raw, expected = _manifests()[kind]
    path = tmp_path / "manifest.json"
    path.write_bytes(raw)
    ours = invoke("manifest-digest", str(path))
    assert ours.returncode == 0, ours.stderr
    assert ours.out == skopeo("manifest-digest", str(path))
    if expected:
        assert ours.out == expected + "\n"


def test_missing_file_and_bad_signature_subprocess(tmp_path: Path) -> None:
    missing = run_cli("manifest-digest", str(tmp_path / "absent.json"))
    assert missing.returncode == 1
    assert (
        missing.stderr
        == f"Error: cannot read manifest file {tmp_path / 'absent.json'}: No such file or directory\n"
    )
    bad = tmp_path / "bad.json"
    bad.write_text('{"schemaVersion": 1, "signatures": [{"protected": "%%%"}]}')
    result = run_cli("manifest-digest", str(bad))
    assert result.returncode == 1
    assert result.stderr == "Error: signed schema 1 manifest has an invalid signature header\n"
