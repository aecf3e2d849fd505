"""``docker-archive:PATH[:NAME:TAG|:@N]`` parsing, as containers/image does it."""

from __future__ import annotations

import pytest

from asyncsync.errors import InvalidReferenceError
from asyncsync.reference import parse_reference
from asyncsync.transports import parse_image_name
from asyncsync.transports.docker_archive.reference import DockerArchiveReference


def test_forms() -> None:
    assert parse_image_name("docker-archive:/tmp/a.tar") == DockerArchiveReference("/tmp/a.tar")
    tagged = parse_image_name("docker-archive:/tmp/a.tar:busybox")
    assert tagged == DockerArchiveReference("/tmp/a.tar", name=parse_reference("busybox:latest"))
    assert str(tagged) == "docker-archive:/tmp/a.tar:busybox:latest"
    assert tagged.docker_reference() == parse_reference("docker.io/library/busybox:latest")
    with_port = parse_image_name("docker-archive:a.tar:localhost:5000/proj/app:v1")
    assert with_port == DockerArchiveReference("a.tar", name=parse_reference("localhost:5000/proj/app:v1"))
    indexed = parse_image_name("docker-archive:a.tar:@2")
    assert indexed == DockerArchiveReference("a.tar", index=2)
    assert indexed.within_transport() == "a.tar:@2"


@pytest.mark.parametrize(
    "text",
    [
        "docker-archive:",
        "docker-archive::busybox",
        "docker-archive:a.tar:@-1",
        "docker-archive:a.tar:@x",
        "docker-archive:a.tar:busybox@sha256:" + "a" * 64,
        "docker-archive:a.tar:Bad/Name",
    ],
)
def test_bad_references(text: str) -> None:
    with pytest.raises(InvalidReferenceError):
        parse_image_name(text)
