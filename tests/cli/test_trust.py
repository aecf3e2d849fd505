"""Trust end to end, as users run it: asyncsync and skopeo 1.9.3 sign and check each other's images.

Real parts only: a real registry, the real gpg with real keys, skopeo as the other side, lookaside
stores on file://. Refusals are checked on the registry's storage: a refused image leaves no
repository there at all (no blob, no tag).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers.gpg_keys import GpgKeys, run_tool
from tests.helpers.images import get_manifest_sync, make_image, push_image_sync
from tests.helpers.registry import RegistryServer


def run(tool: str, *args: str, keys: GpgKeys, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return run_tool(tool, *args, keys=keys, timeout=timeout)


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in done.stderr, done.stderr
    return lines[0]


class Bed:
    """A registry, a registries.d with a file:// lookaside for it, policies, and one pushed image."""

    def __init__(self, server: RegistryServer, keys: GpgKeys, base: Path, repo: str) -> None:
        self.server, self.keys, self.base = server, keys, base
        self.lookaside = base / "lookaside"
        self.registries_d = base / "registries.d"
        self.registries_d.mkdir()
        (self.registries_d / "local.yaml").write_text(
            f"docker:\n  {server.host}:\n    lookaside: file://{self.lookaside}\n"
            f"    use-sigstore-attachments: true\n"
        )
        self.image = make_image(f"trust-{repo}")
        self.source = f"{server.host}/{repo}/source:1"
        push_image_sync(server, f"{repo}/source", "1", self.image)
        self.repo = repo

    def policy(self, name: str, requirements: list[dict[str, object]], scope: str = "") -> str:
        path = self.base / f"{name}.json"
        scopes = {scope or f"{self.server.host}/{self.repo}": requirements}
        path.write_text(
            json.dumps({"default": [{"type": "reject"}], "transports": {"docker": scopes}}, indent=2)
        )
        return str(path)

    def alice_policy(self) -> str:
        return self.policy(
            "alice", [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(self.keys.alice_pub)}]
        )

    def global_args(self, policy: str | None) -> list[str]:
        args = ["--registries.d", str(self.registries_d)]
        return [*args, "--policy", policy] if policy else [*args, "--insecure-policy"]

    def copy(
        self, tool: str, policy: str | None, src: str, dst: str, *extra: str
    ) -> subprocess.CompletedProcess[str]:
        return run(
            tool,
            *self.global_args(policy),
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            *extra,
            src,
            dst,
            keys=self.keys,
        )

    def repository_exists(self, repository: str) -> bool:
        return (self.server.data_dir / "docker" / "registry" / "v2" / "repositories" / repository).exists()

    def sign_args(self) -> list[str]:
        return ["--sign-by", "alice@test.example", "--sign-passphrase-file", str(self.keys.passphrase_file)]


@pytest.fixture
def bed(
    registry_anon: RegistryServer, gpg_keys: GpgKeys, tmp_path: Path, request: pytest.FixtureRequest
) -> Bed:
    repo = "t" + str(abs(hash(request.node.name)) % 10**8)
    return Bed(registry_anon, gpg_keys, tmp_path, repo)


def test_asyncsync_signs_skopeo_verifies(bed: Bed, tmp_path: Path) -> None:
    signed = f"{bed.server.host}/{bed.repo}/signed:1"
    done = bed.copy("asyncsync", None, f"docker://{bed.source}", f"docker://{signed}", *bed.sign_args())
    assert done.returncode == 0, done.stderr
    signature = bed.lookaside / bed.repo / f"signed@sha256={bed.image.digest.split(':')[1]}" / "signature-1"
    assert signature.is_file()
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(bed.image.manifest)
    verified = run(
        "skopeo", "standalone-verify", str(manifest), signed, bed.keys.alice, str(signature), keys=bed.keys
    )
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout == f"Signature verified, digest {bed.image.digest}\n"
    # skopeo's own policy check, through the lookaside, accepts the image and carries the signature
    out = tmp_path / "by-skopeo"
    done = bed.copy("skopeo", bed.alice_policy(), f"docker://{signed}", f"dir:{out}")
    assert done.returncode == 0, done.stderr
    assert (out / "signature-1").read_bytes() == signature.read_bytes()


