"""The fault proxy itself: it forwards faithfully, and each fault does exactly what it claims.

These use raw aiohttp (never asyncsync), so a bug in the package cannot hide a bug in the proxy.
"""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest

from tests.helpers.fault_proxy import Fault, FaultProxy
from tests.helpers.images import digest_of, make_layer, push_blob
from tests.helpers.registry import RegistryServer

BLOB_GET = r"/v2/.+/blobs/sha256:[0-9a-f]{64}"


@pytest.fixture
def proxy(registry_anon: RegistryServer, rng_seed: int) -> Iterator[FaultProxy]:
    with FaultProxy(registry_anon.host, seed=rng_seed) as running:
        yield running


async def _get(url: str, **kwargs: object) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, allow_redirects=False, **kwargs) as response,  # type: ignore[arg-type]
    ):
        return response.status, dict(response.headers), await response.read()


@pytest.mark.anyio
async def test_forwards_uploads_and_reads_unchanged(registry_anon: RegistryServer, proxy: FaultProxy) -> None:
    blob = make_layer("proxy-forward", 200_000)
    async with aiohttp.ClientSession() as session:
        post = await session.post(f"{proxy.url}/v2/proxy/forward/blobs/uploads/")
        location = post.headers["Location"]
        post.release()
        assert location.startswith(proxy.url), "the registry must see the proxy's Host header"
        patch = await session.patch(location, data=blob[:100_000])
        location = patch.headers["Location"]
        patch.release()
        put = await session.put(f"{location}&digest={digest_of(blob)}", data=blob[100_000:])
        assert put.status == 201
        put.release()
    status, _, body = await _get(f"{proxy.url}/v2/proxy/forward/blobs/{digest_of(blob)}")
    assert status == 200 and body == blob
    methods = [(r.method, r.status) for r in proxy.records()]
    assert methods == [("POST", 202), ("PATCH", 202), ("PUT", 201), ("GET", 200)]
    assert proxy.records()[1].body_bytes == 100_000


@pytest.mark.anyio
async def test_status_burst_fires_on_the_nth_match_only(proxy: FaultProxy) -> None:
    rule = proxy.add_rule(Fault.error(503), method="GET", path=r"/v2/", nth=2, times=3)
    statuses = [(await _get(f"{proxy.url}/v2/"))[0] for _ in range(6)]
    assert statuses == [200, 503, 503, 503, 200, 200]
    assert (rule.seen, rule.fired) == (6, 3)
    assert proxy.injected() == {"http 503": 3}


@pytest.mark.anyio
async def test_retry_after_variants(proxy: FaultProxy) -> None:
    proxy.add_rule(Fault.too_many_requests("seconds", 2), path=r"/v2/", nth=1)
    proxy.add_rule(Fault.too_many_requests("date", 2), path=r"/v2/", nth=2)
    proxy.add_rule(Fault.too_many_requests("absent"), path=r"/v2/", nth=3)
    answers = [await _get(f"{proxy.url}/v2/") for _ in range(3)]
    assert [a[0] for a in answers] == [429, 429, 429]
    assert answers[0][1]["Retry-After"] == "2"
    assert answers[1][1]["Retry-After"].endswith("GMT")
    assert "Retry-After" not in answers[2][1]


@pytest.mark.anyio
async def test_body_faults(registry_anon: RegistryServer, proxy: FaultProxy) -> None:
    blob = make_layer("proxy-body-faults", 150_000)
    await push_blob(registry_anon, "proxy/body", blob)
    url = f"{proxy.url}/v2/proxy/body/blobs/{digest_of(blob)}"
    proxy.add_rule(Fault.flip_byte(), method="GET", path=BLOB_GET, nth=1)
    proxy.add_rule(Fault.truncate(), method="GET", path=BLOB_GET, nth=2)
    proxy.add_rule(Fault.reset_response(), method="GET", path=BLOB_GET, nth=3)
    status, _, flipped = await _get(url)
    assert status == 200 and len(flipped) == len(blob)
    assert sum(a != b for a, b in zip(flipped, blob, strict=True)) == 1
    for _ in range(2):
        with pytest.raises(aiohttp.ClientError):
            await _get(url)
    assert (await _get(url))[2] == blob
    assert proxy.injected() == {"flipped byte": 1, "truncated body": 1, "reset during response body": 1}


