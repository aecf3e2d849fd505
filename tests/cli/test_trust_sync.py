"""Trust in ``sync`` and ``mirror``: each image is checked, a refused one is reported and the rest
goes on; ``--sign-by`` signs what the sync writes; signatures travel through the lookaside."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.helpers.gpg_keys import GpgKeys, run_tool
from tests.helpers.images import get_manifest_sync, list_tags_sync, make_image, push_image_sync
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


def test_mirror_checks_each_image_of_a_refresh_as_sync_does(
    registry_anon: RegistryServer, gpg_keys: GpgKeys, tmp_path: Path
) -> None:
    host = registry_anon.host
    lookaside = tmp_path / "lookaside"
    registries_d = tmp_path / "registries.d"
    registries_d.mkdir()
    (registries_d / "a.yaml").write_text(f"docker:\n  {host}:\n    lookaside: file://{lookaside}\n")
    signed, unsigned = make_image("mirror-trust-signed"), make_image("mirror-trust-unsigned")
    push_image_sync(registry_anon, "mirrortrust/app", "unsigned", unsigned)
    push_image_sync(registry_anon, "mirrortrust/staging", "signed", signed)
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
        f"docker://{host}/mirrortrust/staging:signed",
        f"docker://{host}/mirrortrust/app:signed",
        keys=gpg_keys,
    )
    assert done.returncode == 0, done.stderr
    alice = {"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(gpg_keys.alice_pub)}
    policies = {
        "signed-by-alice": {
            "default": [{"type": "insecureAcceptAnything"}],
            "transports": {"docker": {f"{host}/mirrortrust/app": [alice]}},
        },
        "reject": {"default": [{"type": "reject"}]},
    }
    outcomes = {}
    for name, policy in policies.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(policy))
        spec = tmp_path / f"{name}.yaml"
        spec.write_text(
            f"version: 1\nregistries:\n  {host}: {{tls-verify: false}}\n"
            f"sync:\n  - from: {host}/mirrortrust/app\n    to: {host}/{name}/app\n"
        )
        report = tmp_path / f"{name}-report.json"
        done = run(
            "asyncsync",
            "--policy",
            str(tmp_path / f"{name}.json"),
            "--registries.d",
            str(registries_d),
            "mirror",
            "--once",
            "--no-mount-cache",
            "--report",
            str(report),
            str(spec),
            keys=gpg_keys,
        )
        assert done.returncode == 1, done.stdout + done.stderr
        images = json.loads(report.read_text())["images"]
        outcomes[name] = {
            r["destination"].rsplit(":", 1)[1]: (r["outcome"], r.get("reason", "")) for r in images
        }

    assert outcomes["signed-by-alice"]["signed"][0] == "copied"
    assert outcomes["signed-by-alice"]["unsigned"][0] == "failed"
    assert "Source image rejected: A signature was required" in outcomes["signed-by-alice"]["unsigned"][1]
    assert list_tags_sync(registry_anon, "signed-by-alice/app") == ["signed"]
    assert get_manifest_sync(registry_anon, "signed-by-alice/app", "signed")[1] == signed.manifest
    # the signature came along through the lookaside, as with sync
    stored = lookaside / "signed-by-alice" / f"app@sha256={signed.digest.split(':')[1]}"
    assert [p.name for p in stored.iterdir()] == ["signature-1"]
    assert {outcome for outcome, _ in outcomes["reject"].values()} == {"failed"}
    assert all("is rejected by policy" in reason for _, reason in outcomes["reject"].values())
    assert list_tags_sync(registry_anon, "reject/app") == []
