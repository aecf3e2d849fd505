"""OnRepository: the registry, repository, client and manifest reference the registry ends share."""

from __future__ import annotations

import pytest

from asyncsync.digest import Digest
from asyncsync.reference import parse_reference
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.retry import RetryPolicy
from asyncsync.transports.base import SideOptions, TransportContext
from asyncsync.transports.docker.reference import DockerReference
from asyncsync.transports.docker.repository import OnRepository


@pytest.mark.anyio
async def test_an_end_names_its_repository_and_uses_the_sessions_client() -> None:
    reference = DockerReference(parse_reference("registry.example:5000/team/app:v1"))
    async with RegistrySession() as session:
        options = RegistryOptions()
        ctx = TransportContext(session=session, options=SideOptions(registry=options), retry=RetryPolicy())
        end = OnRepository(reference, ctx)
        assert end.reference is reference
        assert (end.registry, end.repository) == ("registry.example:5000", "team/app")
        assert end.client is session.client("registry.example:5000", options)
        child = Digest.of(b"child")
        assert end._manifest_reference(None) == "v1"
        assert end._manifest_reference(child) == str(child)
