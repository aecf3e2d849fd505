"""The directory tree of ``skopeo sync --dest dir`` and ``--src dir``, for air-gapped transfers.

What skopeo 1.9 does (checked against ``skopeo sync`` on a real registry):

* ``skopeo sync --src docker --dest dir REGISTRY/proj/app DEST`` writes one ``dir:`` image per
  tag at ``DEST/<last path component of the repository>:<tag>``, e.g. ``DEST/app:v1``; with
  ``--scoped`` the full reference is kept: ``DEST/127.0.0.1:5000/proj/app:v1``. (skopeo takes
  the Docker reference string and, unless scoped, keeps its ``path.Base``; a digest reference
  gives ``app@sha256:...``.)
* ``skopeo sync --src dir --dest docker SRC REGISTRY/prefix`` walks ``SRC`` and takes every
  directory that contains a ``manifest.json`` as an image (not descending further). The image's
  path relative to ``SRC`` (or, when ``SRC`` itself is the image, ``SRC``'s base name) is the
  destination suffix; unless ``--scoped`` only its last component is kept, so ``SRC/app:v1``
  goes to ``REGISTRY/prefix/app:v1``.

:func:`list_dir_images` implements the walk, :func:`destination_suffix` the naming of a found
image, and :func:`dir_name_for` the directory a Docker reference is written to.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass

from asyncsync.errors import LocalStorageError
from asyncsync.reference import ImageName
from asyncsync.transports.directory.source import MANIFEST_FILE
from asyncsync.transports.local_files import split_relative


@dataclass(frozen=True, slots=True)
class DirImage:
    """One image found under a sync source directory.

    ``path`` is the image directory (usable as ``dir:PATH``); ``relative`` its ``/``-separated
    path below the walked root (``""`` when the root itself is the image).
    """

    path: str
    relative: str

    def destination_suffix(self, root: str, scoped: bool = False) -> str:
        return destination_suffix(self.relative, root, scoped)


def list_dir_images(root: str) -> list[DirImage]:
    """Every image directory under ``root`` (one holding ``manifest.json``), sorted by path.

    Symlinked directories are not followed (a tree cannot lead the walk outside itself or
    into a loop). Raises :class:`LocalStorageError` when ``root`` is not a directory.
    """
    if not os.path.isdir(root):
        raise LocalStorageError(f"invalid source directory {root!r}: not a directory")
    found: list[DirImage] = []
    for directory, subdirs, files in os.walk(root, followlinks=False):
        if MANIFEST_FILE in files:
            relative = os.path.relpath(directory, root)
            found.append(DirImage(directory, "" if relative == "." else relative.replace(os.sep, "/")))
            subdirs[:] = []  # an image directory is not searched for nested images
        else:
            subdirs.sort()
    return sorted(found, key=lambda image: image.relative)


def destination_suffix(relative: str, root: str, scoped: bool = False) -> str:
    """The name a found image gets below the destination (``app:v1``; scoped: the whole path)."""
    suffix = relative or os.path.basename(os.path.normpath(root))
    if not scoped:
        suffix = posixpath.basename(suffix)
    return suffix


def dir_name_for(name: ImageName, scoped: bool = False) -> str:
    """The relative directory ``skopeo sync --dest dir`` uses for ``name`` (``app:v1`` / full path).

    The result is validated as a relative path without ``..`` so it can be joined to the
    destination root safely.
    """
    text = str(name)
    relative = text if scoped else posixpath.basename(text)
    split_relative(relative, f"directory for {text}")
    return relative
