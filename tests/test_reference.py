"""Docker reference grammar: normalisation, tags, digests, and precise errors for bad names."""

from __future__ import annotations

import pytest

from asyncsync.digest import Digest
from asyncsync.errors import InvalidReferenceError, UsageError
from asyncsync.reference import ImageName, parse_reference, parse_repository, validate_tag

HEX = "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("alpine", "docker.io", "library/alpine", "latest", None),
        ("alpine:3.19", "docker.io", "library/alpine", "3.19", None),
        ("user/app", "docker.io", "user/app", "latest", None),
        ("index.docker.io/user/app:v1", "docker.io", "user/app", "v1", None),
        ("docker.io/library/alpine", "docker.io", "library/alpine", "latest", None),
        ("quay.io/org/app:1.0", "quay.io", "org/app", "1.0", None),
        ("localhost/app", "localhost", "app", "latest", None),
        ("localhost:5000/a/b/c:tag", "localhost:5000", "a/b/c", "tag", None),
        ("127.0.0.1:5000/repo", "127.0.0.1:5000", "repo", "latest", None),
        ("[::1]:5000/repo:t", "[::1]:5000", "repo", "t", None),
        (f"host.example/repo@sha256:{HEX}", "host.example", "repo", None, f"sha256:{HEX}"),
        (f"host.example/repo:t@sha256:{HEX}", "host.example", "repo", "t", f"sha256:{HEX}"),
        ("host.example/a__b/c-d/e.f/g--h:T_1.x-y", "host.example", "a__b/c-d/e.f/g--h", "T_1.x-y", None),
    ],
)
def test_parse_and_normalise(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    name = parse_reference(text)
    assert (name.registry, name.repository, name.tag) == (registry, repository, tag)
    assert (str(name.digest) if name.digest else None) == digest


def test_no_default_tag_when_asked() -> None:
    assert parse_reference("host.example/repo", default_tag=False).tag is None


def test_name_properties() -> None:
    name = parse_reference("alpine:3")
    assert name.name == "docker.io/library/alpine"
    assert name.familiar_name == "alpine"
    assert str(name) == "docker.io/library/alpine:3"
    assert name.reference == "3"
    pinned = name.with_digest(Digest.parse(f"sha256:{HEX}"))
    assert pinned.reference == f"sha256:{HEX}"
    assert str(pinned) == f"docker.io/library/alpine:3@sha256:{HEX}"
    assert parse_reference("quay.io/a/b").familiar_name == "quay.io/a/b"
    assert name.with_tag("4").tag == "4"
    assert name.without_tag_or_digest() == ImageName("docker.io", "library/alpine")


def test_tag_length_limit() -> None:
    assert parse_reference("h.example/r:" + "t" * 128).tag == "t" * 128
    with pytest.raises(InvalidReferenceError, match="longer than 128"):
        parse_reference("h.example/r:" + "t" * 129)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty image reference"),
        ("h.example/repo:x y", "invalid tag 'x y'"),
        ("h.example/repo:-x", "invalid tag '-x'"),
        ("h.example/Repo", "must be lowercase"),
        ("h.example/re..po", "invalid repository path component 're..po'"),
        ("h.example/repo/", "invalid repository path component ''"),
        ("h.example:99999/repo", "invalid port '99999'"),
        ("h.example:abc/repo", "invalid port 'abc'"),
        ("bad_host.example/repo", "invalid registry host 'bad_host.example'"),
        ("h.example/repo@sha256:abc", "invalid digest 'sha256:abc'"),
        ("h.example/repo@md5:" + "a" * 32, "invalid digest"),
        (":tag", "missing repository name"),
        ("h.example/" + "a" * 260, "longer than 255"),
    ],
)
def test_invalid_references_name_the_bad_part(text: str, message: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        parse_reference(text)
    assert message in str(info.value)
    assert isinstance(info.value, UsageError)  # exit code 2 in the CLI


def test_parse_repository_refuses_tag_and_digest() -> None:
    assert parse_repository("h.example/a/b") == ImageName("h.example", "a/b")
    with pytest.raises(InvalidReferenceError, match="without tag or digest"):
        parse_repository("h.example/a/b:t")
    with pytest.raises(InvalidReferenceError, match="without tag or digest"):
        parse_repository(f"h.example/a/b@sha256:{HEX}")


def test_validate_tag_names_context() -> None:
    assert validate_tag("v1.2") == "v1.2"
    with pytest.raises(InvalidReferenceError, match=r"invalid tag 'a/b' in 'h\.example/r'"):
        validate_tag("a/b", context="h.example/r")
