"""``docker-daemon:`` through the Engine API, against tests.helpers.fake_docker_daemon (no Docker engine
runs on these machines)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asyncsync.errors import DigestMismatchError, LocalStorageError, TransportError, UsageError
from asyncsync.transports import parse_image_name
from tests.helpers.fake_docker_daemon import FakeDockerDaemon
from tests.helpers.images import make_image
from tests.transports.roundtrip import MemorySource, copy_through, read_back, transport_context


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[FakeDockerDaemon]:
    async with FakeDockerDaemon(str(tmp_path / "docker.sock")) as fake:
        yield fake


@pytest.mark.anyio
async def test_load_then_save_round_trip(daemon: FakeDockerDaemon, rng_seed: int) -> None:
    image = make_image(rng_seed)
    async with transport_context(daemon_host=daemon.host, additional_tags=("proj/app:extra",)) as ctx:
        destination = await parse_image_name("docker-daemon:proj/app:v1").new_destination(ctx)
        await copy_through(MemorySource(image), destination)
        await destination.close()
        stored = daemon.find("proj/app:v1")
        assert stored is not None and stored.id == image.config_digest
        assert stored.tags == ["docker.io/proj/app:v1", "docker.io/proj/app:extra"]
        for name in ("proj/app:v1", "docker.io/proj/app:extra", image.config_digest):
            source = await parse_image_name(f"docker-daemon:{name}").new_source(ctx)
            found = await read_back(source)
            await source.close()
            assert str(found.configs[0]) == image.config_digest
            assert [str(d) for d in found.layers[0]] == image.diff_ids
    assert ("POST", "/images/load") in daemon.requests
    # The name goes in the path unescaped, as docker clients send it (the engine's route is {name:.*}).
    assert ("GET", "/images/proj/app:v1/get") in daemon.requests
    assert ("GET", f"/images/{image.config_digest}/get") in daemon.requests


@pytest.mark.anyio
async def test_a_failed_copy_sends_nothing_to_the_daemon(daemon: FakeDockerDaemon, rng_seed: int) -> None:
    image = make_image(rng_seed)
    broken = MemorySource(image)
    broken.blobs[image.layer_digests[0]] = b"corrupt"
    async with transport_context(daemon_host=daemon.host) as ctx:
        destination = await parse_image_name("docker-daemon:proj/app:v1").new_destination(ctx)
        with pytest.raises(DigestMismatchError):
            await copy_through(broken, destination)
        await destination.close()
    assert daemon.requests == []


@pytest.mark.anyio
async def test_daemon_errors_are_one_line_errors(
    daemon: FakeDockerDaemon, tmp_path: Path, rng_seed: int
) -> None:
    async with transport_context(daemon_host=daemon.host) as ctx:
        with pytest.raises(LocalStorageError, match=r"reference does not exist.*HTTP 404"):
            await parse_image_name("docker-daemon:missing:1").new_source(ctx)
        daemon.load_error = "no space left on device"
        destination = await parse_image_name("docker-daemon:proj/app:v1").new_destination(ctx)
        with pytest.raises(LocalStorageError, match="failed to load the image: no space left on device"):
            await copy_through(MemorySource(make_image(rng_seed)), destination)
        await destination.close()
        for bad in ("docker-daemon:sha256:" + "a" * 64, "docker-daemon:a@sha256:" + "a" * 64):
            with pytest.raises(UsageError, match="must be NAME:TAG"):
                await parse_image_name(bad).new_destination(ctx)
    async with transport_context(daemon_host=f"unix://{tmp_path}/nothing.sock") as ctx:
        with pytest.raises(TransportError, match="cannot talk to the Docker daemon at unix://") as caught:
            await parse_image_name("docker-daemon:a:b").new_source(ctx)
        assert not caught.value.temporary
    async with transport_context(daemon_host="ssh://host") as ctx:
        with pytest.raises(UsageError, match="invalid daemon host"):
            await parse_image_name("docker-daemon:a:b").new_source(ctx)


@pytest.mark.anyio
async def test_tcp_daemon_host(rng_seed: int) -> None:
    image = make_image(rng_seed)
    async with FakeDockerDaemon(None) as daemon, transport_context(daemon_host=daemon.host) as ctx:
        assert daemon.host.startswith("tcp://127.0.0.1:")
        await copy_through(
            MemorySource(image), await parse_image_name("docker-daemon:x:1").new_destination(ctx)
        )
        source = await parse_image_name("docker-daemon:x:1").new_source(ctx)
        assert str((await read_back(source)).configs[0]) == image.config_digest
        assert json.loads((await source.get_manifest())[0])["config"]["digest"] == image.config_digest
        await source.close()
