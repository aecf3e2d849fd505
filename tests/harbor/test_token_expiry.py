"""Long uploads outlive their tokens: Harbor-like tokens that expire after about two seconds.

Harbor's tokens live 30 minutes; here they live two seconds (``expires_in: 2``; the JWT itself
is accepted for about three: distribution allows 60 s of clock skew past ``exp``, so ``exp`` is
set 57 s in the past). A chunked upload slowed down by the front server spans several token
lifetimes: every chunk must go out with a token that is still valid, which the client does by
renewing before expiry (no 401 ever reaches a chunk, no blob restarts). A token that the
registry refuses although the service promised a longer life (``invalid_token``) is renewed
and the request replayed.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.registry.credentials import Credentials
from asyncsync.registry.manifests import head_manifest
from tests.harbor.conftest import HarborFactory
from tests.helpers.asyncsync_cli import run_cli
from tests.helpers.clients import FAST_RETRY
from tests.helpers.images import get_manifest_sync, make_image, push_image_sync
from tests.helpers.registry import RegistryFactory
from tests.helpers.token_service import TokenRequest


def _push_scope_tokens(requests: list[TokenRequest], repository: str) -> int:
    """Tokens issued with push access to ``repository``."""
    prefix = f"repository:{repository}:"
    return sum(
        1
        for request in requests
        if request.status == 200 and any(s.startswith(prefix) and "push" in s for s in request.scopes)
    )


def test_chunked_upload_spanning_several_token_lifetimes_completes_without_restarts(
    make_harbor: HarborFactory, make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source = make_registry("anon")
    target = make_harbor(token_expires_in=2)
    target.token_service.jwt_lifetime = -57
    target.add_project("slow")
    image = make_image("token-expiry", layers=1, layer_size=96 * 1024)
    digest = push_image_sync(source, "team/app", "1.0", image)
    target.upload_delay = 0.5  # every PATCH/PUT of an upload answers half a second late
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"""version: 1
registries:
  {source.host}: {{tls-verify: false}}
  {target.host}:
    tls-verify: false
    chunk-size: 16KiB
    credentials: {{username: admin, password: "{target.admin_password}"}}
sync:
  - from: {source.host}/team/app
    to: {target.host}/slow/app
"""
    )
    report = tmp_path / "report.json"
    target.token_service.reset()

    result = run_cli("sync", "--no-mount-cache", "--report", str(report), str(spec))

    assert result.returncode == 0, result.all_output
    (copied,) = json.loads(report.read_text())["images"]
    assert copied["outcome"] == "copied" and copied["seconds"] > 4.0  # well over two token lifetimes
    assert target.registry is not None
    assert target.registry.count("PATCH", r"/v2/slow/app/blobs/uploads/.*", status=401) == 0
    assert target.registry.count("PUT", r"/v2/slow/app/blobs/uploads/.*", status=401) == 0
    # One upload session per blob (config and layer): nothing restarted.
    assert target.registry.count("POST", r"/v2/slow/app/blobs/uploads/", status=202) == 2
    assert _push_scope_tokens(target.token_service.requests, "slow/app") >= 3
    assert get_manifest_sync(target.as_registry(), "slow/app", "1.0")[1] == image.manifest
    assert copied["digest"] == digest


@pytest.mark.anyio
async def test_token_refused_before_its_advertised_expiry_is_renewed_and_the_request_replayed(
    make_harbor: HarborFactory,
) -> None:
    harbor = make_harbor(token_expires_in=300)
    harbor.token_service.jwt_lifetime = -58  # the registry accepts it for 1 to 2 more seconds
    harbor.add_project("p")
    push_image_sync(harbor.as_registry(), "p/app", "1", make_image("invalid-token"))
    options = RegistryOptions(tls_verify=False, credentials=Credentials("admin", harbor.admin_password))
    harbor.token_service.reset()

    async with RegistrySession(retry=FAST_RETRY) as session:
        client = session.client(harbor.host, options)
        assert await head_manifest(client, "p/app", "1") is not None
        await anyio.sleep(2.1)
        assert await head_manifest(client, "p/app", "1") is not None  # 401 invalid_token, renewed, replayed

    assert harbor.registry is not None
    assert harbor.registry.count("HEAD", r"/v2/p/app/manifests/1", status=401) >= 1
    assert len([r for r in harbor.token_service.requests if r.status == 200]) == 2
