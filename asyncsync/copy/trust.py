"""The copy engine's trust step: admit the source image, then store its signatures.

:func:`admit` runs after the source manifest is read and before the first blob is written:

1. the policy's requirements for the source reference's scope
   (:class:`~asyncsync.signature.evaluate.PolicyContext`);
2. the signatures of each image instance that will be copied (the chosen one for
   ``--multi-arch system``, each selected one for ``all``, each listed one for ``index-only``),
   listed by the source when the policy needs them or when they are to be copied;
3. the check itself: a refusal raises :class:`~asyncsync.errors.PolicyRejectedError` and
   nothing has been written;
4. whether the destination can take the signatures (copied or new), and the signer works.

Copied signatures sign the source's manifest bytes, so an admitted copy that carries signatures
must not change any digest: :attr:`Admission.options` then has ``preserve_digests``, and the
engine refuses a conversion with its usual error.

:meth:`Admission.store` runs after the manifests are written and before ``commit()``: for the
top-level manifest (and each instance of an ``all`` copy) it writes the copied signatures plus
a new one per signer (``--sign-by``, ``--sign-by-sigstore-private-key``), for the identity
``--sign-identity`` or the destination's Docker reference, as containers/image does.

:func:`sign_present` is the same signing for an image a sync skips because the destination
already has it (skopeo's sync re-copies, and so re-signs, every image): each signer that has no
valid signature of its own for the digest and identity among the destination's signatures
(:meth:`~asyncsync.signature.signing.GpgSigner.made`) adds one, next to the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from asyncsync.copy.index import select_platforms
from asyncsync.copy.options import CopyOptions, TrustSettings
from asyncsync.digest import Digest
from asyncsync.errors import SignatureError
from asyncsync.manifest import ImageIndex, ImageManifest, choose_platform, host_platform, parse_manifest
from asyncsync.signature.evaluate import CheckedImage, needs_signatures
from asyncsync.signature.formats import Signature, SimpleSignature
from asyncsync.signature.scopes import as_named
from asyncsync.signature.signing import GpgSigner, Signer, SigstoreSigner
from asyncsync.transports.base import (
    ImageDestination,
    ImageReference,
    ImageSource,
    SignatureDestination,
    SignatureSource,
)

#: Why a transport cannot store signatures (containers/image's messages).
_NO_SIGNATURES = {
    "oci": "Pushing signatures for OCI images is not supported",
    "oci-archive": "Pushing signatures for OCI images is not supported",
    "docker-archive": "Storing signatures for docker tar files is not supported",
    "docker-daemon": "Storing signatures for docker tar files is not supported",
}


def _cannot_store(destination: ImageDestination, doing: str) -> SignatureError:
    reason = _NO_SIGNATURES.get(
        destination.reference.transport_name, "the destination cannot store signatures"
    )
    return SignatureError(f"Can not {doing} {image_name(destination.reference)}: {reason}")


def image_name(reference: ImageReference) -> str:
    """``transport:details``, as containers/image's ``transports.ImageName``."""
    return f"{reference.transport_name}:{reference.within_transport()}"


@dataclass
class _Instance:
    digest: Digest
    #: The source keeps it as a child of an index (``dir:`` names its signatures apart).
    source_instance: bool
    signatures: list[Signature] = field(default_factory=list)


@dataclass
class Admission:
    """What :func:`admit` decided; :meth:`store` writes the signatures after the manifests."""

    options: CopyOptions
    settings: TrustSettings
    top: _Instance
    children: list[_Instance]
    copy_signatures: bool
    #: The Docker reference new signatures claim (when there are signers).
    identity: str = ""

    async def store(self, destination: ImageDestination, written_raw: bytes, written: Digest) -> None:
        """Write copied and new signatures for the written manifest(s); see the module docstring."""
        signers = self.settings.signers
        plan: list[tuple[Digest, bool, list[Signature]]] = []
        carried = self.top.signatures if self.copy_signatures else []
        plan.append((written, False, list(carried)))
        written_manifest = parse_manifest(written_raw)
        if self.options.multi_arch == "all" and isinstance(written_manifest, ImageIndex):
            # The written index names the instances (converted ones by their new digests;
            # carried signatures imply preserved digests, so they are found by digest).
            source_signatures = {child.digest: child.signatures for child in self.children}
            for entry in written_manifest.manifests:
                signatures = source_signatures.get(entry.digest, []) if self.copy_signatures else []
                plan.append((entry.digest, True, list(signatures)))
        for digest, _, signatures in plan:
            for signer in signers:
                signatures.append(await signer.sign(digest, self.identity))
        if not any(signatures for _, _, signatures in plan):
            return
        assert isinstance(destination, SignatureDestination)  # checked by admit()
        for digest, instance, signatures in plan:
            if signatures:
                await destination.put_signatures(signatures, digest, instance=instance)


@dataclass(frozen=True, slots=True)
class PresentSigned:
    """What :func:`sign_present` found and did: signatures added, and ours already there."""

    added: int = 0
    present: int = 0


