"""The copy engine under faults: lying sources, broken streams, 413, 429 and expiring tokens.

Faults a real registry cannot produce come from a scripted in-process source
(:class:`~tests.copy.support.ScriptedSource`) or from the fault proxy in front of a real registry
(:mod:`tests.helpers.fault_proxy`); the destination is always a real registry.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator

import pytest

from asyncsync.copy import CopyOptions
from asyncsync.errors import DigestMismatchError
from asyncsync.registry.client import RegistryOptions
from asyncsync.transports.docker import destination as docker_destination
from asyncsync.transports.docker.destination import smaller_chunk
from tests.copy.support import ScriptedSource, copy_run, ref, registry_options, serve_scripted
from tests.helpers import skopeo
from tests.helpers.fault_proxy import Fault, FaultProxy
from tests.helpers.images import blob_exists, make_image, push_blob, push_image
from tests.helpers.registry import RegistryServer

pytestmark = pytest.mark.anyio

PLAIN = RegistryOptions(tls_verify=False)
BLOB_GET = r"/v2/.+/blobs/sha256:[0-9a-f]{64}"


def _uploads(repo: str) -> str:
    return rf"/v2/{repo}/blobs/uploads/.*"


@pytest.fixture
def proxy_anon(registry_anon: RegistryServer) -> Iterator[FaultProxy]:
    with FaultProxy(registry_anon.host, seed=7) as proxy:
        yield proxy


@pytest.mark.parametrize(
    ("layer_size", "streamed"),
    [(300_000, False), (1_200_000, True)],
    ids=["small-read-whole", "large-streamed"],
)
async def test_digest_mismatch_never_reaches_the_destination(
    registry_anon: RegistryServer, layer_size: int, streamed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source serving wrong bytes for a layer. A real registry cannot be made to do this: it
    verifies every upload against its digest and serves blobs from content-addressed storage, so
    the lie comes from a scripted in-process server. Nothing may be committed: no blob, no tag.
    A small layer is read whole and verified before its upload starts; a large one streams into
    an upload that its mismatch cancels. (The other blobs are at the destination already, so
    every upload counted is the lying layer's; any loopback round trip counts as short here, as
    it may not on a loaded machine.)"""
    monkeypatch.setattr(docker_destination, "SHORT_ROUND_TRIP", 60.0)
    image = make_image("liar", layers=2, layer_size=layer_size)
    bad = image.layer_digests[1]
    wrong = bytearray(image.layers[1])
    wrong[len(wrong) // 2] ^= 0xFF
    source = ScriptedSource(
        {"v1": (image.media_type, image.manifest)}, image.blobs(), lies={bad: bytes(wrong)}
    )
    with warnings.catch_warnings():  # the helper PUTs 1.2 MB as bytes: aiohttp warns above 1 MiB
        warnings.simplefilter("ignore", ResourceWarning)
        await push_blob(registry_anon, "liar/dst", image.config)
        await push_blob(registry_anon, "liar/dst", image.layers[0])
    registry_anon.reset_log()
    async with serve_scripted(source), copy_run() as run:
        with pytest.raises(DigestMismatchError, match=bad):
            await run.copy(
                ref(source.host, "liar/src:v1"),
                PLAIN,
                ref(registry_anon, "liar/dst:v1"),
                registry_options(registry_anon),
            )
    assert not await blob_exists(registry_anon, "liar/dst", bad)
    assert registry_anon.count("PUT", r"/v2/liar/dst/manifests/.*") == 0
    # A streamed upload was cancelled; a small blob never opened one. Never retried.
    assert registry_anon.count("POST", _uploads("liar/dst")) == int(streamed)
    assert registry_anon.count("DELETE", _uploads("liar/dst")) == int(streamed)
    assert registry_anon.count("PUT", _uploads("liar/dst"), status=201) == 0
    assert [d for d, _ in source.gets].count(bad) == 1


async def test_broken_stream_without_range_support_restarts_the_get_not_the_upload(
    registry_anon: RegistryServer,
) -> None:
    """The scripted source cuts each blob's first GET after 1000 bytes and ignores ``Range`` (a
    real registry always honours it); the source skips what was already delivered."""
    image = make_image("norange", layers=1, layer_size=200_000)
    source = ScriptedSource({"v1": (image.media_type, image.manifest)}, image.blobs(), break_after=1000)
    registry_anon.reset_log()
    async with serve_scripted(source), copy_run() as run:
        result = await run.copy(
            ref(source.host, "norange/src:v1"),
            PLAIN,
            ref(registry_anon, "norange/dst:v1"),
            registry_options(registry_anon),
        )
    assert str(result.digest) == image.digest
    layer = image.layer_digests[0]
    assert [r for d, r in source.gets if d == layer] == [None, "bytes=1000-"]
    # One upload per blob: the upload went on while the GET was restarted.
    assert registry_anon.count("POST", _uploads("norange/dst")) == 2
    assert skopeo.inspect(registry_anon, "norange/dst:v1")["Digest"] == image.digest


async def test_reset_mid_body_resumes_with_range(
    registry_anon: RegistryServer, registry_basic: RegistryServer
) -> None:
    image = make_image("resume", layers=1, layer_size=400_000)
    await push_image(registry_anon, "resume/src", "v1", image)
    layer = image.layer_digests[0]
    with FaultProxy(registry_anon.host, seed=3) as proxy:
        proxy.add_rule(Fault.reset_response(), method="GET", path=rf"/v2/resume/src/blobs/{layer}")
        registry_basic.reset_log()
        async with copy_run() as run:
            result = await run.copy(
                ref(proxy.address, "resume/src:v1"),
                PLAIN,
                ref(registry_basic, "resume/dst:v1"),
                registry_options(registry_basic),
            )
        gets = [r for r in proxy.records() if r.method == "GET" and r.path.endswith(layer)]
    assert str(result.digest) == image.digest
    assert len(gets) == 2 and gets[0].fault is not None
    assert gets[1].headers.get("range", "").startswith("bytes=") and gets[1].status == 206
    assert registry_basic.count("POST", _uploads("resume/dst")) == 2
    assert skopeo.inspect(registry_basic, "resume/dst:v1")["Digest"] == image.digest


async def test_413_on_monolithic_put_falls_back_to_chunked(
    registry_anon: RegistryServer, proxy_anon: FaultProxy
) -> None:
    """A proxy refusing request bodies over 64 KiB with 413 (as nginx's client_max_body_size does)."""
    image = make_image("too-large", layers=2, layer_size=200_000)
    await push_image(registry_anon, "large/src", "v1", image)
    proxy_anon.add_rule(Fault.too_large(64 * 1024), method="PUT", path=_uploads("large/dst"), times=0)
    async with copy_run() as run:
        result = await run.copy(
            ref(registry_anon, "large/src:v1"),
            registry_options(registry_anon),
            ref(proxy_anon.address, "large/dst:v1"),
            PLAIN,
            CopyOptions(),
            chunk_size=None,
        )
    assert str(result.digest) == image.digest
    assert proxy_anon.injected()["413 over 65536 bytes"] >= 1
    assert proxy_anon.count("PATCH", _uploads("large/dst"), status=202) >= 2
    assert skopeo.inspect(registry_anon, "large/dst:v1")["Digest"] == image.digest


async def test_413_on_chunks_makes_them_smaller(
    registry_anon: RegistryServer, proxy_anon: FaultProxy
) -> None:
    """A proxy refusing bodies over 300 KiB: the monolithic PUT and then the default 8 MiB chunk
    (here the whole 700 KB layer) get 413, the next chunk size (256 KiB) passes, and the run keeps it."""
    image = make_image("too-large-chunks", layers=2, layer_size=700_000)
    await push_image(registry_anon, "chunks413/src", "v1", image)
    uploads = _uploads("chunks413/dst")
    for method in ("PUT", "PATCH"):
        proxy_anon.add_rule(Fault.too_large(300 * 1024), method=method, path=uploads, times=0)
    async with copy_run() as run:
        result = await run.copy(
            ref(registry_anon, "chunks413/src:v1"),
            registry_options(registry_anon),
            ref(proxy_anon.address, "chunks413/dst:v1"),
            PLAIN,
            CopyOptions(),
            chunk_size=None,
        )
    assert str(result.digest) == image.digest
    accepted = [r for r in proxy_anon.records() if r.method == "PATCH" and r.status == 202]
    assert accepted and all(r.body_bytes <= 256 * 1024 for r in accepted)
    # Once learned, the size holds for the run: at most one refused PATCH per blob in flight at the time.
    assert 1 <= proxy_anon.count("PATCH", uploads, status=413) <= 2
    assert skopeo.inspect(registry_anon, "chunks413/dst:v1")["Digest"] == image.digest


def test_smaller_chunk_steps() -> None:
    assert smaller_chunk(8 * 1024 * 1024, 0) == 1024 * 1024
    assert smaller_chunk(1024 * 1024, 0) == 256 * 1024
    assert smaller_chunk(700_000, 0) == 256 * 1024
    assert smaller_chunk(256 * 1024, 0) == 64 * 1024
    assert smaller_chunk(64 * 1024, 0) is None
    assert smaller_chunk(1024 * 1024, 512 * 1024) is None  # never below OCI-Chunk-Min-Length


async def test_chunk_size_forces_chunked_uploads(
    registry_anon: RegistryServer, proxy_anon: FaultProxy
) -> None:
    image = make_image("chunked", layers=1, layer_size=100_000)
    await push_image(registry_anon, "chunked/src", "v1", image)
    layer_size = len(image.layers[0])
    async with copy_run() as run:
        await run.copy(
            ref(registry_anon, "chunked/src:v1"),
            registry_options(registry_anon),
            ref(proxy_anon.address, "chunked/dst:v1"),
            PLAIN,
            chunk_size=32 * 1024,
        )
    patches = [r for r in proxy_anon.records() if r.method == "PATCH"]
    sizes = sorted((r.body_bytes for r in patches), reverse=True)
    # Every PATCH but the last carries exactly one chunk; config and layer both chunked.
    expected_layer = [32 * 1024] * (layer_size // (32 * 1024)) + [layer_size % (32 * 1024)]
    assert sum(sizes) == layer_size + len(image.config)
    assert all(size <= 32 * 1024 for size in sizes)
    assert len(patches) == len([s for s in expected_layer if s]) + 1
    assert skopeo.inspect(registry_anon, "chunked/dst:v1")["Digest"] == image.digest


@pytest.mark.parametrize("form", ["seconds", "date"])
async def test_429_retry_after_is_honoured(
    registry_anon: RegistryServer, proxy_anon: FaultProxy, form: str
) -> None:
    image = make_image(f"rate-{form}", layers=1)
    await push_image(registry_anon, f"rate/{form}", "v1", image)
    proxy_anon.add_rule(
        Fault.too_many_requests(form, 2.0),  # type: ignore[arg-type]
        method="HEAD",
        path=rf"/v2/rate/{form}-dst/blobs/.*",
    )
    started = time.monotonic()
    async with copy_run() as run:
        result = await run.copy(
            ref(registry_anon, f"rate/{form}:v1"),
            registry_options(registry_anon),
            ref(proxy_anon.address, f"rate/{form}-dst:v1"),
            PLAIN,
        )
    elapsed = time.monotonic() - started
    assert str(result.digest) == image.digest
    assert proxy_anon.count("HEAD", rf"/v2/rate/{form}-dst/blobs/.*", status=429) == 1
    # The fast test retry policy would wait milliseconds; only Retry-After explains a second or more
    # (an HTTP date has whole-second precision, so it may say a little under 2 s).
    assert elapsed >= 1.0


async def test_token_refused_mid_upload_restarts_with_a_fresh_token(registry_token: RegistryServer) -> None:
    """The registry answers an upload PUT with 401 invalid_token (an expired token): the blob is
    restarted with a fresh POST and a new token; the copy succeeds."""
    image = make_image("expiring", layers=1, layer_size=50_000)
    await push_image(registry_token, "expiring/src", "v1", image)
    assert registry_token.token_service is not None
    with FaultProxy(registry_token.host, seed=1) as proxy:
        proxy.add_rule(Fault.invalid_token(), method="PUT", path=_uploads("expiring/dst"))
        registry_token.token_service.reset()
        async with copy_run(blobs=1) as run:
            # Source on the real registry, destination through the proxy (another registry name,
            # so blobs are uploaded rather than mounted).
            result = await run.copy(
                ref(registry_token, "expiring/src:v1"),
                registry_options(registry_token),
                ref(proxy.address, "expiring/dst:v1"),
                RegistryOptions(tls_verify=False, credentials=registry_options(registry_token).credentials),
            )
        posts = proxy.count("POST", _uploads("expiring/dst"))
        injected = proxy.injected()
    assert str(result.digest) == image.digest
    assert injected["401 invalid_token"] == 1
    assert posts == 3  # two blobs, one of them started twice
    push_tokens = [
        r for r in registry_token.token_service.requests if "repository:expiring/dst:pull,push" in r.scopes
    ]
    assert len(push_tokens) >= 2


async def test_head_500_is_retried(registry_anon: RegistryServer, proxy_anon: FaultProxy) -> None:
    """distribution 2.8 answers some blob HEADs with 500 under concurrent pushes; a copy survives it."""
    image = make_image("head-500", layers=1)
    await push_image(registry_anon, "head500/src", "v1", image)
    proxy_anon.add_rule(Fault.error(500), method="HEAD", path=r"/v2/head500/dst/blobs/.*", times=2)
    async with copy_run() as run:
        result = await run.copy(
            ref(registry_anon, "head500/src:v1"),
            registry_options(registry_anon),
            ref(proxy_anon.address, "head500/dst:v1"),
            PLAIN,
        )
    assert str(result.digest) == image.digest
    assert proxy_anon.injected()["http 500"] == 2
