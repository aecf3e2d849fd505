"""Attachments follow a copied image, against the real registry (distribution 2.8: no referrers API,
so referrers are found and written through the fallback tag ``sha256-<hex>``)."""

from __future__ import annotations

import json

import pytest

from asyncsync.copy import CopyOptions
from asyncsync.copy.attachments import AttachmentPolicy
from asyncsync.registry.client import RegistryOptions
from tests.copy.support import copy_run, ref, registry_options
from tests.helpers.attachments import (
    NOTATION,
    OCI_INDEX,
    OCI_MANIFEST,
    SBOM_TYPE,
    Artifact,
    cosign_signature,
    fallback_tag,
    push_artifact,
    push_referrers,
    referrer,
)
from tests.helpers.fault_proxy import FaultProxy
from tests.helpers.faults import Fault
from tests.helpers.images import (
    get_manifest,
    make_image,
    make_multiarch,
    push_image,
    push_index,
    push_manifest,
)
from tests.helpers.registry import RegistryServer

pytestmark = pytest.mark.anyio

ON = CopyOptions(attachments=AttachmentPolicy())


async def _tags(server: RegistryServer, repo: str) -> set[str]:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/v2/{repo}/tags/list") as response:
        if response.status == 404:
            return set()
        return set((await response.json())["tags"] or [])


async def _seed(server: RegistryServer, repo: str, seed: str) -> tuple[str, dict[str, Artifact]]:
    """An image with a cosign signature, an SBOM referrer, a notation signature referrer, and a
    cosign signature of the SBOM (a signature of an attachment)."""
    image = make_image(seed, fmt="oci")
    digest = await push_image(server, repo, "v1", image)
    sig = cosign_signature(digest, seed)
    await push_artifact(server, repo, f"{fallback_tag(digest)}.sig", sig)
    sbom = referrer(digest, image.size, SBOM_TYPE, seed)
    notation = referrer(digest, image.size, NOTATION, seed)
    await push_referrers(server, repo, digest, sbom, notation)
    sbom_sig = cosign_signature(sbom.digest, f"{seed}-sbom")
    await push_artifact(server, repo, f"{fallback_tag(sbom.digest)}.sig", sbom_sig)
    return digest, {"sig": sig, "sbom": sbom, "notation": notation, "sbom_sig": sbom_sig}


async def test_copy_carries_referrers_cosign_tags_and_nested(registry_anon: RegistryServer) -> None:
    server = registry_anon
    digest, parts = await _seed(server, "att/src1", "walk-1")
    options = registry_options(server)
    async with copy_run() as run:
        result = await run.copy(ref(server, "att/src1:v1"), options, ref(server, "att/dst1:v1"), options, ON)
    assert str(result.digest) == digest
    tags = await _tags(server, "att/dst1")
    assert tags == {
        "v1",
        f"{fallback_tag(digest)}.sig",
        fallback_tag(digest),
        f"{fallback_tag(parts['sbom'].digest)}.sig",
    }
    # Byte for byte: the cosign tag, each referrer by digest, and the fallback index (verbatim).
    for tag, artifact in ((f"{fallback_tag(digest)}.sig", parts["sig"]),):
        assert (await get_manifest(server, "att/dst1", tag))[1] == artifact.manifest
    for name in ("sbom", "notation"):
        assert (await get_manifest(server, "att/dst1", parts[name].digest))[1] == parts[name].manifest
    src_index = (await get_manifest(server, "att/src1", fallback_tag(digest)))[1]
    assert (await get_manifest(server, "att/dst1", fallback_tag(digest)))[1] == src_index
    outcome = result.attachments
    assert len(outcome.copied) == 4 and not outcome.left and not outcome.skipped


async def test_recopy_is_a_no_op_and_counts_present(registry_anon: RegistryServer) -> None:
    server = registry_anon
    await _seed(server, "att/src2", "walk-2")
    options = registry_options(server)
    async with copy_run() as run:
        await run.copy(ref(server, "att/src2:v1"), options, ref(server, "att/dst2:v1"), options, ON)
    server.reset_log()
    async with copy_run() as run:
        result = await run.copy(ref(server, "att/src2:v1"), options, ref(server, "att/dst2:v1"), options, ON)
    assert not result.attachments.copied
    assert len(result.attachments.present) == 4
    assert server.count("PUT", r"/manifests/") == 0


async def test_remove_signatures_keeps_sboms(registry_anon: RegistryServer) -> None:
    server = registry_anon
    digest, parts = await _seed(server, "att/src3", "walk-3")
    options = registry_options(server)
    policy = CopyOptions(attachments=AttachmentPolicy(remove_signatures=True))
    async with copy_run() as run:
        result = await run.copy(
            ref(server, "att/src3:v1"), options, ref(server, "att/dst3:v1"), options, policy
        )
    tags = await _tags(server, "att/dst3")
    assert tags == {"v1", fallback_tag(digest)}
    index = json.loads((await get_manifest(server, "att/dst3", fallback_tag(digest)))[1])
    assert [e["digest"] for e in index["manifests"]] == [parts["sbom"].digest]
    # the cosign .sig, the notation signature and the SBOM's own cosign .sig
    assert len(result.attachments.skipped) == 3


