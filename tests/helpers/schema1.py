"""A signed Docker schema 1 manifest built the way docker/libtrust lays it out (for tests only).

libtrust signs the "pretty" JSON payload and splices the ``signatures`` array in before the final
closing brace; the protected header records ``formatLength`` (bytes of payload kept) and
``formatTail`` (the payload's last bytes, base64url). The manifest digest a registry reports is
the sha256 of the payload *without* the signatures, which is what this fixture lets tests check.
The public key is real (skopeo parses it) but the signature is not: digest computation never verifies it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["signed_schema1"]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def signed_schema1(
    layers: list[str], *, tag: str = "v1", v1_config: dict[str, Any] | None = None
) -> tuple[bytes, str]:
    """``(signed manifest bytes, expected digest)`` for a schema 1 manifest over ``layers``
    (blob digests, base layer first) whose newest ``v1Compatibility`` is ``v1_config``."""
    config = v1_config or {"architecture": "amd64", "os": "linux"}
    history = [{"v1Compatibility": json.dumps({**config, "id": f"{i:064x}"})} for i in range(len(layers))]
    payload_obj = {
        "schemaVersion": 1,
        "name": "test/schema1",
        "tag": tag,
        "architecture": config.get("architecture", "amd64"),
        "fsLayers": [{"blobSum": d} for d in reversed(layers)],
        "history": history,
    }
    payload = json.dumps(payload_obj, indent=3).encode()
    keep = len(payload) - 2  # everything before the final "\n}"
    protected = {"formatLength": keep, "formatTail": _b64url(payload[keep:]), "time": "2023-01-01T00:00:00Z"}
    numbers = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    jwk = {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64url(numbers.x.to_bytes(32, "big")),
        "y": _b64url(numbers.y.to_bytes(32, "big")),
    }
    signatures = [
        {
            "header": {"jwk": jwk, "alg": "ES256"},
            "signature": _b64url(b"not-a-real-signature"),
            "protected": _b64url(json.dumps(protected).encode()),
        }
    ]
    sig_text = json.dumps(signatures, indent=3).replace("\n", "\n   ")
    signed = payload[:keep] + b',\n   "signatures": ' + sig_text.encode() + payload[keep:]
    return signed, "sha256:" + hashlib.sha256(payload).hexdigest()
