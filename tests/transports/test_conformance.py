"""Every transport through the same round trip: a random image is written by the copy engine, read
back through the transport's source, and must come back with identical digests.

Transports that keep manifests (``docker://``, ``oci:``, ``oci-archive:``, ``dir:``) must return the
exact manifest digest written, with the same config and layer digests. ``docker-archive:`` and
``docker-daemon:`` keep no manifest (the source generates one, as skopeo's does): there the config
digest and every layer's uncompressed digest (diff id) must survive. ``docker://`` runs against the
``registry_anon`` fixture, ``docker-daemon:`` against real podman's Engine API (``podman_service``),
``containers-storage:`` through the ``podman`` binary on a private store (``containers-storage``) and
through the podman service's libpod API (``containers-storage+api``); there, too, the config digest
(the image ID) and diff ids survive.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from asyncsync.copy import BlobCoordinator, CopyEnvironment, CopyOptions, copy_image
from asyncsync.limits import BlobLimiter
from asyncsync.manifest import Platform
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.retry import RetryPolicy
from asyncsync.transports import parse_image_name
from asyncsync.transports.base import SideOptions, TransportContext
from tests.helpers.images import GeneratedImage, GeneratedIndex, make_image, make_multiarch
from tests.helpers.podman import PodmanService, PrivateStorage
from tests.helpers.registry import RegistryServer
from tests.transports.roundtrip import MemorySource, read_back

TRANSPORTS = [
    "docker",
    "oci",
    "oci-archive",
    "dir",
    "docker-archive",
    "docker-daemon",
    "containers-storage",
    "containers-storage+api",
]
#: Transports that hold one image per name and keep no manifest (the source generates one).
SINGLE_IMAGE = ("docker-archive", "docker-daemon", "containers-storage", "containers-storage+api")
RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


@dataclass
class Endpoint:
    """Where a transport under test keeps images: ``name(tag)`` is an image name there."""

    transport: str
    base: str
    side: dict[str, object] = field(default_factory=dict)

    def name(self, tag: str) -> str:
        if self.transport == "docker":
            return f"docker://{self.base}:{tag}"
        if self.transport == "dir":
            return f"dir:{self.base}/{tag}"
        if self.transport in ("docker-archive", "oci-archive"):
            suffix = f"proj/app:{tag}" if self.transport == "docker-archive" else tag
            return f"{self.transport}:{self.base}/{tag}.tar:{suffix}"
        if self.transport == "docker-daemon":
            return f"docker-daemon:proj/app:{tag}"
        if self.transport.startswith("containers-storage"):
            return f"containers-storage:{self.base}localhost/conformance/{secrets.token_hex(4)}:{tag}"
        return f"oci:{self.base}:{tag}"


@pytest.fixture(params=TRANSPORTS)
async def endpoint(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    registry_anon: RegistryServer,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Endpoint]:
    transport: str = request.param
    if transport == "docker":
        yield Endpoint(transport, f"{registry_anon.host}/conformance-{secrets.token_hex(4)}/app")
    elif transport == "docker-daemon":
        service: PodmanService = request.getfixturevalue("podman_service")
        yield Endpoint(transport, "", {"daemon_host": service.host})
    elif transport == "containers-storage":
        storage: PrivateStorage = request.getfixturevalue("private_storage")
        yield Endpoint(transport, storage.specifier)
    elif transport == "containers-storage+api":
        request.getfixturevalue("private_storage")  # no other store may be found
        monkeypatch.setenv("CONTAINER_HOST", request.getfixturevalue("podman_service").host)
        yield Endpoint(transport, "")
    else:
        (tmp_path / "store").mkdir()
        yield Endpoint(transport, str(tmp_path / "store"))


async def _round_trip(
    endpoint: Endpoint, image: GeneratedImage | GeneratedIndex, tag: str, options: CopyOptions
) -> tuple[str, object, bool]:
    """Copy ``image`` in, read it back; returns (written digest, what was read, preserves digests)."""
    reference = parse_image_name(endpoint.name(tag))
    async with RegistrySession(retry=RETRY) as session:
        env = CopyEnvironment(blob_limiter=BlobLimiter(4), retry=RETRY, coordinator=BlobCoordinator())
        side = SideOptions(registry=RegistryOptions(tls_verify=False), **endpoint.side)  # type: ignore[arg-type]
        ctx = TransportContext(session, side, RETRY, env.blob_limiter)
        destination = await reference.new_destination(ctx)
        try:
            result = await copy_image(MemorySource(image), destination, options, env)
            preserves = destination.capabilities.preserves_digests
        finally:
            await destination.close()
        source = await reference.new_source(ctx)
        try:
            found = await read_back(source)
        finally:
            await source.close()
    return str(result.digest), found, preserves


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", ["docker", "oci"])
async def test_random_image_round_trip(endpoint: Endpoint, fmt: str, rng_seed: int) -> None:
    image = make_image(f"{rng_seed}/{fmt}", layers=3, layer_size=20_000, fmt=fmt)  # type: ignore[arg-type]
    written, found, preserves = await _round_trip(endpoint, image, f"t-{fmt}", CopyOptions())
    assert [str(d) for d in found.configs] == [image.config_digest]  # type: ignore[attr-defined]
    assert found.diff_ids == [image.diff_ids]  # type: ignore[attr-defined]
    if preserves:
        assert str(found.digest) == written  # type: ignore[attr-defined]
        assert [str(d) for d in found.layers[0]] == image.layer_digests  # type: ignore[attr-defined]
        if endpoint.transport not in ("oci", "oci-archive") or fmt == "oci":
            assert written == image.digest  # unchanged bytes (oci: converts Docker manifests, as skopeo)


@pytest.mark.anyio
async def test_random_index_round_trip(endpoint: Endpoint, rng_seed: int) -> None:
    index = make_multiarch(rng_seed, fmt="oci", layers=2, layer_size=5_000)
    if endpoint.transport in SINGLE_IMAGE:
        # One image per archive: the engine copies the requested platform's instance.
        arm = Platform("linux", "arm64", "v8")
        _, found, _ = await _round_trip(endpoint, index, "multi", CopyOptions(platform=arm))
        assert found.diff_ids == [index.images[1].diff_ids]  # type: ignore[attr-defined]
        assert [str(d) for d in found.configs] == [index.images[1].config_digest]  # type: ignore[attr-defined]
        return
    written, found, _ = await _round_trip(endpoint, index, "multi", CopyOptions(multi_arch="all"))
    assert written == str(found.digest) == index.digest  # type: ignore[attr-defined]
    assert [str(c) for c in found.children] == [image.digest for image in index.images]  # type: ignore[attr-defined]
    assert found.diff_ids == [image.diff_ids for image in index.images]  # type: ignore[attr-defined]
