"""skopeo-format sync specs: skopeo's own examples, skopeo's naming (checked against skopeo 1.9), errors."""

from __future__ import annotations

import re
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from asyncsync.digest import Digest
from asyncsync.errors import InvalidReferenceError, SpecError
from asyncsync.registry.credentials import Credentials
from asyncsync.specs.load import load_spec
from asyncsync.specs.model import CopySettings, SyncSpec
from asyncsync.specs.skopeo import docker_source_spec
from tests.helpers.skopeo import skopeo_binary

DIGEST = "sha256:0000000000000000000000000000000011111111111111111111111111111111"

# skopeo-sync(1) "YAML file content", as in skopeo's docs (the images-by-semver block is from newer docs).
DOCS_EXAMPLE = """\
registry.example.com:
    images:
        busybox: []
        redis:
            - "1.0"
            - "2.0"
            - "sha256:0000000000000000000000000000000011111111111111111111111111111111"
    images-by-tag-regex:
        nginx: ^1\\.13\\.[12]-alpine-perl$
    images-by-semver:
        alpine: ">= 3.12.0"
    credentials:
        username: john
        password: this is a secret
    tls-verify: true
    cert-dir: /home/john/certs
quay.io:
    tls-verify: false
    images:
        coreos/etcd:
            - latest
"""


