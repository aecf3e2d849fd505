"""The signed JSON of simple signing (containers-signature(5)) and of cosign signatures.

Both are ``{"critical": {"type", "image": {"docker-manifest-digest"}, "identity":
{"docker-reference"}}, "optional": {...}}``; only ``type`` differs ("atomic container
signature" for GPG simple signing, "cosign container image signature" for sigstore). Reading
is as strict as containers/image: exactly these keys in ``critical`` and its members (cosign
writes ``"optional": null``, which is accepted), an integer ``timestamp`` if present.
:func:`build` writes keys sorted, as Go's ``encoding/json`` marshals a map.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from asyncsync import __version__
from asyncsync.digest import Digest

SIMPLE_SIGNING_TYPE = "atomic container signature"
SIGSTORE_TYPE = "cosign container image signature"


class InvalidPayloadError(ValueError):
    """A payload that is not a valid signature document; the message is one line."""


@dataclass(frozen=True, slots=True)
class Payload:
    """What a verified signature claims: the manifest digest and the Docker reference."""

    digest: str
    docker_reference: str


def build(kind: str, digest: Digest, docker_reference: str, *, creator: str | None = None) -> bytes:
    """The payload to sign for ``digest`` as ``docker_reference``."""
    optional = {"creator": creator or f"asyncsync {__version__}", "timestamp": int(time.time())}
    document = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": str(digest)},
            "type": kind,
        },
        "optional": optional,
    }
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def _exact(value: Any, keys: tuple[str, ...], what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidPayloadError(f"{what} is not a JSON object")
    for key in value:
        if key not in keys:
            raise InvalidPayloadError(f'Unknown key "{key}" in {what}')
    for key in keys:
        if key not in value:
            raise InvalidPayloadError(f'Key "{key}" missing in {what}')
    return value


def parse(raw: bytes, kind: str) -> Payload:
    """Parse a payload of ``kind``; raises :class:`InvalidPayloadError`."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidPayloadError("signature payload is not valid JSON") from None
    top = _exact(document, ("critical", "optional"), "the signature")
    optional = top["optional"]
    if optional is not None:
        if not isinstance(optional, dict):
            raise InvalidPayloadError('"optional" is not a JSON object')
        timestamp = optional.get("timestamp")
        if timestamp is not None and (
            isinstance(timestamp, bool)
            or not isinstance(timestamp, int | float)
            or int(timestamp) != timestamp
        ):
            raise InvalidPayloadError("Field optional.timestamp is not an integer")
    critical = _exact(top["critical"], ("type", "image", "identity"), '"critical"')
    if critical["type"] != kind:
        raise InvalidPayloadError(f"Unrecognized signature type {critical['type']}")
    image = _exact(critical["image"], ("docker-manifest-digest",), '"critical.image"')
    identity = _exact(critical["identity"], ("docker-reference",), '"critical.identity"')
    digest, reference = image["docker-manifest-digest"], identity["docker-reference"]
    if not isinstance(digest, str) or not isinstance(reference, str):
        raise InvalidPayloadError("docker-manifest-digest and docker-reference must be strings")
    return Payload(digest, reference)
