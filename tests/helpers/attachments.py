"""Test attachments built the way cosign, oras and notation build them (no network, no signing keys).

* :func:`cosign_signature`: cosign's ``sha256-<hex>.sig`` manifest: an OCI manifest whose layers are
  simple-signing payloads (``application/vnd.dev.cosign.simplesigning.v1+json``) carrying the
  signature in the ``dev.cosignproject.cosign/signature`` annotation; ``.att`` / ``.sbom`` use the
  same shape with their own layer types.
* :func:`referrer`: an OCI 1.1 artifact manifest with ``artifactType``, the empty config
  (``application/vnd.oci.empty.v1+json``, ``{}``) and a ``subject`` descriptor.
* :func:`fallback_index`: the referrers tag schema's index (``sha256-<hex>``) listing referrers.

Signatures are random bytes: the copy must carry them, not verify them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any

from tests.helpers.images import push_blob, push_manifest
from tests.helpers.registry import RegistryServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
SBOM_TYPE = "application/spdx+json"
NOTATION = "application/vnd.cncf.notary.signature"
SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _desc(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": _digest(data), "size": len(data), **extra}


@dataclass(frozen=True)
class Artifact:
    """Manifest bytes, its media type and digest, and the blobs it references."""

    manifest: bytes
    blobs: dict[str, bytes]
    media_type: str = OCI_MANIFEST
    artifact_type: str = ""

    @property
    def digest(self) -> str:
        return _digest(self.manifest)

    def descriptor(self) -> dict[str, Any]:
        entry = _desc(self.media_type, self.manifest)
        if self.artifact_type:
            entry["artifactType"] = self.artifact_type
        return entry


def cosign_signature(
    subject: str, seed: int | str, *, count: int = 1, layer_type: str = SIMPLE_SIGNING
) -> Artifact:
    """A cosign ``.sig`` (or ``.att``/``.sbom`` with another ``layer_type``) manifest for ``subject``."""
    rng = random.Random(f"cosign-{seed}")
    layers: list[dict[str, Any]] = []
    blobs: dict[str, bytes] = {}
    for n in range(count):
        payload = json.dumps(
            {
                "critical": {
                    "identity": {"docker-reference": "example/app"},
                    "image": {"docker-manifest-digest": subject},
                    "type": "cosign container image signature",
                },
                "optional": {"n": n, "seed": str(seed)},
            },
            sort_keys=True,
        ).encode()
        blobs[_digest(payload)] = payload
        signature = base64.b64encode(rng.randbytes(64)).decode()
        layers.append(
            _desc(layer_type, payload, annotations={"dev.cosignproject.cosign/signature": signature})
        )
    config = json.dumps(
        {
            "architecture": "",
            "os": "",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in layers]},
        },
        sort_keys=True,
    ).encode()
    blobs[_digest(config)] = config
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _desc("application/vnd.oci.image.config.v1+json", config),
            "layers": layers,
        }
    ).encode()
    return Artifact(manifest, blobs)


def referrer(
    subject: str, subject_size: int, artifact_type: str, seed: int | str, *, subject_type: str = OCI_MANIFEST
) -> Artifact:
    """An OCI 1.1 referrer of ``subject`` with one layer of seeded content."""
    payload = json.dumps({"artifact": artifact_type, "seed": str(seed)}).encode()
    empty = b"{}"
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": _desc(EMPTY_CONFIG, empty),
            "layers": [_desc(artifact_type, payload)],
            "subject": {"mediaType": subject_type, "digest": subject, "size": subject_size},
            "annotations": {"org.opencontainers.image.created": "2026-12-04T00:00:00Z"},
        }
    ).encode()
    return Artifact(manifest, {_digest(empty): empty, _digest(payload): payload}, artifact_type=artifact_type)


def fallback_index(*artifacts: Artifact) -> bytes:
    """The referrers fallback index listing ``artifacts``."""
    return json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [a.descriptor() for a in artifacts]}
    ).encode()


def fallback_tag(subject: str) -> str:
    return subject.replace(":", "-")


async def push_artifact(server: RegistryServer, repo: str, reference: str | None, artifact: Artifact) -> str:
    """Push ``artifact``'s blobs, then its manifest at ``reference`` (a tag) or by digest."""
    for blob in artifact.blobs.values():
        await push_blob(server, repo, blob)
    return await push_manifest(
        server, repo, reference or artifact.digest, artifact.manifest, artifact.media_type
    )


async def push_referrers(server: RegistryServer, repo: str, subject: str, *artifacts: Artifact) -> str:
    """Push referrers by digest, then the fallback tag listing them (as OCI 1.1 clients do on 2.8)."""
    for artifact in artifacts:
        await push_artifact(server, repo, None, artifact)
    return await push_manifest(server, repo, fallback_tag(subject), fallback_index(*artifacts), OCI_INDEX)
