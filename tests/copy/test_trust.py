"""The copy engine's trust step on local transports: signatures of indexes and their instances,
destinations that cannot store signatures, and digests kept when signatures travel."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncsync.copy import CopyEnvironment, CopyOptions, TrustSettings, copy_image
from asyncsync.digest import Digest
from asyncsync.errors import PolicyRejectedError, SignatureError, UsageError
from asyncsync.limits import BlobLimiter
from asyncsync.manifest import Platform
from asyncsync.reference import parse_reference
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.retry import RetryPolicy
from asyncsync.signature import payload as payloads
from asyncsync.signature.evaluate import PolicyContext
from asyncsync.signature.formats import SigstoreSignature, from_blob
from asyncsync.signature.policy import insecure_policy, parse_policy
from asyncsync.signature.signing import GpgSigner, SigstoreSigner
from asyncsync.signature.sigstore import generate_key_pair
from asyncsync.transports import parse_image_name
from asyncsync.transports.base import SideOptions, TransportContext
from tests.helpers.gpg_keys import PASSPHRASE, GpgKeys
from tests.helpers.images import make_image, make_multiarch
from tests.local_support import write_dir_image

pytestmark = pytest.mark.anyio


async def copy(source: str, destination: str, options: CopyOptions, trust: TrustSettings) -> None:
    retry = RetryPolicy(attempts=1)
    async with RegistrySession(retry=retry) as session:
        ctx = TransportContext(session, SideOptions(registry=RegistryOptions()), retry, BlobLimiter(4))
        src = await parse_image_name(source).new_source(ctx)
        dst = await parse_image_name(destination).new_destination(ctx)
        try:
            await copy_image(
                src, dst, options, CopyEnvironment(blob_limiter=BlobLimiter(4), retry=retry, trust=trust)
            )
        finally:
            await dst.close()
            await src.close()


def signer(keys: GpgKeys) -> GpgSigner:
    return GpgSigner("alice@test.example", PASSPHRASE)


async def test_all_signs_index_and_each_instance_and_they_travel(gnupg_home: GpgKeys, tmp_path: Path) -> None:
    index = make_multiarch("trust-index", [("linux", "amd64", None), ("linux", "arm64", "v8")])
    write_dir_image(tmp_path / "src", index)
    unnamed = TrustSettings(PolicyContext(insecure_policy()), (signer(gnupg_home),))
    with pytest.raises(
        SignatureError, match="Cannot determine canonical Docker reference for destination dir:"
    ):
        await copy(f"dir:{tmp_path / 'src'}", f"dir:{tmp_path / 'x'}", CopyOptions(multi_arch="all"), unnamed)
    assert not (tmp_path / "x").exists()
    trust = TrustSettings(unnamed.policy, unnamed.signers, parse_reference("registry.example/app:1"))
    await copy(f"dir:{tmp_path / 'src'}", f"dir:{tmp_path / 'signed'}", CopyOptions(multi_arch="all"), trust)
    signed = tmp_path / "signed"
    assert (signed / "signature-1").is_file()
    for child in index.images:
        assert (signed / f"{child.digest.removeprefix('sha256:')}.signature-1").is_file()
    # the signatures travel: policy requiring alice's key, each instance checked with its own
    policy = parse_policy(
        f'{{"default": [{{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "{gnupg_home.alice_pub}",'
        ' "signedIdentity": {"type": "exactReference", "dockerReference": "registry.example/app:1"}}]}'
    )
    checked = TrustSettings(PolicyContext(policy))
    await copy(f"dir:{signed}", f"dir:{tmp_path / 'again'}", CopyOptions(multi_arch="all"), checked)
    assert sorted(p.name for p in (tmp_path / "again").glob("*signature-*")) == sorted(
        p.name for p in signed.glob("*signature-*")
    )
    # system: the chosen instance is checked with its own signatures and written with them
    amd64 = Platform("linux", "amd64")
    await copy(f"dir:{signed}", f"dir:{tmp_path / 'one'}", CopyOptions(platform=amd64), checked)
    child = index.images[0]
    assert (tmp_path / "one" / "signature-1").read_bytes() == (
        signed / f"{child.digest.removeprefix('sha256:')}.signature-1"
    ).read_bytes()
    # unsigned source: refused before anything is written
    with pytest.raises(PolicyRejectedError, match="A signature was required"):
        await copy(
            f"dir:{tmp_path / 'src'}", f"dir:{tmp_path / 'no'}", CopyOptions(multi_arch="all"), checked
        )
    assert not (tmp_path / "no").exists()
    checked.policy.close()  # type: ignore[union-attr]
    trust.policy.close()  # type: ignore[union-attr]


async def test_signatures_keep_digests_and_need_a_capable_destination(
    gnupg_home: GpgKeys, tmp_path: Path
) -> None:
    write_dir_image(tmp_path / "src", make_image("trust-one"))
    sign = TrustSettings(
        PolicyContext(insecure_policy()), (signer(gnupg_home),), parse_reference("example.com/a:1")
    )
    await copy(f"dir:{tmp_path / 'src'}", f"dir:{tmp_path / 'signed'}", CopyOptions(), sign)
    carry = TrustSettings(PolicyContext(insecure_policy()))
    with pytest.raises(
        SignatureError, match=r"Can not copy signatures to oci:.*Pushing signatures for OCI images"
    ):
        await copy(f"dir:{tmp_path / 'signed'}", f"oci:{tmp_path / 'layout'}:a", CopyOptions(), carry)
    # oci: creates its (empty) layout when opened, as skopeo; no blob went in
    assert not list((tmp_path / "layout").rglob("blobs/sha256/*"))
    with pytest.raises(UsageError, match="cannot preserve digests"):
        await copy(
            f"dir:{tmp_path / 'signed'}", f"dir:{tmp_path / 'converted'}", CopyOptions(format="oci"), carry
        )
    assert not (tmp_path / "converted" / "manifest.json").exists()
    # without the signatures, both work
    await copy(
        f"dir:{tmp_path / 'signed'}",
        f"oci:{tmp_path / 'layout'}:a",
        CopyOptions(remove_signatures=True),
        carry,
    )
    await copy(
        f"dir:{tmp_path / 'signed'}",
        f"dir:{tmp_path / 'converted'}",
        CopyOptions(format="oci", remove_signatures=True),
        carry,
    )
    assert not (tmp_path / "converted" / "signature-1").exists()


async def test_sigstore_signatures_in_dir_use_the_one_file_format(tmp_path: Path) -> None:
    write_dir_image(tmp_path / "src", make_image("trust-cosign"))
    pair = generate_key_pair(b"pw")
    key = tmp_path / "k.private"
    key.write_bytes(pair.private_pem)
    pub = tmp_path / "k.pub"
    pub.write_bytes(pair.public_pem)
    sign = TrustSettings(
        PolicyContext(insecure_policy()),
        (SigstoreSigner(str(key), b"pw"),),
        parse_reference("example.com/a:1"),
    )
    await copy(f"dir:{tmp_path / 'src'}", f"dir:{tmp_path / 'signed'}", CopyOptions(), sign)
    blob = (tmp_path / "signed" / "signature-1").read_bytes()
    assert blob.startswith(b"\x00sigstore-json\n")
    parsed = from_blob(blob, "signature-1")
    assert isinstance(parsed, SigstoreSignature)
    assert payloads.parse(parsed.payload, payloads.SIGSTORE_TYPE).docker_reference == "example.com/a:1"
    policy = parse_policy(
        f'{{"default": [{{"type": "sigstoreSigned", "keyPath": "{pub}",'
        ' "signedIdentity": {"type": "matchRepository"}}]}'
    )
    with pytest.raises(PolicyRejectedError, match=r"Signature for identity example\.com/a:1 is not accepted"):
        await copy(
            f"dir:{tmp_path / 'signed'}",
            f"dir:{tmp_path / 'out'}",
            CopyOptions(),
            TrustSettings(PolicyContext(policy)),
        )


async def test_a_signer_knows_its_own_signatures_by_key_digest_and_identity(
    gnupg_home: GpgKeys, tmp_path: Path
) -> None:
    """What ``sync`` asks of the destination's signatures before signing a skipped image."""
    digest, other = make_image("made-a").digest, make_image("made-b").digest
    parsed, other_parsed = Digest.parse(digest), Digest.parse(other)
    alice, bob = signer(gnupg_home), GpgSigner("bob@test.example")
    mine = await alice.sign(parsed, "example.com/a:1")
    assert await alice.made(mine, parsed, "example.com/a:1")
    assert not await alice.made(mine, other_parsed, "example.com/a:1")
    assert not await alice.made(mine, parsed, "example.com/a:2")
    assert not await bob.made(mine, parsed, "example.com/a:1")
    assert await bob.made(await bob.sign(parsed, "example.com/a:1"), parsed, "example.com/a:1")
    keys = []
    for name in ("one", "two"):
        path = tmp_path / f"{name}.private"
        path.write_bytes(generate_key_pair(b"pw").private_pem)
        keys.append(SigstoreSigner(str(path), b"pw"))
    cosigned = await keys[0].sign(parsed, "example.com/a:1")
    assert await keys[0].made(cosigned, parsed, "example.com/a:1")
    assert not await keys[0].made(cosigned, other_parsed, "example.com/a:1")
    assert not await keys[0].made(cosigned, parsed, "example.com/b:1")
    assert not await keys[1].made(cosigned, parsed, "example.com/a:1")
    assert not await keys[0].made(mine, parsed, "example.com/a:1")  # a GPG signature is not a cosign one
    assert not await alice.made(cosigned, parsed, "example.com/a:1")
