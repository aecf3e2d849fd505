"""The directory tree of ``skopeo sync --dest dir`` / ``--src dir``, checked against real skopeo."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from asyncsync.errors import LocalStorageError
from asyncsync.reference import parse_reference
from asyncsync.transports import parse_image_name
from asyncsync.transports.directory.sync_layout import (
    DirImage,
    destination_suffix,
    dir_name_for,
    list_dir_images,
)
from tests.helpers.images import list_tags_sync, make_image, push_image_sync
from tests.helpers.registry import RegistryServer
from tests.helpers.skopeo import skopeo
from tests.transports.roundtrip import read_back, transport_context


def test_dir_name_for_follows_skopeo() -> None:
    name = parse_reference("127.0.0.1:5000/proj/app:v1")
    assert dir_name_for(name) == "app:v1"
    assert dir_name_for(name, scoped=True) == "127.0.0.1:5000/proj/app:v1"
    assert dir_name_for(parse_reference("busybox")) == "busybox:latest"
    assert dir_name_for(parse_reference("busybox"), scoped=True) == "docker.io/library/busybox:latest"
    pinned = parse_reference("host:1/a/b@sha256:" + "a" * 64)
    assert dir_name_for(pinned) == "b@sha256:" + "a" * 64


def test_destination_suffix_follows_skopeo(tmp_path: Path) -> None:
    assert destination_suffix("app:v1", "/src") == "app:v1"
    assert destination_suffix("127.0.0.1:5000/proj/app:v1", "/src") == "app:v1"
    assert (
        destination_suffix("127.0.0.1:5000/proj/app:v1", "/src", scoped=True) == "127.0.0.1:5000/proj/app:v1"
    )
    assert destination_suffix("", "/data/app:v9/") == "app:v9"


def test_listing_finds_image_directories_only(tmp_path: Path) -> None:
    for relative in ("a:v1", "nested/b:v2", "nested/deeper/c:v3"):
        (tmp_path / relative).mkdir(parents=True)
        (tmp_path / relative / "manifest.json").write_text("{}")
    (tmp_path / "a:v1" / "inner:v9").mkdir()  # inside an image: not searched
    (tmp_path / "a:v1" / "inner:v9" / "manifest.json").write_text("{}")
    (tmp_path / "empty").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "nested")  # not followed
    found = list_dir_images(str(tmp_path))
    assert [image.relative for image in found] == ["a:v1", "nested/b:v2", "nested/deeper/c:v3"]
    assert found[0] == DirImage(str(tmp_path / "a:v1"), "a:v1")
    assert list_dir_images(str(tmp_path / "a:v1")) == [DirImage(str(tmp_path / "a:v1"), "")]
    with pytest.raises(LocalStorageError, match="not a directory"):
        list_dir_images(str(tmp_path / "missing"))


@pytest.mark.anyio
async def test_skopeo_sync_tree_is_enumerated_and_named_as_skopeo_does(
    tmp_path: Path, registry_anon: RegistryServer, rng_seed: int
) -> None:
    repo = f"sync-layout-{secrets.token_hex(4)}/app"
    images = {tag: make_image(f"{rng_seed}/{tag}") for tag in ("v1", "v2")}
    for tag, image in images.items():
        push_image_sync(registry_anon, repo, tag, image)
    tree = tmp_path / "tree"
    skopeo(
        "sync",
        "--src",
        "docker",
        "--dest",
        "dir",
        "--src-tls-verify=false",
        f"{registry_anon.host}/{repo}",
        str(tree),
    )
    found = list_dir_images(str(tree))
    assert [image.relative for image in found] == ["app:v1", "app:v2"]
    for entry in found:
        tag = entry.relative.split(":")[1]
        assert entry.relative == dir_name_for(parse_reference(f"{registry_anon.host}/{repo}:{tag}"))
        async with transport_context() as ctx:
            read = await read_back(await parse_image_name(f"dir:{entry.path}").new_source(ctx))
        assert str(read.digest) == images[tag].digest
    # skopeo sync --src dir pushes each image to DEST/<suffix>; our suffixes are the same names.
    prefix = f"back-{secrets.token_hex(4)}"
    skopeo(
        "sync",
        "--src",
        "dir",
        "--dest",
        "docker",
        "--dest-tls-verify=false",
        str(tree),
        f"{registry_anon.host}/{prefix}",
    )
    suffixes = {entry.destination_suffix(str(tree)) for entry in found}
    assert suffixes == {"app:v1", "app:v2"}
    assert list_tags_sync(registry_anon, f"{prefix}/app") == ["v1", "v2"]
