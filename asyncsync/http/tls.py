"""TLS settings per registry: verification, extra CAs and client certificates from cert dirs.

As containers/image: ``--cert-dir DIR`` replaces the system lookup; otherwise
``/etc/containers/certs.d/<host[:port]>/`` and ``/etc/docker/certs.d/<host[:port]>/`` are read.
In a cert dir, ``*.crt`` files are CA certificates added to the system pool, and each
``NAME.cert`` with its ``NAME.key`` is a client certificate.
"""

from __future__ import annotations

import ssl
from functools import lru_cache
from pathlib import Path

from asyncsync.errors import UsageError

SYSTEM_CERT_ROOTS: tuple[Path, ...] = (Path("/etc/containers/certs.d"), Path("/etc/docker/certs.d"))


def cert_dirs_for(host: str, cert_dir: str | None) -> tuple[Path, ...]:
    """The directories to read for ``host``: the explicit one, or the system ones that exist."""
    if cert_dir:
        return (Path(cert_dir),)
    return tuple(root / host for root in SYSTEM_CERT_ROOTS if (root / host).is_dir())


@lru_cache(maxsize=64)
def _build_context(dirs: tuple[Path, ...]) -> ssl.SSLContext:
    context = ssl.create_default_context()
    for directory in dirs:
        if not directory.is_dir():
            raise UsageError(f"certificate directory {directory} does not exist")
        for path in sorted(directory.iterdir()):
            try:
                if path.suffix == ".crt":
                    context.load_verify_locations(cafile=str(path))
                elif path.suffix == ".cert":
                    key = path.with_suffix(".key")
                    if not key.exists():
                        raise UsageError(f"client certificate {path} has no matching key file {key.name}")
                    context.load_cert_chain(str(path), str(key))
                elif path.suffix == ".key" and not path.with_suffix(".cert").exists():
                    raise UsageError(f"client key {path} has no matching certificate {path.stem}.cert")
            except ssl.SSLError as exc:
                raise UsageError(f"cannot load {path}: {exc.reason or exc}") from None
    return context


def ssl_context_for(host: str, *, verify: bool, cert_dir: str | None) -> ssl.SSLContext | bool:
    """What to pass as aiohttp's ``ssl=``: ``False`` when verification is off, else a context."""
    if not verify:
        return False
    return _build_context(cert_dirs_for(host, cert_dir))
