"""Throw-away X.509 material for the test bed, generated with ``cryptography``.

Contracts:

* Every key is a fresh ECDSA P-256 key; nothing is cached between calls, nothing is read from the host.
* :func:`make_ca` returns a self-signed CA that may sign server certificates (``basicConstraints CA=true``).
* :func:`make_server_cert` returns a leaf certificate for ``127.0.0.1``/``::1``/``localhost`` (as
  subjectAltNames: Go ignores the Common Name) signed by the given CA, valid from one hour ago for a week.
* :func:`make_signing_cert` returns a self-signed certificate for signing JWTs; the registry uses it as its
  ``auth.token.rootcertbundle`` and the token service puts its DER form in the JWT ``x5c`` header.
* :func:`write_pem` writes PEM files; private keys are written unencrypted with mode 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["KeyPair", "make_ca", "make_server_cert", "make_signing_cert", "write_pem"]


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A private key with its certificate."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        """The certificate in PEM form."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def cert_der(self) -> bytes:
        """The certificate in DER form (what a JWT ``x5c`` entry carries, base64-encoded)."""
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def key_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _validity() -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    return now - dt.timedelta(hours=1), now + dt.timedelta(days=7)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "asyncsync test bed"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _self_signed(common_name: str, *, ca: bool) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    not_before, not_after = _validity()
    name = _name(common_name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    return KeyPair(key=key, cert=builder.sign(key, hashes.SHA256()))


def make_ca(common_name: str = "asyncsync test CA") -> KeyPair:
    """A fresh self-signed certificate authority."""
    return _self_signed(common_name, ca=True)


def make_signing_cert(common_name: str = "asyncsync test token signer") -> KeyPair:
    """A fresh self-signed, non-CA certificate whose key signs ES256 JWTs."""
    return _self_signed(common_name, ca=False)


def make_server_cert(ca: KeyPair, hosts: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")) -> KeyPair:
    """A TLS server certificate for ``hosts`` (IP addresses or DNS names) signed by ``ca``."""
    key = ec.generate_private_key(ec.SECP256R1())
    not_before, not_after = _validity()
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    return KeyPair(key=key, cert=cert)


def write_pem(path: Path, data: bytes, *, private: bool = False) -> Path:
    """Write ``data`` to ``path`` (parents created); ``private`` files get mode 0600. Returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return path
