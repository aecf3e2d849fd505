"""HarborAPI against the Harbor-compatible test server: paging, encodings, projects, artifacts, blob query."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from asyncsync.digest import Digest
from asyncsync.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from asyncsync.harbor.api import HarborAPI, project_of
from asyncsync.harbor.immutable import Selector
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.registry.credentials import Credentials
from tests.harbor.conftest import HarborFactory
from tests.helpers.clients import FAST_RETRY
from tests.helpers.harbor_server import HarborServer
from tests.helpers.images import list_tags, make_image, make_layer, push_image


@asynccontextmanager
async def api_for(
    server: HarborServer, username: str | None = None, password: str = "", *, page_size: int = 100
) -> AsyncIterator[HarborAPI]:
    creds = Credentials(username, password) if username is not None else None
    options = RegistryOptions(tls_verify=False, credentials=creds, no_creds=creds is None)
    async with RegistrySession(retry=FAST_RETRY) as session:
        yield HarborAPI(session.client(server.host, options), page_size=page_size)


def test_project_of_splits_the_project_and_refuses_bare_names() -> None:
    assert project_of("proj/a/b") == ("proj", "a/b")
    with pytest.raises(NotFoundError):
        project_of("single")


@pytest.mark.anyio
async def test_paging_follows_links_and_nested_names_are_double_encoded(make_harbor: HarborFactory) -> None:
    harbor = make_harbor()
    harbor.add_project("team")
    registry = harbor.as_registry()
    names = ["team/a", "team/b/c", "team/d/e/f", "team/g", "team/h"]
    for index, name in enumerate(names):
        await push_image(registry, name, f"v{index}", make_image(f"paging-{index}"))
    await push_image(registry, "team/b/c", "extra", make_image("paging-extra"))
    harbor.api_requests.clear()

    async with api_for(harbor, "admin", harbor.admin_password, page_size=2) as api:
        assert await api.list_repositories("team") == sorted(names)
        artifacts = await api.list_artifacts("team/b/c")

    assert sorted(tag for artifact in artifacts for tag in artifact.tags) == ["extra", "v1"]
    assert all(a.media_type.startswith("application/vnd.") for a in artifacts)
    # 5 repositories in pages of 2: three pages, then one page for the nested repository's artifacts.
    paths = [path for method, path, _ in harbor.api_requests if method == "GET"]
    assert sum(p.startswith("/api/v2.0/projects/team/repositories?") for p in paths) == 3
    assert any("/repositories/b%252Fc/artifacts?" in p for p in paths), paths


@pytest.mark.anyio
async def test_projects_exist_create_conflict_and_permissions(make_harbor: HarborFactory) -> None:
    harbor = make_harbor()
    harbor.add_project("existing")
    robot = harbor.add_robot("ci", "robot-secret", project="existing")
    assert robot.name == "robot$existing+ci"

    async with api_for(harbor, "admin", harbor.admin_password) as admin:
        assert await admin.project_exists("existing")
        assert not await admin.project_exists("fresh")
        assert await admin.create_project("fresh") is True
        assert await admin.create_project("fresh") is False  # 409: someone else made it
        assert await admin.list_projects() == ["existing", "fresh"]
    async with api_for(harbor, robot.name, "robot-secret") as as_robot:
        with pytest.raises(PermissionDeniedError):
            await as_robot.create_project("other")
        assert await as_robot.list_projects() == ["existing"]
    async with api_for(harbor, robot.name, "wrong") as wrong:
        with pytest.raises(AuthenticationError):
            await wrong.list_projects()
    assert "other" not in harbor.state.projects


@pytest.mark.anyio
async def test_unknown_repository_is_not_found_and_blob_query_finds_holders(
    make_harbor: HarborFactory,
) -> None:
    harbor = make_harbor()
    harbor.add_project("p")
    harbor.add_project("public", public=True)
    shared = make_layer("shared-blob", 8 * 1024)
    registry = harbor.as_registry()
    image_a = make_image("blob-a", shared_layers=[shared])
    await push_image(registry, "p/one", "1", image_a)
    await push_image(registry, "public/two", "1", make_image("blob-b", shared_layers=[shared]))
    await push_image(registry, "p/three", "1", make_image("blob-c"))
    robot = harbor.add_robot("reader", "pw")  # a system robot: every project, but Harbor shows it public ones

    digest = Digest.of(shared)
    async with api_for(harbor, "admin", harbor.admin_password) as api:
        with pytest.raises(NotFoundError):
            await api.list_artifacts("p/missing")
        assert await api.repositories_with_blob(digest) == ["p/one", "public/two"]
        assert len(await api.repositories_with_blob(digest, limit=1)) == 1  # one page, never a walk
        assert await api.repositories_with_blob(Digest.parse(image_a.config_digest)) == ["p/one"]
    async with api_for(harbor, robot.name, "pw") as as_robot:
        assert await as_robot.repositories_with_blob(digest) == ["public/two"]


@pytest.mark.anyio
async def test_delete_tag_removes_only_that_tag(make_harbor: HarborFactory) -> None:
    harbor = make_harbor()
    harbor.add_project("p")
    registry = harbor.as_registry()
    image = make_image("delete-tag")
    digest = await push_image(registry, "p/app", "keep", image)
    await push_image(registry, "p/app", "drop", image)

    async with api_for(harbor, "admin", harbor.admin_password) as api:
        await api.delete_tag("p/app", Digest.parse(digest), "drop")
        (artifact,) = await api.list_artifacts("p/app")
    assert artifact.tags == ("keep",)
    assert await list_tags(registry, "p/app") == ["keep"]


@pytest.mark.anyio
async def test_immutable_rules_are_paged_read_by_name_and_refused_to_robots(
    make_harbor: HarborFactory,
) -> None:
    harbor = make_harbor()
    harbor.add_project("12345")  # a numeric name: without X-Is-Resource-Name Harbor reads an id
    for tags in ("v*", "release-**", "{stable,lts}"):
        harbor.rules.add("12345", repositories="apps/**", tags=tags)
    harbor.rules.add("12345", tags="dev*", exclude_tags=True, disabled=True)
    robot = harbor.add_robot("ci", "robot-secret", project="12345")
    harbor.api_requests.clear()

    async with api_for(harbor, "admin", harbor.admin_password, page_size=3) as api:
        rules = await api.immutable_rules("12345")
    assert [rule.tag_selectors[0].pattern for rule in rules] == ["v*", "release-**", "{stable,lts}", "dev*"]
    assert [rule.disabled for rule in rules] == [False, False, False, True]
    assert rules[3].tag_selectors[0].decoration == "excludes"
    assert {rule.repository_selectors[0] for rule in rules[:3]} == {
        Selector("doublestar", "repoMatches", "apps/**")
    }
    # Four rules in pages of three: two requests, both by name.
    paths = [path for method, path, status in harbor.api_requests if "immutabletagrules" in path]
    assert len(paths) == 2 and all(p.startswith("/api/v2.0/projects/12345/immutabletagrules?") for p in paths)
    async with api_for(harbor, robot.name, "robot-secret") as as_robot:
        with pytest.raises(PermissionDeniedError):
            await as_robot.immutable_rules("12345")
    async with api_for(harbor, "admin", harbor.admin_password) as api:
        with pytest.raises(NotFoundError):
            await api.immutable_rules("missing")