def test_skopeo_signs_asyncsync_verifies_and_carries(bed: Bed, tmp_path: Path) -> None:
    signed = f"{bed.server.host}/{bed.repo}/signed:1"
    done = bed.copy("skopeo", None, f"docker://{bed.source}", f"docker://{signed}", *bed.sign_args())
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    done = bed.copy("asyncsync", bed.alice_policy(), f"docker://{signed}", f"dir:{out}")
    assert done.returncode == 0, done.stderr
    stored = bed.lookaside / bed.repo / f"signed@sha256={bed.image.digest.split(':')[1]}" / "signature-1"
    assert (out / "signature-1").read_bytes() == stored.read_bytes()
    # ... and from that dir: to another repository, where skopeo still accepts it
    again = f"{bed.server.host}/{bed.repo}/again:1"
    done = bed.copy("asyncsync", None, f"dir:{out}", f"docker://{again}")
    assert done.returncode == 0, done.stderr
    done = bed.copy("skopeo", bed.alice_policy(), f"docker://{again}", f"dir:{tmp_path / 'check'}")
    assert done.returncode != 0 and "Signature for identity" in done.stderr  # signed as .../signed:1
    done = bed.copy(
        "asyncsync", None, f"docker://{again}", f"dir:{tmp_path / 'plain'}", "--remove-signatures"
    )
    assert done.returncode == 0 and not (tmp_path / "plain" / "signature-1").exists()


def test_refusals_write_nothing(bed: Bed, tmp_path: Path) -> None:
    """Unsigned, rejected, wrongly signed: one line, exit 1, no repository in the registry's storage."""
    cases = {
        "unsigned": (bed.alice_policy(), "A signature was required, but no signature exists"),
        "rejected": (bed.policy("reject", [{"type": "reject"}]), "is rejected by policy."),
    }
    for name, (policy, message) in cases.items():
        target = f"{bed.repo}/{name}"
        done = bed.copy(
            "asyncsync", policy, f"docker://{bed.source}", f"docker://{bed.server.host}/{target}:1"
        )
        line = one_line_error(done)
        assert line.startswith("Error: Source image rejected: ") and message in line, line
        assert not bed.repository_exists(target)
    # a local destination is not even created
    done = bed.copy("asyncsync", bed.alice_policy(), f"docker://{bed.source}", f"dir:{tmp_path / 'never'}")
    assert "Source image rejected" in one_line_error(done) and not (tmp_path / "never").exists()


def test_signature_for_another_digest_and_by_another_key(bed: Bed) -> None:
    other = make_image(f"other-{bed.repo}")
    push_image_sync(bed.server, f"{bed.repo}/other", "1", other)
    signed_other = f"{bed.server.host}/{bed.repo}/other:1"
    done = bed.copy(
        "asyncsync", None, f"docker://{signed_other}", f"docker://{signed_other}-copy", *bed.sign_args()
    )
    assert done.returncode == 0, done.stderr
    # put the other image's signature where the source's signatures are looked up
    hex_other, hex_source = other.digest.split(":")[1], bed.image.digest.split(":")[1]
    moved = bed.lookaside / bed.repo / f"source@sha256={hex_source}"
    moved.mkdir(parents=True)
    (moved / "signature-1").write_bytes(
        (bed.lookaside / bed.repo / f"other@sha256={hex_other}" / "signature-1").read_bytes()
    )
    target = f"{bed.repo}/wrong-digest"
    done = bed.copy(
        "asyncsync", bed.alice_policy(), f"docker://{bed.source}", f"docker://{bed.server.host}/{target}:1"
    )
    assert f"Signature for digest {other.digest} does not match" in one_line_error(done)
    assert not bed.repository_exists(target)
    bob = bed.policy("bob", [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(bed.keys.bob_pub)}])
    done = bed.copy("asyncsync", bob, f"docker://{bed.source}", f"docker://{bed.server.host}/{target}:1")
    assert "Source image rejected: Invalid GPG signature" in one_line_error(done)
    not_a_key = bed.base / "not-a-key.gpg"
    not_a_key.write_text("certainly not a key\n")
    bad = bed.policy("bad", [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(not_a_key)}])
    done = bed.copy("asyncsync", bad, f"docker://{bed.source}", f"docker://{bed.server.host}/{target}:1")
    assert one_line_error(done) == "Error: Source image rejected: No public keys imported"
    assert not bed.repository_exists(target)


def test_bad_policy_files_and_insecure_policy(bed: Bed) -> None:
    target = f"{bed.repo}/bad"
    dst = f"docker://{bed.server.host}/{target}:1"
    malformed = bed.base / "malformed.json"
    malformed.write_text('{\n  "default": [\n    {"type": "reject"},\n  ]\n}\n')
    done = bed.copy("asyncsync", str(malformed), f"docker://{bed.source}", dst)
    assert one_line_error(done).startswith(f"Error: {malformed}:4: invalid policy: ")
    assert done.returncode == 2
    unknown = bed.base / "unknown.json"
    unknown.write_text('{\n  "default": [\n    {"type": "signedby", "keyPath": "/k"}\n  ]\n}\n')
    done = bed.copy("asyncsync", str(unknown), f"docker://{bed.source}", dst)
    assert (
        one_line_error(done)
        == f'Error: {unknown}:3: invalid policy: Unknown policy requirement type "signedby"'
    )
    done = bed.copy("asyncsync", str(bed.base / "missing.json"), f"docker://{bed.source}", dst)
    assert "no such file or directory" in one_line_error(done)
    assert not bed.repository_exists(target)
    # --insecure-policy ignores the policy entirely
    done = run(
        "asyncsync",
        "--insecure-policy",
        "--policy",
        str(unknown),
        "--registries.d",
        str(bed.registries_d),
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        f"docker://{bed.source}",
        dst,
        keys=bed.keys,
    )
    assert done.returncode == 0, done.stderr
    assert get_manifest_sync(bed.server, target, "1")[1] == bed.image.manifest


