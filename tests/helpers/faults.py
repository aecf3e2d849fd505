"""The fault rule language of the fault proxy: what a fault does (:class:`Fault`), where it fires
(:class:`Rule`), and what the proxy recorded (:class:`RecordedRequest`).

A :class:`Rule` matches a request by method, a path regex (``re.fullmatch`` on the path without the
query), an optional query regex (``re.search``) and listener address. It fires on its ``nth`` matching
occurrence and the ``times - 1`` after it (``times=0``: every match from ``nth`` on; ``times=10``: a
burst of ten), or, with ``probability``, on each match from ``nth`` on with that chance. The decision
and every parameter of the fault (where a body is cut, which byte flips) come from
``random.Random(f"{seed}/{rule index}/{occurrence}")``: a seed fixes each fault whatever the
interleaving of concurrent requests.
"""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal
from urllib.parse import urlsplit

import orjson

from tests.helpers.http11 import Head

__all__ = [
    "ADDITIVE",
    "REASONS",
    "SYNTHESIZED",
    "Fault",
    "Kind",
    "RecordedRequest",
    "Rule",
    "error_body",
    "rewrite",
    "synthesize",
]


class Kind(StrEnum):
    """What a fault does. Synthesized kinds answer without asking the upstream."""

    STATUS = "status"  # synthesized error status (5xx and friends)
    TOO_MANY_REQUESTS = "429"  # 429 with Retry-After in seconds, as an HTTP date, or absent
    INVALID_TOKEN = "invalid_token"  # 401 with a Bearer challenge carrying error="invalid_token"
    BLOB_UNKNOWN = "manifest_blob_unknown"  # 400 MANIFEST_BLOB_UNKNOWN (a manifest PUT)
    REDIRECT = "redirect"  # 307 to another base URL (a CDN), with a signed-looking query
    TOO_LARGE = "413"  # 413 when the request body is larger than ``limit``
    REFUSE_MOUNT = "refuse_mount"  # strip mount/from from a POST: the registry answers 202 + upload
    RESET_REQUEST = "reset_request"  # forward a random part of the request body, then RST both sides
    RESET_RESPONSE = "reset_response"  # forward a random part of the response body, then RST
    TRUNCATE = "truncate"  # forward a random part of the response body, then a clean close (FIN)
    FLIP_BYTE = "flip_byte"  # invert one random byte of the response body
    STALL = "stall"  # send the response head, then nothing for ``delay`` seconds, then RST
    CALLBACK = "callback"  # call ``callback(record)`` before forwarding (drop) or after (no answer)
    REWRITE_LOCATION = "rewrite_location"  # additive: point Location at ``target`` (another host)
    REWRITE_REALM = "rewrite_realm"  # additive: point WWW-Authenticate realm at ``target``
    ADD_HEADER = "add_header"  # additive: add the response header ``target: query``


