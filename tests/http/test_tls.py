"""TLS: verification on by default, --cert-dir trust, --tls-verify=false, and a helpful failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncsync.errors import TLSError, UsageError
from asyncsync.http.tls import cert_dirs_for, ssl_context_for
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.registry.manifests import get_manifest
from tests.helpers.certs import make_ca, make_server_cert, write_pem
from tests.helpers.images import make_image, push_image_sync
from tests.helpers.registry import RegistryServer


@pytest.fixture(scope="module")
def tls_image(registry_tls: RegistryServer) -> str:
    return push_image_sync(registry_tls, "tls/app", "v1", make_image("tls-app", layers=1, layer_size=256))


@pytest.mark.anyio
async def test_cert_dir_trusts_the_test_ca(registry_tls: RegistryServer, tls_image: str) -> None:
    async with RegistrySession() as session:
        client = session.client(registry_tls.host, RegistryOptions(cert_dir=str(registry_tls.cert_dir)))
        fetched = await get_manifest(client, "tls/app", "v1")
    assert str(fetched.digest) == tls_image
    assert await client.base_url() == f"https://{registry_tls.host}"


@pytest.mark.anyio
async def test_unknown_ca_fails_with_a_hint(registry_tls: RegistryServer, tls_image: str) -> None:
    async with RegistrySession() as session:
        client = session.client(registry_tls.host, RegistryOptions())
        with pytest.raises(TLSError) as info:
            await get_manifest(client, "tls/app", "v1")
    message = str(info.value)
    assert "certificate verif" in message
    assert "--tls-verify=false" in message and "--cert-dir" in message
    assert info.value.temporary is False


@pytest.mark.anyio
async def test_tls_verify_false_accepts_self_signed(registry_tls: RegistryServer, tls_image: str) -> None:
    async with RegistrySession() as session:
        client = session.client(registry_tls.host, RegistryOptions(tls_verify=False))
        fetched = await get_manifest(client, "tls/app", "v1")
    assert str(fetched.digest) == tls_image


@pytest.mark.anyio
async def test_https_to_a_plain_http_registry_says_how_to_fix(registry_anon: RegistryServer) -> None:
    async with RegistrySession() as session:
        client = session.client(registry_anon.host, RegistryOptions())
        with pytest.raises(TLSError, match="--tls-verify=false"):
            await client.base_url()


def test_cert_dir_contents(tmp_path: Path) -> None:
    ca = make_ca()
    client_cert = make_server_cert(ca)
    write_pem(tmp_path / "ca.crt", ca.cert_pem)
    write_pem(tmp_path / "client.cert", client_cert.cert_pem)
    write_pem(tmp_path / "client.key", client_cert.key_pem, private=True)
    assert ssl_context_for("h.example", verify=True, cert_dir=str(tmp_path)) is not False
    assert ssl_context_for("h.example", verify=False, cert_dir=str(tmp_path)) is False
    assert cert_dirs_for("h.example:5000", str(tmp_path)) == (tmp_path,)

    lonely = tmp_path / "lonely"
    write_pem(lonely / "only.cert", client_cert.cert_pem)
    with pytest.raises(UsageError, match=r"has no matching key file only\.key"):
        ssl_context_for("h.example", verify=True, cert_dir=str(lonely))
    with pytest.raises(UsageError, match="does not exist"):
        ssl_context_for("h.example", verify=True, cert_dir=str(tmp_path / "absent"))
    broken = tmp_path / "broken"
    write_pem(broken / "bad.crt", b"not a certificate")
    with pytest.raises(UsageError, match="cannot load"):
        ssl_context_for("h.example", verify=True, cert_dir=str(broken))
