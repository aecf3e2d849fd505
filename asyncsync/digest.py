"""Content digests and streaming verification.

:class:`Digest` is validated on construction, so a ``Digest`` is always safe to put in a URL
or a file path. :class:`DigestVerifier` checks size and digest of a stream as it passes and
holds back the final chunk until both are proven, so a consumer that commits on the last
chunk (an upload's final PUT, a rename into a layout) never commits unverified bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

from asyncsync.errors import DigestMismatchError, InvalidReferenceError

_HEX_LENGTHS = {"sha256": 64, "sha512": 128}
_DIGEST_RE = re.compile(r"^(sha256|sha512):([a-f0-9]+)\Z")


@dataclass(frozen=True, slots=True)
class Digest:
    """An ``algorithm:hex`` content digest (sha256 or sha512, lowercase hex of the right length)."""

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse ``sha256:<64 hex>``; raise :class:`InvalidReferenceError` naming the bad text."""
        match = _DIGEST_RE.match(text)
        if not match or len(match.group(2)) != _HEX_LENGTHS[match.group(1)]:
            shown = text if len(text) <= 80 else text[:77] + "..."
            raise InvalidReferenceError(f"invalid digest {shown!r}: expected sha256:<64 hex characters>")
        return cls(match.group(1), match.group(2))

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        """The digest of ``data``."""
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def hasher(self) -> Any:
        """A fresh hashlib object for this digest's algorithm."""
        return hashlib.new(self.algorithm)

    @property
    def short(self) -> str:
        """The 12-character prefix of the hex, as skopeo prints it ("Copying blob 3e207b409db3")."""
        return self.hex[:12]

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


class DigestVerifier:
    """Incremental size+digest check. Feed chunks with :meth:`update`; call :meth:`finish` at EOF.

    Raises :class:`DigestMismatchError` as soon as more than ``expected_size`` bytes arrive, and
    from :meth:`finish` when the size is short or the digest differs. ``expected_size`` of
    ``None`` (or negative) skips the size check.
    """

    def __init__(self, expected: Digest, expected_size: int | None, what: str = "blob") -> None:
        self.expected = expected
        self.expected_size = expected_size if expected_size is not None and expected_size >= 0 else None
        self.what = what
        self.size = 0
        self._hash = expected.hasher()

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.expected_size is not None and self.size > self.expected_size:
            raise DigestMismatchError(
                f"{self.what} {self.expected}: received more than the expected {self.expected_size} bytes"
            )
        self._hash.update(chunk)

    def finish(self) -> None:
        if self.expected_size is not None and self.size != self.expected_size:
            raise DigestMismatchError(
                f"{self.what} {self.expected}: size {self.size} does not match the expected "
                f"{self.expected_size}"
            )
        actual = self._hash.hexdigest()
        if actual != self.expected.hex:
            raise DigestMismatchError(
                f"{self.what} {self.expected}: content digest is {self.expected.algorithm}:{actual}"
            )


async def verified_chunks(
    chunks: AsyncIterable[bytes], expected: Digest, expected_size: int | None, what: str = "blob"
) -> AsyncIterator[bytes]:
    """Yield ``chunks`` unchanged, verifying size and digest; the last chunk is held back until verified.

    If verification fails the iterator raises :class:`DigestMismatchError` instead of yielding
    the final chunk, so a consumer never sees the complete (wrong) content.
    """
    verifier = DigestVerifier(expected, expected_size, what)
    held: bytes | None = None
    async for chunk in chunks:
        if not chunk:
            continue
        verifier.update(chunk)
        if held is not None:
            yield held
        held = chunk
    verifier.finish()
    if held is not None:
        yield held
