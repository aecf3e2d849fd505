"""Minimal Distribution API calls with retries, shared by the bench's pusher and verifier.

Only what the bench needs, written with plain aiohttp so a bug in asyncsync cannot hide in the tools that
seed and check its benchmark. Retry contract of :func:`request`: connection errors and 5xx answers are
retried (distribution 2.8 answers HEAD with 500 under concurrent pushes of shared blobs) up to
``attempts`` times with exponential back-off from 50 ms; any other status is returned to the caller. The
response body is read fully (these are small exchanges: manifests, HEADs, monolithic blob PUTs of a few
MiB), and the returned :class:`Reply` holds status, headers and body.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDictProxy

__all__ = ["ACCEPT_MANIFESTS", "BenchHTTPError", "Reply", "new_session", "request"]

ACCEPT_MANIFESTS = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


class BenchHTTPError(RuntimeError):
    """A request kept failing (connection error or 5xx) after every retry."""


@dataclass(frozen=True)
class Reply:
    """A finished exchange."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


def new_session(limit: int = 32) -> aiohttp.ClientSession:
    """A session with a connection pool of ``limit`` and no total timeout (per-read timeout 60 s)."""
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit), timeout=timeout)


async def request(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
    attempts: int = 6,
) -> Reply:
    """One exchange with the retries described in the module docstring."""
    last = "no attempt"
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(0.05 * 2 ** (attempt - 1))
        # A fresh BytesIO per attempt: aiohttp streams it (raw bytes over 1 MiB trigger a warning).
        body = io.BytesIO(data) if data is not None else None
        try:
            async with session.request(
                method, url, headers=headers, data=body, allow_redirects=False
            ) as resp:
                answer = await resp.read()
                if resp.status < 500:
                    return Reply(resp.status, resp.headers, answer)
                last = f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            last = f"{type(exc).__name__}: {exc}"
    # The URL may carry a signed _state query: report the path only.
    raise BenchHTTPError(f"{method} {url.partition('?')[0]} failed after {attempts} attempts: {last}")
