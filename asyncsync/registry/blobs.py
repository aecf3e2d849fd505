"""Blob requests of the Distribution API: HEAD, ranged GET, cross-repo mount and uploads.

* :func:`head_blob` - size of a blob in a repository, ``None`` when absent.
* :func:`open_blob` - a streamed GET (optionally ``Range: bytes=N-``) that reports whether the
  server honoured the range (206) or sent the whole blob (200).
* :func:`mount_blob` - ``POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<repo>``: 201 means
  mounted; a 202 is a refusal that opened an upload session, returned for the caller to use or
  cancel.
* :func:`start_upload` - ``POST`` an upload; the :class:`UploadSession` then follows the
  ``Location`` of every response (relative or absolute) and never builds a URL itself, apart
  from appending ``digest=`` to the final ``PUT``. Upload locations carry signed ``_state``: they
  are never printed or put in an error message.

Uploads are either monolithic (one ``PUT ?digest=`` whose body is the streamed blob, or the bytes
of a small blob read whole: :meth:`UploadSession.put_bytes`) or chunked
(``PATCH`` with ``Content-Range`` per chunk, then an empty ``PUT ?digest=``). Streamed bodies
are never buffered: each ``PATCH`` takes exactly its range's bytes from the stream.

aiohttp sends a request body from a task of its own, so a body stream that holds resources
(a source GET and its host slot) must not be iterated there. :func:`pumped` runs the stream in a
child task of the caller and hands aiohttp a plain queue reader; the error the stream raised
(a digest mismatch, a broken source) is kept and re-raised instead of aiohttp's generic
"failed to send bytes".

Per byte of a streamed blob the client's CPU goes to hashing, the socket calls and copies, so
the data path adds no copy of its own: a GET's body is handed on in the pieces the connection
delivered (aiohttp's buffer, at most one socket read each), never sliced or joined, and a piece
crosses the pump without a scheduler round trip when the queue has room (or holds one).
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from urllib.parse import quote, urljoin

import aiohttp
import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from asyncsync.digest import Digest
from asyncsync.errors import AsyncSyncError, RegistryError, TransportError
from asyncsync.http.errors import mapped
from asyncsync.registry.auth import repository_scope
from asyncsync.registry.client import Body, RegistryClient

#: Largest piece a blob GET hands on: what one socket read delivers (uvloop's and asyncio's
#: reads are at most this), so pieces pass unsplit; bounds memory per blob in flight.
READ_CHUNK = 256 * 1024
#: Chunk size for chunked uploads when none was configured (after a 413, or above a threshold).
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
#: Pieces buffered between a source stream and an upload body.
PUMP_BUFFER = 4
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_CANCEL_TIMEOUT = 10.0


def push_scopes(repository: str) -> tuple[str, ...]:
    """Token scopes for writing to ``repository`` (reads there too, for HEAD)."""
    return (repository_scope(repository, "pull", "push"),)


def pull_scopes(repository: str) -> tuple[str, ...]:
    return (repository_scope(repository, "pull"),)


def mount_scopes(repository: str, from_repository: str) -> tuple[str, ...]:
    """A mount needs ``pull,push`` on the target and ``pull`` on the repository it mounts from."""
    return (repository_scope(repository, "pull", "push"), repository_scope(from_repository, "pull"))


def _blob_path(repository: str, digest: Digest) -> str:
    return f"/v2/{repository}/blobs/{digest}"


async def head_blob(
    client: RegistryClient, repository: str, digest: Digest, *, scopes: tuple[str, ...] | None = None
) -> int | None:
    """The size of ``digest`` in ``repository`` (``Content-Length``), or ``None`` if it is absent.

    A 5xx is temporary and retried by the client (distribution 2.8 answers 500 to some HEADs
    under concurrent pushes). A present blob without ``Content-Length`` reports size -1.
    """
    response = await client.request(
        "HEAD",
        _blob_path(repository, digest),
        scopes=scopes or pull_scopes(repository),
        repository=repository,
        ok=(200, 404),
        what=f"checking blob {digest.short} in {client.registry}/{repository}",
    )
    if response.status == 404:
        return None
    length = response.headers.get("Content-Length", "")
    return int(length) if length.isdigit() else -1


@dataclass(slots=True)
class BlobStream:
    """An open blob GET. ``offset`` is where ``chunks`` starts: the requested offset when the
    server honoured the range (``ranged``), else 0. ``length`` is this response's body length."""

    chunks: AsyncGenerator[bytes, None]
    offset: int
    ranged: bool
    length: int | None