SYNTHESIZED = frozenset(
    {Kind.STATUS, Kind.TOO_MANY_REQUESTS, Kind.INVALID_TOKEN, Kind.BLOB_UNKNOWN, Kind.REDIRECT}
)
ADDITIVE = frozenset({Kind.REWRITE_LOCATION, Kind.REWRITE_REALM, Kind.ADD_HEADER})


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault; build it with the class methods. ``label`` names it in tables and reports."""

    kind: Kind
    label: str
    status: int = 0
    retry_after: Literal["seconds", "date", "absent"] = "absent"
    delay: float = 0.0
    limit: int = 0
    target: str = ""
    query: str = ""
    callback: Callable[[RecordedRequest], None] | None = None
    when: Literal["before", "after"] = "before"

    @property
    def additive(self) -> bool:
        return self.kind in ADDITIVE

    @classmethod
    def error(cls, status: int) -> Fault:
        return cls(Kind.STATUS, f"http {status}", status=status)

    @classmethod
    def too_many_requests(
        cls, retry_after: Literal["seconds", "date", "absent"], delay: float = 1.0
    ) -> Fault:
        return cls(Kind.TOO_MANY_REQUESTS, f"429 retry-after {retry_after}", 429, retry_after, delay)

    @classmethod
    def invalid_token(cls) -> Fault:
        return cls(Kind.INVALID_TOKEN, "401 invalid_token", 401)

    @classmethod
    def manifest_blob_unknown(cls) -> Fault:
        return cls(Kind.BLOB_UNKNOWN, "MANIFEST_BLOB_UNKNOWN", 400)

    @classmethod
    def redirect(cls, target: str, query: str = "") -> Fault:
        """307 to ``target`` + the request path + ``?query``."""
        return cls(Kind.REDIRECT, "307 to another host", 307, target=target.rstrip("/"), query=query)

    @classmethod
    def too_large(cls, limit: int) -> Fault:
        return cls(Kind.TOO_LARGE, f"413 over {limit} bytes", 413, limit=limit)

    @classmethod
    def refuse_mount(cls) -> Fault:
        return cls(Kind.REFUSE_MOUNT, "202 on mount")

    @classmethod
    def reset_request(cls) -> Fault:
        return cls(Kind.RESET_REQUEST, "reset during request body")

    @classmethod
    def reset_response(cls) -> Fault:
        return cls(Kind.RESET_RESPONSE, "reset during response body")

    @classmethod
    def truncate(cls) -> Fault:
        return cls(Kind.TRUNCATE, "truncated body")

    @classmethod
    def flip_byte(cls) -> Fault:
        return cls(Kind.FLIP_BYTE, "flipped byte")

    @classmethod
    def stall(cls, seconds: float) -> Fault:
        return cls(Kind.STALL, "stall after headers", delay=seconds)

    @classmethod
    def on_request(
        cls, callback: Callable[[RecordedRequest], None], when: Literal["before", "after"] = "before"
    ) -> Fault:
        """Call ``callback`` in the proxy thread; ``before``: the request is dropped unforwarded;
        ``after``: the upstream handled it but the client never sees the answer."""
        return cls(Kind.CALLBACK, f"callback {when}", callback=callback, when=when)

    @classmethod
    def rewrite_location(cls, target: str) -> Fault:
        return cls(Kind.REWRITE_LOCATION, "Location on another host", target=target.rstrip("/"))

    @classmethod
    def rewrite_realm(cls, target: str) -> Fault:
        return cls(Kind.REWRITE_REALM, "token realm elsewhere", target=target)

    @classmethod
    def add_header(cls, name: str, value: str) -> Fault:
        """A header the upstream does not send (``OCI-Subject``: what a registry with the referrers
        API answers a manifest PUT with ``subject``)."""
        return cls(Kind.ADD_HEADER, f"header {name}", target=name, query=value)


@dataclass(eq=False)
class Rule:
    """Where a fault fires; see the module docstring. ``seen``/``fired`` count matches and applications."""

    fault: Fault
    method: str | None = None
    path: str = ".*"
    query: str | None = None
    nth: int = 1
    times: int = 1
    probability: float | None = None
    listener: str | None = None
    seen: int = 0
    fired: int = 0

    def matches(self, head: Head, listener: str) -> bool:
        return (
            (self.method is None or head.method == self.method)
            and (self.listener is None or self.listener == listener)
            and re.fullmatch(self.path, head.path) is not None
            and (self.query is None or re.search(self.query, head.query) is not None)
        )

    def decide(self, seed: int, index: int) -> random.Random | None:
        """Count one match; the seeded generator for this occurrence if the rule fires on it."""
        self.seen += 1
        rng = random.Random(f"{seed}/{index}/{self.seen}")
        if self.seen < self.nth:
            return None
        if self.probability is not None:
            return rng if rng.random() < self.probability else None
        return rng if self.times == 0 or self.seen < self.nth + self.times else None


@dataclass(slots=True)
class RecordedRequest:
    """One request as the proxy saw it. ``headers`` has lower-case names; ``status`` is None when the
    client got no complete answer head (dropped or reset before one)."""

    listener: str
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body_bytes: int = 0
    status: int | None = None
    fault: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


REASONS = {
    307: "Temporary Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
REPO_IN_PATH = re.compile(r"/v2/(.+?)/(?:blobs|manifests|tags)/")


def error_body(code: str, message: str) -> bytes:
    return orjson.dumps({"errors": [{"code": code, "message": message, "detail": None}]})


def synthesize(fault: Fault, head: Head, challenge: str | None) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of the answer a synthesized fault gives ``head``.

    ``challenge`` is the upstream's last Bearer challenge; an ``invalid_token`` answer reuses its realm
    and service, as a registry whose token expired would.
    """
    headers = [("Content-Type", "application/json")]
    if fault.kind is Kind.STATUS:
        code = "UNAVAILABLE" if fault.status == 503 else "UNKNOWN"
        return fault.status, headers, error_body(code, f"injected HTTP {fault.status}")
    if fault.kind is Kind.TOO_MANY_REQUESTS:
        if fault.retry_after == "seconds":
            headers.append(("Retry-After", str(int(fault.delay))))
        elif fault.retry_after == "date":
            headers.append(("Retry-After", email.utils.formatdate(time.time() + fault.delay, usegmt=True)))
        return 429, headers, error_body("TOOMANYREQUESTS", "injected rate limit")
    if fault.kind is Kind.INVALID_TOKEN:
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge or ""))
        match = REPO_IN_PATH.match(head.path)
        scope = f"repository:{match.group(1)}:pull,push" if match else ""
        challenge = (
            f'Bearer realm="{params.get("realm", fault.target)}",service="{params.get("service", "")}",'
            f'scope="{scope}",error="invalid_token"'
        )
        headers.append(("WWW-Authenticate", challenge))
        return 401, headers, error_body("UNAUTHORIZED", "authentication required")
    if fault.kind is Kind.BLOB_UNKNOWN:
        return 400, headers, error_body("MANIFEST_BLOB_UNKNOWN", "blob unknown to registry")
    location = fault.target + head.path + (f"?{fault.query}" if fault.query else "")
    return fault.status, [("Location", location)], b""


def rewrite(response: Head, fault: Fault) -> bool:
    """Apply an additive rewrite to ``response``; True if it changed anything."""
    if fault.kind is Kind.ADD_HEADER:
        response.headers.append((fault.target, fault.query))
        return True
    if fault.kind is Kind.REWRITE_LOCATION:
        location = response.get("Location")
        if not location:
            return False
        parts = urlsplit(location)
        rest = location[len(f"{parts.scheme}://{parts.netloc}") :] if parts.netloc else location
        response.set("Location", fault.target + rest)
        return True
    challenges = response.get_all("WWW-Authenticate")
    if not challenges:
        return False
    response.remove("WWW-Authenticate")
    for challenge in challenges:
        response.headers.append(
            ("WWW-Authenticate", re.sub(r'realm="[^"]*"', f'realm="{fault.target}"', challenge))
        )
    return True
