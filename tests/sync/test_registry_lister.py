"""The plan and the destination checks against real registries, counting requests in the access logs."""

from __future__ import annotations

import re
import textwrap
import uuid
from pathlib import Path

import pytest

from asyncsync.manifest import DOCKER_V2S2, OCI_INDEX, OCI_MANIFEST
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.specs.load import load_spec
from asyncsync.specs.model import SyncSpec
from asyncsync.sync.decisions import REASON_ABSENT, REASON_DIFFERS, REASON_EQUAL, REASON_EXISTS, check_plan
from asyncsync.sync.registry_lister import RegistryLister
from asyncsync.sync.settings import CommandLine, resolve_settings
from asyncsync.sync.spec_plan import build_plan
from tests.helpers.images import make_image, make_multiarch, push_image, push_index
from tests.helpers.registry import RegistryServer

pytestmark = pytest.mark.anyio


def write_spec(tmp_path: Path, body: str) -> SyncSpec:
    path = tmp_path / "sync.yaml"
    path.write_text("version: 1\n" + textwrap.dedent(body))
    return load_spec(path)


def listers(session: RegistrySession, spec: SyncSpec) -> RegistryLister:
    settings = resolve_settings(spec, CommandLine())
    return RegistryLister(session, lambda host: settings.registry_options(host, "source"))


async def test_plan_and_checks_against_real_registries(
    tmp_path: Path, registry_anon: RegistryServer, registry_basic: RegistryServer, rng_seed: int
) -> None:
    src, dst = registry_anon, registry_basic
    project = f"proj{uuid.uuid4().hex[:8]}"
    api_1 = make_image(f"{rng_seed}/api1")
    api_2 = make_image(f"{rng_seed}/api2", fmt="oci")
    web = make_multiarch(f"{rng_seed}/web", fmt="oci")
    worker = make_image(f"{rng_seed}/worker")
    await push_image(src, f"{project}/api", "1.0", api_1)
    await push_image(src, f"{project}/api", "2.0", api_2)
    await push_index(src, f"{project}/web", "1.0", web)
    await push_image(src, f"{project}/team/worker", "0.1", worker)
    # The destination already has api:1.0 (same image) and api:2.0 (another image).
    await push_image(dst, f"mig-{project}/api", "1.0", api_1)
    await push_image(dst, f"mig-{project}/api", "2.0", worker)

    spec = write_spec(
        tmp_path,
        f"""\
        registries:
          {src.host}: {{tls-verify: false}}
          {dst.host}:
            tls-verify: false
            credentials: {{username: {dst.username}, password: "{dst.password}"}}
        sync:
          - from: {src.host}/{project}/**
            to: {dst.host}/mig-{project}/
          - from: {src.host}/{project}/api
            to: {dst.host}/immutable-{project}/api
            tags: ["1.0", "2.0", "3.0"]
            skip-existing: true
          - from: {src.host}/{project}/gone
            to: {dst.host}/x/
        """,
    )
    src.reset_log()
    dst.reset_log()
    async with RegistrySession() as session:
        plan = await build_plan(spec, listers(session, spec), limit=4)
        assert [str(e) for e in plan.errors] == [
            f"{spec.file}:12: {src.host}/{project}/api:3.0 not found",
            f"{spec.file}:14: listing tags of {src.host}/{project}/gone: "
            "name unknown: repository name not known to registry (HTTP 404)",
        ]
        got = [(str(i.source), str(i.destination), i.media_type) for i in plan.images]
        source = f"{src.host}/{project}"
        assert got == [
            (f"{source}/api:1.0@{api_1.digest}", f"{dst.host}/mig-{project}/api:1.0", DOCKER_V2S2),
            (f"{source}/api:2.0@{api_2.digest}", f"{dst.host}/mig-{project}/api:2.0", OCI_MANIFEST),
            (
                f"{source}/team/worker:0.1@{worker.digest}",
                f"{dst.host}/mig-{project}/team/worker:0.1",
                DOCKER_V2S2,
            ),
            (f"{source}/web:1.0@{web.digest}", f"{dst.host}/mig-{project}/web:1.0", OCI_INDEX),
            (f"{source}/api:1.0@{api_1.digest}", f"{dst.host}/immutable-{project}/api:1.0", DOCKER_V2S2),
            (f"{source}/api:2.0@{api_2.digest}", f"{dst.host}/immutable-{project}/api:2.0", OCI_MANIFEST),
        ]
        # Source requests: one HEAD per distinct source reference (api:1.0/2.0 shared by two entries,
        # 3.0 missing), one tag list per listed repository, no manifest GET at all.
        manifests = rf"/v2/{project}/.+/manifests/.+"
        assert src.count("HEAD", manifests) == 5
        assert src.count("GET", manifests) == 0
        assert src.count("GET", rf"/v2/{project}/.+/tags/list") == 4
        assert src.count("GET", r"/v2/_catalog") >= 1

        src.reset_log()
        decisions = await check_plan(plan, listers(session, spec), limit=4)
        assert [(d.action, d.reason) for d in decisions] == [
            ("skip", REASON_EQUAL),
            ("copy", REASON_DIFFERS),
            ("copy", REASON_ABSENT),
            ("copy", REASON_ABSENT),
            ("copy", REASON_ABSENT),
            ("copy", REASON_ABSENT),
        ]
    # Destination: a HEAD per checked image, one tag list for the skip-existing repository,
    # no GET of manifests.
    assert dst.count("HEAD", rf"/v2/mig-{project}/.+/manifests/.+") == 4
    assert dst.count("GET", rf"/v2/immutable-{project}/api/tags/list") == 1
    assert dst.count(None, rf"/v2/immutable-{project}/api/manifests/.+") == 0
    assert dst.count("GET", r"/v2/.+/manifests/.+") == 0
    assert src.count(None, r"/v2/.+") == 0


