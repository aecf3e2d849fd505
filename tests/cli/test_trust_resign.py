"""``sync --sign-by`` / ``--sign-by-sigstore-private-key`` sign images the sync skips as present.

skopeo's sync re-copies, so re-signs, every image; asyncsync skips what the destination holds and
signs it there instead, unless a signature by the same signer for that digest and reference is
already there. Real registry, real gpg; GPG signatures are checked by skopeo 1.9.3 (Debian's has
sigstore disabled, so sigstore ones are checked by asyncsync's own policy check, as in test_trust).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.helpers.gpg_keys import GpgKeys, run_tool
from tests.helpers.images import get_manifest_sync, make_image, make_index, push_image_sync, push_index_sync
from tests.helpers.registry import RegistryServer

TAGS = ("one", "two")


def run(tool: str, *args: str, keys: GpgKeys) -> subprocess.CompletedProcess[str]:
    return run_tool(tool, *args, keys=keys, timeout=180)


class Bed:
    """Two tagged images in ``REPO/src/app``, a registries.d for the registry, and sync runs
    into ``REPO/dst`` (so ``REPO/dst/app:TAG``) with a JSON report each."""

    def __init__(self, server: RegistryServer, keys: GpgKeys, base: Path, repo: str) -> None:
        self.server, self.keys, self.base, self.repo = server, keys, base, repo
        self.lookaside = base / "lookaside"
        self.registries_d = base / "registries.d"
        self.registries_d.mkdir()
        (self.registries_d / "a.yaml").write_text(
            f"docker:\n  {server.host}:\n    lookaside: file://{self.lookaside}\n"
            "    use-sigstore-attachments: true\n"
        )
        self.images = {tag: make_image(f"resign-{repo}-{tag}") for tag in TAGS}
        for tag, image in self.images.items():
            push_image_sync(server, f"{repo}/src/app", tag, image)
        self.runs = 0

    def sync(self, *sign: str) -> dict[str, object]:
        """One sync (signing flags ``sign``); the JSON report."""
        self.runs += 1
        report = self.base / f"report-{self.runs}.json"
        done = run(
            "asyncsync",
            "--insecure-policy",
            "--registries.d",
            str(self.registries_d),
            "sync",
            "--src",
            "docker",
            "--dest",
            "docker",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            "--report",
            str(report),
            *sign,
            f"{self.server.host}/{self.repo}/src/app",
            f"{self.server.host}/{self.repo}/dst",
            keys=self.keys,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        document: dict[str, object] = json.loads(report.read_text())
        document["stdout"] = done.stdout
        return document

    def stored(self, tag: str, digest: str = "") -> list[bytes]:
        """The lookaside signature files of the destination image ``tag`` (or ``digest``), in order."""
        hex_digest = (digest or self.images[tag].digest).split(":")[1]
        directory = self.lookaside / self.repo / "dst" / f"app@sha256={hex_digest}"
        if not directory.exists():
            return []
        names = sorted(directory.iterdir(), key=lambda p: int(p.name.split("-")[1]))
        assert [p.name for p in names] == [f"signature-{i}" for i in range(1, len(names) + 1)]
        return [p.read_bytes() for p in names]

    def skopeo_verifies(self, tag: str, public_key: Path) -> bool:
        """skopeo copies ``dst/app:TAG`` (or ``@DIGEST``) under a policy requiring a signature by
        ``public_key``."""
        policy = self.base / f"policy-{public_key.name}.json"
        requirement = {"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(public_key)}
        policy.write_text(json.dumps({"default": [requirement]}))
        done = run(
            "skopeo",
            "--policy",
            str(policy),
            "--registries.d",
            str(self.registries_d),
            "copy",
            "--src-tls-verify=false",
            f"docker://{self.server.host}/{self.repo}/dst/app{'' if '@' in tag else ':'}{tag}",
            f"dir:{self.base / ('out-' + public_key.name + '-' + tag.replace(':', '-'))}",
            keys=self.keys,
        )
        return done.returncode == 0


def outcomes(report: dict[str, object]) -> dict[str, tuple[str, int, int]]:
    images = report["images"]
    assert isinstance(images, list)
    return {
        r["destination"].rsplit(":", 1)[1]: (r["outcome"], r["signatures_added"], r["signatures_present"])
        for r in images
    }


def requests(report: dict[str, object]) -> int:
    summary = report["summary"]
    assert isinstance(summary, dict)
    return sum(summary["requests_per_registry"].values())


def make_bed(server: RegistryServer, keys: GpgKeys, base: Path, name: str) -> Bed:
    return Bed(server, keys, base, "rs" + str(abs(hash(name)) % 10**8))


def test_signed_sync_signs_images_skipped_as_present(
    registry_anon: RegistryServer, gpg_keys: GpgKeys, tmp_path: Path
) -> None:
    bed = make_bed(registry_anon, gpg_keys, tmp_path, "gpg")
    first = bed.sync()
    assert outcomes(first) == {tag: ("copied", 0, 0) for tag in TAGS}
    unsigned_noop = bed.sync()
    assert outcomes(unsigned_noop) == {tag: ("skipped", 0, 0) for tag in TAGS}
    assert not bed.lookaside.exists()  # no signing flag: nothing signed, nothing read
    assert not bed.skopeo_verifies("one", gpg_keys.bob_pub)

    signed = bed.sync("--sign-by", "bob@test.example")
    assert outcomes(signed) == {tag: ("skipped", 1, 0) for tag in TAGS}
    assert "Signatures of 2 skipped images: 2 signed now (2 added), 0 already signed" in str(signed["stdout"])
    # a file:// lookaside costs no HTTP request: the signed no-op asks the registry what the plain one does
    assert requests(signed) == requests(unsigned_noop)
    for tag in TAGS:
        assert len(bed.stored(tag)) == 1
        assert bed.skopeo_verifies(tag, gpg_keys.bob_pub)
        assert not bed.skopeo_verifies(tag, gpg_keys.alice_pub)
    written = {tag: bed.stored(tag) for tag in TAGS}

    again = bed.sync("--sign-by", "bob@test.example")
    assert outcomes(again) == {tag: ("skipped", 0, 1) for tag in TAGS}
    assert "0 signed now (0 added), 2 already signed" in str(again["stdout"])
    assert {tag: bed.stored(tag) for tag in TAGS} == written  # nothing new, nothing rewritten


def test_a_signature_by_another_key_is_kept_and_ours_added(
    registry_anon: RegistryServer, gpg_keys: GpgKeys, tmp_path: Path
) -> None:
    bed = make_bed(registry_anon, gpg_keys, tmp_path, "other")
    alice = ("--sign-by", "alice@test.example", "--sign-passphrase-file", str(gpg_keys.passphrase_file))
    assert outcomes(bed.sync(*alice)) == {tag: ("copied", 0, 0) for tag in TAGS}
    by_alice = {tag: bed.stored(tag) for tag in TAGS}
    assert all(len(found) == 1 for found in by_alice.values())

    assert outcomes(bed.sync("--sign-by", "bob@test.example")) == {tag: ("skipped", 1, 0) for tag in TAGS}
    for tag in TAGS:
        stored = bed.stored(tag)
        assert len(stored) == 2 and stored[0] == by_alice[tag][0]
        assert bed.skopeo_verifies(tag, gpg_keys.alice_pub)
        assert bed.skopeo_verifies(tag, gpg_keys.bob_pub)
    # alice again: her signature (now one of two) is found, nothing is written
    kept = {tag: bed.stored(tag) for tag in TAGS}
    assert outcomes(bed.sync(*alice)) == {tag: ("skipped", 0, 1) for tag in TAGS}
    assert {tag: bed.stored(tag) for tag in TAGS} == kept


def test_sigstore_signed_sync_signs_images_skipped_as_present(
    registry_anon: RegistryServer, gpg_keys: GpgKeys, tmp_path: Path
) -> None:
    bed = make_bed(registry_anon, gpg_keys, tmp_path, "sigstore")
    keys = []
    for name in ("first", "second"):
        done = run(
            "asyncsync",
            "generate-sigstore-key",
            "--output-prefix",
            str(tmp_path / name),
            "--passphrase-file",
            str(gpg_keys.passphrase_file),
            keys=gpg_keys,
        )
        assert done.returncode == 0, done.stderr
        keys.append(tmp_path / name)

    def sign_with(key: Path) -> tuple[str, ...]:
        return (
            "--sign-by-sigstore-private-key",
            f"{key}.private",
            "--sign-passphrase-file",
            str(gpg_keys.passphrase_file),
        )

    def layers(tag: str) -> list[dict[str, object]]:
        sig_tag = bed.images[tag].digest.replace(":", "-") + ".sig"
        found: list[dict[str, object]] = json.loads(
            get_manifest_sync(bed.server, f"{bed.repo}/dst/app", sig_tag)[1]
        )["layers"]
        return found

    def verifies(tag: str, key: Path) -> bool:
        policy = tmp_path / f"policy-{key.name}.json"
        policy.write_text(json.dumps({"default": [{"type": "sigstoreSigned", "keyPath": f"{key}.pub"}]}))
        done = run(
            "asyncsync",
            "--policy",
            str(policy),
            "--registries.d",
            str(bed.registries_d),
            "copy",
            "--src-tls-verify=false",
            f"docker://{bed.server.host}/{bed.repo}/dst/app:{tag}",
            f"dir:{tmp_path / ('out-' + key.name + '-' + tag)}",
            keys=gpg_keys,
        )
        return done.returncode == 0

    assert outcomes(bed.sync()) == {tag: ("copied", 0, 0) for tag in TAGS}
    unsigned_noop = bed.sync()
    assert not verifies("one", keys[0])

    signed = bed.sync(*sign_with(keys[0]))
    assert outcomes(signed) == {tag: ("skipped", 1, 0) for tag in TAGS}
    for tag in TAGS:
        assert len(layers(tag)) == 1
        assert verifies(tag, keys[0]) and not verifies(tag, keys[1])
    again = bed.sync(*sign_with(keys[0]))
    assert outcomes(again) == {tag: ("skipped", 0, 1) for tag in TAGS}
    assert all(len(layers(tag)) == 1 for tag in TAGS)
    # per image, the reads that see the signature: the .sig manifest and its one layer
    assert requests(again) == requests(unsigned_noop) + 2 * len(TAGS)

    # another key's signature is kept, ours appended
    assert outcomes(bed.sync(*sign_with(keys[1]))) == {tag: ("skipped", 1, 0) for tag in TAGS}
    for tag in TAGS:
        assert len(layers(tag)) == 2
        assert verifies(tag, keys[0]) and verifies(tag, keys[1])


def test_signed_sync_signs_each_instance_of_a_skipped_index(
    registry_anon: RegistryServer, gpg_keys: GpgKeys, tmp_path: Path
) -> None:
    """``--all`` signs the index and each instance it writes; a skipped index gets the same."""
    bed = make_bed(registry_anon, gpg_keys, tmp_path, "index")
    children = [make_image(f"resign-{bed.repo}-{arch}", arch=arch) for arch in ("amd64", "arm64")]
    index = make_index(children)
    push_index_sync(registry_anon, f"{bed.repo}/src/app", "multi", index)
    assert outcomes(bed.sync("--all"))["multi"] == ("copied", 0, 0)
    signed = bed.sync("--all", "--sign-by", "bob@test.example")
    assert outcomes(signed)["multi"] == ("skipped", 3, 0)
    for digest in (index.digest, *(child.digest for child in children)):
        assert len(bed.stored("multi", digest)) == 1
        assert bed.skopeo_verifies(f"@{digest}", gpg_keys.bob_pub)
    again = bed.sync("--all", "--sign-by", "bob@test.example")
    assert outcomes(again)["multi"] == ("skipped", 0, 3)
