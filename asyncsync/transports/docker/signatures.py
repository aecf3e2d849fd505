"""Signatures of registry images: lookaside stores and cosign ``.sig`` attachments.

Where they live is registries.d's business (:mod:`asyncsync.signature.registries_d`):

* Simple signatures in a lookaside store: ``BASE/REPO@sha256=HEX/signature-N``, read from
  ``file://`` (a missing file ends the list) or ``http(s)://`` (a 404 ends it; each answer is
  capped at 4 MiB as containers/image's ``MaxSignatureBodySize``), written to ``file://`` only
  (the staging URL), each file atomically; signatures beyond the new count are deleted, so the
  list never has holes.
* Sigstore signatures, with ``use-sigstore-attachments``: the OCI manifest tagged
  ``sha256-HEX.sig`` in the image's repository, one layer per signature (the payload) with
  the base64 signature in its annotations. Writing appends layers that are not there yet to the
  existing manifest (never replacing what others signed), uploads the payloads and the updated
  config first, and the manifest (the tag) last.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from urllib.parse import unquote, urlsplit

import anyio
import orjson

from asyncsync.digest import Digest
from asyncsync.errors import (
    AsyncSyncError,
    LocalStorageError,
    NotFoundError,
    SignatureError,
    redact_url,
)
from asyncsync.http.errors import mapped, read_capped
from asyncsync.manifest import OCI_MANIFEST
from asyncsync.reference import ImageName
from asyncsync.registry.blobs import pumped, start_upload
from asyncsync.registry.client import RegistryClient
from asyncsync.registry.manifests import get_manifest, put_manifest
from asyncsync.registry.small_blobs import get_blob_bytes
from asyncsync.signature.formats import Signature, SigstoreSignature, SimpleSignature, from_blob, to_blob
from asyncsync.signature.registries_d import RegistriesD, signature_url
from asyncsync.transports.local_files import remove_file, write_bytes_atomic

#: containers/image's iolimits.MaxSignatureBodySize.
MAX_SIGNATURE_SIZE = 4 * 1024 * 1024
#: Lookaside lists longer than this are refused (a store answering 200 to everything).
MAX_SIGNATURES = 256
_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def attachment_tag(digest: Digest) -> str:
    """cosign's tag for the signatures of ``digest``: ``sha256-HEX.sig``."""
    return f"{digest.algorithm}-{digest.hex}.sig"


def _file_path(url: str) -> str:
    return unquote(urlsplit(url).path)


