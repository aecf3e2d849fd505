"""Proxies from the environment: resolved once per origin, NO_PROXY honoured, credentials split off."""

from __future__ import annotations

import pytest

from asyncsync.http.proxies import ProxyResolver


def test_no_proxy_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert ProxyResolver().for_url("https://registry.example/v2/") == (None, None)


def test_https_proxy_with_credentials_and_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("https_proxy", "http://user:s3cret@proxy.internal:3128")
    monkeypatch.setenv("no_proxy", "internal.example,127.0.0.1")
    resolver = ProxyResolver()
    proxy, headers = resolver.for_url("https://registry.example/v2/x/manifests/1")
    assert proxy == "http://proxy.internal:3128"
    assert headers == {"Proxy-Authorization": "Basic dXNlcjpzM2NyZXQ="}  # user:s3cret
    assert resolver.for_url("https://harbor.internal.example/v2/") == (None, None)
    assert resolver.for_url("http://127.0.0.1:5000/v2/") == (None, None)  # no http_proxy set anyway
    assert resolver.for_url("https://127.0.0.1:5000/v2/") == (None, None)


@pytest.mark.anyio
async def test_requests_go_through_the_environment_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny forward proxy (aiohttp server answering absolute-form requests) sees the ping."""
    from aiohttp import web

    from asyncsync.registry.client import RegistryOptions, RegistrySession

    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(str(request.url))
        return web.Response(status=200, text="{}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "HTTP_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{port}")
        async with RegistrySession() as session:
            client = session.client("registry.invalid:5000", RegistryOptions(tls_verify=False))
            # tls_verify=False tries https first (no https proxy configured: direct, fails), then http.
            response = await client.request("GET", "/v2/", what="ping through proxy")
        assert response.status == 200
        assert any("registry.invalid:5000/v2/" in url for url in seen)
    finally:
        await runner.cleanup()