@pytest.mark.anyio
async def test_reset_request_body_reaches_the_registry_partially(proxy: FaultProxy) -> None:
    proxy.add_rule(Fault.reset_request(), method="PATCH", nth=1)
    async with aiohttp.ClientSession() as session:
        post = await session.post(f"{proxy.url}/v2/proxy/reset/blobs/uploads/")
        location = post.headers["Location"]
        post.release()
        with pytest.raises(aiohttp.ClientError):
            async with session.patch(location, data=b"x" * 300_000) as response:
                await response.read()
    patch = proxy.records()[-1]
    assert patch.method == "PATCH" and patch.status is None and patch.fault == "reset during request body"
    assert 0 <= patch.body_bytes <= 300_000


@pytest.mark.anyio
async def test_alias_rewrites_location_and_replaces_authorization(proxy: FaultProxy) -> None:
    alias = proxy.add_alias("127.0.0.2", upstream_authorization="Basic ZmFrZTpmYWtl")
    proxy.add_rule(Fault.rewrite_location(alias), method="POST", times=0)
    async with aiohttp.ClientSession() as session:
        post = await session.post(f"{proxy.url}/v2/proxy/alias/blobs/uploads/")
        location = post.headers["Location"]
        post.release()
        assert location.startswith(alias)
        async with session.delete(location, headers={"Authorization": "Bearer leaked"}) as response:
            assert response.status == 204
    seen = proxy.records()[-1]
    assert seen.listener == alias.removeprefix("http://") and seen.authorization == "Bearer leaked"


@pytest.mark.anyio
async def test_redirect_and_stall(registry_anon: RegistryServer, proxy: FaultProxy) -> None:
    blob = make_layer("proxy-redirect", 1000)
    await push_blob(registry_anon, "proxy/redirect", blob)
    cdn = proxy.add_alias("127.0.0.2")
    proxy.add_rule(Fault.redirect(cdn, "sig=canary"), method="GET", path=BLOB_GET, listener=proxy.address)
    status, headers, _ = await _get(f"{proxy.url}/v2/proxy/redirect/blobs/{digest_of(blob)}")
    assert status == 307
    assert headers["Location"].startswith(cdn) and headers["Location"].endswith("?sig=canary")
    assert (await _get(headers["Location"]))[2] == blob
    proxy.add_rule(Fault.stall(5), method="GET", path=r"/v2/")
    with pytest.raises(TimeoutError):
        await _get(f"{proxy.url}/v2/", timeout=aiohttp.ClientTimeout(sock_read=0.3))


@pytest.mark.anyio
async def test_synthesized_answers_and_header_rewrites(registry_token: RegistryServer, rng_seed: int) -> None:
    with FaultProxy(registry_token.host, seed=rng_seed) as proxy:
        proxy.add_rule(Fault.rewrite_realm("http://127.0.0.2:9/token"), path=r"/v2/", times=0)
        proxy.add_rule(Fault.invalid_token(), method="PATCH")
        proxy.add_rule(Fault.manifest_blob_unknown(), method="PUT", path=r"/v2/.+/manifests/.+")
        proxy.add_rule(Fault.too_large(1000), method="PUT", path=r"/v2/.+/blobs/uploads/.*", times=0)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{proxy.url}/v2/") as ping:
                challenge = ping.headers["WWW-Authenticate"]
            assert ping.status == 401 and 'realm="http://127.0.0.2:9/token"' in challenge
            async with session.patch(f"{proxy.url}/v2/a/b/blobs/uploads/x", data=b"12345") as patch:
                refused = patch.headers["WWW-Authenticate"]
            assert patch.status == 401 and 'error="invalid_token"' in refused
            assert 'scope="repository:a/b:pull,push"' in refused and "service=" in refused
            async with session.put(f"{proxy.url}/v2/a/b/manifests/v1", data=b"{}") as put:
                assert put.status == 400 and "MANIFEST_BLOB_UNKNOWN" in await put.text()
            async with session.put(f"{proxy.url}/v2/a/b/blobs/uploads/x", data=b"x" * 2000) as big:
                assert big.status == 413
    assert proxy.injected() == {
        "token realm elsewhere": 1,
        "401 invalid_token": 1,
        "MANIFEST_BLOB_UNKNOWN": 1,
        "413 over 1000 bytes": 1,
    }
