"""cosign (sigstore) keys and signatures, with ``cryptography`` and PyNaCl.

Private keys are cosign's encrypted format: a PEM block ``ENCRYPTED SIGSTORE PRIVATE KEY`` (newer
skopeo, cosign 2) or ``ENCRYPTED COSIGN PRIVATE KEY`` (cosign 1) whose body is go-tuf's
``encrypted`` JSON: ``{"kdf": {"name": "scrypt", "params": {"N", "r", "p"}, "salt"},
"cipher": {"name": "nacl/secretbox", "nonce"}, "ciphertext"}``; the key is
``scrypt(passphrase, salt, N, r, p, 32)`` and the plaintext a PKCS#8 DER private key.
``cryptography`` does scrypt, PKCS#8 and ECDSA (it is what every Python TLS stack already uses);
PyNaCl is libsodium's maintained binding and secretbox is libsodium's own construction, so
neither is re-implemented here.

A signature (:func:`sign_payload`) is ECDSA P-256 with SHA-256, ASN.1 DER, base64 in the layer's
``dev.cosignproject.cosign/signature`` annotation; the layer is the payload itself
(``application/vnd.dev.cosign.simplesigning.v1+json``). :func:`verify_payload` also accepts RSA
(PKCS#1 v1.5, SHA-256) and Ed25519 public keys, as sigstore's ``LoadVerifier`` does.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass

import nacl.exceptions
import nacl.secret
import orjson
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from asyncsync.errors import SignatureError

PRIVATE_KEY_PEM_TYPES = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")
#: go-tuf's defaults (cosign's keys use them): N = 2^15, r = 8, p = 1.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 32768, 8, 1
#: Refuse work factors a hostile key file could use to burn memory/CPU (N=2^20 is cosign's max).
_MAX_SCRYPT_N = 1 << 20


def _pem_block(data: bytes, where: str) -> tuple[str, str]:
    """The first PEM block's type and base64 body (not decoded yet)."""
    text = data.decode("ascii", "replace")
    begin = text.find("-----BEGIN ")
    header_end = text.find("-----", begin + 11) if begin != -1 else -1
    if header_end == -1:
        raise SignatureError(f"{where}: not a PEM key (invalid pem block)")
    kind = text[begin + 11 : header_end]
    end = text.find(f"-----END {kind}-----", header_end)
    if end == -1:
        raise SignatureError(f"{where}: not a PEM key (invalid pem block)")
    body = "".join(line.strip() for line in text[header_end + 5 : end].splitlines() if ":" not in line)
    return kind, body


def _b64(value: object, what: str, where: str) -> bytes:
    if not isinstance(value, str):
        raise SignatureError(f"{where}: encrypted key: {what} missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(f"{where}: encrypted key: {what} is not base64") from None


def _scrypt_key(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase)


def decrypt_private_key(
    data: bytes, passphrase: bytes, where: str
) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
    """The private key in cosign's encrypted PEM ``data``; a wrong passphrase is one clear error."""
    kind, text = _pem_block(data, where)
    if kind not in PRIVATE_KEY_PEM_TYPES:
        raise SignatureError(f"{where}: unsupported pem type: {kind}")
    try:
        document = orjson.loads(base64.b64decode(text, validate=True))
        kdf, cipher = document["kdf"], document["cipher"]
        params = kdf["params"]
        n, r, p = int(params["N"]), int(params["r"]), int(params["p"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, binascii.Error):
        raise SignatureError(f"{where}: not a cosign encrypted key") from None
    if kdf.get("name") != "scrypt" or cipher.get("name") != "nacl/secretbox":
        raise SignatureError(f"{where}: unsupported key encryption {kdf.get('name')}/{cipher.get('name')}")
    if not (1 < n <= _MAX_SCRYPT_N and n & (n - 1) == 0 and 0 < r <= 32 and 0 < p <= 16):
        raise SignatureError(f"{where}: unsupported scrypt parameters")
    salt = _b64(kdf.get("salt"), "salt", where)
    nonce = _b64(cipher.get("nonce"), "nonce", where)
    ciphertext = _b64(document.get("ciphertext"), "ciphertext", where)
    key = _scrypt_key(passphrase, salt, n, r, p)
    try:
        der = nacl.secret.SecretBox(key).decrypt(ciphertext, nonce)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise SignatureError(f"{where}: decrypt: encrypted: decryption failed (wrong passphrase?)") from None
    try:
        private = serialization.load_der_private_key(der, password=None)
    except (ValueError, UnsupportedAlgorithm):
        raise SignatureError(f"{where}: parsing private key: not PKCS#8") from None
    if not isinstance(private, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise SignatureError(f"{where}: unsupported key type")
    return private


@dataclass(frozen=True, slots=True)
class KeyPair:
    private_pem: bytes
    public_pem: bytes


def generate_key_pair(passphrase: bytes) -> KeyPair:
    """A new ECDSA P-256 key pair: the private key encrypted as skopeo's ``generate-sigstore-key``."""
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    salt, nonce = os.urandom(32), os.urandom(nacl.secret.SecretBox.NONCE_SIZE)
    key = _scrypt_key(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    ciphertext = nacl.secret.SecretBox(key).encrypt(der, nonce).ciphertext
    document = {
        "kdf": {
            "name": "scrypt",
            "params": {"N": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P},
            "salt": base64.b64encode(salt).decode(),
        },
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
    body = base64.b64encode(orjson.dumps(document)).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    private_pem = (
        f"-----BEGIN {PRIVATE_KEY_PEM_TYPES[0]}-----\n{lines}\n-----END {PRIVATE_KEY_PEM_TYPES[0]}-----\n"
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(private_pem.encode(), public_pem)


PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


def load_public_key(data: bytes, where: str) -> PublicKey:
    """A PEM ``PUBLIC KEY`` (as cosign and skopeo write them)."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise SignatureError(f"parsing public key {where}: not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise SignatureError(f"parsing public key {where}: unsupported key type")
    return key


def sign_payload(
    private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey, payload: bytes
) -> str:
    """The base64 signature of ``payload`` for the cosign annotation."""
    if isinstance(private, ec.EllipticCurvePrivateKey):
        raw = private.sign(payload, ec.ECDSA(hashes.SHA256()))
    elif isinstance(private, rsa.RSAPrivateKey):
        raw = private.sign(payload, padding.PKCS1v15(), hashes.SHA256())
    else:
        raw = private.sign(payload)
    return base64.b64encode(raw).decode("ascii")


def verify_payload(public: PublicKey, payload: bytes, signature_b64: str) -> None:
    """Raise :class:`SignatureError` unless ``signature_b64`` signs ``payload`` with ``public``."""
    try:
        raw = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("base64 decoding of the signature failed") from None
    try:
        if isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(raw, payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(public, rsa.RSAPublicKey):
            public.verify(raw, payload, padding.PKCS1v15(), hashes.SHA256())
        else:
            public.verify(raw, payload)
    except InvalidSignature:
        raise SignatureError("cryptographic signature verification failed") from None