def _read_file(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_SIGNATURE_SIZE + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SignatureError(f"reading signature {path}: {exc.strerror or exc}") from None


async def _read_one(client: RegistryClient, url: str) -> bytes | None:
    """One lookaside signature, or ``None`` when it does not exist. HTTP goes through the run's
    HTTP layer (proxies, redirects, error mapping); no registry credentials are sent."""
    if urlsplit(url).scheme == "file":
        return await anyio.to_thread.run_sync(_read_file, _file_path(url))
    what = f"reading signature from {redact_url(url)}"
    with mapped(what):
        response = await client.session.send("GET", url, ssl=True, what=what, follow=True)
        try:
            if response.status == 404:
                return None
            if response.status != 200:
                raise SignatureError(f"{what}: status {response.status}")
            body, truncated = await read_capped(response, MAX_SIGNATURE_SIZE)
        finally:
            response.release()
    if truncated:
        raise SignatureError(f"{what}: larger than {MAX_SIGNATURE_SIZE} bytes")
    return body


async def read_lookaside(
    client: RegistryClient, config: RegistriesD, name: ImageName, digest: Digest
) -> list[Signature]:
    base = config.lookaside_base(name, write=False)
    found: list[Signature] = []
    for index in range(MAX_SIGNATURES):
        url = signature_url(base, digest, index)
        blob = await _read_one(client, url)
        if blob is None:
            return found
        if len(blob) > MAX_SIGNATURE_SIZE:
            raise SignatureError(
                f"reading signature {redact_url(url)}: larger than {MAX_SIGNATURE_SIZE} bytes"
            )
        found.append(from_blob(blob, redact_url(url)))
    raise SignatureError(f"{redact_url(base)}: more than {MAX_SIGNATURES} signatures for {digest}")


async def write_lookaside(
    config: RegistriesD, name: ImageName, digest: Digest, signatures: list[Signature]
) -> None:
    base = config.lookaside_base(name, write=True)
    scheme = urlsplit(base).scheme
    if scheme != "file":
        raise SignatureError(
            f"Writing directly to a {scheme} lookaside {redact_url(base)} is not supported. "
            "Configure a lookaside-staging: location"
        )
    for index, signature in enumerate(signatures):
        path = _file_path(signature_url(base, digest, index))
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        except OSError as exc:
            raise LocalStorageError(f"writing signature {path}: {exc.strerror or exc}") from None
        await write_bytes_atomic(path, to_blob(signature))
    for index in range(len(signatures), len(signatures) + MAX_SIGNATURES):
        path = _file_path(signature_url(base, digest, index))
        if not remove_file(path, f"removing signature {path}"):
            return


async def _attachment_manifest(
    client: RegistryClient, repository: str, digest: Digest
) -> dict[str, object] | None:
    tag = attachment_tag(digest)
    try:
        fetched = await get_manifest(client, repository, tag, accept=OCI_MANIFEST)
    except NotFoundError:
        return None
    if fetched.media_type != OCI_MANIFEST:
        raise SignatureError(
            f"unexpected MIME type for sigstore attachment manifest {client.registry}/{repository}:{tag}: "
            f"{fetched.media_type!r}"
        )
    try:
        document = orjson.loads(fetched.raw)
    except orjson.JSONDecodeError:
        raise SignatureError(f"parsing manifest {client.registry}/{repository}:{tag}: not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("layers", []), list):
        raise SignatureError(f"parsing manifest {client.registry}/{repository}:{tag}: not an OCI manifest")
    return document


def _descriptor(entry: object, where: str) -> tuple[str, Digest, int, dict[str, str]]:
    if not isinstance(entry, dict):
        raise SignatureError(f"{where}: a layer is not a descriptor")
    try:
        media_type, digest, size = entry["mediaType"], Digest.parse(entry["digest"]), int(entry["size"])
    except (KeyError, TypeError, ValueError, AsyncSyncError):
        raise SignatureError(f"{where}: a layer is not a descriptor") from None
    annotations = entry.get("annotations") or {}
    if not isinstance(media_type, str) or not isinstance(annotations, dict):
        raise SignatureError(f"{where}: a layer is not a descriptor")
    return media_type, digest, size, {str(k): str(v) for k, v in annotations.items()}


async def read_attachments(client: RegistryClient, repository: str, digest: Digest) -> list[Signature]:
    document = await _attachment_manifest(client, repository, digest)
    if document is None:
        return []
    where = f"{client.registry}/{repository}:{attachment_tag(digest)}"
    found: list[Signature] = []
    for entry in document.get("layers") or []:  # type: ignore[attr-defined]
        media_type, layer, size, annotations = _descriptor(entry, where)
        if size > MAX_SIGNATURE_SIZE:
            raise SignatureError(f"{where}: attachment {layer} is larger than {MAX_SIGNATURE_SIZE} bytes")
        payload = await get_blob_bytes(client, repository, layer, MAX_SIGNATURE_SIZE, expected_size=size)
        found.append(SigstoreSignature(media_type, payload, annotations))
    return found


async def _put_small_blob(client: RegistryClient, repository: str, data: bytes) -> Digest:
    digest = Digest.of(data)

    async def chunks() -> AsyncIterator[bytes]:
        yield data

    session = await start_upload(client, repository)
    try:
        async with pumped(chunks()) as body:
            await session.put_monolithic(digest, len(data), body)
    except BaseException:
        await session.cancel()
        raise
    return digest


async def write_attachments(
    client: RegistryClient, repository: str, digest: Digest, signatures: list[SigstoreSignature]
) -> None:
    document = await _attachment_manifest(client, repository, digest)
    if document is None:
        document = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": []}
        config: dict[str, object] = {
            "architecture": "",
            "os": "",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": []},
        }
    else:
        where = f"{client.registry}/{repository}:{attachment_tag(digest)}"
        descriptor = document.get("config")
        if not isinstance(descriptor, dict):
            raise SignatureError(f"{where}: no config descriptor")
        config_digest = Digest.parse(str(descriptor.get("digest")))
        raw = await get_blob_bytes(
            client, repository, config_digest, expected_size=int(descriptor.get("size", -1))
        )
        try:
            config = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise SignatureError(
                f"parsing sigstore attachment config {config_digest} in {repository}: not JSON"
            ) from None
    layers: list[object] = list(document.get("layers") or [])  # type: ignore[call-overload]
    rootfs = config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    if not isinstance(rootfs, dict):
        raise SignatureError(f"sigstore attachment config in {repository}: rootfs is not an object")
    diff_ids = rootfs.setdefault("diff_ids", [])
    added = False
    for signature in signatures:
        layer_digest = Digest.of(signature.payload)
        present = any(
            isinstance(entry, dict)
            and entry.get("mediaType") == signature.mime_type
            and entry.get("digest") == str(layer_digest)
            and entry.get("size") == len(signature.payload)
            and (entry.get("annotations") or {}) == dict(signature.annotations)
            for entry in layers
        )
        if present:
            continue
        await _put_small_blob(client, repository, signature.payload)
        entry: dict[str, object] = {
            "mediaType": signature.mime_type,
            "digest": str(layer_digest),
            "size": len(signature.payload),
        }
        if signature.annotations:
            entry["annotations"] = dict(signature.annotations)
        layers.append(entry)
        diff_ids.append(str(layer_digest))
        added = True
    if not added:
        return
    config_raw = orjson.dumps(config)
    config_digest = await _put_small_blob(client, repository, config_raw)
    document["config"] = {"mediaType": _OCI_CONFIG, "digest": str(config_digest), "size": len(config_raw)}
    document["layers"] = layers
    await put_manifest(client, repository, attachment_tag(digest), orjson.dumps(document), OCI_MANIFEST)


async def read_signatures(
    client: RegistryClient,
    config: RegistriesD,
    name: ImageName,
    digest: Digest,
    *,
    simple: bool = True,
    sigstore: bool = True,
) -> list[Signature]:
    """The image's signatures: lookaside simple signatures, then sigstore attachments if enabled
    (each store read only when its kind is wanted)."""
    found = await read_lookaside(client, config, name, digest) if simple else []
    if sigstore and config.use_sigstore_attachments(name):
        found += await read_attachments(client, name.repository, digest)
    return found


async def write_signatures(
    client: RegistryClient, config: RegistriesD, name: ImageName, digest: Digest, signatures: list[Signature]
) -> None:
    """Store ``signatures`` for ``digest``: simple ones in the lookaside (staging) store, sigstore
    ones as attachments (refused when registries.d does not enable them, as containers/image)."""
    simple: list[Signature] = [s for s in signatures if isinstance(s, SimpleSignature)]
    sigstore = [s for s in signatures if isinstance(s, SigstoreSignature)]
    if sigstore:
        if not config.use_sigstore_attachments(name):
            raise SignatureError(
                "writing sigstore attachments is disabled by configuration "
                f"(set use-sigstore-attachments: true for {name.registry} in registries.d)"
            )
        await write_attachments(client, name.repository, digest, sigstore)
    if simple:
        await write_lookaside(config, name, digest, simple)
