"""Archives as ``docker save`` writes them (the legacy layout), made without asyncsync, for readers' tests."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

from tests.helpers.images import GeneratedImage


def add_member(tar: tarfile.TarFile, name: str, data: bytes = b"", link: str | None = None) -> None:
    info = tarfile.TarInfo(name)
    if link is not None:
        info.type, info.linkname = tarfile.SYMTYPE, link
        tar.addfile(info)
        return
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def docker_save(
    path: Path,
    images: list[tuple[GeneratedImage, list[str]]],
    *,
    compress: Callable[[bytes], bytes] | None = None,
) -> None:
    """A `docker save`-style archive in the legacy layout: <id>/layer.tar, <config>.json, manifest.json;
    layers stored uncompressed, or as ``compress`` returns them."""
    items = []
    with tarfile.open(path, "w") as tar:
        for number, (image, tags) in enumerate(images):
            layers = []
            for position, (layer, diff_id) in enumerate(zip(image.layers, image.diff_ids, strict=True)):
                directory = f"{number}{position}{diff_id[7:20]}"
                plain = gzip.decompress(layer)
                add_member(tar, f"{directory}/VERSION", b"1.0")
                add_member(tar, f"{directory}/layer.tar", compress(plain) if compress else plain)
                layers.append(f"{directory}/layer.tar")
            add_member(tar, f"{image.config_digest[7:]}.json", image.config)
            items.append({"Config": f"{image.config_digest[7:]}.json", "RepoTags": tags, "Layers": layers})
        add_member(tar, "manifest.json", json.dumps(items).encode())
        add_member(tar, "repositories", b"{}")