async def _read_body(response: aiohttp.ClientResponse, what: str) -> AsyncGenerator[bytes, None]:
    """The body in the pieces aiohttp received (each one socket read), without joining them:
    re-chunking to a fixed size copied nearly every byte once more. A piece above
    :data:`READ_CHUNK` (aiohttp joins reads up to the end of an HTTP chunk) is split."""
    with mapped(what):
        async for piece, _ in response.content.iter_chunks():
            if len(piece) <= READ_CHUNK:
                if piece:  # an empty piece marks the end of an HTTP chunk
                    yield piece
                continue
            for start in range(0, len(piece), READ_CHUNK):
                yield piece[start : start + READ_CHUNK]


@asynccontextmanager
async def open_blob(
    client: RegistryClient,
    repository: str,
    digest: Digest,
    offset: int = 0,
    *,
    scopes: tuple[str, ...] | None = None,
) -> AsyncIterator[BlobStream]:
    """GET a blob, from ``offset`` when the server supports ranges.

    The host slot is held until the block exits. Bytes are not verified here. A 206 whose
    ``Content-Range`` does not start at ``offset`` is a protocol error (not temporary).
    """
    what = f"reading blob {digest.short} from {client.registry}/{repository}"
    headers = {"Range": f"bytes={offset}-"} if offset > 0 else None
    async with client.open(
        "GET",
        _blob_path(repository, digest),
        scopes=scopes or pull_scopes(repository),
        repository=repository,
        headers=headers,
        ok=(200, 206),
        what=what,
    ) as response:
        length_text = response.headers.get("Content-Length", "")
        length = int(length_text) if length_text.isdigit() else None
        start = 0
        if response.status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", "").strip())
            if match is None or int(match.group(1)) != offset:
                raise TransportError(
                    f"{what}: server answered a range that was not asked for", temporary=False
                )
            start = offset
        yield BlobStream(_read_body(response, what), start, response.status == 206, length)


class PumpedBody:
    """The receiving end of :func:`pumped`: an async iterable aiohttp can send from any task.

    ``error`` is the exception the source stream raised, if any; ``sent`` counts bytes handed out.
    """

    def __init__(self, receive: MemoryObjectReceiveStream[bytes | BaseException]) -> None:
        self._receive = receive
        self._leftover = b""
        self.error: BaseException | None = None
        self.sent = 0
        self.exhausted = False

    async def _next(self) -> bytes | None:
        if self._leftover:
            piece, self._leftover = self._leftover, b""
            return piece
        if self.exhausted:
            return None
        try:
            try:
                item = self._receive.receive_nowait()
            except anyio.WouldBlock:
                item = await self._receive.receive()
        except anyio.EndOfStream:
            self.exhausted = True
            return None
        if isinstance(item, BaseException):
            self.error = item
            self.exhausted = True
            raise item
        return item

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (piece := await self._next()) is not None:
            self.sent += len(piece)
            yield piece

    async def take(self, length: int) -> AsyncIterator[bytes]:
        """Yield exactly ``length`` bytes (fewer only if the stream ends first)."""
        remaining = length
        while remaining > 0:
            piece = await self._next()
            if piece is None:
                return
            if len(piece) > remaining:
                piece, self._leftover = piece[:remaining], piece[remaining:]
            remaining -= len(piece)
            self.sent += len(piece)
            yield piece

    async def at_end(self) -> bool:
        """Whether the stream is finished (reads ahead one piece if needed)."""
        piece = await self._next()
        if piece is None:
            return True
        self._leftover = piece
        return False

    def failure(self, fallback: BaseException) -> BaseException:
        """The error to report for a failed request: the stream's own error wins."""
        return self.error if self.error is not None else fallback


