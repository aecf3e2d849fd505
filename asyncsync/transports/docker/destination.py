"""Writing an image to a registry (``docker://`` as a copy destination).

Per blob: ``try_reuse_blob`` (HEAD, then cross-repo mounts from the candidates), else
``put_blob`` or, for a small blob read whole, ``put_blob_bytes`` (a new upload, or the session
a refused mount opened; monolithic unless chunked
uploads are configured, the blob is above the chunking threshold, or the registry once answered
413). A 413 to a chunk makes the registry's chunks smaller for the rest of the run (1 MiB first:
nginx's default ``client_max_body_size``, then 256 KiB, then 64 KiB) and restarts the blob.
Manifests go by digest for children and by the reference (tag or digest) last.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from asyncsync.digest import Digest
from asyncsync.errors import AuthenticationError, PermissionDeniedError, RegistryError
from asyncsync.manifest import Descriptor
from asyncsync.registry.blobs import (
    DEFAULT_CHUNK_SIZE,
    UploadSession,
    head_blob,
    mount_blob,
    pumped,
    push_scopes,
    start_upload,
)
from asyncsync.registry.client import RegistryClient
from asyncsync.registry.manifests import put_manifest
from asyncsync.signature.formats import Signature
from asyncsync.signature.registries_d import RegistriesD
from asyncsync.transports.base import (
    BlobLocation,
    Capabilities,
    ReuseKind,
    ReuseResult,
    TransportContext,
)
from asyncsync.transports.docker.attachments import RegistryAttachments
from asyncsync.transports.docker.reference import DockerReference
from asyncsync.transports.docker.repository import OnRepository
from asyncsync.transports.docker.signatures import write_signatures

log = logging.getLogger("asyncsync.copy")

_CAPABILITIES = Capabilities(mounts=True, compresses_layers=True, oci_fallback=True)
#: Mount sources tried per blob before uploading; each refused try costs a round trip.
MAX_MOUNT_TRIES = 3
#: Blobs up to this size may be uploaded from bytes (see :meth:`DockerDestination.wants_bytes`);
#: it bounds the memory a blob in flight holds on that path.
SMALL_BLOB_SIZE = 1024 * 1024
#: Round trips to the registry below this (seconds) make the client's CPU, not latency, what a
#: small blob costs.
SHORT_ROUND_TRIP = 0.005


@dataclass(slots=True)
class _RegistryUploadState:
    """What a run has learned about uploading to one registry (shared by its destinations)."""

    chunked: bool = False
    #: Largest chunk to send after a 413 refused a bigger one.
    chunk_limit: int | None = None


#: Chunk sizes tried after a 413 to a chunk, largest first; nginx's default body limit is 1 MiB.
SMALLER_CHUNKS = (1024 * 1024, 256 * 1024, 64 * 1024)


def smaller_chunk(refused: int, floor: int) -> int | None:
    """The next chunk size to try after ``refused`` bytes got a 413, not below the registry's
    ``OCI-Chunk-Min-Length`` (``floor``); ``None`` when there is none left."""
    for size in SMALLER_CHUNKS:
        if floor <= size < refused:
            return size
    return None


# Keyed by client, which the run's RegistrySession keeps per (registry, options): run-wide.
_UPLOAD_STATE: weakref.WeakKeyDictionary[RegistryClient, _RegistryUploadState] = weakref.WeakKeyDictionary()


def _upload_state(client: RegistryClient) -> _RegistryUploadState:
    state = _UPLOAD_STATE.get(client)
    if state is None:
        state = _UPLOAD_STATE[client] = _RegistryUploadState()
    return state


async def _one_piece(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _retry_smaller(refused: RegistryError, message: str) -> RegistryError:
    """The temporary error that restarts a blob the registry refused as too large (413), now
    that this registry's uploads are set to go in chunks or smaller ones; retried at once."""
    retry = RegistryError(413, refused.code, message, what=refused.what, retry_after=0.0)
    retry.temporary = True
    return retry


