"""A latency-adding TCP proxy: ``python -m bench.proxy --target HOST:PORT --rtt-ms 20``.

Every byte crossing the proxy, in either direction, is delivered ``rtt_ms / 2`` after it was read, so a
request/response round trip costs about ``rtt_ms`` more than direct loopback. Connection set-up is charged
too: data a client sends on a new connection is treated as sent one RTT after the accept (a TCP handshake
to a host ``rtt_ms`` away), so clients that open many connections pay for them as they would on a WAN.

Streaming contract: each direction is a reader task feeding a bounded queue of (deliver_at, chunk) and a
writer task that sleeps until ``deliver_at`` and writes; at most ``queue_chunks`` x 64 KiB are held per
direction (backpressure stops reading beyond that), so bodies are never buffered whole and throughput per
connection is about ``queue_chunks * 64 KiB / (rtt_ms / 2)``. EOF is forwarded as a half-close after the
same delay; a reset on one side closes both. Any number of connections are served concurrently.

This module imports nothing from ``bench`` so it also runs as a plain script. With ``--stats FILE`` it
writes ``{"connections": N, "bytes_up": N, "bytes_down": N}`` as JSON when it receives SIGTERM/SIGINT.
:class:`LatencyProxy` is the in-process API (used by tests); :func:`start_proxy_process` starts the
script in a child process and returns once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LatencyProxy", "ProxyProcess", "ProxyStats", "start_proxy_process"]

CHUNK = 65536


@dataclass
class ProxyStats:
    """Counters since start: accepted connections and bytes client->upstream / upstream->client."""

    connections: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


@dataclass
class LatencyProxy:
    """Listens on ``listen_host:listen_port`` (0 = any free port) and forwards to ``target``."""

    target_host: str
    target_port: int
    rtt_ms: float
    listen_host: str = "127.0.0.1"
    listen_port: int = 0
    queue_chunks: int = 64
    handshake: bool = True
    stats: ProxyStats = field(default_factory=ProxyStats)
    _server: asyncio.Server | None = field(default=None, repr=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, repr=False)

    @property
    def port(self) -> int:
        """The port actually listened on (after :meth:`start`)."""
        assert self._server is not None, "proxy not started"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def host(self) -> str:
        """``listen_host:port``."""
        return f"{self.listen_host}:{self.port}"

    async def start(self) -> None:
        """Start listening."""
        self._server = await asyncio.start_server(
            self._on_client, self.listen_host, self.listen_port, backlog=1024
        )

    async def close(self) -> None:
        """Stop listening and drop every open connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _on_client(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(client_r, client_w)
        finally:
            self._tasks.discard(task)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        self.stats.connections += 1
        one_way = self.rtt_ms / 2000.0
        established = loop.time() + (self.rtt_ms / 1000.0 if self.handshake else 0.0)
        try:
            upstream_r, upstream_w = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            client_w.close()
            return
        up = asyncio.ensure_future(self._pipe(client_r, upstream_w, one_way, established, True))
        down = asyncio.ensure_future(self._pipe(upstream_r, client_w, one_way, 0.0, False))
        try:
            done, _pending = await asyncio.wait({up, down}, return_when=asyncio.FIRST_EXCEPTION)
            if any(t.exception() is not None for t in done if not t.cancelled()):
                raise ConnectionResetError
            await asyncio.gather(up, down)
        except (OSError, asyncio.CancelledError):
            up.cancel()
            down.cancel()
            await asyncio.gather(up, down, return_exceptions=True)
        finally:
            for writer in (client_w, upstream_w):
                writer.close()
            for writer in (client_w, upstream_w):
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        delay: float,
        not_before: float,
        upward: bool,
    ) -> None:
        loop = asyncio.get_running_loop()
        # None marks a reset of the reading side: the writer gives up at once instead of waiting forever.
        queue: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue(self.queue_chunks)

        async def read_side() -> None:
            while True:
                try:
                    data = await reader.read(CHUNK)
                except OSError:
                    await queue.put((0.0, None))
                    return
                await queue.put((max(loop.time(), not_before) + delay, data))
                if not data:
                    return

        reading = asyncio.ensure_future(read_side())
        try:
            while True:
                deliver_at, data = await queue.get()
                if data is None:
                    raise ConnectionResetError("peer reset the connection")
                wait = deliver_at - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    break
                writer.write(data)
                if upward:
                    self.stats.bytes_up += len(data)
                else:
                    self.stats.bytes_down += len(data)
                await writer.drain()
            await reading
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await reading


@dataclass
class ProxyProcess:
    """A proxy running as a child process (see :func:`start_proxy_process`)."""

    host: str
    stats_file: Path
    _process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def port(self) -> int:
        """The port the proxy listens on."""
        return int(self.host.rpartition(":")[2])

    def stop(self) -> ProxyStats:
        """Terminate the proxy and return its counters (zeros if it could not write them)."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        try:
            return ProxyStats(**json.loads(self.stats_file.read_text()))
        except (OSError, ValueError, TypeError):
            return ProxyStats()


def start_proxy_process(target: str, rtt_ms: float, stats_file: Path, port: int = 0) -> ProxyProcess:
    """Run this module as a script in front of ``target`` (``HOST:PORT``); returns once it listens.

    ``port`` 0 picks a free port; a given port lets a caller restart a proxy at the same address.
    """
    argv = [sys.executable, str(Path(__file__).resolve()), "--target", target, "--rtt-ms", str(rtt_ms)]
    argv += ["--stats", str(stats_file), "--port", str(port)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert process.stdout is not None
    line = process.stdout.readline().decode().strip()
    if not line.startswith("LISTENING "):
        process.kill()
        process.wait()
        process.stdout.close()
        raise RuntimeError(f"latency proxy for {target} did not start (said {line!r})")
    return ProxyProcess(line.removeprefix("LISTENING "), stats_file, process)


async def _main(args: argparse.Namespace) -> None:
    host, _, port = args.target.rpartition(":")
    proxy = LatencyProxy(host, int(port), args.rtt_ms, args.listen_host, args.port)
    await proxy.start()
    print(f"LISTENING {proxy.host}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await proxy.close()
    if args.stats:
        # The loop is shutting down: a small blocking write is harmless here.
        Path(args.stats).write_text(json.dumps(proxy.stats.__dict__))  # noqa: ASYNC240


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (``--help`` for options)."""
    parser = argparse.ArgumentParser(description="TCP proxy adding a round-trip delay (bench tool).")
    parser.add_argument("--target", required=True, help="upstream HOST:PORT")
    parser.add_argument("--rtt-ms", type=float, default=20.0, help="added round-trip time in ms")
    parser.add_argument("--listen-host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="listen port (0: any free port)")
    parser.add_argument("--stats", help="write counters as JSON to this file on exit")
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.run(_main(args))
    except ImportError:
        asyncio.run(_main(args))


if __name__ == "__main__":
    main()
