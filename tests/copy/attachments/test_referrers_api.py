"""Attachments from a source with the referrers API (scripted: the real registry here has none; see
tests/helpers/referrers_server.py) into the real registry, which gets the fallback tag."""

from __future__ import annotations

import json

import pytest

from asyncsync.copy import CopyOptions
from asyncsync.copy.attachments import AttachmentPolicy
from asyncsync.registry.client import RegistryOptions
from tests.copy.support import copy_run, ref, registry_options
from tests.helpers.asyncsync_cli import run_cli
from tests.helpers.attachments import NOTATION, SBOM_TYPE, SIGSTORE_BUNDLE, Artifact, fallback_tag, referrer
from tests.helpers.fake_registry import FakeRegistry
from tests.helpers.images import get_manifest, list_tags_sync, make_image, make_multiarch
from tests.helpers.referrers_server import manifest_entry, serve_referrers, serve_repository
from tests.helpers.registry import RegistryFactory, RegistryServer

pytestmark = pytest.mark.anyio

PLAIN = RegistryOptions(tls_verify=False)


def _script(fake: FakeRegistry, seed: str) -> tuple[str, list[Artifact]]:
    """Repository ``app``: image ``v1`` with five referrers served two per page, one of which
    names another subject; returns the image digest and the referrers."""
    image = make_image(seed, fmt="oci")
    other = make_image(f"{seed}-other", fmt="oci")
    artifacts = [
        referrer(image.digest, image.size, SBOM_TYPE, seed),
        referrer(image.digest, image.size, NOTATION, seed),
        referrer(image.digest, image.size, SIGSTORE_BUNDLE, seed),
        referrer(image.digest, image.size, "application/vnd.example.scan+json", seed),
        referrer(other.digest, other.size, SBOM_TYPE, f"{seed}-stray"),
    ]
    manifests = {image.digest: (image.media_type, image.manifest)}
    blobs = dict(image.blobs())
    for artifact in artifacts:
        manifests[artifact.digest] = (artifact.media_type, artifact.manifest)
        blobs.update(artifact.blobs)
    serve_repository(fake, "app", manifests, blobs, {"v1": image.digest})
    entries = [manifest_entry(a.manifest, a.artifact_type) for a in artifacts]
    serve_referrers(fake, "app", image.digest, entries, page_size=2)
    return image.digest, artifacts


async def test_referrers_api_source_to_fallback_tag_destination(registry_anon: RegistryServer) -> None:
    with FakeRegistry() as fake:
        digest, artifacts = _script(fake, "api-1")
        async with copy_run() as run:
            result = await run.copy(
                ref(fake.host, "app:v1"),
                PLAIN,
                ref(registry_anon, "api/dst1:v1"),
                registry_options(registry_anon),
                CopyOptions(attachments=AttachmentPolicy()),
            )
        referrer_pages = [r.path for r in fake.requests if "/referrers/" in r.path]
    outcome = result.attachments
    assert len(outcome.copied) == 4
    assert len(outcome.skipped) == 1 and "its subject is" in outcome.skipped[0]
    # Five entries, two per page; then one request per referrer copied (what refers to it?).
    assert len(referrer_pages) == 3 + 4
    index = json.loads((await get_manifest(registry_anon, "api/dst1", fallback_tag(digest)))[1])
    assert [e["digest"] for e in index["manifests"]] == [a.digest for a in artifacts[:4]]
    for artifact in artifacts[:4]:
        assert (await get_manifest(registry_anon, "api/dst1", artifact.digest))[1] == artifact.manifest


async def test_filters_by_kind_and_asks_the_server_for_one_type(registry_anon: RegistryServer) -> None:
    with FakeRegistry() as fake:
        digest, artifacts = _script(fake, "api-2")
        async with copy_run() as run:
            no_signatures = CopyOptions(attachments=AttachmentPolicy(remove_signatures=True))
            result = await run.copy(
                ref(fake.host, "app:v1"),
                PLAIN,
                ref(registry_anon, "api/dst2:v1"),
                registry_options(registry_anon),
                no_signatures,
            )
            only_sboms = CopyOptions(attachments=AttachmentPolicy(types=(SBOM_TYPE,)))
            await run.copy(
                ref(fake.host, "app:v1"),
                PLAIN,
                ref(registry_anon, "api/dst3:v1"),
                registry_options(registry_anon),
                only_sboms,
            )
        asked = [r.path for r in fake.requests if "/referrers/" in r.path]
    # notation and the sigstore bundle are signatures; the SBOM and the scan report follow.
    index = json.loads((await get_manifest(registry_anon, "api/dst2", fallback_tag(digest)))[1])
    assert [e["artifactType"] for e in index["manifests"]] == [SBOM_TYPE, "application/vnd.example.scan+json"]
    assert sum("signature (--remove-signatures)" in s for s in result.attachments.skipped) == 2
    index = json.loads((await get_manifest(registry_anon, "api/dst3", fallback_tag(digest)))[1])
    assert [e["digest"] for e in index["manifests"]] == [artifacts[0].digest]
    assert any("artifactType=application/spdx%2Bjson" in path for path in asked)


