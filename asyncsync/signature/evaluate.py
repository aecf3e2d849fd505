""" "Is this image allowed?": a policy's requirements evaluated for one image instance.

:class:`PolicyContext` holds a parsed :class:`~asyncsync.signature.policy.Policy` for a run.
:meth:`PolicyContext.check` takes a :class:`CheckedImage` (its name, Docker reference, manifest
digest and the signatures its source listed) and returns, or raises
:class:`~asyncsync.errors.PolicyRejectedError` with containers/image's wording after
``Source image rejected: ``. Every requirement of the image's scope must allow it
(containers/image's ``IsRunningImageAllowed``):

* ``insecureAcceptAnything`` allows; ``reject`` refuses ("Running image X is rejected by policy.").
* ``signedBy`` (GPGKeys) allows when one simple signature verifies with one of the requirement's
  keys, in a temporary keyring holding only those keys, claims the image's manifest digest, and
  claims an identity the ``signedIdentity`` rule accepts.
* ``sigstoreSigned`` the same for cosign signatures, with the requirement's public key.
* ``signedBaseLayer`` refuses (not implemented by containers/image either).

No signature: "A signature was required, but no signature exists"; one rejected: its reason;
several: "None of the signatures were accepted, reasons: a; b". Keys are read when a requirement
is first used and kept for the run (one temporary GPG home per ``signedBy``), released by
:meth:`PolicyContext.close`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from asyncsync.digest import Digest
from asyncsync.errors import PolicyRejectedError, SignatureError
from asyncsync.reference import ImageName
from asyncsync.signature import payload as payloads
from asyncsync.signature.formats import (
    SIGSTORE_SIGNATURE_ANNOTATION,
    Signature,
    SigstoreSignature,
    SimpleSignature,
)
from asyncsync.signature.gpg import EphemeralKeyring
from asyncsync.signature.identity import IdentityRule
from asyncsync.signature.policy import (
    InsecureAcceptAnything,
    Policy,
    Reject,
    Requirement,
    Requirements,
    SignedBaseLayer,
    SignedBy,
    SigstoreSigned,
)
from asyncsync.signature.scopes import NamedImage, image_scopes

if TYPE_CHECKING:
    # cryptography and PyNaCl are imported when a sigstore requirement is first used, not at
    # start-up (most runs have none: see the README's start-up figures).
    from asyncsync.signature.sigstore import PublicKey


@dataclass(frozen=True, slots=True)
class CheckedImage:
    """One image instance under check. ``name`` is ``transport:details`` for messages."""

    name: str
    docker_reference: ImageName | None
    digest: Digest
    signatures: tuple[Signature, ...] = ()


def requirements_for(policy: Policy, reference: NamedImage) -> tuple[str, Requirements]:
    """The scope used (``""`` for the transport default, ``"default"`` for the policy's) and its
    requirements, as containers/image's ``requirementsForImageRef``."""
    scopes: Mapping[str, Requirements] | None = policy.transports.get(reference.transport_name)
    if scopes is not None:
        identity, namespaces = image_scopes(reference)
        for scope in (identity, *namespaces):
            if scope in scopes:
                return scope, scopes[scope]
        if "" in scopes:
            return "", scopes[""]
    return "default", policy.default


class _Rejected(Exception):
    """One signature or requirement said no; ``str`` is the reason."""


def needs_signatures(requirements: Requirements) -> bool:
    """Whether evaluating ``requirements`` reads signatures (so the source must list them)."""
    return any(isinstance(r, SignedBy | SigstoreSigned) for r in requirements)


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise _Rejected(f"open {path}: no such file or directory") from None
    except OSError as exc:
        raise _Rejected(f"open {path}: {exc.strerror or exc}") from None


def _check_claims(claims: payloads.Payload, image: CheckedImage, identity: IdentityRule) -> None:
    if claims.digest != str(image.digest):
        raise _Rejected(f"Signature for digest {claims.digest} does not match")
    if not identity.matches(image.docker_reference, claims.docker_reference):
        raise _Rejected(f"Signature for identity {claims.docker_reference} is not accepted")


class PolicyContext:
    """A policy in use for a run; see the module docstring."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._keyrings: dict[SignedBy, EphemeralKeyring] = {}
        self._public_keys: dict[SigstoreSigned, PublicKey] = {}
        self._lock = anyio.Lock()

    def requirements(self, reference: NamedImage) -> Requirements:
        """The requirements of ``reference``'s most specific scope."""
        return requirements_for(self.policy, reference)[1]

    async def check(self, image: CheckedImage, requirements: Requirements) -> None:
        """Return if every requirement allows ``image``; else raise :class:`PolicyRejectedError`."""
        if not requirements:
            raise PolicyRejectedError(
                "Source image rejected: List of verification policy requirements must not be empty"
            )
        for requirement in requirements:
            try:
                await self._allowed(requirement, image)
            except _Rejected as rejected:
                raise PolicyRejectedError(f"Source image rejected: {rejected}") from None

    async def _allowed(self, requirement: Requirement, image: CheckedImage) -> None:
        if isinstance(requirement, InsecureAcceptAnything):
            return
        if isinstance(requirement, Reject):
            raise _Rejected(f"Running image {image.name} is rejected by policy.")
        if isinstance(requirement, SignedBaseLayer):
            raise _Rejected("signedBaseLayer not implemented yet!")
        if isinstance(requirement, SignedBy):
            candidates: list[Signature] = [s for s in image.signatures if isinstance(s, SimpleSignature)]
        else:
            candidates = [s for s in image.signatures if isinstance(s, SigstoreSignature) and s.is_signature]
        reasons: list[str] = []
        for signature in candidates:
            try:
                if isinstance(requirement, SignedBy):
                    assert isinstance(signature, SimpleSignature)
                    await self._signed_by(requirement, signature, image)
                else:
                    assert isinstance(signature, SigstoreSignature)
                    await self._sigstore_signed(requirement, signature, image)
                return
            except (_Rejected, SignatureError) as exc:
                reasons.append(str(exc))
        if not reasons:
            others = len(image.signatures) - len(candidates)
            suffix = f" ({others} signatures of another format)" if others else ""
            raise _Rejected(f"A signature was required, but no signature exists{suffix}")
        if len(reasons) == 1:
            raise _Rejected(reasons[0])
        raise _Rejected(f"None of the signatures were accepted, reasons: {'; '.join(reasons)}")

    async def _keyring(self, requirement: SignedBy) -> EphemeralKeyring:
        async with self._lock:
            keyring = self._keyrings.get(requirement)
            if keyring is not None:
                return keyring
            if requirement.key_type != "GPGKeys":
                raise _Rejected(f'Unimplemented "keyType" value "{requirement.key_type}"')
            if requirement.key_data is not None:
                blobs = [requirement.key_data]
            elif requirement.key_path is not None:
                blobs = [_read(requirement.key_path)]
            else:
                blobs = [_read(path) for path in requirement.key_paths or ()]
            keyring = EphemeralKeyring()
            try:
                await keyring.import_keys(blobs)
            except BaseException:
                keyring.close()
                raise
            self._keyrings[requirement] = keyring
            return keyring

    async def _signed_by(
        self, requirement: SignedBy, signature: SimpleSignature, image: CheckedImage
    ) -> None:
        keyring = await self._keyring(requirement)
        if not keyring.fingerprints:
            raise _Rejected("No public keys imported")
        verified = await keyring.verify(signature.blob)
        if (
            verified.fingerprint not in keyring.fingerprints
            and verified.primary_fingerprint not in keyring.fingerprints
        ):
            raise _Rejected(f"Signature by key {verified.fingerprint} is not accepted")
        try:
            claims = payloads.parse(verified.payload, payloads.SIMPLE_SIGNING_TYPE)
        except payloads.InvalidPayloadError as exc:
            raise _Rejected(f"Invalid signature: {exc}") from None
        _check_claims(claims, image, requirement.signed_identity)

    def _public_key(self, requirement: SigstoreSigned) -> PublicKey:
        from asyncsync.signature.sigstore import load_public_key  # cryptography: only for sigstore

        key = self._public_keys.get(requirement)
        if key is None:
            if requirement.key_data is not None:
                data, where = requirement.key_data, "keyData"
            else:
                assert requirement.key_path is not None
                data, where = _read(requirement.key_path), requirement.key_path
            try:
                key = load_public_key(data, where)
            except SignatureError as exc:
                raise _Rejected(str(exc)) from None
            self._public_keys[requirement] = key
        return key

    async def _sigstore_signed(
        self, requirement: SigstoreSigned, signature: SigstoreSignature, image: CheckedImage
    ) -> None:
        from asyncsync.signature.sigstore import verify_payload

        key = self._public_key(requirement)
        encoded = signature.annotations.get(SIGSTORE_SIGNATURE_ANNOTATION)
        if encoded is None:
            raise _Rejected(f"missing {SIGSTORE_SIGNATURE_ANNOTATION} annotation")
        verify_payload(key, signature.payload, encoded)
        try:
            claims = payloads.parse(signature.payload, payloads.SIGSTORE_TYPE)
        except payloads.InvalidPayloadError as exc:
            raise _Rejected(f"Invalid signature: {exc}") from None
        _check_claims(claims, image, requirement.signed_identity)

    def close(self) -> None:
        """Remove the temporary keyrings."""
        keyrings, self._keyrings = list(self._keyrings.values()), {}
        for keyring in keyrings:
            with contextlib.suppress(OSError):
                keyring.close()