async def _produce(chunks: AsyncIterator[bytes], send: MemoryObjectSendStream[bytes | BaseException]) -> None:
    async with send:
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                try:
                    # No checkpoint while the queue has room: a piece costs no trip through the
                    # event loop (the source's reads and a full queue still wait there).
                    send.send_nowait(chunk)
                except anyio.WouldBlock:
                    await send.send(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the upload stopped reading: it failed or finished, and says so itself
        except Exception as exc:
            # Hand the error to the reading side, which raises it inside the request body.
            with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await send.send(exc)
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()


@asynccontextmanager
async def pumped(chunks: AsyncIterator[bytes], buffer: int = PUMP_BUFFER) -> AsyncIterator[PumpedBody]:
    """Iterate ``chunks`` in a child task; yield a :class:`PumpedBody` safe to give to aiohttp.

    At most ``buffer`` pieces wait between the two ends. When the block exits the producer is
    cancelled (if still running) and ``chunks`` is closed in its own task.
    """
    send, receive = anyio.create_memory_object_stream[bytes | BaseException](buffer)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(_produce, chunks, send)
            try:
                yield PumpedBody(receive)
            finally:
                group.cancel_scope.cancel()
                receive.close()
    except BaseExceptionGroup as failed:
        # The producer never raises, so the group holds the block's own error: raise it as is,
        # so callers see (and retry on) the registry error rather than a group.
        if len(failed.exceptions) == 1 and not isinstance(failed.exceptions[0], BaseExceptionGroup):
            raise failed.exceptions[0] from None
        raise


def _location(response: aiohttp.ClientResponse, what: str) -> str:
    location = response.headers.get("Location")
    if not location:
        raise RegistryError(502, "", "registry answered without an upload Location", what=what)
    return urljoin(str(response.url), location)


def _min_chunk(response: aiohttp.ClientResponse | None, current: int) -> int:
    if response is None:
        return current
    text = response.headers.get("OCI-Chunk-Min-Length", "").strip()
    return max(current, int(text)) if text.isdigit() else current


class UploadSession:
    """An open upload in ``repository``. ``location`` is the latest ``Location`` (secret: never print).

    One session uploads one blob: :meth:`put_monolithic` or :meth:`put_chunked`, or is
    abandoned with :meth:`cancel`. A failed request leaves the session unusable (distribution 2.8
    cannot resume a broken ``PATCH``): cancel it and start a new one.
    """

    def __init__(self, client: RegistryClient, repository: str, location: str, min_chunk: int = 0) -> None:
        self.client = client
        self.repository = repository
        self.location = location
        self.min_chunk = min_chunk
        self.finished = False
        #: Length of the chunk a 413 refused, for the caller to pick a smaller one.
        self.refused_chunk: int | None = None

    def __repr__(self) -> str:
        return f"UploadSession({self.client.registry}/{self.repository})"

    def _what(self, digest: Digest) -> str:
        return f"uploading blob {digest.short} to {self.client.registry}/{self.repository}"

    def _final_url(self, digest: Digest) -> str:
        separator = "&" if "?" in self.location else "?"
        return f"{self.location}{separator}digest={quote(str(digest), safe='')}"

    async def _patch(self, headers: Mapping[str, str], data: Body, what: str) -> None:
        """One ``PATCH`` of an upload; follows the ``Location`` it answers and learns the
        registry's ``OCI-Chunk-Min-Length``."""
        async with self.client.open(
            "PATCH",
            self.location,
            scopes=push_scopes(self.repository),
            repository=self.repository,
            headers=headers,
            data=data,
            ok=(202, 204),
            what=what,
        ) as response:
            self.location = _location(response, what)
            self.min_chunk = _min_chunk(response, self.min_chunk)

    async def _commit(self, digest: Digest, what: str) -> None:
        """The empty ``PUT ?digest=`` that ends a chunked or streamed upload (the registry checks
        the digest against what it received)."""
        async with self.client.open(
            "PUT",
            self._final_url(digest),
            scopes=push_scopes(self.repository),
            repository=self.repository,
            headers={"Content-Length": "0"},
            data=b"",
            ok=(201, 204),
            what=what,
        ):
            self.finished = True

    async def put_monolithic(self, digest: Digest, size: int, body: PumpedBody) -> None:
        """One ``PUT ?digest=`` streaming ``size`` bytes from ``body``.

        A 413 is raised as a :class:`RegistryError` with status 413 for the caller to fall
        back to chunked uploads (the stream is consumed by then, so the caller restarts).
        """
        what = self._what(digest)
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        try:
            # An empty blob sends no body, but its stream must still run to be verified.
            if not size and not await body.at_end():
                raise TransportError(f"{what}: source sent more than 0 bytes", temporary=False)
            async with self.client.open(
                "PUT",
                self._final_url(digest),
                scopes=push_scopes(self.repository),
                repository=self.repository,
                headers=headers,
                data=body.__aiter__() if size else b"",
                ok=(201, 204),
                what=what,
            ):
                self.finished = True
        except AsyncSyncError as exc:
            raise body.failure(exc) from None

    async def put_bytes(self, digest: Digest, data: bytes) -> None:
        """One ``PUT ?digest=`` whose body is ``data`` (a small blob already read and verified):
        one write, no body task; a 401 is replayed (the body is bytes). A 413 is raised as a
        :class:`RegistryError` with status 413, as from :meth:`put_monolithic`."""
        async with self.client.open(
            "PUT",
            self._final_url(digest),
            scopes=push_scopes(self.repository),
            repository=self.repository,
            headers={"Content-Type": "application/octet-stream"},
            data=data,
            ok=(201, 204),
            what=self._what(digest),
        ):
            self.finished = True

    async def put_chunked(self, digest: Digest, size: int, body: PumpedBody, chunk_size: int) -> None:
        """``PATCH`` chunks of ``max(chunk_size, OCI-Chunk-Min-Length)`` bytes, then ``PUT ?digest=``."""
        what = self._what(digest)
        chunk = max(chunk_size, self.min_chunk, 1)
        offset = 0
        length = 0
        try:
            while offset < size:
                length = min(chunk, size - offset)
                headers = {
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(length),
                    "Content-Range": f"{offset}-{offset + length - 1}",
                }
                await self._patch(headers, body.take(length), what)
                chunk = max(chunk, self.min_chunk)
                offset += length
            # An empty blob has no PATCH; a stream longer than ``size`` never gets here
            # (verification raises first), but make sure nothing is left unread.
            if not await body.at_end():
                raise TransportError(f"{what}: source sent more than {size} bytes", temporary=False)
            await self._commit(digest, what)
        except RegistryError as exc:
            if exc.status == 413:
                self.refused_chunk = length
                raise RegistryError(
                    413,
                    exc.code,
                    f"registry refused a {chunk}-byte chunk as too large (try a smaller --chunk-size)",
                    what=what,
                ) from None
            raise body.failure(exc) from None
        except AsyncSyncError as exc:
            raise body.failure(exc) from None

    async def put_streamed(
        self, body: PumpedBody, chunk_size: int | None, finished: Callable[[], Awaitable[Digest]]
    ) -> int:
        """Upload a blob whose digest is known only once its stream has ended (a layer compressed
        on the way): ``PATCH`` the stream, then ``PUT ?digest=`` with what ``finished`` returns
        (called once the whole stream is sent). Returns the number of bytes sent.

        Without ``chunk_size`` the stream goes in one ``PATCH`` without a length (HTTP chunked
        transfer encoding; distribution's "stream upload", what containers/image sends); with
        it, in ``PATCH``es of exactly ``chunk_size`` bytes (the last one shorter) with
        ``Content-Range``, each read into memory first (a chunk must state its length), so memory
        is bounded by the chunk size. The registry checks the digest at the ``PUT``.
        """
        what = f"uploading a blob to {self.client.registry}/{self.repository}"
        chunk = max(chunk_size or 0, self.min_chunk)
        offset = 0
        length = 0
        try:
            if not chunk:
                async with self.client.open(
                    "PATCH",
                    self.location,
                    scopes=push_scopes(self.repository),
                    repository=self.repository,
                    headers={"Content-Type": "application/octet-stream"},
                    data=body.__aiter__(),
                    ok=(202, 204),
                    what=what,
                ) as response:
                    self.location = _location(response, what)
                offset = body.sent
            else:
                while not await body.at_end():
                    piece = bytearray()
                    async for part in body.take(chunk):
                        piece += part
                    length = len(piece)
                    headers = {
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{offset}-{offset + length - 1}",
                    }
                    await self._patch(headers, bytes(piece), what)
                    chunk = max(chunk, self.min_chunk)
                    offset += length
            digest = await finished()
            await self._commit(digest, self._what(digest))
            return offset
        except RegistryError as exc:
            if exc.status == 413:
                self.refused_chunk = length or None
            raise body.failure(exc) from None
        except AsyncSyncError as exc:
            raise body.failure(exc) from None

    async def cancel(self) -> None:
        """``DELETE`` the session, best effort (shielded, bounded, errors ignored)."""
        if self.finished:
            return
        self.finished = True
        with anyio.move_on_after(_CANCEL_TIMEOUT, shield=True):
            try:
                async with self.client.open(
                    "DELETE",
                    self.location,
                    scopes=push_scopes(self.repository),
                    repository=self.repository,
                    ok=(200, 202, 204, 404),
                    what=f"cancelling an upload to {self.client.registry}/{self.repository}",
                ):
                    pass
            except AsyncSyncError:
                pass


async def start_upload(client: RegistryClient, repository: str) -> UploadSession:
    """``POST /v2/<repo>/blobs/uploads/`` (retried); the session starts at the answer's ``Location``."""
    what = f"starting an upload to {client.registry}/{repository}"
    response = await client.request(
        "POST",
        f"/v2/{repository}/blobs/uploads/",
        scopes=push_scopes(repository),
        repository=repository,
        headers={"Content-Length": "0"},
        data=b"",
        ok=(202,),
        what=what,
    )
    location = response.headers.get("Location")
    if not location:
        raise RegistryError(502, "", "registry answered without an upload Location", what=what)
    text = response.headers.get("OCI-Chunk-Min-Length", "").strip()
    return UploadSession(
        client, repository, urljoin(response.url, location), int(text) if text.isdigit() else 0
    )


@dataclass(frozen=True, slots=True)
class MountResult:
    """``mounted`` when the registry answered 201; otherwise ``session`` is the upload it opened."""

    mounted: bool
    session: UploadSession | None = None


async def mount_blob(
    client: RegistryClient, repository: str, digest: Digest, from_repository: str
) -> MountResult:
    """Try a cross-repo mount of ``digest`` from ``from_repository`` into ``repository``.

    201 -> mounted. 202 -> refused; the returned session belongs to the caller, who must use
    it for the upload or :meth:`~UploadSession.cancel` it. Errors (e.g. no pull right on the
    source repository) are raised; callers treat them as "not mounted".
    """
    what = f"mounting blob {digest.short} into {client.registry}/{repository}"
    query = f"mount={quote(str(digest), safe='')}&from={quote(from_repository, safe='/')}"
    response = await client.request(
        "POST",
        f"/v2/{repository}/blobs/uploads/?{query}",
        scopes=mount_scopes(repository, from_repository),
        repository=repository,
        headers={"Content-Length": "0"},
        data=b"",
        ok=(201, 202),
        what=what,
    )
    if response.status == 201:
        return MountResult(True)
    location = response.headers.get("Location")
    if not location:
        return MountResult(False)
    text = response.headers.get("OCI-Chunk-Min-Length", "").strip()
    session = UploadSession(
        client, repository, urljoin(response.url, location), int(text) if text.isdigit() else 0
    )
    return MountResult(False, session)