async def test_referrers_index_that_is_not_json_is_a_skip_not_a_failure(
    registry_anon: RegistryServer,
) -> None:
    with FakeRegistry() as fake:
        image = make_image("api-3", fmt="oci")
        serve_repository(
            fake,
            "app",
            {image.digest: (image.media_type, image.manifest)},
            image.blobs(),
            {"v1": image.digest},
        )
        serve_referrers(fake, "app", image.digest, [], body=b"\x00garbage")
        async with copy_run() as run:
            result = await run.copy(
                ref(fake.host, "app:v1"),
                PLAIN,
                ref(registry_anon, "api/dst4:v1"),
                registry_options(registry_anon),
                CopyOptions(attachments=AttachmentPolicy()),
            )
    assert str(result.digest) == image.digest
    (skipped,) = result.attachments.skipped
    assert skipped.endswith(f"{fake.host}/app@{image.digest}: the referrers index is not JSON")


def test_no_op_resync_from_a_referrers_api_costs_one_listing_an_image(make_registry: RegistryFactory) -> None:
    """A sync from a source with the referrers API into the real registry (fallback tag), then a
    no-op re-sync: per image one referrers listing at the source (its pages) and one HEAD of the
    fallback tag at the destination, beside the plain no-op's HEADs, one tag list per repository
    and one referrers probe of the destination per run."""
    dest = make_registry("anon")
    with FakeRegistry() as fake:
        digest, artifacts = _script(fake, "api-noop")
        good = [manifest_entry(a.manifest, a.artifact_type) for a in artifacts[:4]]
        serve_referrers(fake, "app", digest, good, page_size=2)
        args = ("sync", "--src", "docker", "--dest", "docker", "--src-tls-verify=false")
        args += ("--dest-tls-verify=false", f"{fake.host}/app", f"{dest.host}/mirror")
        first = run_cli(*args)
        assert first.returncode == 0, first.all_output
        assert fallback_tag(digest) in list_tags_sync(dest, "mirror/app")
        before = len(fake.requests)
        dest.reset_log()
        second = run_cli(*args)
        assert second.returncode == 0, second.all_output
        asked = sorted((r.method, r.path) for r in fake.requests[before:])
    assert not [r for r in dest.requests() if r.method not in ("GET", "HEAD")]
    listing = f"/v2/app/referrers/{digest}"
    assert asked == [
        ("GET", listing),
        ("GET", f"{listing}?page=1"),
        ("GET", "/v2/app/tags/list"),
        ("HEAD", "/v2/app/manifests/v1"),
    ]
    shapes = sorted((r.method, r.path.rsplit("/", 2)[-2]) for r in dest.requests())
    # The destination: the image's HEAD, its tag list, the run's one referrers probe (nothing was
    # written, so no OCI-Subject answer told), and the HEAD of the fallback tag.
    assert shapes == [("GET", "referrers"), ("GET", "tags"), ("HEAD", "manifests"), ("HEAD", "manifests")]


def test_index_children_referrers_reach_a_destination_holding_the_index(
    make_registry: RegistryFactory,
) -> None:
    """An index already at the destination (synced with ``--attachments=false``) whose child has a
    referrer at a source with the referrers API: no tag names it, so the re-sync walks the index."""
    dest = make_registry("anon")
    with FakeRegistry() as fake:
        index = make_multiarch("api-index", fmt="oci")
        child = index.images[0]
        sbom = referrer(child.digest, child.size, SBOM_TYPE, "api-index-child")
        manifests = {index.digest: (index.media_type, index.manifest), **index.manifests()}
        manifests[sbom.digest] = (sbom.media_type, sbom.manifest)
        serve_repository(fake, "app", manifests, {**index.blobs(), **sbom.blobs}, {"multi": index.digest})
        for image in index.images:
            entries = [manifest_entry(sbom.manifest, SBOM_TYPE)] if image is child else []
            serve_referrers(fake, "app", image.digest, entries)
        serve_referrers(fake, "app", index.digest, [])
        args = ("sync", "--src", "docker", "--dest", "docker", "--src-tls-verify=false", "--all")
        args += ("--dest-tls-verify=false", f"{fake.host}/app", f"{dest.host}/mirror")
        first = run_cli(*args, "--attachments=false")
        assert first.returncode == 0, first.all_output
        assert list_tags_sync(dest, "mirror/app") == ["multi"]
        second = run_cli(*args)
        assert second.returncode == 0, second.all_output
    assert fallback_tag(child.digest) in list_tags_sync(dest, "mirror/app")
