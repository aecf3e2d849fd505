"""TLS verification is on unless turned off for one registry; turning it off for one leaks to no other."""

from __future__ import annotations

import pytest

from asyncsync.errors import TLSError
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.registry.tags import list_tags
from tests.conftest import RegistryFactory
from tests.helpers.clients import FAST_RETRY
from tests.helpers.images import make_image, push_image
from tests.helpers.registry import RegistryServer


@pytest.mark.anyio
async def test_untrusted_certificate_is_refused_by_default(registry_tls: RegistryServer) -> None:
    async with RegistrySession(retry=FAST_RETRY) as session:
        client = session.client(registry_tls.host)
        with pytest.raises(TLSError) as failure:
            await list_tags(client, "security/tls")
    message = str(failure.value)
    assert "certificate verification failed" in message and "--tls-verify=false" in message
    assert "\n" not in message and not failure.value.temporary


@pytest.mark.anyio
async def test_cert_dir_trusts_the_registry_ca(registry_tls: RegistryServer) -> None:
    await push_image(registry_tls, "security/tls-trusted", "v1", make_image("tls-trusted", layers=1))
    async with RegistrySession(retry=FAST_RETRY) as session:
        client = session.client(registry_tls.host, RegistryOptions(cert_dir=str(registry_tls.cert_dir)))
        assert await list_tags(client, "security/tls-trusted") == ["v1"]


@pytest.mark.anyio
async def test_verification_off_for_one_registry_only(
    registry_tls: RegistryServer, make_registry: RegistryFactory
) -> None:
    other = make_registry("tls")
    await push_image(registry_tls, "security/tls-off", "v1", make_image("tls-off", layers=1))
    async with RegistrySession(retry=FAST_RETRY) as session:
        lax = session.client(registry_tls.host, RegistryOptions(tls_verify=False))
        strict = session.client(other.host)
        # Turned off here: the self-signed chain is accepted and https is still used.
        assert await list_tags(lax, "security/tls-off") == ["v1"]
        assert (await lax.base_url()).startswith("https://")
        # The same session, another registry with default options: still verified.
        with pytest.raises(TLSError):
            await list_tags(strict, "security/tls-off")
        # And the first registry under default options in the same session is verified too.
        with pytest.raises(TLSError):
            await list_tags(session.client(registry_tls.host), "security/tls-off")
