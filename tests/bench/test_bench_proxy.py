"""bench.proxy: the latency proxy delays each direction, streams bodies intact and serves many clients."""

from __future__ import annotations

import asyncio
import io
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web

from bench.proxy import LatencyProxy, start_proxy_process
from bench.registries import Registry


async def _echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read())


@asynccontextmanager
async def _echo_behind_proxy(
    rtt_ms: float, queue_chunks: int = 64
) -> AsyncIterator[tuple[str, LatencyProxy]]:
    """An aiohttp echo server and a proxy in front of it; yields (proxy URL, proxy)."""
    app = web.Application(client_max_size=16 * 2**20)
    app.router.add_post("/echo", _echo)
    app.router.add_get("/ping", _echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[-1][1]
    proxy = LatencyProxy("127.0.0.1", port, rtt_ms, queue_chunks=queue_chunks)
    await proxy.start()
    try:
        yield f"http://{proxy.host}", proxy
    finally:
        await proxy.close()
        await runner.cleanup()


def test_each_round_trip_costs_the_rtt_and_a_new_connection_one_more() -> None:
    async def scenario() -> tuple[float, float]:
        async with _echo_behind_proxy(100) as (url, _proxy):
            connector = aiohttp.TCPConnector(limit=1)
            async with aiohttp.ClientSession(connector=connector) as session:
                started = time.monotonic()
                async with session.get(f"{url}/ping") as resp:
                    await resp.read()
                first = time.monotonic() - started
                started = time.monotonic()
                async with session.get(f"{url}/ping") as resp:
                    await resp.read()
                return first, time.monotonic() - started

    first, reused = asyncio.run(scenario())
    assert first >= 0.195  # handshake (1 RTT) + request/response (1 RTT)
    assert 0.095 <= reused < first


def test_bodies_stream_through_intact_in_both_directions_with_backpressure() -> None:
    payload = os.urandom(3 * 2**20 + 17)

    async def scenario() -> tuple[bytes, int, int]:
        # 2 queued chunks per direction: forces the reader to wait for the writer many times.
        async with _echo_behind_proxy(4, queue_chunks=2) as (url, proxy):
            async with (
                aiohttp.ClientSession() as session,
                session.post(f"{url}/echo", data=io.BytesIO(payload)) as resp,
            ):
                body = await resp.read()
            return body, proxy.stats.bytes_up, proxy.stats.bytes_down

    body, up, down = asyncio.run(scenario())
    assert body == payload
    assert up > len(payload) and down > len(payload)


def test_concurrent_connections_are_not_serialised() -> None:
    async def scenario() -> tuple[float, int]:
        async with _echo_behind_proxy(100) as (url, proxy):
            connector = aiohttp.TCPConnector(limit=40, force_close=True)
            async with aiohttp.ClientSession(connector=connector) as session:

                async def one(i: int) -> bytes:
                    async with session.post(f"{url}/echo", data=str(i).encode()) as resp:
                        return await resp.read()

                started = time.monotonic()
                bodies = await asyncio.gather(*(one(i) for i in range(40)))
                elapsed = time.monotonic() - started
            assert bodies == [str(i).encode() for i in range(40)]
            return elapsed, proxy.stats.connections

    elapsed, connections = asyncio.run(scenario())
    assert connections == 40
    assert elapsed < 1.0  # serialised it would take 40 x 0.2 s


def test_proxy_process_fronts_a_registry_and_reports_its_counters(
    seeded_source: Registry, tmp_path: Path
) -> None:
    proxy = start_proxy_process(seeded_source.host, 10, tmp_path / "stats.json")
    try:

        async def scenario() -> int:
            async with aiohttp.ClientSession() as session, session.get(f"http://{proxy.host}/v2/") as resp:
                await resp.read()
                return resp.status

        assert asyncio.run(scenario()) == 200
    finally:
        stats = proxy.stop()
    assert stats.connections == 1 and stats.bytes_up > 0 and stats.bytes_down > 0
