"""Digest parsing and the streaming size+digest verifier that holds back the last chunk."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest

from asyncsync.digest import Digest, DigestVerifier, verified_chunks
from asyncsync.errors import DigestMismatchError, InvalidReferenceError

DATA = b"hello, registry"
GOOD = Digest.of(DATA)


def test_parse_and_format() -> None:
    text = "sha256:" + hashlib.sha256(DATA).hexdigest()
    digest = Digest.parse(text)
    assert digest == GOOD
    assert str(digest) == text
    assert digest.short == text[7:19]
    sha512 = Digest.parse("sha512:" + "0" * 128)
    assert sha512.algorithm == "sha512"
    assert Digest.of(DATA, "sha512").hex == hashlib.sha512(DATA).hexdigest()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sha256:",
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 63,
        "sha512:" + "a" * 64,
        "md5:" + "a" * 32,
        "a" * 64,
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidReferenceError, match="invalid digest"):
        Digest.parse(text)


def test_parse_error_truncates_long_input() -> None:
    with pytest.raises(InvalidReferenceError) as info:
        Digest.parse("x" * 500)
    assert len(str(info.value)) < 200


def test_verifier_accepts_matching_content() -> None:
    verifier = DigestVerifier(GOOD, len(DATA))
    verifier.update(DATA[:5])
    verifier.update(DATA[5:])
    verifier.finish()
    assert verifier.size == len(DATA)


def test_verifier_rejects_oversize_at_once() -> None:
    verifier = DigestVerifier(GOOD, 3)
    with pytest.raises(DigestMismatchError, match="more than the expected 3 bytes"):
        verifier.update(DATA)


def test_verifier_rejects_short_and_wrong() -> None:
    short = DigestVerifier(GOOD, len(DATA) + 1)
    short.update(DATA)
    with pytest.raises(DigestMismatchError, match="does not match the expected"):
        short.finish()
    wrong = DigestVerifier(GOOD, None)
    wrong.update(b"other bytes")
    with pytest.raises(DigestMismatchError, match="content digest is sha256:"):
        wrong.finish()


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.anyio
async def test_verified_chunks_pass_through() -> None:
    out = [c async for c in verified_chunks(_chunks(DATA[:4], b"", DATA[4:]), GOOD, len(DATA))]
    assert b"".join(out) == DATA


@pytest.mark.anyio
async def test_verified_chunks_never_yield_the_last_wrong_chunk() -> None:
    seen: list[bytes] = []
    with pytest.raises(DigestMismatchError):
        async for chunk in verified_chunks(_chunks(b"first", b"second"), GOOD, None):
            seen.append(chunk)
    assert seen == [b"first"]
