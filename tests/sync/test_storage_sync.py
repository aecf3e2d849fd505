"""containers-storage on both sides of ``sync`` (:mod:`asyncsync.sync.storage_sync`,
:mod:`asyncsync.sync.storage_source`): the command line, ``from: containers-storage:`` in a native
spec with its ``file:line`` errors, and real runs between a registry and a private podman store
(the binary, and the libpod API of a podman service), checked with podman and the registry.
"""

from __future__ import annotations

import json
import secrets
import textwrap
from pathlib import Path
from typing import Any

import pytest

from asyncsync.errors import InvalidReferenceError, SpecError, UsageError
from asyncsync.specs.load import load_spec
from asyncsync.sync.local import SyncArguments
from asyncsync.sync.storage_sync import split_storage_source, storage_sync
from asyncsync.transports.containers_storage.engine import named_images
from tests.helpers.asyncsync_cli import invoke
from tests.helpers.images import get_manifest_sync, make_image, push_image_sync
from tests.helpers.podman import PodmanService, PrivateStorage
from tests.helpers.registry import RegistryServer


def _report(report: Path) -> dict[str, tuple[str, str]]:
    document: dict[str, Any] = json.loads(report.read_bytes())
    return {image["destination"]: (image["outcome"], image["reason"]) for image in document["images"]}


def _config_of(registry: RegistryServer, repo: str, tag: str) -> str:
    _, raw = get_manifest_sync(registry, repo, tag)
    return str(json.loads(raw)["config"]["digest"])


def _tags(registry: RegistryServer, repo: str) -> list[str]:
    import urllib.request

    with urllib.request.urlopen(f"{registry.url}/v2/{repo}/tags/list") as answer:
        return sorted(json.loads(answer.read())["tags"] or [])


# ---------------------------------------------------------------------------------- parsing


def test_named_images_merges_names_per_id_and_drops_untagged() -> None:
    listed = [
        {"Id": "b" * 64, "Names": ["localhost/app:v1", "localhost/app:v2"]},
        {"Id": "b" * 64, "Names": ["localhost/app:v1", "localhost/app:v2"]},  # podman: one row per name
        {"Id": "sha256:" + "a" * 64, "RepoTags": ["quay.io/x/y:1"]},  # libpod's RepoTags only
        {"Id": "c" * 64, "Names": None, "RepoTags": ["<none>:<none>"]},  # untagged: not listed
    ]
    found = named_images(listed, "test")
    assert [(i.image_id, i.names) for i in found] == [
        ("a" * 64, ("quay.io/x/y:1",)),
        ("b" * 64, ("localhost/app:v1", "localhost/app:v2")),
    ]


def test_split_storage_source() -> None:
    assert split_storage_source("localhost/app") == ("", "localhost/app")
    assert split_storage_source("containers-storage:[vfs@/g+/r]app:v1") == ("[vfs@/g+/r]", "app:v1")
    assert split_storage_source("[/g]") == ("[/g]", "")
    for bad in ("[relative]app", "[vfs@/g", "[]app"):
        with pytest.raises(InvalidReferenceError):
            split_storage_source(bad)