async def sign_present(
    reader: SignatureSource,
    destination: ImageDestination,
    digests: list[tuple[Digest, bool]],
    settings: TrustSettings,
) -> PresentSigned:
    """Sign the manifests ``digests`` (digest, is an index's instance) the destination already
    holds, for each signer that has not: ``reader`` lists the destination's signatures (one read
    per digest: the lookaside files, the ``.sig`` tag and its layers). Writes keep every signature
    there: the lookaside list is rewritten with the existing simple signatures first and ours
    appended; attachments are appended by :func:`put_signatures` itself. Raises
    :class:`SignatureError` when the destination cannot store signatures or a signer fails."""
    if not settings.signers:
        return PresentSigned()
    if not isinstance(destination, SignatureDestination):
        raise _cannot_store(destination, "sign")
    identity = _identity(settings, destination)
    # Only the stores our signers write to are read (a GPG key's signature is never an attachment).
    simple = any(isinstance(signer, GpgSigner) for signer in settings.signers)
    sigstore = any(isinstance(signer, SigstoreSigner) for signer in settings.signers)
    added = present = 0
    for digest, instance in digests:
        existing = await reader.get_signatures(digest, instance=instance, simple=simple, sigstore=sigstore)
        new: list[Signature] = []
        for signer in settings.signers:
            if await _made_by(signer, existing, digest, identity):
                present += 1
                continue
            await signer.check()
            new.append(await signer.sign(digest, identity))
        if not new:
            continue
        kept: list[Signature] = [s for s in existing if isinstance(s, SimpleSignature)]
        if not any(isinstance(s, SimpleSignature) for s in new):
            kept = []  # attachments append; the lookaside is left as it is
        await destination.put_signatures(kept + new, digest, instance=instance)
        added += len(new)
    return PresentSigned(added, present)


async def _made_by(signer: Signer, existing: list[Signature], digest: Digest, identity: str) -> bool:
    for signature in existing:
        if await signer.made(signature, digest, identity):
            return True
    return False


def _identity(settings: TrustSettings, destination: ImageDestination) -> str:
    """What new signatures claim: ``--sign-identity``, else the destination's Docker reference."""
    identity = settings.sign_identity
    if identity is None:
        named = destination.reference.docker_reference()
        if named is None:
            name = image_name(destination.reference)
            raise SignatureError(f"Cannot determine canonical Docker reference for destination {name}")
        identity = as_named(named)
    if identity.tag is None and identity.digest is None:
        raise SignatureError(f"Sign identity must be a fully specified reference {identity}")
    return str(identity)


def _instances(
    manifest: ImageManifest | ImageIndex, options: CopyOptions
) -> tuple[_Instance, list[_Instance]]:
    """The top-level manifest and the instances this copy takes from it."""
    top = _Instance(manifest.digest, False)
    if not isinstance(manifest, ImageIndex):
        return top, []
    if options.multi_arch == "system":
        platform = options.platform or host_platform()
        chosen = choose_platform(manifest, platform.os, platform.architecture, platform.variant)
        # No match: the copy itself fails with its own message before writing anything.
        return (_Instance(chosen.digest, True) if chosen is not None else top), []
    index = (
        select_platforms(manifest, options.platforms)
        if options.platforms and options.multi_arch == "all"
        else manifest
    )
    return top, [_Instance(entry.digest, True) for entry in index.manifests]


async def admit(
    source: ImageSource,
    destination: ImageDestination,
    manifest: ImageManifest | ImageIndex,
    options: CopyOptions,
    settings: TrustSettings,
) -> Admission:
    """Check the policy and prepare signatures (see the module docstring); raises
    :class:`~asyncsync.errors.PolicyRejectedError` for a refused image, before any write."""
    top, children = _instances(manifest, options)
    requirements = settings.policy.requirements(source.reference) if settings.policy is not None else ()
    copy_signatures = not options.remove_signatures
    wanted = [top, *children]
    if (needs_signatures(requirements) or copy_signatures) and isinstance(source, SignatureSource):
        for instance in wanted:
            instance.signatures = await source.get_signatures(
                instance.digest, instance=instance.source_instance
            )
    if settings.policy is not None:
        named = source.reference.docker_reference()
        # The images whose blobs are copied: the chosen one, or each instance (an index-only
        # copy writes no image, but its index names them all: each must be allowed).
        checked = [top]
        if isinstance(manifest, ImageIndex) and options.multi_arch != "system":
            checked = children or [top]  # an empty index is still asked about
        for instance in checked:
            image = CheckedImage(
                image_name(source.reference),
                as_named(named) if named is not None else None,
                instance.digest,
                tuple(instance.signatures),
            )
            await settings.policy.check(image, requirements)
    carried = copy_signatures and any(instance.signatures for instance in wanted)
    if (carried or settings.signers) and not isinstance(destination, SignatureDestination):
        raise _cannot_store(destination, "copy signatures to")
    identity = _identity(settings, destination) if settings.signers else ""
    for signer in settings.signers:
        await signer.check()
    if carried and not options.preserve_digests:
        options = replace(options, preserve_digests=True)
    return Admission(options, settings, top, children, carried, identity)
