"""The referrers API client against a scripted registry (see tests/helpers/referrers_server.py for
why scripted: distribution 2.8, the real registry here, has no referrers API)."""

from __future__ import annotations

import pytest

from asyncsync.digest import Digest
from asyncsync.errors import ContentError
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.registry.referrers import list_referrers
from tests.helpers.fake_registry import FakeRegistry
from tests.helpers.referrers_server import serve_referrers

pytestmark = pytest.mark.anyio

SUBJECT = "sha256:" + "ab" * 32
OPTIONS = RegistryOptions(tls_verify=False)


def _entries(count: int) -> list[dict[str, object]]:
    types = ["application/spdx+json", "application/vnd.cncf.notary.signature"]
    return [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:" + f"{n:02x}" * 32,
            "size": 100 + n,
            "artifactType": types[n % 2],
        }
        for n in range(count)
    ]


async def test_follows_every_link_page() -> None:
    with FakeRegistry() as fake:
        serve_referrers(fake, "app", SUBJECT, _entries(5), page_size=2)
        async with RegistrySession() as session:
            entries = await list_referrers(session.client(fake.host, OPTIONS), "app", Digest.parse(SUBJECT))
        pages = [r.path for r in fake.requests if "/referrers/" in r.path]
    assert entries == _entries(5)
    assert len(pages) == 3 and pages[1].endswith("?page=1")


async def test_artifact_type_is_sent_encoded_and_honoured() -> None:
    with FakeRegistry() as fake:
        serve_referrers(fake, "app", SUBJECT, _entries(5), page_size=2)
        async with RegistrySession() as session:
            entries = await list_referrers(
                session.client(fake.host, OPTIONS),
                "app",
                Digest.parse(SUBJECT),
                artifact_type="application/spdx+json",
            )
        first = next(r.path for r in fake.requests if "/referrers/" in r.path)
    assert [e["artifactType"] for e in entries or []] == ["application/spdx+json"] * 3
    # "+" must be escaped (a bare "+" is a space in a query); "/" may stay.
    assert first.endswith("?artifactType=application/spdx%2Bjson")


async def test_an_index_served_as_application_json_is_read() -> None:
    with FakeRegistry() as fake:
        serve_referrers(fake, "app", SUBJECT, _entries(1), content_type="application/json")
        async with RegistrySession() as session:
            entries = await list_referrers(session.client(fake.host, OPTIONS), "app", Digest.parse(SUBJECT))
    assert entries == _entries(1)


async def test_no_api_is_none_and_garbage_is_one_line() -> None:
    with FakeRegistry() as fake:
        serve_referrers(fake, "bad", SUBJECT, [], body=b"<html>not json</html>")
        async with RegistrySession() as session:
            client = session.client(fake.host, OPTIONS)
            assert await list_referrers(client, "none", Digest.parse(SUBJECT)) is None
            with pytest.raises(ContentError) as caught:
                await list_referrers(client, "bad", Digest.parse(SUBJECT))
    message = str(caught.value)
    assert "referrers index is not JSON" in message and "\n" not in message