async def test_skip_existing_against_a_real_tag_list(
    tmp_path: Path, registry_anon: RegistryServer, rng_seed: int
) -> None:
    repo = f"exist{uuid.uuid4().hex[:8]}"
    image = make_image(f"{rng_seed}/x")
    for tag in ("a", "b"):
        await push_image(registry_anon, f"{repo}/src", tag, image)
    await push_image(registry_anon, f"{repo}/dst", "a", make_image(f"{rng_seed}/other"))
    host = registry_anon.host
    spec = write_spec(
        tmp_path,
        f"""\
        defaults: {{tls-verify: false, skip-existing: true}}
        sync:
          - {{from: {host}/{repo}/src, to: {host}/{repo}/dst}}
        """,
    )
    async with RegistrySession() as session:
        lister = listers(session, spec)
        plan = await build_plan(spec, lister)
        decisions = await check_plan(plan, lister)
    assert [(d.image.tag, d.action, d.reason) for d in decisions] == [
        ("a", "skip", REASON_EXISTS),
        ("b", "copy", REASON_ABSENT),
    ]


async def test_lister_basics(registry_anon: RegistryServer, rng_seed: int) -> None:
    repo = f"basics{uuid.uuid4().hex[:8]}"
    image = make_image(f"{rng_seed}/b")
    await push_image(registry_anon, f"{repo}/one", "v1", image)
    await push_image(registry_anon, f"{repo}/two/deep", "v1", image)
    options = RegistryOptions(tls_verify=False)
    async with RegistrySession() as session:
        lister = RegistryLister(session, {registry_anon.host: options})
        host = registry_anon.host
        assert sorted(await lister.list_repositories(host, repo)) == [f"{repo}/one", f"{repo}/two/deep"]
        assert await lister.list_repositories(host, f"{repo}/two") == [f"{repo}/two/deep"]
        everything = await lister.list_repositories(host, "")
        assert f"{repo}/one" in everything
        resolved = await lister.resolve(host, f"{repo}/one", "v1")
        assert (
            resolved is not None
            and str(resolved.digest) == image.digest
            and resolved.media_type == DOCKER_V2S2
        )
        by_digest = await lister.resolve(host, f"{repo}/one", image.digest)
        assert by_digest is not None and str(by_digest.digest) == image.digest
        assert await lister.resolve(host, f"{repo}/one", "nope") is None
        assert await lister.resolve(host, f"{repo}/missing", "v1") is None
        assert str(await lister.head(host, f"{repo}/one", "v1")) == image.digest
        assert await lister.tags(host, f"{repo}/missing") == []
        assert await lister.list_tags(host, f"{repo}/one") == ["v1"]
    catalog_requests = registry_anon.count("GET", r"/v2/_catalog")
    assert catalog_requests >= 1
    assert re.fullmatch(r"127\.0\.0\.1:\d+", host)