async def test_merges_with_what_the_destination_holds(registry_anon: RegistryServer) -> None:
    """A destination .sig with another signature and a fallback index with another referrer:
    both are kept, ours are added (union), nothing is overwritten."""
    server = registry_anon
    digest, parts = await _seed(server, "att/src4", "walk-4")
    image = make_image("walk-4", fmt="oci")
    await push_image(server, "att/dst4", "v1", image)
    theirs_sig = cosign_signature(digest, "theirs")
    await push_artifact(server, "att/dst4", f"{fallback_tag(digest)}.sig", theirs_sig)
    theirs_ref = referrer(digest, image.size, "application/vnd.example.other", "theirs")
    await push_referrers(server, "att/dst4", digest, theirs_ref)
    options = registry_options(server)
    async with copy_run() as run:
        await run.copy(ref(server, "att/src4:v1"), options, ref(server, "att/dst4:v1"), options, ON)
    sig = json.loads((await get_manifest(server, "att/dst4", f"{fallback_tag(digest)}.sig"))[1])
    ours = json.loads(parts["sig"].manifest)["layers"]
    theirs = json.loads(theirs_sig.manifest)["layers"]
    assert sig["layers"] == theirs + ours
    index = json.loads((await get_manifest(server, "att/dst4", fallback_tag(digest)))[1])
    assert [e["digest"] for e in index["manifests"]] == [
        theirs_ref.digest,
        parts["sbom"].digest,
        parts["notation"].digest,
    ]


async def test_index_children_attachments_follow(registry_anon: RegistryServer) -> None:
    server = registry_anon
    index = make_multiarch("walk-5", fmt="oci")
    digest = await push_index(server, "att/src5", "v1", index)
    child = index.images[0]
    child_sig = cosign_signature(child.digest, "walk-5-child")
    await push_artifact(server, "att/src5", f"{fallback_tag(child.digest)}.sig", child_sig)
    index_sbom = referrer(digest, index.size, SBOM_TYPE, "walk-5", subject_type=OCI_INDEX)
    await push_referrers(server, "att/src5", digest, index_sbom)
    options = registry_options(server)
    async with copy_run() as run:
        all_mode = CopyOptions(multi_arch="all", attachments=AttachmentPolicy())
        await run.copy(ref(server, "att/src5:v1"), options, ref(server, "att/dst5:v1"), options, all_mode)
        assert await _tags(server, "att/dst5") == {
            "v1",
            f"{fallback_tag(child.digest)}.sig",
            fallback_tag(digest),
        }
        # Platform selection changes the index digest: its SBOM is left behind, with the reason;
        # the kept child's signature still follows.
        from asyncsync.manifest import Platform

        chosen = Platform(child.os, child.architecture, child.variant)
        selected = CopyOptions(multi_arch="all", platforms=(chosen,), attachments=AttachmentPolicy())
        result = await run.copy(
            ref(server, "att/src5:v1"), options, ref(server, "att/dst5b:v1"), options, selected
        )
    assert await _tags(server, "att/dst5b") == {"v1", f"{fallback_tag(child.digest)}.sig"}
    assert len(result.attachments.left) == 1
    assert "changed its subject's digest (platform selection)" in result.attachments.left[0]


async def test_bad_input_is_skipped_with_a_reason(registry_anon: RegistryServer) -> None:
    """A fallback index that is not JSON, a referrer naming another subject, and a cycle of cosign
    tags: each skipped with a reason; the image and the good attachments still arrive."""
    server = registry_anon
    image = make_image("walk-6", fmt="oci")
    digest = await push_image(server, "att/src6", "v1", image)
    other = make_image("walk-6-other", fmt="oci")
    other_digest = await push_image(server, "att/src6", "other", other)
    stray = referrer(other_digest, other.size, SBOM_TYPE, "stray")
    await push_referrers(server, "att/src6", digest, stray)  # listed under the wrong subject
    # A cycle: sig A (of the image) is itself "signed" by a tag pointing back at A's own digest.
    sig = cosign_signature(digest, "walk-6")
    await push_artifact(server, "att/src6", f"{fallback_tag(digest)}.sig", sig)
    await push_artifact(server, "att/src6", f"{fallback_tag(sig.digest)}.sig", sig)
    # The other image's fallback tag is not JSON-an-index: a config-less garbage manifest cannot be
    # pushed to a real registry, so use an image manifest (it has no 'manifests' list).
    await push_manifest(server, "att/src6", fallback_tag(other_digest), other.manifest, other.media_type)
    options = registry_options(server)
    async with copy_run() as run:
        result = await run.copy(ref(server, "att/src6:v1"), options, ref(server, "att/dst6:v1"), options, ON)
        other_result = await run.copy(
            ref(server, "att/src6:other"), options, ref(server, "att/dst6:other"), options, ON
        )
    skipped = " | ".join(result.attachments.skipped)
    assert f"its subject is sha256:{other_digest[7:19]}" in skipped
    assert "cycle" in skipped
    assert result.attachments.copied == [f"tag {fallback_tag(digest)}.sig"]
    assert await _tags(server, "att/dst6") == {"v1", "other", f"{fallback_tag(digest)}.sig"}
    assert "no 'manifests' list" in " ".join(other_result.attachments.skipped)


