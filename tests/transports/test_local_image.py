"""LocalImage: the reference, message name and once-only clean-up of an opened local image."""

from __future__ import annotations

import pytest

from asyncsync.transports.docker_archive.reference import (
    DockerArchiveReference,
    parse_docker_archive_reference,
)
from asyncsync.transports.local_image import LocalImage, OnLocalImage


def _reference() -> DockerArchiveReference:
    return parse_docker_archive_reference("/tmp/image.tar")


@pytest.mark.anyio
async def test_on_close_runs_once_however_often_the_image_is_released() -> None:
    calls: list[str] = []

    async def on_close() -> None:
        calls.append("closed")

    image = LocalImage(_reference(), on_close)
    await image.release()
    await image.release()
    assert calls == ["closed"]


@pytest.mark.anyio
async def test_release_without_a_clean_up_does_nothing() -> None:
    await LocalImage(_reference()).release()


def test_where_is_the_reference_as_written_unless_given() -> None:
    reference = _reference()
    assert LocalImage(reference).where == str(reference)
    assert LocalImage(reference, where="containers-storage:busybox").where == "containers-storage:busybox"


def test_an_end_answers_its_images_reference_and_where() -> None:
    image = LocalImage(_reference())
    end = OnLocalImage(image)
    assert end.reference is image.reference
    assert end._where == image.where
