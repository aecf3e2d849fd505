"""Creating signatures for what a copy writes: GPG simple signing and sigstore (cosign) keys.

A signer turns (manifest digest, Docker identity) into one signature. Both are built once per
run at the edge (the CLI), so a bad key or passphrase fails before any image is touched:

* :class:`GpgSigner` (``--sign-by KEY`` [``--sign-passphrase-file``]): the caller's keyring.
  :meth:`GpgSigner.check` signs a throw-away payload once, so a wrong passphrase or an unknown
  key is reported before the first blob is written (gpg-agent then caches the passphrase as it
  would for skopeo's own signing).
* :class:`SigstoreSigner` (``--sign-by-sigstore-private-key FILE`` + passphrase): the key is
  decrypted when the signer is made.

:func:`read_passphrase_file` reads a passphrase as skopeo does (the first line, without ``\\n``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio

from asyncsync.digest import Digest
from asyncsync.errors import SignatureError, UsageError
from asyncsync.signature import gpg
from asyncsync.signature import payload as payloads
from asyncsync.signature.formats import (
    SIGSTORE_PAYLOAD_TYPE,
    SIGSTORE_SIGNATURE_ANNOTATION,
    Signature,
    SigstoreSignature,
    SimpleSignature,
)
from asyncsync.signature.sigstore import decrypt_private_key, sign_payload


def read_passphrase_file(path: str, flag: str = "--sign-passphrase-file") -> str:
    """The first line of ``path`` without its newline (containers/image's ``ReadPassphraseFile``)."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline()
    except OSError as exc:
        raise UsageError(f"{flag}: cannot read {path}: {exc.strerror or exc}") from None
    return first.decode("utf-8", "replace").removesuffix("\n")


@dataclass
class GpgSigner:
    """Simple signing with ``key`` from the caller's GPG keyring. The passphrase never leaves
    this object except on gpg's standard input."""

    key: str
    passphrase: str | None = field(default=None, repr=False)
    _checked: bool = field(default=False, repr=False)
    _lock: anyio.Lock = field(default_factory=anyio.Lock, repr=False)

    async def check(self) -> None:
        """Prove the key and passphrase work (once per run); raises :class:`SignatureError`."""
        async with self._lock:
            if self._checked:
                return
            await gpg.sign(b"asyncsync signing check\n", self.key, passphrase=self.passphrase)
            self._checked = True

    async def sign(self, digest: Digest, identity: str) -> Signature:
        document = payloads.build(payloads.SIMPLE_SIGNING_TYPE, digest, identity)
        return SimpleSignature(await gpg.sign(document, self.key, passphrase=self.passphrase))


@dataclass
class SigstoreSigner:
    """Sigstore signing with a private key decrypted from cosign's encrypted PEM."""

    path: str
    passphrase: bytes = field(repr=False)

    def __post_init__(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                data = handle.read(1024 * 1024)
        except OSError as exc:
            raise SignatureError(f"reading private key from {self.path}: {exc.strerror or exc}") from None
        self._key = decrypt_private_key(data, self.passphrase, f"initializing private key {self.path}")

    async def check(self) -> None:
        """The key was decrypted when the signer was made; nothing left to prove."""

    async def sign(self, digest: Digest, identity: str) -> Signature:
        document = payloads.build(payloads.SIGSTORE_TYPE, digest, identity)
        encoded = sign_payload(self._key, document)
        return SigstoreSignature(SIGSTORE_PAYLOAD_TYPE, document, {SIGSTORE_SIGNATURE_ANNOTATION: encoded})


Signer = GpgSigner | SigstoreSigner
