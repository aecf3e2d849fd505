"""Creating signatures for what a copy writes: GPG simple signing and sigstore (cosign) keys.

A signer turns (manifest digest, Docker identity) into one signature. Both are built once per
run at the edge (the CLI), so a bad key or passphrase fails before any image is touched:

* :class:`GpgSigner` (``--sign-by KEY`` [``--sign-passphrase-file``]): the caller's keyring.
  :meth:`GpgSigner.check` signs a throw-away payload once, so a wrong passphrase or an unknown
  key is reported before the first blob is written (gpg-agent then caches the passphrase as it
  would for skopeo's own signing).
* :class:`SigstoreSigner` (``--sign-by-sigstore-private-key FILE`` + passphrase): the key is
  decrypted when the signer is made.

Each signer also answers :meth:`~GpgSigner.made`: is this stored signature one it made for
this manifest digest and identity? (``sync`` asks it of images it skips as present, so it signs
only those that lack its signature.)

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
    #: The primary key fingerprint of ``key``, learnt by :meth:`made` from a probe signature.
    _fingerprint: str = field(default="", repr=False)
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

    async def made(self, signature: Signature, digest: Digest, identity: str) -> bool:
        """Whether ``signature`` is a valid simple signature by this key (same primary key, checked
        with the caller's keyring) of ``digest`` for ``identity``. A signature by a key the keyring
        does not hold, or that is not valid, is someone else's: ``False``, never an error."""
        if not isinstance(signature, SimpleSignature):
            return False
        async with self._lock:
            if not self._fingerprint:
                # ``key`` may be an e-mail or key ID: the key gpg signs with decides.
                probe = await gpg.sign(b"asyncsync signer probe\n", self.key, passphrase=self.passphrase)
                self._fingerprint = (await gpg.verify(probe, home=None)).primary_fingerprint
        try:
            verified = await gpg.verify(signature.blob, home=None)
        except SignatureError:
            return False
        if verified.primary_fingerprint != self._fingerprint:
            return False
        return _claims(verified.payload, payloads.SIMPLE_SIGNING_TYPE, digest, identity)


@dataclass
class SigstoreSigner:
    """Sigstore signing with a private key decrypted from cosign's encrypted PEM."""

    path: str
    passphrase: bytes = field(repr=False)

    def __post_init__(self) -> None:
        # cryptography and PyNaCl only when a sigstore key is used (start-up time of other runs)
        from asyncsync.signature.sigstore import decrypt_private_key

        try:
            with open(self.path, "rb") as handle:
                data = handle.read(1024 * 1024)
        except OSError as exc:
            raise SignatureError(f"reading private key from {self.path}: {exc.strerror or exc}") from None
        self._key = decrypt_private_key(data, self.passphrase, f"initializing private key {self.path}")

    async def check(self) -> None:
        """The key was decrypted when the signer was made; nothing left to prove."""

    async def sign(self, digest: Digest, identity: str) -> Signature:
        from asyncsync.signature.sigstore import sign_payload

        document = payloads.build(payloads.SIGSTORE_TYPE, digest, identity)
        encoded = sign_payload(self._key, document)
        return SigstoreSignature(SIGSTORE_PAYLOAD_TYPE, document, {SIGSTORE_SIGNATURE_ANNOTATION: encoded})

    async def made(self, signature: Signature, digest: Digest, identity: str) -> bool:
        """Whether ``signature`` is a cosign signature layer verified by this key's public half,
        of ``digest`` for ``identity`` (anything else is someone else's: ``False``)."""
        if not isinstance(signature, SigstoreSignature) or not signature.is_signature:
            return False
        encoded = signature.annotations.get(SIGSTORE_SIGNATURE_ANNOTATION)
        if encoded is None:
            return False
        from asyncsync.signature.sigstore import verify_payload

        try:
            verify_payload(self._key.public_key(), signature.payload, encoded)
        except SignatureError:
            return False
        return _claims(signature.payload, payloads.SIGSTORE_TYPE, digest, identity)


def _claims(raw: bytes, kind: str, digest: Digest, identity: str) -> bool:
    """Whether the verified payload ``raw`` signs exactly ``digest`` as ``identity``."""
    try:
        claimed = payloads.parse(raw, kind)
    except payloads.InvalidPayloadError:
        return False
    return claimed.digest == str(digest) and claimed.docker_reference == identity


Signer = GpgSigner | SigstoreSigner
