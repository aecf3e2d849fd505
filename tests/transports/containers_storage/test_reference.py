"""containers-storage: references, parsed as containers/image's storage transport parses them."""

from __future__ import annotations

import pytest

from asyncsync.errors import InvalidReferenceError
from asyncsync.transports import parse_image_name
from asyncsync.transports.containers_storage.reference import StorageReference, StorageSpecifier

ID = "c5a7df83d95f08747523eb66623822aa2343623c4972af9cab384d7def83cb25"
DIGEST = "sha256:" + "d" * 64


def parse(text: str) -> StorageReference:
    reference = parse_image_name(f"containers-storage:{text}")
    assert isinstance(reference, StorageReference)
    return reference


def test_names_are_normalised_with_latest_added() -> None:
    assert str(parse("busybox")) == "containers-storage:docker.io/library/busybox:latest"
    assert str(parse("quay.io/a/b:v1").name) == "quay.io/a/b:v1"
    assert str(parse(f"a/b@{DIGEST}").name) == f"docker.io/a/b@{DIGEST}"
    assert parse("busybox").docker_reference() == parse("docker.io/library/busybox:latest").name


def test_image_ids_full_truncated_and_maybe() -> None:
    assert parse(ID).image_id == ID and parse(ID).name is None
    assert parse(f"@{ID}").image_id == ID
    by_prefix = parse("@c5a7df")
    assert by_prefix.id_prefix == "c5a7df" and by_prefix.name is None
    named = parse(f"busybox:1@{ID}")
    assert named.image_id == ID and str(named.name) == "docker.io/library/busybox:1"
    both = parse(f"busybox@{DIGEST}@{ID}")
    assert both.image_id == ID and both.name is not None and str(both.name.digest) == DIGEST
    # A short hex name may be an ID prefix (decided against the store when opened) or a name.
    maybe = parse("abc")
    assert maybe.maybe_id == "abc" and str(maybe.name) == "docker.io/library/abc:latest"
    assert parse("ab").maybe_id is None


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("[/var/lib/x]", StorageSpecifier("/var/lib/x")),
        ("[vfs@/g]", StorageSpecifier("/g", "vfs")),
        ("[overlay@/g+/r]", StorageSpecifier("/g", "overlay", "/r")),
        ("[vfs@/g:a=1,b]", StorageSpecifier("/g", "vfs", None, ("a=1", "b"))),
        ("[overlay@/g+/r:mountopt=nodev]", StorageSpecifier("/g", "overlay", "/r", ("mountopt=nodev",))),
        ("[/g+/r]", StorageSpecifier("/g", None, "/r")),
    ],
)
def test_storage_specifiers(spec: str, expected: StorageSpecifier) -> None:
    reference = parse(f"{spec}app:v1")
    assert reference.specifier == expected
    assert str(reference) == f"containers-storage:{spec}docker.io/library/app:v1"


def test_specifier_becomes_podman_flags() -> None:
    flags = StorageSpecifier("/g", "overlay", "/r", ("a=1", "b")).podman_flags()
    assert flags == [
        "--root", "/g", "--runroot", "/r", "--storage-driver", "overlay",
        "--storage-opt", "a=1", "--storage-opt", "b",
    ]  # fmt: skip
    assert StorageSpecifier("/g").podman_flags() == ["--root", "/g"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected containers-storage:"),
        ("[vfs@/g", "does not end with"),
        ("[]app", r"storage specifier \[\]"),
        ("[@/g]app", "driver before '@' is empty"),
        ("[vfs@]app", "no graph root after"),
        ("[vfs@relative]app", "graph root 'relative' is not an absolute path"),
        ("[vfs@/g+run]app", "run root 'run' is not an absolute path"),
        ("[+/r]app", "no graph root"),
        ("[vfs@/g]", "no image name or ID"),
        ("app@", "empty trailing digest or ID"),
        ("app@zz", "does not look like an image ID or digest"),
        ("app@sha256:123", "sha256"),
        ("UPPER", "must be lowercase"),
    ],
)
def test_bad_references(text: str, message: str) -> None:
    with pytest.raises(InvalidReferenceError, match=message) as caught:
        parse_image_name(f"containers-storage:{text}")
    assert "\n" not in str(caught.value)
