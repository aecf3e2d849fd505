"""Policy scopes per transport and the most-specific-first lookup (containers/image v5.22)."""

from __future__ import annotations

import os
from pathlib import Path

from asyncsync.signature.evaluate import requirements_for
from asyncsync.signature.policy import parse_policy
from asyncsync.signature.scopes import docker_namespaces, image_scopes, validate_scope
from asyncsync.transports import parse_image_name

DIGEST = "sha256:" + "c" * 64


def test_docker_scopes() -> None:
    identity, namespaces = image_scopes(parse_image_name("docker://registry.example.com:5000/ns/app:1"))
    assert identity == "registry.example.com:5000/ns/app:1"
    assert namespaces == [
        "registry.example.com:5000/ns/app",
        "registry.example.com:5000/ns",
        "registry.example.com:5000",
        "*.example.com",
        "*.com",
    ]
    assert (
        image_scopes(parse_image_name(f"docker://busybox@{DIGEST}"))[0]
        == f"docker.io/library/busybox@{DIGEST}"
    )
    # a tag pinned to a digest (how sync copies) counts as the tag
    assert image_scopes(parse_image_name(f"docker://busybox:1@{DIGEST}"))[0] == "docker.io/library/busybox:1"


def test_path_scopes(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    os.symlink(real, link)
    identity, namespaces = image_scopes(parse_image_name(f"dir:{link}/img"))
    assert identity == f"{real}/img"
    assert namespaces[0] == str(real) and "/" not in namespaces
    identity, namespaces = image_scopes(parse_image_name(f"oci:{real}:tag"))
    assert identity == str(real) and namespaces[0] == str(real)
    assert image_scopes(parse_image_name(f"docker-archive:{real}/a.tar")) == ("", [])


def test_lookup_most_specific_first() -> None:
    policy = parse_policy(
        """{"default": [{"type": "reject"}], "transports": {"docker": {
        "example.com/ns/app:1": [{"type": "insecureAcceptAnything"}],
        "example.com/ns": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/ns"}],
        "*.com": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/com"}],
        "": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/any"}]}}}"""
    )

    def scope(name: str) -> str:
        return requirements_for(policy, parse_image_name(name))[0]

    assert scope("docker://example.com/ns/app:1") == "example.com/ns/app:1"
    assert scope("docker://example.com/ns/app:2") == "example.com/ns"
    assert scope("docker://example.com/other/app:2") == "*.com"
    assert scope("docker://example.org/app:2") == ""
    assert scope("dir:/tmp/x") == "default"


def test_scope_validation() -> None:
    assert validate_scope("dir", "/a/b") is None
    assert validate_scope("oci", "a/b") is not None
    assert validate_scope("docker-daemon", DIGEST) is not None
    assert validate_scope("docker-daemon", "busybox:latest") is None
    assert validate_scope("docker", "anything goes") is None
    assert (
        docker_namespaces(parse_image_name("docker://localhost:5000/a:1").docker_reference())[-1]
        == "localhost:5000"
    )  # type: ignore[arg-type]
