"""standalone-sign / standalone-verify against skopeo 1.9.3's, both ways, with real gpg keys."""

from __future__ import annotations

from pathlib import Path

from tests.helpers.gpg_keys import GpgKeys, run_tool
from tests.helpers.images import make_image

REFERENCE = "localhost:5000/busybox:latest"


run = run_tool


def test_sign_and_verify_both_ways(gpg_keys: GpgKeys, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    image = make_image("standalone")
    manifest.write_bytes(image.manifest)
    passphrase = ["--passphrase-file", str(gpg_keys.passphrase_file)]
    for signer, verifier in (("asyncsync", "skopeo"), ("skopeo", "asyncsync")):
        signature = tmp_path / f"by-{signer}.sig"
        done = run(
            signer,
            "standalone-sign",
            "-o",
            str(signature),
            *passphrase,
            str(manifest),
            REFERENCE,
            "alice@test.example",
            keys=gpg_keys,
        )
        assert done.returncode == 0, done.stderr
        done = run(
            verifier,
            "standalone-verify",
            str(manifest),
            REFERENCE,
            gpg_keys.alice,
            str(signature),
            keys=gpg_keys,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"Signature verified, digest {image.digest}\n"
    # skopeo's own smoke test: an empty manifest signed into /dev/null
    done = run(
        "asyncsync",
        "standalone-sign",
        "/dev/null",
        "busybox",
        "alice@test.example",
        "-o",
        "/dev/null",
        *passphrase,
        keys=gpg_keys,
    )
    assert done.returncode == 0, done.stderr


def test_verify_failures_are_one_line(gpg_keys: GpgKeys, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(make_image("standalone-bad").manifest)
    signature = tmp_path / "s.sig"
    done = run(
        "asyncsync",
        "standalone-sign",
        "-o",
        str(signature),
        str(manifest),
        REFERENCE,
        "bob@test.example",
        keys=gpg_keys,
    )
    assert done.returncode == 0, done.stderr
    other = tmp_path / "other.json"
    other.write_bytes(make_image("standalone-other").manifest)
    cases = [
        ((str(manifest), "localhost:5000/busybox:other", gpg_keys.bob, str(signature)), "does not match"),
        ((str(other), REFERENCE, gpg_keys.bob, str(signature)), "Signature for docker digest"),
        ((str(manifest), REFERENCE, gpg_keys.alice, str(signature)), "does not match expected fingerprint"),
        ((str(manifest), REFERENCE, gpg_keys.bob, str(manifest)), "Invalid GPG signature"),
        ((str(manifest), REFERENCE, gpg_keys.bob, str(tmp_path / "none")), "reading signature from"),
    ]
    for args, message in cases:
        done = run("asyncsync", "standalone-verify", *args, keys=gpg_keys)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1 and message in lines[0], done.stderr
    done = run(
        "asyncsync",
        "standalone-sign",
        str(manifest),
        REFERENCE,
        "alice@test.example",
        "-o",
        str(tmp_path / "x.sig"),
        "--passphrase-file",
        str(gpg_keys.wrong_passphrase_file),
        keys=gpg_keys,
    )
    assert done.returncode == 1 and "Bad passphrase" in done.stderr and not (tmp_path / "x.sig").exists()
    done = run("asyncsync", "standalone-sign", str(manifest), REFERENCE, "alice@test.example", keys=gpg_keys)
    assert done.returncode == 2 and "Usage:" in done.stderr