def write(tmp_path: Path, text: str, name: str = "sync.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load(path: Path, dest: str = "my-registry.local.lan/repo/", **options: Any) -> SyncSpec:
    return load_spec(path, destination=dest, **options)


def spec_error(tmp_path: Path, text: str, **options: Any) -> SpecError:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load(path, **options)
    return info.value


def destinations(spec: SyncSpec) -> list[str]:
    """Every explicit reference's destination, in spec order."""
    result = []
    for entry in spec.entries:
        selector = entry.sources[0]
        for tag, _ in entry.tags.tags:
            result.append(str(entry.destination_for(selector, selector.pattern, tag=tag, digest=None)))
        for digest, _ in entry.tags.digests:
            result.append(str(entry.destination_for(selector, selector.pattern, tag=None, digest=digest)))
    return result


def test_docs_example_parses_unchanged(tmp_path: Path) -> None:
    spec = load(write(tmp_path, DOCS_EXAMPLE))
    assert spec.kind == "skopeo"
    summary = [(e.origin.line, str(e.sources[0]), e.tags.describe()) for e in spec.entries]
    assert summary == [
        (3, "registry.example.com/busybox", "all tags"),
        (4, "registry.example.com/redis", "2 tag(s), 1 digest(s)"),
        (9, "registry.example.com/nginx", "include /^1\\.13\\.[12]-alpine-perl$/"),
        (11, "registry.example.com/alpine", "semver >= 3.12.0"),
        (20, "quay.io/coreos/etcd", "1 tag(s)"),
    ]
    example = spec.registry("registry.example.com")
    assert example is not None
    assert example.credentials == Credentials("john", "this is a secret")
    assert "secret" not in repr(example)
    assert (example.tls_verify, example.cert_dir) == (True, "/home/john/certs")
    quay = spec.registry("quay.io")
    assert quay is not None and (quay.tls_verify, quay.credentials) == (False, None)
    assert destinations(spec) == [
        "my-registry.local.lan/repo/redis:1.0",
        "my-registry.local.lan/repo/redis:2.0",
        f"my-registry.local.lan/repo/redis@{DIGEST}",
        "my-registry.local.lan/repo/etcd:latest",
    ]
    nginx = spec.entries[2].tags
    assert nginx.select(
        ["1.13.1-alpine-perl", "1.13.2-alpine-perl", "1.13.3-alpine-perl", "x1.13.1-alpine-perl"]
    ) == [
        "1.13.1-alpine-perl",
        "1.13.2-alpine-perl",
    ]
    alpine = spec.entries[3].tags
    assert alpine.select(["3.11.9", "3.12.0", "3.12.1", "4.0.0", "edge", "3.13.0-rc1"]) == [
        "3.12.0",
        "3.12.1",
        "4.0.0",
    ]
    assert spec.warnings == (f"{spec.file}:16: cert-dir '/home/john/certs' is not a directory",)


def test_skopeo_integration_test_specs_parse(tmp_path: Path) -> None:
    # Shapes used by skopeo's own integration tests: host:port keys, digests, several registries.
    spec = load(
        write(
            tmp_path,
            """
            registry.k8s.io:
              images:
                coredns/coredns:
                  - v1.8.0
                  - v1.7.1
                pause:
                - sha256:59eec8837a4d942cc19a52b8c09ea75121acc38114a2c68b98983ce9356b8610
              images-by-tag-regex:
                pause: ^[12]\\.0$  # regex string test

            localhost:5000:
              tls-verify: false
              images:
                quay/busybox:
                  - latest""",
        )
    )
    assert [str(e.sources[0]) for e in spec.entries] == [
        "registry.k8s.io/coredns/coredns",
        "registry.k8s.io/pause",
        "registry.k8s.io/pause",
        "localhost:5000/quay/busybox",
    ]
    assert spec.entries[2].tags.select(["1.0", "2.0", "3.0", "11.0"]) == ["1.0", "2.0"]


def test_null_images_value_means_every_tag_and_empty_registry_warns(tmp_path: Path) -> None:
    path = write(tmp_path, "example.com:\n  images:\n    app:\nother.example:\n")
    spec = load(path)
    assert spec.entries[0].tags.selects_all
    assert spec.warnings == (f"{path}:4: no images specified for registry 'other.example'",)
    example = spec.registry("example.com")
    assert example is not None and example.tls_verify is None


NAMING_SPEC = """\
registry.example.com:
  images:
    proj/app: ["1.0", "sha256:0000000000000000000000000000000011111111111111111111111111111111"]
    busybox: [latest]
docker.io:
  images:
    alpine: ["3.19"]
    library/nginx: ["1"]
quay.io:
  images:
    a/b/c: [x]
"""


@pytest.mark.parametrize("scoped", [False, True])
@pytest.mark.parametrize("dest", ["my-registry.local.lan/repo/", "my-registry.local.lan", "localhost:5000/x"])
def test_naming_matches_skopeo_sync_dry_run(tmp_path: Path, scoped: bool, dest: str) -> None:
    path = write(tmp_path, NAMING_SPEC)
    flags = ["--scoped"] if scoped else []
    args = ["sync", "--dry-run", *flags, "--src", "yaml", "--dest", "docker", str(path), dest]
    done = subprocess.run([skopeo_binary(), *args], capture_output=True, text=True, check=True, timeout=60)
    pairs = re.findall(r'from="docker://([^"]+)" to="docker://([^"]+)"', done.stderr + done.stdout)
    expected = sorted(to for _, to in pairs)  # skopeo logs in Go map order: compare sorted
    assert len(expected) == 6
    assert sorted(destinations(load(path, dest, scoped=scoped))) == expected


def test_append_suffix_goes_on_the_tag(tmp_path: Path) -> None:
    spec = load(
        write(tmp_path, "registry.example.com:\n  images:\n    busybox: [1-glibc, latest]\n"),
        append_suffix="-mirror",
    )
    assert destinations(spec) == [
        "my-registry.local.lan/repo/busybox:1-glibc-mirror",
        "my-registry.local.lan/repo/busybox:latest-mirror",
    ]


def test_append_suffix_with_a_digest_is_refused(tmp_path: Path) -> None:
    err = spec_error(tmp_path, f"example.com:\n  images:\n    app:\n      - {DIGEST}\n", append_suffix="-m")
    assert str(err).startswith(f"{err.file}:3: --append-suffix cannot apply to a digest reference (line 4)")


def test_copy_settings_come_from_the_command_line(tmp_path: Path) -> None:
    settings = CopySettings(multi_arch="all", format="oci")
    spec = load(write(tmp_path, "example.com:\n  images:\n    app: [v1]\n"), settings=settings)
    assert spec.entries[0].settings == settings


class TestDockerSource:
    def test_repository_means_every_tag(self) -> None:
        spec = docker_source_spec("registry.example.com/busybox", "my-registry.local.lan")
        entry = spec.entries[0]
        assert entry.tags.selects_all
        selector = entry.sources[0]
        assert str(entry.destination_for(selector, "busybox", tag="1-glibc", digest=None)) == (
            "my-registry.local.lan/busybox:1-glibc"
        )

    def test_keeps_the_destination_path_as_in_skopeos_docs(self) -> None:
        spec = docker_source_spec("registry.example.com/repo/busybox", "my-registry.local.lan/repo")
        entry = spec.entries[0]
        dest = entry.destination_for(entry.sources[0], "repo/busybox", tag="latest", digest=None)
        assert str(dest) == "my-registry.local.lan/repo/busybox:latest"

    def test_tag_and_digest_and_suffix_and_scoped(self) -> None:
        tagged = docker_source_spec("registry.example.com/busybox:1.36", "dst.example", append_suffix="-m")
        assert [t for t, _ in tagged.entries[0].tags.tags] == ["1.36"]
        assert destinations(tagged) == ["dst.example/busybox:1.36-m"]
        pinned = docker_source_spec(f"registry.example.com/busybox@{DIGEST}", "dst.example", scoped=True)
        assert pinned.entries[0].tags.digests == ((Digest.parse(DIGEST), 0),)
        assert destinations(pinned) == [f"dst.example/registry.example.com/busybox@{DIGEST}"]

    def test_bad_names_are_usage_errors(self) -> None:
        with pytest.raises(InvalidReferenceError):
            docker_source_spec("Registry.example.com/UPPER", "dst.example")
        with pytest.raises(InvalidReferenceError, match="invalid"):
            docker_source_spec("localhost:5000/app:1", "dst.example", scoped=True)


# -- validation errors: each names the file and the exact line ---------------------------------------------


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    err = spec_error(tmp_path, "quay.io:\n  images:\n    app: [v1]\n  tls-verfy: false\n")
    assert (
        str(err)
        == f"{err.file}:4: unknown key 'tls-verfy' in registry 'quay.io' (did you mean 'tls-verify'?)"
    )


def test_unknown_credentials_key(tmp_path: Path) -> None:
    err = spec_error(tmp_path, "quay.io:\n  credentials:\n    user: x\n")
    assert str(err).startswith(f"{err.file}:3: unknown key 'user' in 'credentials' of registry 'quay.io'")


def test_images_must_be_a_mapping(tmp_path: Path) -> None:
    err = spec_error(tmp_path, "quay.io:\n  images:\n    - app\n")
    assert str(err) == f"{err.file}:3: 'images' of registry 'quay.io' must be a mapping, not a list"


def test_tags_must_be_a_list(tmp_path: Path) -> None:
    err = spec_error(tmp_path, "quay.io:\n  images:\n    app: latest\n")
    assert str(err).startswith(f"{err.file}:3: 'images' entry 'app' of registry 'quay.io' must be a list")


def test_tls_verify_must_be_boolean(tmp_path: Path) -> None:
    err = spec_error(tmp_path, 'quay.io:\n  images:\n    app: []\n  tls-verify: "not a valid bool"\n')
    assert str(err).startswith(f"{err.file}:4: 'tls-verify' of registry 'quay.io' must be true or false")


def test_regex_that_re2_refuses(tmp_path: Path) -> None:
    err = spec_error(tmp_path, "quay.io:\n  images-by-tag-regex:\n    app: '^v(?!1)'\n")
    assert str(err) == (
        f"{err.file}:3: invalid regex '^v(?!1)' in 'images-by-tag-regex' entry 'app' of registry 'quay.io': "
        "invalid perl operator: (?! (RE2 has no lookahead)"
    )


def test_bad_semver_range(tmp_path: Path) -> None:
    err = spec_error(tmp_path, "quay.io:\n  images:\n    a: []\n  images-by-semver:\n    app: '>= one'\n")
    assert str(err).startswith(
        f"{err.file}:5: invalid semver range '>= one' in 'images-by-semver' entry 'app'"
    )


def test_bad_tag_and_bad_digest(tmp_path: Path) -> None:
    err = spec_error(tmp_path, "quay.io:\n  images:\n    app:\n      - ok\n      - -bad\n")
    assert str(err).startswith(f"{err.file}:5: invalid tag '-bad'")
    err = spec_error(tmp_path, "quay.io:\n  images:\n    app:\n      - sha256:abc\n")
    assert str(err).startswith(f"{err.file}:4: invalid digest 'sha256:abc'")


def test_bad_repository_name(tmp_path: Path) -> None:
    err = spec_error(tmp_path, "quay.io:\n  images:\n    ok: []\n    Proj/App: []\n")
    assert str(err).startswith(f"{err.file}:4: invalid repository name")
    assert "(registry 'quay.io')" in str(err)


def test_duplicate_key(tmp_path: Path) -> None:
    err = spec_error(tmp_path, "quay.io:\n  images:\n    app: [v1]\n    app: [v2]\n")
    assert str(err) == f"{err.file}:4: duplicate key 'app' (first at line 3)"


def test_same_destination_from_two_repositories_names_both_lines(tmp_path: Path) -> None:
    text = "quay.io:\n  images:\n    team-a/app: [v1]\n    team-b/app:\n      - v2\n      - v1\n"
    err = spec_error(tmp_path, text)
    assert str(err) == (
        f"{err.file}:6: destination my-registry.local.lan/repo/app:v1 is also written by line 3 "
        "(from quay.io/team-a/app:v1; here from quay.io/team-b/app:v1)"
    )
    # --scoped keeps them apart; the same source listed twice is not a conflict.
    assert len(load(write(tmp_path, text), scoped=True).entries) == 2
    load(write(tmp_path, "quay.io:\n  images:\n    app: [v1, v1]\n  images-by-tag-regex:\n    app: v1\n"))


def test_scoped_destination_that_is_not_a_valid_name(tmp_path: Path) -> None:
    err = spec_error(tmp_path, "localhost:5000:\n  images:\n    a/b/c: []\n", scoped=True)
    assert str(err).startswith(f"{err.file}:3: invalid destination for localhost:5000/a/b/c:")


def test_same_host_twice_with_different_settings(tmp_path: Path) -> None:
    text = "quay.io:\n  images: {a: []}\nquay.io/team:\n  tls-verify: false\n  images: {b: []}\n"
    err = spec_error(tmp_path, text)
    assert str(err).startswith(
        f"{err.file}:3: registry host 'quay.io' is configured again with different settings"
    )


def test_document_must_be_a_mapping_of_registries(tmp_path: Path) -> None:
    err = spec_error(tmp_path, "- quay.io\n")
    assert str(err) == f"{err.file}:1: the spec (a mapping of registry names) must be a mapping, not a list"
    err = spec_error(tmp_path, "{}\n")
    assert str(err) == f"{err.file}:1: the spec lists no registries"


def test_credentials_must_be_a_mapping(tmp_path: Path) -> None:
    err = spec_error(tmp_path, "quay.io:\n  images: {a: []}\n  credentials: john\n")
    assert str(err) == f"{err.file}:3: 'credentials' of registry 'quay.io' must be a mapping, not a string"


def test_invalid_registry_key(tmp_path: Path) -> None:
    err = spec_error(tmp_path, "quay.io:\n  images: {a: []}\nbad..host:\n  images: {a: []}\n")
    assert str(err) == f"{err.file}:3: invalid registry host 'bad..host'"
