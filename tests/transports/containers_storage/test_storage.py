"""containers-storage: against real podman and skopeo, on private stores (tests.helpers.podman).

What must hold, as with skopeo: the image ID is the config digest and the names are the fully
qualified Docker names; what skopeo wrote is read back and pushed with the same config digest;
a storage specifier selects the store; podman's service socket is used when there is one; bad
input and failures are one line and leave nothing behind.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

import pytest

from asyncsync.errors import DigestMismatchError
from asyncsync.transports import parse_image_name
from asyncsync.transports.containers_storage.engine import LibpodEngine, PodmanEngine, find_engine
from tests.helpers.asyncsync_cli import invoke, run_cli
from tests.helpers.images import GeneratedImage, get_manifest_sync, make_image, push_image_sync
from tests.helpers.podman import PodmanService, PrivateStorage
from tests.helpers.registry import RegistryServer
from tests.helpers.skopeo import skopeo
from tests.transports.roundtrip import MemorySource, copy_through, transport_context


def _pushed(registry: RegistryServer, seed: int, **kwargs: object) -> tuple[str, GeneratedImage]:
    image = make_image(seed, **kwargs)  # type: ignore[arg-type]
    repo = f"cs-{secrets.token_hex(4)}/app"
    push_image_sync(registry, repo, "v1", image)
    return repo, image


def _config_of(registry: RegistryServer, repo: str, tag: str) -> str:
    import json

    _, raw = get_manifest_sync(registry, repo, tag)
    return str(json.loads(raw)["config"]["digest"])


def _hex(digest: str) -> str:
    return digest.removeprefix("sha256:")


def test_asyncsync_writes_what_skopeo_writes(
    registry_anon: RegistryServer,
    private_storage: PrivateStorage,
    tmp_path_factory: pytest.TempPathFactory,
    rng_seed: int,
) -> None:
    repo, image = _pushed(registry_anon, rng_seed)
    source = f"docker://{registry_anon.host}/{repo}:v1"
    done = invoke("copy", "--src-tls-verify=false", source, "containers-storage:team/app:v1")
    assert done.returncode == 0, done.stderr
    ours = private_storage.inspect("docker.io/team/app:v1")
    assert ours is not None

    other = PrivateStorage.create(tmp_path_factory.mktemp("st"))
    skopeo("copy", "--src-tls-verify=false", source, f"containers-storage:{other.specifier}team/app:v1")
    theirs = other.inspect("docker.io/team/app:v1")
    assert theirs is not None
    assert ours["Id"] == theirs["Id"] == _hex(image.config_digest)
    assert ours["RepoTags"] == theirs["RepoTags"] == ["docker.io/team/app:v1"]
    assert ours["RootFS"]["Layers"] == theirs["RootFS"]["Layers"] == image.diff_ids
    listed = private_storage.images()
    assert [(item["Id"], item["Names"]) for item in listed] == [(ours["Id"], ["docker.io/team/app:v1"])]


def test_skopeo_writes_asyncsync_reads_and_pushes(
    registry_anon: RegistryServer, private_storage: PrivateStorage, rng_seed: int
) -> None:
    repo, image = _pushed(registry_anon, rng_seed, fmt="oci")
    skopeo(
        "copy",
        "--src-tls-verify=false",
        f"docker://{registry_anon.host}/{repo}:v1",
        "containers-storage:src/app:v1",
    )
    image_id = _hex(image.config_digest)
    for name, tag in (("src/app:v1", "by-name"), (image_id[:12], "by-prefix"), (f"@{image_id}", "by-id")):
        done = invoke(
            "copy",
            "--dest-tls-verify=false",
            f"containers-storage:{name}",
            f"docker://{registry_anon.host}/{repo}:{tag}",
        )
        assert done.returncode == 0, done.stderr
        assert _config_of(registry_anon, repo, tag) == image.config_digest
    skopeo(
        "copy", "--dest-tls-verify=false", "containers-storage:src/app:v1",
        f"docker://{registry_anon.host}/{repo}:by-skopeo",
    )  # fmt: skip
    assert _config_of(registry_anon, repo, "by-skopeo") == image.config_digest
    inspected = invoke("inspect", "--config", f"containers-storage:{image_id[:12]}")
    assert inspected.returncode == 0, inspected.stderr
    assert f'"{image.diff_ids[0]}"' in inspected.out


def test_libpod_api_both_ways_and_delete(
    registry_anon: RegistryServer,
    private_storage: PrivateStorage,
    podman_service: PodmanService,
    monkeypatch: pytest.MonkeyPatch,
    rng_seed: int,
) -> None:
    monkeypatch.setenv("CONTAINER_HOST", podman_service.host)
    repo, image = _pushed(registry_anon, rng_seed)
    name = f"localhost/api-{secrets.token_hex(4)}/app"
    done = invoke(
        "copy",
        "--src-tls-verify=false",
        f"docker://{registry_anon.host}/{repo}:v1",
        f"containers-storage:{name}:v1",
    )
    assert done.returncode == 0, done.stderr
    stored = podman_service.storage.inspect(f"{name}:v1")
    assert stored is not None and stored["Id"] == _hex(image.config_digest)
    assert private_storage.images() == []  # the service's store, not the default one
    done = invoke(
        "copy",
        "--dest-tls-verify=false",
        f"containers-storage:{name}:v1",
        f"docker://{registry_anon.host}/{repo}:back",
    )
    assert done.returncode == 0, done.stderr
    assert _config_of(registry_anon, repo, "back") == image.config_digest
    podman_service.storage.podman("tag", f"{name}:v1", f"{name}:other")
    done = invoke("delete", f"containers-storage:{name}:v1")
    assert done.returncode == 0, done.stderr
    assert f"{name}:other" in done.stderr  # the other name went with it, as containers/image deletes
    assert podman_service.storage.inspect(_hex(image.config_digest)) is None


@pytest.mark.anyio
async def test_a_default_socket_is_found_and_a_stale_one_skipped(
    private_storage: PrivateStorage, podman_service: PodmanService
) -> None:
    runtime = Path(os.environ["XDG_RUNTIME_DIR"]) / "podman"
    runtime.mkdir()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(runtime / "podman.sock"))  # bound, never listening: connections are refused
    stale.close()
    engine = await find_engine(None, "test")
    assert isinstance(engine, PodmanEngine)
    (runtime / "podman.sock").unlink()
    (runtime / "podman.sock").symlink_to(podman_service.socket_path)
    engine = await find_engine(None, "test")
    assert isinstance(engine, LibpodEngine) and engine.socket_path == str(runtime / "podman.sock")
    await engine.close()
    # A storage specifier needs the binary: a service cannot switch stores.
    spec = parse_image_name(f"containers-storage:{private_storage.specifier}x:y")
    assert isinstance(await find_engine(spec.specifier, "test"), PodmanEngine)  # type: ignore[attr-defined]


def test_storage_specifier_selects_the_store(
    registry_anon: RegistryServer,
    private_storage: PrivateStorage,
    tmp_path_factory: pytest.TempPathFactory,
    rng_seed: int,
) -> None:
    repo, image = _pushed(registry_anon, rng_seed)
    other = PrivateStorage.create(tmp_path_factory.mktemp("st"))
    target = f"containers-storage:{other.specifier}team/app:v1"
    done = invoke("copy", "--src-tls-verify=false", f"docker://{registry_anon.host}/{repo}:v1", target)
    assert done.returncode == 0, done.stderr
    found = other.inspect("docker.io/team/app:v1")
    assert found is not None and found["Id"] == _hex(image.config_digest)
    assert private_storage.images() == []
    done = invoke("copy", "--dest-tls-verify=false", target, f"docker://{registry_anon.host}/{repo}:back")
    assert done.returncode == 0, done.stderr
    assert _config_of(registry_anon, repo, "back") == image.config_digest


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("containers-storage:[vfs@relative]app:v1", "graph root 'relative' is not an absolute path"),
        ("containers-storage:[vfs@/tmp", "the storage specifier does not end with ']'"),
        ("containers-storage:[]app:v1", r"storage specifier \[\]"),
        ("containers-storage:app@sha256:" + "a" * 64, "a digest cannot be kept"),
        ("containers-storage:@" + "a" * 64, "must be NAME"),
    ],
)
def test_bad_destinations_are_one_line_and_write_nothing(
    registry_anon: RegistryServer,
    private_storage: PrivateStorage,
    destination: str,
    message: str,
    rng_seed: int,
) -> None:
    repo, _ = _pushed(registry_anon, rng_seed)
    done = invoke("copy", "--src-tls-verify=false", f"docker://{registry_anon.host}/{repo}:v1", destination)
    assert done.returncode == 2, done.stderr
    assert message.replace("\\", "") in done.stderr or __import__("re").search(message, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert private_storage.images() == []


def test_no_podman_is_one_clear_line(private_storage: PrivateStorage, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    done = run_cli("inspect", "containers-storage:app:v1", extra_env={"PATH": str(empty)})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: containers-storage:docker.io/library/app:v1: containers-storage needs podman: no podman "
        f"service socket (CONTAINER_HOST, {os.environ['XDG_RUNTIME_DIR']}/podman/podman.sock, "
        "/run/podman/podman.sock) and no podman binary on PATH"
    ]
    done = run_cli(
        "inspect",
        "containers-storage:app:v1",
        extra_env={"CONTAINER_HOST": "ssh://core@host/run/podman.sock"},
    )
    assert done.returncode == 2 and "only a local podman service" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_missing_images_are_one_line(private_storage: PrivateStorage) -> None:
    for name in ("nothere:v1", "@" + "e" * 64, "@eeeeee"):
        done = invoke("inspect", f"containers-storage:{name}")
        assert done.returncode == 1, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    done = invoke("delete", "containers-storage:nothere:v1")
    assert done.returncode == 1 and "image not known" in done.stderr


@pytest.mark.anyio
@pytest.mark.parametrize("broken", [0, 1])
async def test_a_failed_copy_loads_nothing(
    private_storage: PrivateStorage, rng_seed: int, broken: int
) -> None:
    image = make_image(rng_seed, layers=2, layer_size=300_000)
    source = MemorySource(image)
    # The first layer fails in its last chunk; the second after the first went into podman whole.
    data = source.blobs[image.layer_digests[broken]]
    source.blobs[image.layer_digests[broken]] = data[:-1] + bytes([data[-1] ^ 1])
    async with transport_context() as ctx:
        destination = await parse_image_name("containers-storage:team/broken:v1").new_destination(ctx)
        with pytest.raises(DigestMismatchError):
            await copy_through(source, destination)
        await destination.close()
    assert private_storage.images() == []


@pytest.mark.anyio
async def test_a_failed_copy_through_the_api_loads_nothing(
    private_storage: PrivateStorage,
    podman_service: PodmanService,
    monkeypatch: pytest.MonkeyPatch,
    rng_seed: int,
) -> None:
    monkeypatch.setenv("CONTAINER_HOST", podman_service.host)
    image = make_image(rng_seed, layers=2, layer_size=300_000)
    source = MemorySource(image)
    data = source.blobs[image.layer_digests[1]]
    source.blobs[image.layer_digests[1]] = data[:-1] + bytes([data[-1] ^ 1])
    name = f"localhost/api-broken-{secrets.token_hex(4)}/app:v1"
    async with transport_context() as ctx:
        destination = await parse_image_name(f"containers-storage:{name}").new_destination(ctx)
        with pytest.raises(DigestMismatchError):
            await copy_through(source, destination)
        await destination.close()
        assert podman_service.storage.inspect(name) is None
        assert podman_service.storage.inspect(image.config_digest.removeprefix("sha256:")) is None
        # The request was cancelled cleanly: the service takes the next image.
        destination = await parse_image_name(f"containers-storage:{name}").new_destination(ctx)
        await copy_through(MemorySource(image), destination)
        await destination.close()
    stored = podman_service.storage.inspect(name)
    assert stored is not None and f"sha256:{stored['Id']}" == image.config_digest
