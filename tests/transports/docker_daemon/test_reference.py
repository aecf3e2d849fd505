"""``docker-daemon:`` references with containers/image's rules."""

from __future__ import annotations

import pytest

from asyncsync.digest import Digest
from asyncsync.errors import InvalidReferenceError
from asyncsync.reference import parse_reference
from asyncsync.transports import parse_image_name
from asyncsync.transports.docker_daemon.reference import DaemonReference

ID = "sha256:" + "ab" * 32


def test_forms() -> None:
    assert parse_image_name("docker-daemon:busybox:latest") == DaemonReference(
        parse_reference("busybox:latest")
    )
    assert str(parse_image_name("docker-daemon:busybox:1")) == "docker-daemon:busybox:1"
    assert parse_image_name(f"docker-daemon:{ID}") == DaemonReference(image_id=Digest.parse(ID))
    pinned = parse_image_name(f"docker-daemon:example.com/a@{ID}")
    assert pinned.within_transport() == f"example.com/a@{ID}"
    assert pinned.docker_reference() == parse_reference(f"example.com/a@{ID}")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("docker-daemon:busybox", "neither a tag nor a digest"),
        (f"docker-daemon:busybox:1@{ID}", "both a tag and a digest"),
        ("docker-daemon:sha256:abc", "reserved"),
        ("docker-daemon:sha512:" + "a" * 128, "only sha256"),
        ("docker-daemon:", "expected docker-daemon:NAME:TAG"),
    ],
)
def test_bad_references(text: str, message: str) -> None:
    with pytest.raises(InvalidReferenceError, match=message):
        parse_image_name(text)
