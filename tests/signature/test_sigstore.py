"""cosign keys and signatures, checked against fixtures built from the format's specification.

Debian's skopeo 1.9.3 is built without sigstore and cosign is not installed here, so these tests
cannot ask a real cosign. Instead :func:`spec_encrypted_key` builds a private key file step by step
from go-tuf's ``encrypted`` format as cosign documents it (scrypt N=32768 r=8 p=1 over the
passphrase and a random salt, nacl secretbox over the PKCS#8 DER key, JSON, base64, PEM), with
hashlib's scrypt (not the code under test's), and the tests read it with the module's decryptor.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os

import nacl.secret
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from asyncsync.errors import SignatureError
from asyncsync.signature.sigstore import (
    decrypt_private_key,
    generate_key_pair,
    load_public_key,
    sign_payload,
    verify_payload,
)


def spec_encrypted_key(private: ec.EllipticCurvePrivateKey, passphrase: bytes, pem_type: str) -> bytes:
    der = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    salt, nonce = os.urandom(32), os.urandom(24)
    key = hashlib.scrypt(passphrase, salt=salt, n=32768, r=8, p=1, dklen=32, maxmem=64 * 1024 * 1024)
    box = nacl.secret.SecretBox(key).encrypt(der, nonce).ciphertext
    document = {
        "kdf": {
            "name": "scrypt",
            "params": {"N": 32768, "r": 8, "p": 1},
            "salt": base64.b64encode(salt).decode(),
        },
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(box).decode(),
    }
    body = base64.encodebytes(json.dumps(document).encode()).decode()
    return f"-----BEGIN {pem_type}-----\n{body}-----END {pem_type}-----\n".encode()


@pytest.mark.parametrize("pem_type", ["ENCRYPTED COSIGN PRIVATE KEY", "ENCRYPTED SIGSTORE PRIVATE KEY"])
def test_reads_keys_made_by_the_specification(pem_type: str) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    data = spec_encrypted_key(private, b"pass", pem_type)
    loaded = decrypt_private_key(data, b"pass", "key.private")
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    assert loaded.private_numbers() == private.private_numbers()
    with pytest.raises(SignatureError, match="decryption failed"):
        decrypt_private_key(data, b"wrong", "key.private")


def test_generated_keys_round_trip_and_signatures_verify_with_plain_ecdsa() -> None:
    pair = generate_key_pair(b"secret")
    assert pair.private_pem.startswith(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")
    private = decrypt_private_key(pair.private_pem, b"secret", "k")
    encoded = sign_payload(private, b"payload")
    public = load_public_key(pair.public_pem, "k.pub")
    verify_payload(public, b"payload", encoded)
    # independently: an ASN.1 DER ECDSA P-256/SHA-256 signature, as cosign's annotation holds
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(base64.b64decode(encoded), b"payload", ec.ECDSA(hashes.SHA256()))
    with pytest.raises(SignatureError, match="cryptographic signature verification failed"):
        verify_payload(public, b"other payload", encoded)
    with pytest.raises(SignatureError, match="base64"):
        verify_payload(public, b"payload", "%%%")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a key", "not a PEM key"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "unsupported pem type: PUBLIC KEY"),
        (
            b"-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n"
            + base64.b64encode(b'{"kdf": {}}')
            + b"\n-----END ENCRYPTED COSIGN PRIVATE KEY-----\n",
            "not a cosign encrypted key",
        ),
    ],
)
def test_bad_private_key_files(data: bytes, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        decrypt_private_key(data, b"x", "bad.key")


def test_hostile_scrypt_parameters_are_refused() -> None:
    document = {
        "kdf": {"name": "scrypt", "params": {"N": 1 << 30, "r": 8, "p": 1}, "salt": "AA=="},
        "cipher": {"name": "nacl/secretbox", "nonce": "AA=="},
        "ciphertext": "AA==",
    }
    pem = b"-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n" + base64.b64encode(json.dumps(document).encode())
    pem += b"\n-----END ENCRYPTED COSIGN PRIVATE KEY-----\n"
    with pytest.raises(SignatureError, match="unsupported scrypt parameters"):
        decrypt_private_key(pem, b"x", "k")


def test_public_key_that_is_not_a_key() -> None:
    with pytest.raises(SignatureError, match="not a PEM public key"):
        load_public_key(b"garbage", "k.pub")