def test_wrong_passphrase_writes_nothing(bed: Bed) -> None:
    target = f"{bed.repo}/wrong-pass"
    done = bed.copy(
        "asyncsync",
        None,
        f"docker://{bed.source}",
        f"docker://{bed.server.host}/{target}:1",
        "--sign-by",
        "alice@test.example",
        "--sign-passphrase-file",
        str(bed.keys.wrong_passphrase_file),
    )
    line = one_line_error(done)
    assert "Bad passphrase" in line and "not the passphrase" not in done.stderr + done.stdout
    assert not bed.repository_exists(target)
    done = bed.copy(
        "asyncsync",
        None,
        f"docker://{bed.source}",
        f"docker://{bed.server.host}/{target}:1",
        "--sign-by",
        "nobody@test.example",
    )
    assert "No secret key" in one_line_error(done) and not bed.repository_exists(target)


def test_sigstore_sign_append_and_verify(bed: Bed, tmp_path: Path) -> None:
    """Debian's skopeo has sigstore disabled: the .sig attachments are checked by their format here
    (OCI manifest, one layer per signature, cosign's annotation) and by asyncsync's own policy check."""
    keys = []
    for name in ("one", "two"):
        done = run(
            "asyncsync",
            "generate-sigstore-key",
            "--output-prefix",
            str(tmp_path / name),
            "--passphrase-file",
            str(bed.keys.passphrase_file),
            keys=bed.keys,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == f'Key written to "{tmp_path / name}.private" and "{tmp_path / name}.pub"\n'
        assert (tmp_path / f"{name}.private").stat().st_mode & 0o777 == 0o600
        keys.append(tmp_path / name)
    done = run(
        "asyncsync",
        "generate-sigstore-key",
        "--output-prefix",
        str(tmp_path / "one"),
        "--passphrase-file",
        str(bed.keys.passphrase_file),
        keys=bed.keys,
    )
    assert "Refusing to overwrite" in one_line_error(done)
    signed = f"{bed.server.host}/{bed.repo}/cosigned:1"
    for key in keys:  # the second signature is appended to the first's .sig manifest
        done = bed.copy(
            "asyncsync",
            None,
            f"docker://{bed.source}",
            f"docker://{signed}",
            "--sign-by-sigstore-private-key",
            f"{key}.private",
            "--sign-passphrase-file",
            str(bed.keys.passphrase_file),
        )
        assert done.returncode == 0, done.stderr
    tag = bed.image.digest.replace(":", "-") + ".sig"
    media_type, raw = get_manifest_sync(bed.server, f"{bed.repo}/cosigned", tag)
    assert media_type == "application/vnd.oci.image.manifest.v1+json"
    layers = json.loads(raw)["layers"]
    assert len(layers) == 2
    for layer in layers:
        assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
        assert "dev.cosignproject.cosign/signature" in layer["annotations"]
    for key in keys:
        policy = bed.policy(key.name, [{"type": "sigstoreSigned", "keyPath": f"{key}.pub"}])
        done = bed.copy("asyncsync", policy, f"docker://{signed}", f"dir:{tmp_path / ('out-' + key.name)}")
        assert done.returncode == 0, done.stderr
    target = f"{bed.repo}/cosign-wrong"
    done = bed.copy(
        "asyncsync",
        None,
        f"docker://{bed.source}",
        f"docker://{bed.server.host}/{target}:1",
        "--sign-by-sigstore-private-key",
        f"{keys[0]}.private",
        "--sign-passphrase-file",
        str(bed.keys.wrong_passphrase_file),
    )
    assert "wrong passphrase" in one_line_error(done) and not bed.repository_exists(target)
    done = bed.copy(
        "asyncsync",
        None,
        f"docker://{bed.source}",
        f"docker://{bed.server.host}/{target}:1",
        "--sign-by-sigstore-private-key",
        str(bed.keys.alice_pub),
        "--sign-passphrase-file",
        str(bed.keys.passphrase_file),
    )
    assert "unsupported pem type" in one_line_error(done) and not bed.repository_exists(target)
