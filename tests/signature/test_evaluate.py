"""PolicyContext.check with real GPG and sigstore signatures: every requirement type's verdicts."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from asyncsync.digest import Digest
from asyncsync.errors import PolicyRejectedError
from asyncsync.reference import parse_reference
from asyncsync.signature import gpg
from asyncsync.signature import payload as payloads
from asyncsync.signature.evaluate import CheckedImage, PolicyContext, needs_signatures
from asyncsync.signature.formats import (
    SIGSTORE_PAYLOAD_TYPE,
    SIGSTORE_SIGNATURE_ANNOTATION,
    Signature,
    SigstoreSignature,
    SimpleSignature,
)
from asyncsync.signature.policy import parse_policy
from asyncsync.signature.sigstore import decrypt_private_key, generate_key_pair, sign_payload
from tests.helpers.gpg_keys import PASSPHRASE, GpgKeys

pytestmark = pytest.mark.anyio

DIGEST = Digest.parse("sha256:" + "1" * 64)
OTHER = Digest.parse("sha256:" + "2" * 64)
NAME = "registry.example/ns/app:1"


async def gpg_signature(key: str, digest: Digest = DIGEST, identity: str = NAME) -> Signature:
    document = payloads.build(payloads.SIMPLE_SIGNING_TYPE, digest, identity)
    passphrase = PASSPHRASE if key.startswith("alice") else None
    return SimpleSignature(await gpg.sign(document, key, passphrase=passphrase))


def image(*signatures: Signature, name: str = NAME) -> CheckedImage:
    return CheckedImage(f"docker://{name}", parse_reference(name), DIGEST, signatures)


async def check(policy_text: str, checked: CheckedImage) -> str | None:
    """None when allowed, else the rejection message."""
    policy = parse_policy(policy_text)
    context = PolicyContext(policy)
    try:
        await context.check(checked, policy.default)
    except PolicyRejectedError as exc:
        return str(exc)
    finally:
        context.close()
    return None


def signed_by(keys: GpgKeys, identity: str = "") -> str:
    extra = f', "signedIdentity": {identity}' if identity else ""
    return (
        f'{{"default": [{{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "{keys.alice_pub}"{extra}}}]}}'
    )


async def test_accept_reject_and_base_layer() -> None:
    assert await check('{"default": [{"type": "insecureAcceptAnything"}]}', image()) is None
    assert await check('{"default": [{"type": "reject"}]}', image()) == (
        f"Source image rejected: Running image docker://{NAME} is rejected by policy."
    )
    message = await check(
        '{"default": [{"type": "signedBaseLayer", "baseLayerIdentity": {"type": "matchRepository"}}]}',
        image(),
    )
    assert message == "Source image rejected: signedBaseLayer not implemented yet!"
    assert await check('{"default": [{"type": "insecureAcceptAnything"}, {"type": "reject"}]}', image())


async def test_signed_by(gnupg_home: GpgKeys) -> None:
    policy = signed_by(gnupg_home)
    good = await gpg_signature("alice@test.example")
    assert await check(policy, image(good)) is None
    assert (
        await check(policy, image())
        == "Source image rejected: A signature was required, but no signature exists"
    )
    by_bob = await gpg_signature("bob@test.example")
    message = await check(policy, image(by_bob))
    assert message is not None and message.startswith("Source image rejected: Invalid GPG signature")
    assert await check(policy, image(by_bob, good)) is None  # one accepted signature is enough
    other_digest = await gpg_signature("alice@test.example", OTHER)
    assert await check(policy, image(other_digest)) == (
        f"Source image rejected: Signature for digest {OTHER} does not match"
    )
    other_tag = await gpg_signature("alice@test.example", identity="registry.example/ns/app:2")
    assert await check(policy, image(other_tag)) == (
        "Source image rejected: Signature for identity registry.example/ns/app:2 is not accepted"
    )
    both = await check(policy, image(other_digest, other_tag))
    assert both is not None and "None of the signatures were accepted, reasons: Signature for digest" in both
    assert await check(signed_by(gnupg_home, '{"type": "matchRepository"}'), image(other_tag)) is None


async def test_signed_by_key_sources(gnupg_home: GpgKeys, tmp_path: Path) -> None:
    good = await gpg_signature("alice@test.example")
    data = base64.b64encode(gnupg_home.alice_pub.read_bytes()).decode()
    by_data = f'{{"default": [{{"type": "signedBy", "keyType": "GPGKeys", "keyData": "{data}"}}]}}'
    assert await check(by_data, image(good)) is None
    paths = f'["{gnupg_home.bob_pub}", "{gnupg_home.alice_pub}"]'
    by_paths = f'{{"default": [{{"type": "signedBy", "keyType": "GPGKeys", "keyPaths": {paths}}}]}}'
    assert await check(by_paths, image(good)) is None
    not_a_key = tmp_path / "not-a-key.gpg"
    not_a_key.write_text("hello")
    bad = f'{{"default": [{{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "{not_a_key}"}}]}}'
    assert await check(bad, image(good)) == "Source image rejected: No public keys imported"
    missing = f'{{"default": [{{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "{tmp_path}/none"}}]}}'
    assert await check(missing, image(good)) == (
        f"Source image rejected: open {tmp_path}/none: no such file or directory"
    )
    x509 = f'{{"default": [{{"type": "signedBy", "keyType": "X509Certificates", "keyPath": "{not_a_key}"}}]}}'
    assert (
        await check(x509, image(good))
        == 'Source image rejected: Unimplemented "keyType" value "X509Certificates"'
    )


async def test_identity_rules_apply_to_the_image_name(gnupg_home: GpgKeys) -> None:
    signed_upstream = await gpg_signature("alice@test.example", identity="quay.io/up/app:1")
    remap = '{"type": "remapIdentity", "prefix": "registry.example/ns", "signedPrefix": "quay.io/up"}'
    assert await check(signed_by(gnupg_home, remap), image(signed_upstream)) is None
    exact = '{"type": "exactReference", "dockerReference": "quay.io/up/app:1"}'
    assert await check(signed_by(gnupg_home, exact), image(signed_upstream)) is None
    assert await check(signed_by(gnupg_home), image(signed_upstream)) is not None
    no_name = CheckedImage("dir:/x", None, DIGEST, (await gpg_signature("alice@test.example"),))
    assert (
        await check(signed_by(gnupg_home), no_name)
        == f"Source image rejected: Signature for identity {NAME} is not accepted"
    )


async def test_sigstore_signed(tmp_path: Path) -> None:
    pair = generate_key_pair(b"pw")
    public = tmp_path / "cosign.pub"
    public.write_bytes(pair.public_pem)
    private = decrypt_private_key(pair.private_pem, b"pw", "k")
    document = payloads.build(payloads.SIGSTORE_TYPE, DIGEST, NAME)
    good = SigstoreSignature(
        SIGSTORE_PAYLOAD_TYPE, document, {SIGSTORE_SIGNATURE_ANNOTATION: sign_payload(private, document)}
    )
    policy = f'{{"default": [{{"type": "sigstoreSigned", "keyPath": "{public}"}}]}}'
    assert await check(policy, image(good)) is None
    data = base64.b64encode(pair.public_pem).decode()
    assert (
        await check(f'{{"default": [{{"type": "sigstoreSigned", "keyData": "{data}"}}]}}', image(good))
        is None
    )
    forged = SigstoreSignature(
        SIGSTORE_PAYLOAD_TYPE, document.replace(b"ns/app", b"ns/evil"), good.annotations
    )
    assert (
        await check(policy, image(forged))
        == "Source image rejected: cryptographic signature verification failed"
    )
    unsigned = SigstoreSignature(SIGSTORE_PAYLOAD_TYPE, document, {})
    assert await check(policy, image(unsigned)) == (
        f"Source image rejected: missing {SIGSTORE_SIGNATURE_ANNOTATION} annotation"
    )
    attestation = SigstoreSignature("application/vnd.dsse.envelope.v1+json", b"{}", {})
    message = await check(policy, image(attestation, SimpleSignature(b"\xa3")))
    expected = "A signature was required, but no signature exists (2 signatures of another format)"
    assert message == f"Source image rejected: {expected}"
    other = tmp_path / "other.pub"
    other.write_bytes(generate_key_pair(b"x").public_pem)
    rejected = await check(
        f'{{"default": [{{"type": "sigstoreSigned", "keyPath": "{other}"}}]}}', image(good)
    )
    assert rejected == "Source image rejected: cryptographic signature verification failed"
    not_a_key = tmp_path / "bad.pub"
    not_a_key.write_text("x")
    rejected = await check(
        f'{{"default": [{{"type": "sigstoreSigned", "keyPath": "{not_a_key}"}}]}}', image(good)
    )
    assert rejected == f"Source image rejected: parsing public key {not_a_key}: not a PEM public key"


def test_needs_signatures() -> None:
    assert not needs_signatures(parse_policy('{"default": [{"type": "reject"}]}').default)
    assert needs_signatures(
        parse_policy('{"default": [{"type": "sigstoreSigned", "keyPath": "/k"}]}').default
    )
