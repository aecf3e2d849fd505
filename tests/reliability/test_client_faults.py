"""The registry client under injected faults: what is transient is retried with backoff (honouring
Retry-After) within the per-host limit, tokens are refreshed and requests replayed, and what keeps
failing gives up after a bounded number of attempts with a clear, one-line error."""

from __future__ import annotations

import time
from collections.abc import Iterator

import anyio
import pytest

from asyncsync.errors import DigestMismatchError, RegistryError, TransportError
from asyncsync.registry.manifests import get_manifest, head_manifest, put_manifest
from asyncsync.retry import RetryPolicy
from tests.helpers.clients import FAST_RETRY, registry_client
from tests.helpers.fault_proxy import Fault, FaultProxy
from tests.helpers.images import make_image, push_image
from tests.helpers.registry import RegistryServer

MANIFEST = r"/v2/.+/manifests/.+"


@pytest.fixture
def proxy(registry_anon: RegistryServer, rng_seed: int) -> Iterator[FaultProxy]:
    with FaultProxy(registry_anon.host, seed=rng_seed) as running:
        yield running


async def _pushed(server: RegistryServer, repo: str, seed: str) -> bytes:
    image = make_image(seed, layers=1, layer_size=512)
    await push_image(server, repo, "v1", image)
    return image.manifest


@pytest.mark.anyio
@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_single_5xx_is_retried(registry_anon: RegistryServer, proxy: FaultProxy, status: int) -> None:
    raw = await _pushed(registry_anon, f"faults/single{status}", f"single-{status}")
    proxy.add_rule(Fault.error(status), method="GET", path=MANIFEST)
    async with registry_client(proxy.address) as client:
        fetched = await get_manifest(client, f"faults/single{status}", "v1")
    assert fetched.raw == raw
    assert proxy.count("GET", MANIFEST) == 2


@pytest.mark.anyio
async def test_burst_of_ten_503_gives_up_after_the_attempt_budget(
    registry_anon: RegistryServer, proxy: FaultProxy
) -> None:
    await _pushed(registry_anon, "faults/burst", "burst")
    proxy.add_rule(Fault.error(503), method="GET", path=MANIFEST, times=10)
    async with registry_client(proxy.address) as client:
        with pytest.raises(RegistryError) as failure:
            await get_manifest(client, "faults/burst", "v1")
    assert proxy.count("GET", MANIFEST) == FAST_RETRY.attempts
    message = str(failure.value)
    assert "\n" not in message and "HTTP 503" in message and "faults/burst" in message
    # The same burst is survived by a policy with enough attempts: 10 failures, then success.
    async with registry_client(proxy.address, retry=RetryPolicy(attempts=12, base_delay=0.001)) as client:
        await get_manifest(client, "faults/burst", "v1")
    # 4 failures above, the 6 left of the burst here, then the success.
    assert proxy.count("GET", MANIFEST) == 4 + 6 + 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("form", "delay", "minimum"), [("seconds", 1, 0.9), ("date", 2, 0.9), ("absent", 0, 0.0)]
)
async def test_429_honours_retry_after(
    registry_anon: RegistryServer, proxy: FaultProxy, form: str, delay: int, minimum: float
) -> None:
    repo = f"faults/ratelimit-{form}"
    await _pushed(registry_anon, repo, repo)
    proxy.add_rule(Fault.too_many_requests(form, delay), method="GET", path=MANIFEST)  # type: ignore[arg-type]
    started = time.monotonic()
    async with registry_client(proxy.address) as client:
        await get_manifest(client, repo, "v1")
    waited = time.monotonic() - started
    # An HTTP date has one-second resolution, so "in 2 s" may mean anything in (1, 2].
    assert minimum <= waited < 3.0
    if form == "absent":
        assert waited < 0.5, "without Retry-After the (fast) exponential backoff applies"
    assert proxy.count("GET", MANIFEST) == 2


@pytest.mark.anyio
@pytest.mark.parametrize("fault", [Fault.reset_response(), Fault.truncate(), Fault.stall(3)])
async def test_broken_manifest_reads_are_retried(
    registry_anon: RegistryServer, proxy: FaultProxy, fault: Fault
) -> None:
    repo = f"faults/read-{fault.kind.value}"
    raw = await _pushed(registry_anon, repo, repo)
    proxy.add_rule(fault, method="GET", path=MANIFEST)
    async with registry_client(proxy.address, read_timeout=0.5) as client:
        fetched = await get_manifest(client, repo, "v1")
    assert fetched.raw == raw
    assert proxy.injected() == {fault.label: 1}


@pytest.mark.anyio
async def test_flipped_manifest_byte_by_digest_is_a_hard_failure(
    registry_anon: RegistryServer, proxy: FaultProxy
) -> None:
    image = make_image("flip-manifest", layers=1, layer_size=512)
    await push_image(registry_anon, "faults/flip", "v1", image)
    proxy.add_rule(Fault.flip_byte(), method="GET", path=MANIFEST)
    async with registry_client(proxy.address) as client:
        with pytest.raises(DigestMismatchError) as failure:
            await get_manifest(client, "faults/flip", image.digest)
    assert "digest" in str(failure.value)


@pytest.mark.anyio
async def test_connection_refused_is_bounded_and_clear() -> None:
    from tests.helpers.registry import free_port

    host = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    async with registry_client(host) as client:
        with pytest.raises(TransportError) as failure:
            await head_manifest(client, "nothing/here", "v1")
    assert time.monotonic() - started < 5
    assert "cannot connect" in str(failure.value) and "\n" not in str(failure.value)


@pytest.mark.anyio
async def test_per_host_limit_holds_under_faults(registry_anon: RegistryServer, proxy: FaultProxy) -> None:
    await _pushed(registry_anon, "faults/limit", "limit")
    proxy.add_rule(Fault.error(503), method="HEAD", path=MANIFEST, probability=0.3, times=0)
    proxy.add_rule(Fault.too_many_requests("absent"), method="HEAD", path=MANIFEST, probability=0.1, times=0)
    policy = RetryPolicy(attempts=10, base_delay=0.005, max_delay=0.02)
    async with (
        registry_client(proxy.address, limit=3, retry=policy) as client,
        anyio.create_task_group() as group,
    ):
        for _ in range(40):
            group.start_soon(head_manifest, client, "faults/limit", "v1")
    assert sum(proxy.injected().values()) > 5
    assert proxy.peak_in_flight() <= 3


@pytest.mark.anyio
async def test_invalid_token_on_manifest_put_refreshes_and_replays(
    make_registry: object, rng_seed: int
) -> None:
    server: RegistryServer = make_registry("token")  # type: ignore[operator]
    assert server.token_service is not None and server.username and server.password
    image = make_image("token-replay", layers=1, layer_size=512)
    await push_image(server, "faults/token", "v1", image)
    with FaultProxy(server.host, seed=rng_seed) as proxy:
        proxy.add_rule(Fault.invalid_token(), method="PUT", path=MANIFEST)
        creds = {"username": server.username, "password": server.password}
        async with registry_client(proxy.address, **creds) as client:
            await put_manifest(client, "faults/token", "v2", image.manifest, image.media_type)
            fetched = await get_manifest(client, "faults/token", "v2")
        assert fetched.raw == image.manifest
        puts = [r for r in proxy.records() if r.method == "PUT"]
        assert [r.status for r in puts] == [401, 201]
        assert puts[0].authorization != puts[1].authorization, "the replay must carry a fresh token"
    assert len([r for r in server.token_service.requests if "push" in str(r)]) >= 2
