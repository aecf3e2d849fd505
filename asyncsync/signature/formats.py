"""Signatures as containers/image stores them: simple-signing blobs and sigstore components.

A :class:`SimpleSignature` is an OpenPGP message (what ``gpg --sign`` writes) holding the
simple-signing payload. A :class:`SigstoreSignature` is what a cosign ``.sig`` manifest layer
holds: its media type, the payload bytes (the layer) and its annotations (the base64 signature
in ``dev.cosignproject.cosign/signature``).

Stored as one file (lookaside ``signature-N``, ``dir:`` ``signature-N``), a simple signature is
its raw bytes and any other format is ``\\x00<format>\\n<json>`` (containers/image's
``signature.Blob``); :func:`from_blob` reads both, recognising OpenPGP messages by their first
packet tag as containers/image does.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import orjson

from asyncsync.errors import SignatureError

SIGSTORE_PAYLOAD_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGSTORE_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
_SIGSTORE_FORMAT = b"sigstore-json"
_SIMPLE_FORMAT = b"simple-signing"
# First bytes of an OpenPGP message: compressed data, one-pass signature or signature packets,
# old and new packet formats (containers/image's signature.FromBlob).
_OPENPGP_STARTS = frozenset(
    {0xA0, 0xA1, 0xA2, 0xA3, 0xC8, 0x90, 0x91, 0x92, 0x3D, 0xC4, 0x88, 0x89, 0x8A, 0x8B, 0xC2}
)


@dataclass(frozen=True, slots=True)
class SimpleSignature:
    """An OpenPGP-signed simple-signing payload (containers-signature(5))."""

    blob: bytes


@dataclass(frozen=True, slots=True)
class SigstoreSignature:
    """One cosign attachment layer: media type, payload bytes, annotations."""

    mime_type: str
    payload: bytes
    annotations: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def is_signature(self) -> bool:
        """A simple-signing payload (other attachment kinds are carried, never verified)."""
        return self.mime_type == SIGSTORE_PAYLOAD_TYPE


Signature = SimpleSignature | SigstoreSignature


def to_blob(signature: Signature) -> bytes:
    """The one-file form (see the module docstring)."""
    if isinstance(signature, SimpleSignature):
        return signature.blob
    chunk = orjson.dumps(
        {
            "mimeType": signature.mime_type,
            "payload": base64.b64encode(signature.payload).decode("ascii"),
            "annotations": dict(signature.annotations),
        }
    )
    return b"\x00" + _SIGSTORE_FORMAT + b"\n" + chunk


def from_blob(blob: bytes, where: str) -> Signature:
    """Read the one-file form; raises :class:`SignatureError` naming ``where`` when it is neither."""
    if not blob:
        raise SignatureError(f"parsing signature {where}: empty signature blob")
    first = blob[0]
    if first in _OPENPGP_STARTS:
        return SimpleSignature(blob)
    if first != 0:
        raise SignatureError(
            f"parsing signature {where}: unrecognized signature format, starting with binary {first:#x}"
        )
    header, newline, chunk = blob[1:].partition(b"\n")
    if not newline:
        raise SignatureError(f"parsing signature {where}: invalid signature format, missing newline")
    if header == _SIMPLE_FORMAT:
        return SimpleSignature(chunk)
    if header != _SIGSTORE_FORMAT:
        shown = header.decode("ascii", "replace")[:40]
        raise SignatureError(f"parsing signature {where}: unrecognized signature format {shown!r}")
    try:
        data = orjson.loads(chunk)
        mime_type = data.get("mimeType", "")
        payload = base64.b64decode(data.get("payload") or "", validate=True)
        annotations = data.get("annotations") or {}
        if not isinstance(mime_type, str) or not isinstance(annotations, dict):
            raise ValueError("bad field types")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()):
            raise ValueError("annotations must be strings")
    except (orjson.JSONDecodeError, AttributeError, ValueError, TypeError, binascii.Error):
        raise SignatureError(f"parsing signature {where}: invalid sigstore-json signature") from None
    return SigstoreSignature(mime_type, payload, MappingProxyType(dict(annotations)))