class DockerDestination(OnRepository):
    """An image reference in a registry being written."""

    def __init__(self, reference: DockerReference, ctx: TransportContext) -> None:
        super().__init__(reference, ctx)
        #: Upload sessions opened by refused mounts, used by the next put_blob of that digest.
        self._pending: dict[Digest, UploadSession] = {}

    @property
    def capabilities(self) -> Capabilities:
        return _CAPABILITIES

    async def try_reuse_blob(
        self, blob: Descriptor, candidates: Sequence[BlobLocation] = (), *, known_absent: bool = False
    ) -> ReuseResult | None:
        """HEAD the blob here; else mount it from up to three candidates on this registry.

        A refusal (202, or an auth/not-found error from the mount) is ``None``, never raised;
        the session a 202 opened is kept for :meth:`put_blob`.
        """
        if not known_absent:
            size = await head_blob(
                self.client, self.repository, blob.digest, scopes=push_scopes(self.repository)
            )
            if size is not None:
                return ReuseResult(ReuseKind.EXISTS, size if size >= 0 else blob.size)
        tried = 0
        for candidate in candidates:
            if candidate.registry != self.registry or candidate.repository == self.repository:
                continue
            if tried >= MAX_MOUNT_TRIES:
                break
            tried += 1
            try:
                result = await mount_blob(self.client, self.repository, blob.digest, candidate.repository)
            except RegistryError as exc:
                if exc.temporary:
                    raise
                log.debug("mount of %s from %s refused: %s", blob.digest.short, candidate.repository, exc)
                continue
            if result.mounted:
                return ReuseResult(ReuseKind.MOUNTED, blob.size, mounted_from=candidate.repository)
            if result.session is not None:
                previous = self._pending.pop(blob.digest, None)
                if previous is not None:
                    await previous.cancel()
                self._pending[blob.digest] = result.session
        return None

    def _chunk_size(self, size: int) -> int | None:
        """The chunk size to use for a blob of ``size`` bytes, or ``None`` for a monolithic PUT."""
        options = self._ctx.options
        state = _upload_state(self.client)
        chosen: int | None = None
        if options.chunk_size:
            chosen = options.chunk_size
        elif (options.chunked_threshold is not None and size > options.chunked_threshold) or state.chunked:
            chosen = DEFAULT_CHUNK_SIZE
        if chosen is not None and state.chunk_limit is not None:
            chosen = min(chosen, state.chunk_limit)
        return chosen

    def _denied(self, exc: RegistryError) -> RegistryError:
        """A permanent 401/403 on a write means these credentials may read but not push here."""
        if isinstance(exc, AuthenticationError | PermissionDeniedError) and not exc.temporary:
            return PermissionDeniedError(
                exc.status,
                exc.code,
                f"denied: the credentials do not allow pushing to {self.registry}/{self.repository}",
                what=exc.what,
            )
        return exc

    async def put_blob(self, blob: Descriptor, chunks: AsyncIterator[bytes]) -> None:
        """Upload ``blob`` from ``chunks``; on any failure the upload session is cancelled.

        A 413 on a monolithic PUT switches this registry to chunked uploads for the rest of the
        run and is raised as a temporary error, so the caller's retry restarts the blob. A
        permanent authorization failure is reported as "denied".
        """
        async with pumped(chunks) as body:

            async def send(session: UploadSession, chunk_size: int | None) -> None:
                if chunk_size is None:
                    await session.put_monolithic(blob.digest, blob.size, body)
                else:
                    await session.put_chunked(blob.digest, blob.size, body, chunk_size)

            await self._upload(blob, send)

    def wants_bytes(self, blob: Descriptor) -> bool:
        """Whether ``blob`` should be read whole and uploaded with :meth:`put_blob_bytes`: at most
        :data:`SMALL_BLOB_SIZE`, one ``PUT`` on this registry (not chunked), and round trips to it
        short (below :data:`SHORT_ROUND_TRIP`, from the run's fastest exchange with it). Reading
        first costs a round trip (a stream overlaps the source GET with the upload's ``POST``)
        and saves a body task and its queue: on a short link that is the better trade."""
        if not 0 <= blob.size <= SMALL_BLOB_SIZE or self._chunk_size(blob.size) is not None:
            return False
        round_trip = self.client.session.limiters.round_trip(self.client.host)
        return round_trip is not None and round_trip < SHORT_ROUND_TRIP

    async def put_blob_bytes(self, blob: Descriptor, data: bytes) -> None:
        """Upload a small blob read whole and verified (:meth:`put_blob`'s contract): the ``PUT``
        carries the bytes (one write, no body task), or chunks where this registry needs them."""

        async def send(session: UploadSession, chunk_size: int | None) -> None:
            if chunk_size is None:
                await session.put_bytes(blob.digest, data)
            else:
                async with pumped(_one_piece(data)) as body:
                    await session.put_chunked(blob.digest, blob.size, body, chunk_size)

        await self._upload(blob, send)

    async def _upload(
        self, blob: Descriptor, send: Callable[[UploadSession, int | None], Awaitable[None]]
    ) -> None:
        """One upload of ``blob``: the session a refused mount opened, else a ``POST``; then
        ``send(session, chunk size or None for one PUT)``. On failure the session is cancelled;
        a 413 makes this registry's uploads chunked or their chunks smaller and is raised as a
        temporary error (the caller restarts the blob); a permanent 401/403 is "denied"."""
        session = self._pending.pop(blob.digest, None)
        chunk_size = self._chunk_size(blob.size)
        try:
            if session is None:
                session = await start_upload(self.client, self.repository)
            await send(session, chunk_size)
        except RegistryError as exc:
            if session is not None:
                await session.cancel()
            if exc.status == 413 and chunk_size is None:
                _upload_state(self.client).chunked = True
                raise _retry_smaller(
                    exc, "registry refused the blob as too large; retrying with a chunked upload"
                ) from None
            if exc.status == 413 and session is not None and session.refused_chunk:
                smaller = smaller_chunk(session.refused_chunk, session.min_chunk)
                if smaller is not None:
                    _upload_state(self.client).chunk_limit = smaller
                    raise _retry_smaller(
                        exc,
                        f"registry refused a {session.refused_chunk}-byte chunk as too large; "
                        f"retrying with {smaller}-byte chunks",
                    ) from None
            denied = self._denied(exc)
            if denied is exc:
                raise
            raise denied from exc
        except BaseException:
            if session is not None:
                await session.cancel()
            raise

    async def put_blob_streamed(
        self, chunks: AsyncIterator[bytes], finished: Callable[[], Awaitable[Digest]]
    ) -> int:
        """Upload a blob whose digest is known only at the end of ``chunks`` (a layer compressed
        on the way; :meth:`UploadSession.put_streamed`): one streamed ``PATCH``, or chunks of the
        registry's chunk size when it needs them. ``finished`` gives the digest once the stream
        has ended (and may refuse it by raising); returns the bytes sent. On any failure the
        session is cancelled, so nothing is committed; a 413 switches this registry to chunks and
        is raised as a temporary error for the caller to restart the blob."""
        try:
            async with pumped(chunks) as body:
                session = await start_upload(self.client, self.repository)
                chunk_size = self._chunk_size(1 << 62)
                try:
                    return await session.put_streamed(body, chunk_size, finished)
                except RegistryError as exc:
                    await session.cancel()
                    if exc.status == 413:
                        state = _upload_state(self.client)
                        if chunk_size is None:
                            state.chunked = True
                        elif session.refused_chunk and (
                            smaller := smaller_chunk(session.refused_chunk, session.min_chunk)
                        ):
                            state.chunk_limit = smaller
                        else:
                            raise
                        raise _retry_smaller(
                            exc, "registry refused the upload as too large; retrying in smaller chunks"
                        ) from None
                    raise
                except BaseException:
                    await session.cancel()
                    raise
        except RegistryError as exc:
            denied = self._denied(exc)
            if denied is exc:
                raise
            raise denied from exc

    async def put_manifest(self, raw: bytes, media_type: str, instance: Digest | None = None) -> Digest:
        reference = self._manifest_reference(instance)
        try:
            return await put_manifest(self.client, self.repository, reference, raw, media_type)
        except RegistryError as exc:
            denied = self._denied(exc)
            if denied is exc:
                raise
            raise denied from exc

    def attachment_writer(self) -> RegistryAttachments:
        """Tags, manifests by tag and referrers of this repository (for attachments)."""
        return RegistryAttachments(self.client, self.registry, self.repository)

    async def put_signatures(self, signatures: list[Signature], digest: Digest, *, instance: bool) -> None:
        """Simple signatures to the lookaside (staging) store, sigstore ones as attachments."""
        config = self._ctx.options.registries_d or RegistriesD()
        await write_signatures(self.client, config, self._reference.name, digest, signatures)

    async def commit(self) -> None:
        """Registries make each manifest visible as it is written; nothing is left to do."""

    async def close(self) -> None:
        """Cancel upload sessions that refused mounts opened and no upload used."""
        pending, self._pending = list(self._pending.values()), {}
        for session in pending:
            await session.cancel()
