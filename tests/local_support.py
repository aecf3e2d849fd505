"""Support for the tests of local-storage command lines (``copy``/``inspect``/``list-tags`` flags and
``sync --src dir`` / ``--dest dir``).

* :func:`write_dir_image` writes a generated image (or an index with its children) as skopeo's
  ``dir:`` format, without going through asyncsync, so readers are tested against independent data.
* :func:`dir_manifest` reads a ``dir:`` image's ``manifest.json`` as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
