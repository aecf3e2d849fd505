"""Registry signature stores: a lookaside served over real HTTP, file:// writes, .sig attachments.

The HTTP lookaside is Python's own ``http.server`` serving a directory (a real server: what a
web server in front of a signature directory does); the registry is a real ``docker-registry``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from asyncsync.digest import Digest
from asyncsync.errors import SignatureError
from asyncsync.reference import parse_reference
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.signature.formats import SigstoreSignature, SimpleSignature
from asyncsync.signature.registries_d import load_registries_d
from asyncsync.transports.docker.signatures import (
    attachment_tag,
    read_attachments,
    read_lookaside,
    write_attachments,
    write_lookaside,
)
from tests.helpers.images import get_manifest_sync, make_image, push_image_sync
from tests.helpers.registry import RegistryServer

pytestmark = pytest.mark.anyio

DIGEST = Digest.parse("sha256:" + "e" * 64)


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "www"
    root.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with socket.socket() as attempt:
                if attempt.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield root, f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


async def test_http_lookaside_is_read_and_never_written(http_root: tuple[Path, str], tmp_path: Path) -> None:
    root, url = http_root
    store = root / "sigs" / "ns" / f"app@sha256={'e' * 64}"
    store.mkdir(parents=True)
    (store / "signature-1").write_bytes(b"\xa3first")
    (store / "signature-2").write_bytes(b"\xa3second")
    config_dir = tmp_path / "registries.d"
    config_dir.mkdir()
    (config_dir / "a.yaml").write_text(f"default-docker:\n  lookaside: {url}/sigs\n")
    config = load_registries_d(str(config_dir))
    name = parse_reference("registry.example/ns/app:1")
    async with RegistrySession() as session:
        client = session.client("registry.example", RegistryOptions())
        found = await read_lookaside(client, config, name, DIGEST)
        assert found == [SimpleSignature(b"\xa3first"), SimpleSignature(b"\xa3second")]
        assert await read_lookaside(client, config, name, Digest.parse("sha256:" + "f" * 64)) == []
        (store / "signature-3").write_bytes(b"\x07 not a signature")
        with pytest.raises(SignatureError, match="unrecognized signature format"):
            await read_lookaside(client, config, name, DIGEST)
    with pytest.raises(SignatureError, match="Configure a lookaside-staging: location"):
        await write_lookaside(config, name, DIGEST, [SimpleSignature(b"\xa3x")])


async def test_file_lookaside_replaces_the_list(tmp_path: Path) -> None:
    config_dir = tmp_path / "registries.d"
    config_dir.mkdir()
    (config_dir / "a.yaml").write_text(
        f"default-docker:\n  lookaside: file://{tmp_path}/read\n  lookaside-staging: file://{tmp_path}/write\n"
    )
    config = load_registries_d(str(config_dir))
    name = parse_reference("registry.example/ns/app:1")
    await write_lookaside(config, name, DIGEST, [SimpleSignature(b"\xa3a"), SimpleSignature(b"\xa3b")])
    written = tmp_path / "write" / "ns" / f"app@sha256={'e' * 64}"
    assert sorted(p.name for p in written.iterdir()) == ["signature-1", "signature-2"]
    await write_lookaside(config, name, DIGEST, [SimpleSignature(b"\xa3c")])
    assert sorted(p.name for p in written.iterdir()) == ["signature-1"]
    assert (written / "signature-1").read_bytes() == b"\xa3c"


async def test_attachments_append_never_replace(registry_anon: RegistryServer) -> None:
    image = make_image("attach-append")
    push_image_sync(registry_anon, "attach/app", "1", image)
    digest = Digest.parse(image.digest)
    one = SigstoreSignature("application/vnd.dev.cosign.simplesigning.v1+json", b'{"one":1}', {"k": "1"})
    two = SigstoreSignature("application/vnd.dev.cosign.simplesigning.v1+json", b'{"two":2}', {"k": "2"})
    async with RegistrySession() as session:
        client = session.client(registry_anon.host, RegistryOptions(tls_verify=False))
        assert await read_attachments(client, "attach/app", digest) == []
        await write_attachments(client, "attach/app", digest, [one])
        await write_attachments(client, "attach/app", digest, [two, one])  # one is already there
        found = await read_attachments(client, "attach/app", digest)
    assert [s.payload for s in found] == [b'{"one":1}', b'{"two":2}']
    media_type, raw = get_manifest_sync(registry_anon, "attach/app", attachment_tag(digest))
    document = orjson.loads(raw)
    assert media_type == "application/vnd.oci.image.manifest.v1+json"
    assert [layer["annotations"] for layer in document["layers"]] == [{"k": "1"}, {"k": "2"}]
    assert document["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
