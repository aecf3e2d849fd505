"""Support for the tests of local-storage command lines (``copy``/``inspect``/``list-tags`` flags and
``sync --src dir`` / ``--dest dir``).

* :func:`write_dir_image` writes a generated image (or an index with its children) as skopeo's
  ``dir:`` format, without going through asyncsync, so readers are tested against independent data.
* :func:`daemon_in_thread` runs :class:`~tests.helpers.fake_docker_daemon.FakeDockerDaemon` on its own
  event loop in a background thread, so a command line (which runs its own loop) can reach it.
* :func:`dir_manifest` reads a ``dir:`` image's ``manifest.json`` as JSON.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.helpers.fake_docker_daemon import FakeDockerDaemon
from tests.helpers.images import GeneratedImage, GeneratedIndex

DIR_VERSION = "Directory Transport Version: 1.1\n"


def write_dir_image(path: Path, image: GeneratedImage | GeneratedIndex) -> Path:
    """``path`` as a ``dir:`` image (created); an index gets ``<hex>.manifest.json`` children."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "version").write_text(DIR_VERSION)
    (path / "manifest.json").write_bytes(image.manifest)
    for digest, data in image.blobs().items():
        (path / digest.removeprefix("sha256:")).write_bytes(data)
    if isinstance(image, GeneratedIndex):
        for child in image.images:
            (path / f"{child.digest.removeprefix('sha256:')}.manifest.json").write_bytes(child.manifest)
    return path


def dir_manifest(path: Path) -> dict[str, Any]:
    """The parsed ``manifest.json`` of the ``dir:`` image at ``path``."""
    document: dict[str, Any] = json.loads((path / "manifest.json").read_bytes())
    return document


@contextmanager
def daemon_in_thread(socket_path: Path) -> Iterator[FakeDockerDaemon]:
    """A fake Docker daemon listening on ``socket_path`` from a background thread until exit."""
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        holder["loop"], holder["stop"] = asyncio.get_running_loop(), stop
        async with FakeDockerDaemon(str(socket_path)) as daemon:
            holder["daemon"] = daemon
            started.set()
            await stop.wait()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # reported to the test thread below
            holder["error"] = exc
            started.set()

    thread = threading.Thread(target=run, name="fake-docker-daemon", daemon=True)
    thread.start()
    if not started.wait(10) or "error" in holder:
        raise RuntimeError(f"fake docker daemon did not start: {holder.get('error')!r}")
    try:
        yield holder["daemon"]
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(10)
