"""Credentials are bound to their origin.

* ``Authorization`` never follows a redirect to another host, nor goes to an upload ``Location`` on
  another host (a CDN or storage backend authenticates by its signed URL, not by our token);
* Basic credentials go only to the registry's own host, or to its token realm when that realm is
  https, or when the registry itself is plain http (they travel in clear to it anyway).

Another host is another loopback address (127.0.0.2): the client cannot know it is the same machine.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from aiohttp import web

from asyncsync.errors import RegistryError
from asyncsync.registry.auth import may_send_basic_to
from asyncsync.registry.tags import list_tags
from tests.conftest import RegistryFactory
from tests.helpers.certs import make_ca, make_server_cert, write_pem
from tests.helpers.clients import registry_client
from tests.helpers.fault_proxy import Fault, FaultProxy
from tests.helpers.images import digest_of, make_image, make_layer, push_blob, push_image
from tests.helpers.registry import RegistryServer
from tests.helpers.token_service import TokenService

SIGNED = "sig=canary-signature-1f2e&X-Amz-Signature=canary-amz-3d4c"


def _upstream_auth(server: RegistryServer, repo: str) -> str:
    """What the "CDN" itself uses to read from the registry (never the client's header)."""
    if server.token_service is not None:
        return "Bearer " + server.token_service.issue_token(server.username, [f"repository:{repo}:pull,push"])
    header = server.basic_auth_header()
    assert header is not None
    return header


@pytest.fixture(params=["basic", "token"])
def authed(request: pytest.FixtureRequest) -> RegistryServer:
    server: RegistryServer = request.getfixturevalue(f"registry_{request.param}")
    return server


@pytest.fixture
def proxy(authed: RegistryServer, rng_seed: int) -> Iterator[FaultProxy]:
    with FaultProxy(authed.host, seed=rng_seed) as running:
        yield running


@pytest.mark.anyio
async def test_redirected_blob_get_carries_no_authorization(
    authed: RegistryServer, proxy: FaultProxy
) -> None:
    repo = f"security/redirect-{authed.flavour}"
    blob = make_layer(repo, 5000)
    await push_blob(authed, repo, blob)
    cdn = proxy.add_alias("127.0.0.2", upstream_authorization=_upstream_auth(authed, repo))
    proxy.add_rule(Fault.redirect(cdn, SIGNED), method="GET", path=r"/v2/.+/blobs/.+", listener=proxy.address)
    async with (
        registry_client(proxy.address, username=authed.username, password=authed.password) as client,
        client.open(
            "GET", f"/v2/{repo}/blobs/{digest_of(blob)}", scopes=(f"repository:{repo}:pull",), repository=repo
        ) as response,
    ):
        body = await response.read()
    assert body == blob
    at_registry = [r for r in proxy.records() if r.listener == proxy.address and "/blobs/" in r.path]
    at_cdn = [r for r in proxy.records() if r.listener != proxy.address]
    assert at_registry and all(r.authorization for r in at_registry)
    assert at_cdn and all(r.authorization is None for r in at_cdn), "Authorization leaked to the CDN"


@pytest.mark.anyio
async def test_signed_redirect_query_never_appears_in_errors(
    authed: RegistryServer, proxy: FaultProxy
) -> None:
    repo = f"security/redirect-error-{authed.flavour}"
    blob = make_layer(repo, 100)
    await push_blob(authed, repo, blob)
    cdn = proxy.add_alias("127.0.0.2", upstream_authorization=_upstream_auth(authed, repo))
    cdn_address = cdn.removeprefix("http://")
    proxy.add_rule(Fault.redirect(cdn, SIGNED), method="GET", path=r"/v2/.+/blobs/.+", listener=proxy.address)
    proxy.add_rule(Fault.error(403), method="GET", listener=cdn_address, times=0)
    async with registry_client(proxy.address, username=authed.username, password=authed.password) as client:
        with pytest.raises(RegistryError) as failure:
            async with client.open(
                "GET", f"/v2/{repo}/blobs/{digest_of(blob)}", scopes=(f"repository:{repo}:pull",)
            ):
                pass
    shown = f"{failure.value} {failure.value!r} {failure.value.args}"
    assert "canary" not in shown and "HTTP 403" in str(failure.value)


@pytest.mark.anyio
async def test_upload_location_on_another_host_gets_no_authorization(
    authed: RegistryServer, proxy: FaultProxy
) -> None:
    repo = f"security/location-{authed.flavour}"
    blob = make_layer(repo, 3000)
    storage = proxy.add_alias("127.0.0.2", upstream_authorization=_upstream_auth(authed, repo))
    proxy.add_rule(Fault.rewrite_location(storage), method="POST", times=0)
    scopes = (f"repository:{repo}:pull,push",)
    async with registry_client(proxy.address, username=authed.username, password=authed.password) as client:
        started = await client.request(
            "POST", f"/v2/{repo}/blobs/uploads/", scopes=scopes, repository=repo, data=b"", ok=(202,)
        )
        location = started.headers["Location"]
        assert location.startswith(storage)
        async with client.open(
            "PUT",
            f"{location}&digest={digest_of(blob)}",
            scopes=scopes,
            repository=repo,
            data=blob,
            ok=(201,),
        ):
            pass
    at_storage = [r for r in proxy.records() if r.listener == storage.removeprefix("http://")]
    assert [r.method for r in at_storage] == ["PUT"]
    assert at_storage[0].authorization is None, "Authorization leaked to the upload Location's host"
    assert all(r.authorization for r in proxy.records() if r.listener == proxy.address and r.path != "/v2/")


# ------------------------------------------------------------------------------- Basic and the realm


def _relay_context(tmp: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.2 (the https realm's host) and the path of its CA certificate."""
    ca = make_ca("realm test CA")
    leaf = make_server_cert(ca, ("127.0.0.2",))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(
        write_pem(tmp / "realm.crt", leaf.cert_pem), write_pem(tmp / "realm.key", leaf.key_pem, private=True)
    )
    return context, write_pem(tmp / "realm-ca.pem", ca.cert_pem)


def _basic_seen(relay: FaultProxy) -> list[bool]:
    return [bool(r.authorization and r.authorization.startswith("Basic ")) for r in relay.records()]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("registry_tls", "realm_tls", "basic_allowed"),
    [(False, False, True), (True, False, False), (True, True, True)],
    ids=["http-registry-http-realm", "https-registry-http-realm", "https-registry-https-realm"],
)
async def test_basic_credentials_reach_a_foreign_realm_only_when_allowed(
    make_registry: RegistryFactory, tmp_path: Path, registry_tls: bool, realm_tls: bool, basic_allowed: bool
) -> None:
    with TokenService(anonymous_actions=("pull",)) as service:
        context, realm_ca = _relay_context(tmp_path)
        with FaultProxy(
            service.url.removeprefix("http://"),
            host="127.0.0.2",
            server_ssl=context if realm_tls else None,
        ) as relay:
            realm = f"{relay.url}/token"
            server = make_registry(
                "token",
                tls=registry_tls,
                token_service=service,
                extra_config={"auth": {"token": {"realm": realm}}},
            )
            image = make_image("realm-origin", layers=1, layer_size=256)
            await push_image(server, "security/realm", "v1", image)
            cert_dir = tmp_path / "certs"
            cert_dir.mkdir()
            if server.ca_cert is not None:
                (cert_dir / "registry.crt").write_bytes(server.ca_cert.read_bytes())
            (cert_dir / "realm.crt").write_bytes(realm_ca.read_bytes())
            options: dict[str, object] = {"tls_verify": registry_tls, "cert_dir": str(cert_dir)}
            async with registry_client(
                server.host, username=server.username, password=server.password, **options
            ) as client:
                # Pull is granted anonymously too, so the read works either way: what matters is
                # whether the Basic credentials travelled to the realm's host.
                assert await list_tags(client, "security/realm") == ["v1"]
            assert relay.records(), "the token realm was never asked"
            assert set(_basic_seen(relay)) == {basic_allowed}


@pytest.mark.parametrize(
    ("target", "registry", "allowed"),
    [
        ("https://reg.example/token", "https://reg.example", True),
        ("https://auth.example/token", "https://reg.example", True),
        ("http://auth.example/token", "https://reg.example", False),
        ("http://reg.example:8080/token", "https://reg.example", False),
        ("http://auth.example/token", "http://reg.example:5000", True),
        ("http://reg.example:5000/token", "http://reg.example:5000", True),
    ],
)
def test_basic_origin_rule(target: str, registry: str, allowed: bool) -> None:
    assert may_send_basic_to(target, registry) is allowed


@pytest.mark.anyio
@pytest.mark.parametrize("limit", [1, 4])
async def test_token_realm_on_the_registrys_own_host(limit: int) -> None:
    """Harbor and Quay serve the token realm from the registry's own host: Basic goes there, and the
    token fetch must not try to take a second request slot of that host from the same task."""
    seen: list[str | None] = []

    async def ping(request: web.Request) -> web.Response:
        challenge = f'Bearer realm="http://{request.host}/service/token",service="harbor"'
        return web.json_response({}, status=401, headers={"WWW-Authenticate": challenge})

    async def token(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({"token": "harbor-token", "expires_in": 300})

    async def tags(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer harbor-token":
            return await ping(request)  # a 401 with the challenge, as every registry answers
        return web.json_response({"name": "project/app", "tags": ["v1"]})

    app = web.Application()
    app.router.add_get("/v2/", ping)
    app.router.add_get("/service/token", token)
    app.router.add_get("/v2/project/app/tags/list", tags)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host = f"127.0.0.1:{runner.addresses[0][1]}"
    try:
        with anyio.fail_after(10):
            async with registry_client(host, username="alice", password="canary-pw", limit=limit) as client:
                assert await list_tags(client, "project/app") == ["v1"]
    finally:
        await runner.cleanup()
    assert seen and all(value is not None and value.startswith("Basic ") for value in seen)
