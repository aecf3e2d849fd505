"""``RegistryOptions`` that reach a test registry (this helper imports ``asyncsync``, unlike the rest)."""

from __future__ import annotations

from asyncsync.registry.client import RegistryOptions
from asyncsync.registry.credentials import Credentials
from tests.helpers.registry import RegistryServer

__all__ = ["options_for"]


def options_for(
    server: RegistryServer, *, creds: bool = True, password: str | None = None
) -> RegistryOptions:
    """Options that reach ``server``: its CA via ``cert_dir`` (TLS) or plain http, and its account
    (``password`` overrides the real one) unless ``creds`` is false."""
    credentials = None
    if creds and server.username is not None:
        credentials = Credentials(
            server.username, password if password is not None else server.password or ""
        )
    if server.cert_dir is not None:
        return RegistryOptions(cert_dir=str(server.cert_dir), credentials=credentials)
    return RegistryOptions(tls_verify=False, credentials=credentials)