@pytest.mark.parametrize("has_api", [True, False], ids=["oci-subject", "no-header"])
async def test_destination_api_is_learnt_from_the_referrer_put(
    registry_anon: RegistryServer, has_api: bool
) -> None:
    """Whether the destination has the referrers API is learnt from the first referrer written
    there: ``OCI-Subject`` in the answer means it indexed the subject (no fallback tag is written),
    no such header means it did not (the fallback tag is). Never a ``GET .../referrers/`` probe.

    Partly scripted: distribution 2.8 never answers ``OCI-Subject``, so a proxy in front of it adds
    the header to manifest PUTs, as a registry with the referrers API does."""
    server = registry_anon
    repo = f"att/dst-api-{str(has_api).lower()}"
    digest, parts = await _seed(
        server, f"att/src-api-{str(has_api).lower()}", f"walk-api-{str(has_api).lower()}"
    )
    with FaultProxy(server.host) as proxy:
        if has_api:
            proxy.add_rule(
                Fault.add_header("OCI-Subject", digest),
                method="PUT",
                path=r"/v2/.*/manifests/sha256:.*",
                times=0,
            )
        async with copy_run() as run:
            result = await run.copy(
                ref(server, f"att/src-api-{str(has_api).lower()}:v1"),
                registry_options(server),
                ref(proxy.address, f"{repo}:v1"),
                RegistryOptions(tls_verify=False),
                ON,
            )
        probes = proxy.count("GET", r"/v2/.*/referrers/.*")
    assert probes == 0
    assert len(result.attachments.copied) == 4
    tags = await _tags(server, repo)
    assert (fallback_tag(digest) in tags) is not has_api
    assert f"{fallback_tag(digest)}.sig" in tags
    for name in ("sbom", "notation"):
        assert (await get_manifest(server, repo, parts[name].digest))[1] == parts[name].manifest


async def test_same_digest_under_two_tags_is_walked_once(registry_anon: RegistryServer) -> None:
    server = registry_anon
    digest, _ = await _seed(server, "att/src-twice", "walk-twice")
    await push_manifest(
        server,
        "att/src-twice",
        "latest",
        (await get_manifest(server, "att/src-twice", "v1"))[1],
        OCI_MANIFEST,
    )
    options = registry_options(server)
    server.reset_log()
    async with copy_run() as run:
        first = await run.copy(
            ref(server, "att/src-twice:v1"), options, ref(server, "att/dst-twice:v1"), options, ON
        )
        second = await run.copy(
            ref(server, "att/src-twice:latest"), options, ref(server, "att/dst-twice:latest"), options, ON
        )
    assert len(first.attachments.copied) == 4
    assert not second.attachments.copied and len(second.attachments.present) == 4
    # One walk: the source's fallback index and .sig are read once.
    assert server.count("GET", rf"/v2/att/src-twice/manifests/{fallback_tag(digest)}") == 1
    assert server.count(None, rf"/v2/att/src-twice/manifests/{fallback_tag(digest)}\.sig") == 1


async def test_grandchildren_of_a_nested_index_carry_their_attachments(registry_anon: RegistryServer) -> None:
    """An index whose child is an index: the grandchildren's signatures follow too."""
    server = registry_anon
    inner = make_multiarch("walk-nested", fmt="oci")
    inner_digest = await push_index(server, "att/src-nested", inner.digest, inner)
    outer = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_INDEX, "digest": inner_digest, "size": inner.size}],
        }
    ).encode()
    await push_manifest(server, "att/src-nested", "v1", outer, OCI_INDEX)
    grandchild = inner.images[1]
    await push_artifact(
        server,
        "att/src-nested",
        f"{fallback_tag(grandchild.digest)}.sig",
        cosign_signature(grandchild.digest, "grandchild"),
    )
    options = registry_options(server)
    async with copy_run() as run:
        all_mode = CopyOptions(multi_arch="all", attachments=AttachmentPolicy())
        result = await run.copy(
            ref(server, "att/src-nested:v1"), options, ref(server, "att/dst-nested:v1"), options, all_mode
        )
    assert result.attachments.copied == [f"tag {fallback_tag(grandchild.digest)}.sig"]
    assert f"{fallback_tag(grandchild.digest)}.sig" in await _tags(server, "att/dst-nested")
