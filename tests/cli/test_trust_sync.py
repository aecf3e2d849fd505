"""Trust in ``sync``: each image is checked, a refused one is reported and the rest goes on;
``--sign-by`` signs what the sync writes; signatures travel through the lookaside."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.helpers.gpg_keys import GpgKeys, run_tool
from tests.helpers.images import get_manifest_sync, make_image, push_image_sync
from tests.helpers.registry import RegistryServer


def run(tool: str, *args: str, keys: GpgKeys) -> subprocess.CompletedProcess[str]:
    return run_tool(tool, *args, keys=keys, timeout=180)


def test_sync_checks_each_image_and_signs(
    registry_anon: RegistryServer, gpg_keys: GpgKeys, tmp_path: Path
) -> None:
    host = registry_anon.host
    lookaside = tmp_path / "lookaside"
    registries_d = tmp_path / "registries.d"
    registries_d.mkdir()
    (registries_d / "a.yaml").write_text(f"docker:\n  {host}:\n    lookaside: file://{lookaside}\n")
    signed, unsigned = make_image("sync-trust-signed"), make_image("sync-trust-unsigned")
    push_image_sync(registry_anon, "synctrust/app", "unsigned", unsigned)
    push_image_sync(registry_anon, "synctrust/staging", "signed", signed)
    # skopeo signs one tag into the source repository
    done = run(
        "skopeo",
        "--registries.d",
        str(registries_d),
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--sign-by",
        "alice@test.example",
        "--sign-passphrase-file",
        str(gpg_keys.passphrase_file),
        f"docker://{host}/synctrust/staging:signed",
        f"docker://{host}/synctrust/app:signed",
        keys=gpg_keys,
    )
    assert done.returncode == 0, done.stderr
    policy = tmp_path / "policy.json"
    requirement = {
        "type": "signedBy",
        "keyType": "GPGKeys",
        "keyPath": str(gpg_keys.alice_pub),
        "signedIdentity": {"type": "matchRepository"},
    }
    policy.write_text(
        json.dumps(
            {
                "default": [{"type": "insecureAcceptAnything"}],
                "transports": {"docker": {f"{host}/synctrust/app": [requirement]}},
            }
        )
    )
    report = tmp_path / "report.json"
    done = run(
        "asyncsync",
        "--policy",
        str(policy),
        "--registries.d",
        str(registries_d),
        "sync",
        "--src",
        "docker",
        "--dest",
        "docker",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--report",
        str(report),
        "--sign-by",
        "bob@test.example",
        f"{host}/synctrust/app",
        f"{host}/mirror",
        keys=gpg_keys,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    results = {r["destination"].rsplit(":", 1)[1]: r for r in json.loads(report.read_text())["images"]}
    assert results["signed"]["outcome"] == "copied"
    assert results["unsigned"]["outcome"] == "failed"
    assert "Source image rejected: A signature was required" in results["unsigned"]["reason"]
    assert get_manifest_sync(registry_anon, "mirror/app", "signed")[1] == signed.manifest
    repositories = registry_anon.data_dir / "docker" / "registry" / "v2" / "repositories" / "mirror" / "app"
    assert not (repositories / "_manifests" / "tags" / "unsigned").exists()
    assert not (repositories / "_layers" / "sha256" / unsigned.layer_digests[0].split(":")[1]).exists()
    # the copied image carries alice's signature and gains bob's
    stored = lookaside / "mirror" / f"app@sha256={signed.digest.split(':')[1]}"
    assert sorted(p.name for p in stored.iterdir()) == ["signature-1", "signature-2"]
    bob_policy = tmp_path / "bob.json"
    bob_policy.write_text(
        json.dumps(
            {
                "default": [
                    {"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(gpg_keys.bob_pub)},
                ]
            }
        )
    )
    done = run(
        "skopeo",
        "--policy",
        str(bob_policy),
        "--registries.d",
        str(registries_d),
        "copy",
        "--src-tls-verify=false",
        f"docker://{host}/mirror/app:signed",
        f"dir:{tmp_path / 'out'}",
        keys=gpg_keys,
    )
    assert done.returncode == 0, done.stderr
