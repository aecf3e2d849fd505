"""Digests, tags, repository names and hosts are validated before they reach a URL or a file path.

A digest or name that came from a manifest, a tag list or the command line is spliced into
``/v2/<repo>/blobs/<digest>`` and into local paths (``blobs/sha256/<hex>``): anything outside the
grammar (``..``, ``/``, ``?``, ``%``, a trailing newline, upper case hex) must be refused first.
"""

from __future__ import annotations

import orjson
import pytest

from asyncsync.digest import Digest
from asyncsync.errors import InvalidReferenceError, ManifestError
from asyncsync.manifest import parse_manifest
from asyncsync.reference import parse_reference, validate_tag

HEX = "a" * 64
BAD_DIGESTS = [
    "",
    "sha256:",
    f"sha256:{HEX}\n",
    f"sha256:{HEX}/../../x",
    f"sha256:{HEX}?digest=x",
    f"sha256:{HEX}%2F",
    f"sha256:{HEX[:-1]}",
    f"sha256:{HEX}a",
    f"sha256:{HEX.upper()}",
    f"SHA256:{HEX}",
    f"md5:{HEX[:32]}",
    "sha256:../../../../etc/passwd",
    f"../sha256:{HEX}",
    f" sha256:{HEX}",
    f"sha512:{HEX}",
]
BAD_REFERENCES = [
    "127.0.0.1:5000/repo:v1\n",
    "127.0.0.1:5000/repo\n:v1",
    "127.0.0.1:5000\n/repo:v1",
    "127.0.0.1:5000/../repo:v1",
    "127.0.0.1:5000/repo/..:v1",
    "127.0.0.1:5000/repo:../v1",
    "127.0.0.1:5000/repo:v1/../../x",
    "127.0.0.1:5000/re%2Fpo:v1",
    "127.0.0.1:5000/repo?x=1:v1",
    "127.0.0.1:99999/repo:v1",
    "127.0.0.1:5000/Repo:v1",
    f"127.0.0.1:5000/repo@sha256:{HEX}\n",
    "127.0.0.1:5000/repo@sha256:../../x",
    "[::1\n]:5000/repo:v1",
]
BAD_TAGS = ["", ".hidden", "-x", "a/b", "../x", "v1\n", "v1 ", "x" * 129, "v1?x", "v1#x", "ünicode"]


@pytest.mark.parametrize("text", BAD_DIGESTS)
def test_bad_digests_are_refused(text: str) -> None:
    with pytest.raises(InvalidReferenceError) as failure:
        Digest.parse(text)
    assert "\n" not in str(failure.value).replace("\\n", "")


def test_a_parsed_digest_is_safe_in_a_url_or_path() -> None:
    digest = Digest.parse(f"sha256:{HEX}")
    assert str(digest) == f"sha256:{HEX}" and digest.hex == HEX


@pytest.mark.parametrize("text", BAD_REFERENCES)
def test_bad_references_are_refused(text: str) -> None:
    with pytest.raises(InvalidReferenceError):
        parse_reference(text)


@pytest.mark.parametrize("tag", BAD_TAGS)
def test_bad_tags_are_refused(tag: str) -> None:
    with pytest.raises(InvalidReferenceError):
        validate_tag(tag)


@pytest.mark.parametrize("bad", ["sha256:../../../v2/other/blobs/x", f"sha256:{HEX}\n", f"sha256:{HEX}/x"])
@pytest.mark.parametrize("where", ["layer", "config", "child"])
def test_manifests_with_bad_digests_do_not_parse(bad: str, where: str) -> None:
    good = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 1, "digest": f"sha256:{HEX}"}
    evil = {**good, "digest": bad}
    if where == "child":
        document = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{**evil, "mediaType": "application/vnd.oci.image.manifest.v1+json"}],
        }
    else:
        document = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": evil if where == "config" else good,
            "layers": [evil] if where == "layer" else [good],
        }
    with pytest.raises(ManifestError) as failure:
        parse_manifest(orjson.dumps(document))
    assert "invalid digest" in str(failure.value)
