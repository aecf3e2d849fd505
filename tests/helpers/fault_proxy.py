"""A fault-injecting HTTP/1.1 proxy in front of a real registry (or token service), for reliability tests.

:class:`FaultProxy` listens on ``127.0.0.1`` (and optional *alias* listeners on other loopback
addresses, e.g. ``127.0.0.2``, which clients must treat as another host) and forwards every request to
one upstream ``host:port``, keeping the client's ``Host`` header so the registry builds upload
``Location`` URLs that point back at the listener the client used. It runs its own event loop in a
background thread (like the token service), so it keeps serving while a test blocks on a subprocess.

Rules (:class:`~tests.helpers.faults.Rule`, see :mod:`tests.helpers.faults`) choose which requests get
a :class:`~tests.helpers.faults.Fault`. Every rule counts every request it matches; the first firing
rule applies its fault, and the additive header rewrites apply together with anything else.

Every request is recorded (:class:`RecordedRequest`: listener, method, path, query, header values,
request body bytes received, status sent, fault applied); :meth:`FaultProxy.records`,
:meth:`FaultProxy.count`, :meth:`FaultProxy.injected` and :meth:`FaultProxy.peak_in_flight` read them.

An alias with ``upstream_authorization`` plays a CDN or a storage backend with signed URLs: it strips
whatever ``Authorization`` arrives (recording it) and authenticates to the registry itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import ssl
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Self
from urllib.parse import parse_qsl, urlencode

from tests.helpers.faults import (
    REASONS,
    SYNTHESIZED,
    Fault,
    Kind,
    RecordedRequest,
    Rule,
    error_body,
    rewrite,
    synthesize,
)
from tests.helpers.http11 import (
    HOP_BY_HOP,
    Framing,
    Head,
    body_framing,
    encode_piece,
    end_of_body,
    iter_body,
    read_head,
    reset,
    response_head,
)

__all__ = ["Fault", "FaultProxy", "Kind", "RecordedRequest", "Rule"]


@dataclass(slots=True)
class _Listener:
    address: str
    upstream_authorization: str | Callable[[RecordedRequest], str | None] | None
    server: asyncio.Server
    plain: bool = True
    in_flight: int = 0
    peak: int = 0


Selection = tuple[tuple[Rule, random.Random] | None, list[tuple[Rule, random.Random]]]


class FaultProxy:
    """The proxy: ``with FaultProxy("127.0.0.1:5000", seed=1) as proxy:``, then point clients at
    ``proxy.address``. Rules may be added and cleared while it runs."""

    def __init__(
        self,
        upstream: str,
        *,
        seed: int = 0,
        host: str = "127.0.0.1",
        server_ssl: ssl.SSLContext | None = None,
        upstream_ssl: ssl.SSLContext | None = None,
    ) -> None:
        self.upstream_host, _, port = upstream.rpartition(":")
        self.upstream_port = int(port)
        self.seed = seed
        self.host = host
        self.challenge: str | None = None  # the last Bearer challenge the upstream sent
        self._server_ssl = server_ssl
        self._upstream_ssl = upstream_ssl
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._records: list[RecordedRequest] = []
        self._listeners: list[_Listener] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        try:
            self._call(self._listen(self.host, self._server_ssl, None))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Close every listener and connection, stop the loop. Idempotent."""
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _call(self, coro: Awaitable[str]) -> str:
        assert self._loop is not None, "FaultProxy not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    async def _listen(
        self,
        host: str,
        server_ssl: ssl.SSLContext | None,
        upstream_authorization: str | Callable[[RecordedRequest], str | None] | None,
    ) -> str:
        holder: list[_Listener] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # Swallow the shutdown's cancellation: asyncio logs an error for a cancelled handler task.
            with contextlib.suppress(asyncio.CancelledError):
                await self._connection(reader, writer, holder[0])

        server = await asyncio.start_server(handle, host, 0, ssl=server_ssl, limit=256 * 1024)
        port = server.sockets[0].getsockname()[1]
        listener = _Listener(f"{host}:{port}", upstream_authorization, server, plain=server_ssl is None)
        holder.append(listener)
        self._listeners.append(listener)
        return listener.address

    async def _shutdown(self) -> None:
        for listener in self._listeners:
            listener.server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for listener in self._listeners:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(listener.server.wait_closed(), 2)

    # ------------------------------------------------------------------ configuration

    @property
    def address(self) -> str:
        """``host:port`` of the main listener (what a client uses as the registry name)."""
        return self._listeners[0].address

    @property
    def url(self) -> str:
        return f"{'https' if self._server_ssl else 'http'}://{self.address}"

    def add_alias(
        self,
        host: str = "127.0.0.2",
        *,
        server_ssl: ssl.SSLContext | None = None,
        upstream_authorization: str | Callable[[RecordedRequest], str | None] | None = None,
    ) -> str:
        """Another listener (another "host") on the same upstream; returns its base URL.

        With ``upstream_authorization`` (a header value, or a function of the record) the alias drops
        the client's ``Authorization`` and sends this one instead, as a CDN or signed-URL backend would.
        """
        address = self._call(self._listen(host, server_ssl, upstream_authorization))
        return f"{'https' if server_ssl else 'http'}://{address}"

    def add_rule(self, fault: Fault, **match: object) -> Rule:
        """Append ``Rule(fault, **match)`` and return it (its counters update live)."""
        rule = Rule(fault, **match)  # type: ignore[arg-type]
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear_rules(self) -> None:
        with self._lock:
            self._rules.clear()

    # ------------------------------------------------------------------ records

    def records(self) -> list[RecordedRequest]:
        """A snapshot of every request since start or :meth:`reset`, oldest first."""
        with self._lock:
            return [replace(r, headers=dict(r.headers)) for r in self._records]

    def reset(self) -> None:
        """Forget records and peaks (rules and their counters stay)."""
        with self._lock:
            self._records.clear()
            for listener in self._listeners:
                listener.peak = listener.in_flight

    def count(
        self, method: str | None, path_regex: str, *, status: int | None = None, completed: bool = False
    ) -> int:
        """Requests with ``method`` (None: any) and a path fully matching ``path_regex``; with
        ``completed``, only those whose answer the proxy sent in full with ``status`` (any if None)."""
        pattern = re.compile(path_regex)
        return sum(
            1
            for r in self.records()
            if (method is None or r.method == method)
            and pattern.fullmatch(r.path)
            and (status is None or r.status == status)
            and (not completed or (r.status is not None and r.fault is None))
        )

    def injected(self) -> Counter[str]:
        """How many times each fault label was applied."""
        return Counter(r.fault for r in self.records() if r.fault is not None)

    def peak_in_flight(self, listener: str | None = None) -> int:
        """The most requests a listener (default: the main one) handled at once."""
        address = listener or self.address
        return next(lst.peak for lst in self._listeners if lst.address == address)

    # ------------------------------------------------------------------ serving

    async def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener: _Listener
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            first = await reader.read(1)
            if first == b"\x16" and listener.plain:
                # A TLS ClientHello on a plain listener (a client trying https first): refuse at once,
                # as Go's server does, instead of waiting for a head that never comes.
                writer.write(
                    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent a TLS handshake to an HTTP server\n"
                )
                return
            prefix = first
            while first and (head := await read_head(reader, prefix)) is not None:
                prefix = b""
                if not await self._exchange(head, reader, writer, listener):
                    break
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # the client went away or spoke garbage: nothing to answer
        except asyncio.CancelledError:
            reset(writer)
            raise
        finally:
            self._tasks.discard(task)
            if not writer.is_closing():
                writer.close()

    def _select(self, head: Head, listener: str) -> Selection:
        primary: tuple[Rule, random.Random] | None = None
        additive: list[tuple[Rule, random.Random]] = []
        with self._lock:
            for index, rule in enumerate(self._rules):
                if not rule.matches(head, listener):
                    continue
                rng = rule.decide(self.seed, index)
                if rng is None:
                    continue
                if rule.fault.additive:
                    additive.append((rule, rng))
                elif primary is None:
                    primary = (rule, rng)
        return primary, additive

    def _mark(self, record: RecordedRequest, rule: Rule) -> None:
        with self._lock:
            rule.fired += 1
            record.fault = rule.fault.label

    async def _exchange(
        self, head: Head, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener: _Listener
    ) -> bool:
        """Handle one request; True if the connection may carry another."""
        record = RecordedRequest(
            listener.address, head.method, head.path, head.query, {k.lower(): v for k, v in head.headers}
        )
        with self._lock:
            self._records.append(record)
            listener.in_flight += 1
            listener.peak = max(listener.peak, listener.in_flight)
        try:
            primary, additive = self._select(head, listener.address)
            return await self._dispatch(head, reader, writer, listener, record, primary, additive)
        finally:
            record.finished = time.monotonic()
            with self._lock:
                listener.in_flight -= 1

    async def _dispatch(
        self,
        head: Head,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        listener: _Listener,
        record: RecordedRequest,
        primary: tuple[Rule, random.Random] | None,
        additive: list[tuple[Rule, random.Random]],
    ) -> bool:
        keep_alive = not head.wants_close()
        framing = body_framing(head)
        rule, rng = primary if primary is not None else (None, random.Random(0))
        fault = rule.fault if rule is not None else None
        preloaded: list[bytes] | None = None
        request_cut: int | None = None
        if rule is not None and fault is not None:
            if fault.kind in SYNTHESIZED:
                record.body_bytes = sum([len(p) async for p in iter_body(reader, framing)])
                self._mark(record, rule)
                await self._respond(writer, record, synthesize(fault, head, self.challenge))
                return keep_alive
            if fault.kind is Kind.TOO_LARGE:
                preloaded = [p async for p in iter_body(reader, framing)]
                record.body_bytes = sum(map(len, preloaded))
                if record.body_bytes > fault.limit:
                    self._mark(record, rule)
                    body = error_body("SIZE_INVALID", "request entity too large")
                    await self._respond(writer, record, (413, [("Content-Type", "application/json")], body))
                    return keep_alive
                record.body_bytes = 0
            elif fault.kind is Kind.CALLBACK and fault.when == "before":
                self._mark(record, rule)
                assert fault.callback is not None
                fault.callback(record)
                reset(writer)
                return False
            elif fault.kind is Kind.REFUSE_MOUNT and "mount=" in head.query:
                self._mark(record, rule)
                query = [(k, v) for k, v in parse_qsl(head.query) if k not in ("mount", "from")]
                head = head.with_target(head.path + (f"?{urlencode(query)}" if query else ""))
            elif fault.kind is Kind.RESET_REQUEST and framing.kind != "none":
                total = framing.length if framing.kind == "length" else 0
                request_cut = rng.randrange(0, total) if total else rng.randrange(0, 32 * 1024)
        return await self._forward(
            head, reader, writer, listener, record, framing, preloaded, request_cut, primary, additive
        )

    async def _respond(
        self,
        writer: asyncio.StreamWriter,
        record: RecordedRequest,
        answer: tuple[int, list[tuple[str, str]], bytes],
    ) -> None:
        status, headers, body = answer
        head = response_head(status, REASONS.get(status, "Error"), headers, body)
        # A HEAD answer announces the body's length but never carries it.
        writer.write(head.encode() + (b"" if record.method == "HEAD" else body))
        record.status = status
        await writer.drain()

    async def _forward(
        self,
        head: Head,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        listener: _Listener,
        record: RecordedRequest,
        framing: Framing,
        preloaded: list[bytes] | None,
        request_cut: int | None,
        primary: tuple[Rule, random.Random] | None,
        additive: list[tuple[Rule, random.Random]],
    ) -> bool:
        up_reader, up_writer = await asyncio.open_connection(
            self.upstream_host, self.upstream_port, ssl=self._upstream_ssl, limit=256 * 1024
        )
        try:
            up_head = Head(head.start_line, [(k, v) for k, v in head.headers if k.lower() not in HOP_BY_HOP])
            up_head.set("Connection", "close")
            if framing.kind == "chunked":
                up_head.set("Transfer-Encoding", "chunked")
            if listener.upstream_authorization is not None:
                auth = listener.upstream_authorization
                value = auth(record) if callable(auth) else auth
                up_head.remove("Authorization")
                if value:
                    up_head.set("Authorization", value)
            up_writer.write(up_head.encode())
            sent = 0
            pieces = _replay(preloaded) if preloaded is not None else iter_body(reader, framing)
            async for piece in pieces:
                record.body_bytes += len(piece)
                if request_cut is not None and sent + len(piece) > request_cut:
                    up_writer.write(encode_piece(framing, piece[: request_cut - sent]))
                    await up_writer.drain()
                    assert primary is not None
                    self._mark(record, primary[0])
                    reset(writer)
                    reset(up_writer)
                    return False
                up_writer.write(encode_piece(framing, piece))
                await up_writer.drain()
                sent += len(piece)
            up_writer.write(end_of_body(framing))
            await up_writer.drain()
            return await self._relay_response(head, up_reader, reader, writer, record, primary, additive)
        finally:
            if not up_writer.is_closing():
                up_writer.close()

    async def _relay_response(
        self,
        request: Head,
        up_reader: asyncio.StreamReader,
        client_reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        record: RecordedRequest,
        primary: tuple[Rule, random.Random] | None,
        additive: list[tuple[Rule, random.Random]],
    ) -> bool:
        response = await _unless_client_leaves(read_head(up_reader), client_reader)
        while response is not None and response.status == 100:
            response = await read_head(up_reader)
        if response is None:
            raise ConnectionResetError("upstream closed without answering")
        framing = body_framing(response, response_to=request.method)
        for extra, _ in additive:
            if rewrite(response, extra.fault):
                self._mark(record, extra)
        if response.status == 401:
            bearer = [c for c in response.get_all("WWW-Authenticate") if c.lower().startswith("bearer")]
            if bearer:
                self.challenge = bearer[0]
        client_head = Head(
            response.start_line, [(k, v) for k, v in response.headers if k.lower() not in HOP_BY_HOP]
        )
        if framing.kind == "chunked":
            client_head.set("Transfer-Encoding", "chunked")
        if framing.kind == "eof":
            client_head.set("Connection", "close")
        rule, rng = primary if primary is not None else (None, random.Random(0))
        kind = rule.fault.kind if rule is not None else None
        total = framing.length if framing.kind == "length" else 0
        cut = flip = None
        if rule is not None and kind is Kind.CALLBACK:
            self._mark(record, rule)
            assert rule.fault.callback is not None
            rule.fault.callback(record)
            reset(writer)
            return False
        if rule is not None and kind is Kind.STALL:
            self._mark(record, rule)
            writer.write(client_head.encode())
            await writer.drain()
            with contextlib.suppress(TimeoutError, OSError):
                await asyncio.wait_for(_until_eof(client_reader), rule.fault.delay)
            reset(writer)
            return False
        if rule is not None and total and kind in (Kind.RESET_RESPONSE, Kind.TRUNCATE):
            cut = rng.randrange(0, total)
        if rule is not None and total and kind is Kind.FLIP_BYTE:
            flip = rng.randrange(0, total)
        if framing.kind == "length" and not total:
            record.status = response.status  # the head is the whole answer
        writer.write(client_head.encode())
        offset = 0
        async for piece in iter_body(up_reader, framing):
            if cut is not None and offset + len(piece) > cut:
                writer.write(encode_piece(framing, piece[: cut - offset]))
                await writer.drain()
                assert rule is not None
                self._mark(record, rule)
                if kind is Kind.TRUNCATE:
                    writer.close()
                else:
                    reset(writer)
                return False
            if flip is not None and offset <= flip < offset + len(piece):
                assert rule is not None
                self._mark(record, rule)
                changed = bytearray(piece)
                changed[flip - offset] ^= 0xFF
                piece = bytes(changed)
            if framing.kind == "length" and offset + len(piece) >= total:
                # The client holds the whole answer once this piece is out, and may look at the
                # records before this task runs again: record the status first.
                record.status = response.status
            writer.write(encode_piece(framing, piece))
            await writer.drain()
            offset += len(piece)
        writer.write(end_of_body(framing))
        # The answer is complete once written: a client that read it all may close before the drain.
        record.status = response.status
        await writer.drain()
        # The upstream's own "Connection: close" answers ours; only an EOF-framed body ends the client's.
        return not request.wants_close() and framing.kind != "eof"


async def _replay(pieces: Iterable[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def _unless_client_leaves(answer: Awaitable[Head | None], client: asyncio.StreamReader) -> Head | None:
    """Await the upstream's answer, but give up (as nginx does) when the client disconnects first: a
    request the client abandoned (cancelled) no longer counts as in flight."""
    waiting = asyncio.ensure_future(answer)
    leaving = asyncio.ensure_future(client.read(1))
    try:
        done, _ = await asyncio.wait({waiting, leaving}, return_when=asyncio.FIRST_COMPLETED)
        if waiting in done:
            return waiting.result()
        raise ConnectionResetError("the client left before the upstream answered")
    finally:
        for task in (waiting, leaving):
            task.cancel()
        await asyncio.gather(waiting, leaving, return_exceptions=True)


async def _until_eof(reader: asyncio.StreamReader) -> None:
    """Wait until the peer closes (the stall ends early when the client gives up)."""
    while await reader.read(64 * 1024):
        pass