@pytest.mark.parametrize(
    ("src", "dest", "destination", "message"),
    [
        ("containers-storage", "dir", "/tmp/x", "containers-storage syncs with 'docker'"),
        ("containers-storage", "containers-storage", None, "containers-storage syncs with 'docker'"),
        ("containers-storage", "docker", None, "missing DESTINATION argument"),
        ("docker", "containers-storage", "reg.example/mirror", "takes at most a storage specifier"),
    ],
)
def test_storage_sync_refuses_what_it_cannot_do(
    src: str, dest: str, destination: str | None, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        storage_sync(SyncArguments(src, dest, "localhost/app", destination))


def test_storage_sync_refuses_digests_and_naming_flags() -> None:
    with pytest.raises(UsageError, match="keeps images by name"):
        storage_sync(SyncArguments("containers-storage", "docker", "app@sha256:" + "a" * 64, "reg.example/m"))
    with pytest.raises(UsageError, match="name a repository"):
        storage_sync(SyncArguments("containers-storage", "docker", "containers-storage:", "reg.example/m"))
    with pytest.raises(UsageError, match="--scoped cannot be used with --dest containers-storage"):
        storage_sync(SyncArguments("docker", "containers-storage", "reg.example/app", None, scoped=True))
    with pytest.raises(UsageError, match="--prune needs registries on both sides"):
        storage_sync(SyncArguments("containers-storage", "docker", "app", "reg.example/m", prune=True))
    assert storage_sync(SyncArguments("docker", "docker", "reg.example/app", "reg.example/m")) is None


def test_storage_sources_parse(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            version: 1
            sync:
              - from: containers-storage:localhost/app
                to: reg.example/mirror/
                tag-suffix: -local
              - from:
                  - containers-storage:[vfs@/g+/r]quay.io/team/*
                  - containers-storage:[vfs@/g+/r]other
                to: reg.example/team/
            """
        )
    )
    first, second = load_spec(path).entries
    assert first.is_local and first.source_storage == "" and first.tag_suffix == "-local"
    assert [str(s) for s in first.sources] == ["localhost/app"]
    named = first.destination_for(first.sources[0], "app", tag="v1", digest=None)
    assert str(named) == "reg.example/mirror/app:v1-local"
    assert second.source_storage == "[vfs@/g+/r]"
    assert [str(s) for s in second.sources] == ["quay.io/team/*", "docker.io/library/other"]


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (
            "  - from: [containers-storage:app, reg.example/b]\n    to: reg.example/m/\n",
            3,
            "'from' of sync entry 1 mixes containers-storage: with other sources",
        ),
        (
            "  - from: [containers-storage:a, 'containers-storage:[/x]b']\n    to: reg.example/m/\n",
            3,
            "'from' of sync entry 1 names more than one containers-storage store",
        ),
        (
            "  - from: 'containers-storage:'\n    to: reg.example/m/\n",
            3,
            "'from' of sync entry 1 must name repositories: containers-storage:[SPEC]REPO "
            "('containers-storage:')",
        ),
        (
            "  - from: containers-storage:app\n    to: dir:/media/usb\n",
            4,
            "sync entry 1 copies from containers-storage to a registry only",
        ),
        (
            "  - from: containers-storage:app:v1\n    to: reg.example/m/\n",
            3,
            "'from' of sync entry 1 names repositories; put tags under 'tags' ('app:v1')",
        ),
    ],
)
def test_bad_storage_sources_are_spec_errors(tmp_path: Path, body: str, line: int, message: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("version: 1\nsync:\n" + body)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}:{line}: {message}"


# ---------------------------------------------------------------------------------- real runs


def test_sync_from_containers_storage_to_a_registry(
    registry_anon: RegistryServer, private_storage: PrivateStorage, tmp_path: Path, rng_seed: int
) -> None:
    host = registry_anon.host
    name = f"localhost/cs-{secrets.token_hex(4)}/app"
    images = {tag: make_image(f"{rng_seed}/{tag}") for tag in ("v1", "v2")}
    staging = f"st-{secrets.token_hex(4)}/app"
    for tag, image in images.items():
        push_image_sync(registry_anon, staging, tag, image)
        done = invoke(
            "copy",
            "--src-tls-verify=false",
            f"docker://{host}/{staging}:{tag}",
            f"containers-storage:{name}:{tag}",
        )
        assert done.returncode == 0, done.stderr
    private_storage.podman("tag", f"{name}:v1", f"{name}:also-v1")
    report = tmp_path / "report.json"
    mirror = f"mirror-{secrets.token_hex(4)}"
    args = [
        "--dest-tls-verify=false",
        "--report",
        str(report),
        "--src",
        "containers-storage",
        "--dest",
        "docker",
    ]
    done = invoke("sync", *args, name, f"{host}/{mirror}")
    assert done.returncode == 0, done.stderr + done.out
    repo = f"{mirror}/app"
    assert _tags(registry_anon, repo) == ["also-v1", "v1", "v2"]
    for tag in ("v1", "also-v1"):
        assert _config_of(registry_anon, repo, tag) == images["v1"].config_digest  # the image ID, kept
    assert _config_of(registry_anon, repo, "v2") == images["v2"].config_digest
    # podman's export generates the manifest: the destination digest cannot be predicted, so a
    # re-run copies again (reusing every layer), unless --skip-existing.
    done = invoke("sync", *args, f"{name}:v2", f"{host}/{mirror}")
    assert done.returncode == 0, done.stderr + done.out
    assert _report(report) == {f"{host}/{repo}:v2": ("copied", "")}
    document = json.loads(report.read_bytes())
    assert document["images"][0]["bytes_uploaded"] < 4096  # the layers were already there
    done = invoke("sync", *args, "--skip-existing", name, f"{host}/{mirror}")
    assert done.returncode == 0, done.stderr + done.out
    assert {outcome for outcome, _ in _report(report).values()} == {"skipped"}
    done = invoke("sync", "--dry-run", *args, f"{name}:v2", f"{host}/{mirror}")
    assert done.returncode == 0, done.stderr
    assert "source manifest is generated when read (containers-storage)" in done.out
    assert f'from="containers-storage:{name}:v2@{images["v2"].config_digest[7:]}"' in done.out
    # A repository the store does not have: one line, exit 1, nothing written.
    done = invoke("sync", *args, "localhost/absent", f"{host}/{mirror}")
    assert done.returncode == 1
    assert "no image in containers-storage: matches localhost/absent" in done.all_output


def test_sync_spec_from_a_service_store_and_into_the_default_store(
    registry_anon: RegistryServer,
    private_storage: PrivateStorage,
    podman_service: PodmanService,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    rng_seed: int,
) -> None:
    host = registry_anon.host
    staging = f"st-{secrets.token_hex(4)}/app"
    image = make_image(rng_seed)
    push_image_sync(registry_anon, staging, "v1", image)
    # Into the default store (the binary on private_storage), by the command line.
    done = invoke(
        "sync",
        "--src-tls-verify=false",
        "--src",
        "docker",
        "--dest",
        "containers-storage",
        f"{host}/{staging}",
    )
    assert done.returncode == 0, done.stderr + done.out
    stored = private_storage.inspect(f"{host}/{staging}:v1")
    assert stored is not None and f"sha256:{stored['Id']}" == image.config_digest
    # Out of a podman service's store (libpod API), by a native spec with a glob and a tag filter.
    monkeypatch.setenv("CONTAINER_HOST", podman_service.host)
    team = f"api-{secrets.token_hex(4)}"
    done = invoke(
        "copy",
        "--src-tls-verify=false",
        f"docker://{host}/{staging}:v1",
        f"containers-storage:localhost/{team}/app:v1",
    )
    assert done.returncode == 0, done.stderr
    podman_service.storage.podman("tag", f"localhost/{team}/app:v1", f"localhost/{team}/app:v2")
    podman_service.storage.podman("tag", f"localhost/{team}/app:v1", f"localhost/{team}/app:dev")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""\
            version: 1
            registries:
              {host}: {{tls-verify: false}}
            sync:
              - from: containers-storage:localhost/{team}/*
                to: {host}/out/
                tags: {{include: '^v'}}
            """
        )
    )
    report = tmp_path / "report.json"
    done = invoke("sync", "--report", str(report), str(spec))
    assert done.returncode == 0, done.stderr + done.out
    assert set(_report(report)) == {f"{host}/out/app:v1", f"{host}/out/app:v2"}
    assert _tags(registry_anon, "out/app") == ["v1", "v2"]
    assert _config_of(registry_anon, "out/app", "v2") == image.config_digest
