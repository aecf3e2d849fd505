"""Signatures in a ``dir:`` directory, named as containers/image names them.

``signature-1``, ``signature-2``, ... for the image the directory holds, and
``<hex>.signature-N`` for a child of an index copied with ``--all``; each file is one signature
in containers/image's one-file form (:func:`asyncsync.signature.formats.to_blob`). Reading stops
at the first missing number.
"""

from __future__ import annotations

import os

import anyio

from asyncsync.digest import Digest
from asyncsync.errors import LocalStorageError
from asyncsync.signature.formats import Signature, from_blob, to_blob
from asyncsync.transports.local_files import write_bytes_atomic

#: containers/image's iolimits.MaxSignatureBodySize.
MAX_SIGNATURE_SIZE = 4 * 1024 * 1024
MAX_SIGNATURES = 256


def signature_name(index: int, digest: Digest, *, instance: bool) -> str:
    """The file name of signature ``index`` (0-based)."""
    prefix = f"{digest.hex}." if instance else ""
    return f"{prefix}signature-{index + 1}"


def _read_all(root: str, digest: Digest, instance: bool, where: str) -> list[Signature]:
    found: list[Signature] = []
    for index in range(MAX_SIGNATURES):
        path = os.path.join(root, signature_name(index, digest, instance=instance))
        try:
            with open(path, "rb") as handle:
                blob = handle.read(MAX_SIGNATURE_SIZE + 1)
        except FileNotFoundError:
            return found
        except OSError as exc:
            raise LocalStorageError(f"{where}: reading {path}: {exc.strerror or exc}") from None
        if len(blob) > MAX_SIGNATURE_SIZE:
            raise LocalStorageError(f"{where}: {path} is larger than {MAX_SIGNATURE_SIZE} bytes")
        found.append(from_blob(blob, path))
    raise LocalStorageError(f"{where}: more than {MAX_SIGNATURES} signatures")


async def read_signatures(root: str, digest: Digest, *, instance: bool, where: str) -> list[Signature]:
    return await anyio.to_thread.run_sync(_read_all, root, digest, instance, where)


async def write_signatures(
    root: str, signatures: list[Signature], digest: Digest, *, instance: bool
) -> list[str]:
    """Write ``signatures`` (each file atomically); returns the file names written."""
    names = []
    for index, signature in enumerate(signatures):
        name = signature_name(index, digest, instance=instance)
        await write_bytes_atomic(os.path.join(root, name), to_blob(signature))
        names.append(name)
    return names
