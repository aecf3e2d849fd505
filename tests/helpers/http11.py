"""Just enough HTTP/1.1 framing for the fault proxy: message heads, Content-Length and chunked bodies.

The proxy needs byte-level control (cut a body after N bytes, flip one byte, reset the socket), so it
speaks HTTP/1.1 itself on asyncio streams instead of going through a client library that would hide
the framing. Contracts:

* :func:`read_head` returns ``None`` on a clean end of stream before the first byte of a message and
  raises :class:`asyncio.IncompleteReadError` when the stream ends inside a head.
* :func:`body_framing` follows RFC 9112 section 6.3 for the cases a registry produces: no body for
  HEAD, 1xx, 204 and 304; chunked wins over Content-Length; a response with neither runs to EOF.
* :func:`iter_body` yields the payload (chunk framing removed) and raises
  :class:`asyncio.IncompleteReadError` if the peer goes away before the body is complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024
PIECE = 64 * 1024
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
)

FramingKind = Literal["none", "length", "chunked", "eof"]


@dataclass(slots=True)
class Head:
    """The start line and header fields of one message, in order, with their original spelling."""

    start_line: str
    headers: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)

    def get_all(self, name: str) -> list[str]:
        """Every value of header ``name``, in order."""
        lowered = name.lower()
        return [value for key, value in self.headers if key.lower() == lowered]

    def remove(self, name: str) -> None:
        """Drop every field called ``name``."""
        lowered = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != lowered]

    def set(self, name: str, value: str) -> None:
        """Replace every field called ``name`` by one with ``value``."""
        self.remove(name)
        self.headers.append((name, value))

    def encode(self) -> bytes:
        lines = [self.start_line, *(f"{k}: {v}" for k, v in self.headers)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    # -- request view ---------------------------------------------------------------------------

    @property
    def method(self) -> str:
        return self.start_line.split(" ", 1)[0]

    @property
    def target(self) -> str:
        return self.start_line.split(" ")[1]

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> str:
        return urlsplit(self.target).query

    def with_target(self, target: str) -> Head:
        method, _, version = self.start_line.split(" ", 2)
        return Head(f"{method} {target} {version}", list(self.headers))

    # -- response view --------------------------------------------------------------------------

    @property
    def status(self) -> int:
        return int(self.start_line.split(" ")[1])

    def wants_close(self) -> bool:
        """Whether the sender asked to close the connection after this message."""
        return any(
            token.strip().lower() == "close" for v in self.get_all("Connection") for token in v.split(",")
        )


@dataclass(frozen=True, slots=True)
class Framing:
    """How a body is delimited: ``length`` bytes, ``chunked``, until ``eof``, or ``none``."""

    kind: FramingKind
    length: int = 0


async def read_head(reader: asyncio.StreamReader, prefix: bytes = b"") -> Head | None:
    """Read one message head (start line and fields); ``None`` on EOF before the first byte.

    ``prefix`` is the head's first byte(s) when the caller already read them.
    """
    try:
        data = prefix + await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial and not prefix:
            return None
        raise
    if len(data) > MAX_HEAD:
        raise ValueError("message head too large")
    lines = data[:-4].decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"malformed header line {line!r}")
        headers.append((name.strip(), value.strip()))
    return Head(lines[0], headers)


def body_framing(head: Head, *, response_to: str | None = None) -> Framing:
    """The framing of the body following ``head``; ``response_to`` is the request method for responses."""
    if response_to is not None:
        status = head.status
        if response_to == "HEAD" or status < 200 or status in (204, 304):
            return Framing("none")
    encodings = ",".join(head.get_all("Transfer-Encoding")).lower()
    if "chunked" in encodings:
        return Framing("chunked")
    length = head.get("Content-Length")
    if length is not None:
        return Framing("length", int(length)) if int(length) > 0 else Framing("none")
    return Framing("eof") if response_to is not None else Framing("none")


async def iter_body(reader: asyncio.StreamReader, framing: Framing) -> AsyncIterator[bytes]:
    """Yield the payload bytes of one body in pieces of at most :data:`PIECE` bytes."""
    if framing.kind == "length":
        remaining = framing.length
        while remaining:
            piece = await reader.read(min(PIECE, remaining))
            if not piece:
                raise asyncio.IncompleteReadError(b"", remaining)
            remaining -= len(piece)
            yield piece
    elif framing.kind == "chunked":
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass  # trailer fields: none of ours matter
                return
            while size:
                piece = await reader.readexactly(min(PIECE, size))
                size -= len(piece)
                yield piece
            await reader.readexactly(2)
    elif framing.kind == "eof":
        while piece := await reader.read(PIECE):
            yield piece


def encode_piece(framing: Framing, data: bytes) -> bytes:
    """``data`` as it travels inside a body with ``framing``."""
    if framing.kind == "chunked":
        return b"%x\r\n%s\r\n" % (len(data), data) if data else b""
    return data


def end_of_body(framing: Framing) -> bytes:
    """The bytes that close a body with ``framing`` (the last chunk for chunked bodies)."""
    return b"0\r\n\r\n" if framing.kind == "chunked" else b""


def reset(writer: asyncio.StreamWriter) -> None:
    """Close ``writer``'s connection with a TCP RST (SO_LINGER 0), as a crashed peer or middlebox does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed: nothing to reset
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def response_head(status: int, reason: str, headers: list[tuple[str, str]], body: bytes) -> Head:
    """A complete response head for a synthesized response with ``body``."""
    head = Head(f"HTTP/1.1 {status} {reason}", list(headers))
    head.set("Content-Length", str(len(body)))
    return head
