"""The native spec format: documented examples, mappings, settings, secrets, and every validation error."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from asyncsync.digest import Digest
from asyncsync.errors import SpecError
from asyncsync.manifest import Platform
from asyncsync.registry.credentials import Credentials
from asyncsync.specs.load import load_spec
from asyncsync.specs.model import SyncSpec

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DIGEST = "sha256:" + "ab" * 32


def write(tmp_path: Path, text: str, name: str = "sync.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def native(body: str) -> str:
    return "version: 1\n" + textwrap.dedent(body)


def spec_error(tmp_path: Path, body: str) -> SpecError:
    path = write(tmp_path, native(body))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return info.value


def assert_error(err: SpecError, line: int, message: str) -> None:
    assert str(err) == f"{err.file}:{line}: {message}"


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARBOR_A_PASSWORD", "pw-a")
    monkeypatch.setenv("HARBOR_B_PASSWORD", "pw-b")
    monkeypatch.setenv("MIRROR_PASSWORD", "pw-m")


@pytest.mark.usefixtures("secrets")
def test_harbor_migration_example(tmp_path: Path) -> None:
    spec = load_spec(CONFIGS / "harbor-migration.yaml")
    assert spec.kind == "native"
    assert (spec.defaults.parallel, spec.defaults.parallel_blobs, spec.defaults.retry_delay) == (8, 16, 2.0)
    source = spec.registry("harbor-a.example.com")
    assert source is not None and source.credentials == Credentials("robot$migration", "pw-a")
    target = spec.registry("harbor-b.example.com")
    assert target is not None and (target.requests_per_second, target.max_concurrent_requests) == (50.0, 16)
    everything, ledger = spec.entries
    selector = everything.sources[0]
    assert (selector.is_glob, selector.literal_prefix) == (True, "payments")
    assert selector.matches("payments/api") and selector.matches("payments/batch/worker")
    assert not selector.matches("payments") and not selector.matches("paymentsx/api")
    dest = everything.destination_for(selector, "payments/batch/worker", tag="1.0", digest=None)
    assert str(dest) == "harbor-b.example.com/fintech/batch/worker:1.0"
    one = ledger.destination_for(ledger.sources[0], "legacy/ledger-service", tag="2.1.0", digest=None)
    assert str(one) == "harbor-b.example.com/fintech/ledger:2.1.0"
    tags = [
        "1.9.0",
        "2.0.0",
        "2.1.0-rc1",
        "2.1.0",
        "2.2.0",
        "2.3.0",
        "2.4.0-beta",
        "2.4.0",
        "3.0.0",
        "latest",
    ]
    assert ledger.tags.select(tags) == ["3.0.0", "2.4.0", "2.3.0", "2.2.0", "2.1.0"]


@pytest.mark.usefixtures("secrets")
def test_upstream_mirror_example() -> None:
    spec = load_spec(CONFIGS / "upstream-mirror.yaml")
    amd64, arm64 = Platform("linux", "amd64"), Platform("linux", "arm64")
    assert spec.defaults.settings.platforms == (amd64, arm64)
    assert all(e.settings.skip_existing and e.settings.multi_arch == "all" for e in spec.entries)
    hub = spec.registry("docker.io")
    assert hub is not None and hub.no_creds and hub.requests_per_second == 5.0
    alpine, pair, controller = spec.entries
    assert [t for t, _ in alpine.tags.tags] == ["3.19", "3.20", "3.20.3"] and not alpine.tags.needs_tag_list
    assert [str(s) for s in pair.sources] == ["docker.io/library/nginx", "docker.io/library/redis"]
    dest = pair.destination_for(pair.sources[1], "library/redis", tag="7.2.4-alpine", digest=None)
    assert str(dest) == "mirror.internal.example/upstream/redis:7.2.4-alpine"
    assert pair.tags.select(["7.2.4-alpine", "7.2.5-alpine", "7.0.0-alpine", "6.2.0-alpine", "7.2.5"]) == [
        "7.2.5-alpine",
        "7.2.4-alpine",
        "7.0.0-alpine",
    ]
    assert controller.settings.format == "oci"
    assert controller.tags.select(["v1.8.9", "v1.9.0", "v1.10.1", "v2.0.0"]) == ["v1.10.1", "v1.9.0"]


def test_skopeo_example_in_configs_loads() -> None:
    spec = load_spec(CONFIGS / "skopeo-sync.yaml", destination="my-registry.local.lan/repo/")
    assert spec.kind == "skopeo" and len(spec.entries) == 5


def test_pull_quota_reserve_default(tmp_path: Path) -> None:
    spec = load_spec(
        write(
            tmp_path,
            native(
                "defaults:\n  pull-quota-reserve: 10\nsync:\n  - from: a.example/x\n    to: b.example/x\n"
            ),
        )
    )
    assert spec.defaults.pull_quota_reserve == 10


def test_full_featured_spec(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("s3cret\n")
    (tmp_path / "auth.json").write_text("{}")
    (tmp_path / "certs").mkdir()
    spec = load_spec(
        write(
            tmp_path,
            native(
                f"""\
                defaults:
                  retry-times: 0
                  retry-delay: 500ms
                  tls-verify: false
                  max-concurrent-requests: 4
                  requests-per-second: 2.5
                  chunk-size: 8MiB
                  format: v2s2
                registries:
                  a.example:
                    credentials: {{username: u, password-file: secret.txt}}
                    cert-dir: certs
                  b.example:
                    authfile: auth.json
                    tls-verify: true
                    chunk-size: 65536
                sync:
                  - from: a.example/p/*
                    to: b.example/
                    tags: {{include: '^v', exclude: rc}}
                    multi-arch: index-only
                    tag-suffix: -m
                  - from: a.example/q/app
                    to: b.example/x/*
                    tags: [v1, '{DIGEST}']
                    platforms: all
                    format: oci
                  - from: alpine
                    to: b.example/hub/alpine
                    tags:
                """
            ),
        )
    )
    d = spec.defaults
    assert (d.retry_times, d.retry_delay, d.tls_verify, d.max_concurrent_requests) == (0, 0.5, False, 4)
    assert (d.requests_per_second, d.chunk_size) == (2.5, 8 << 20)
    a = spec.registry("a.example")
    assert a is not None and a.credentials == Credentials("u", "s3cret")
    assert a.cert_dir == str(tmp_path / "certs")
    b = spec.registry("b.example")
    assert b is not None and (b.authfile, b.tls_verify, b.chunk_size) == (
        str(tmp_path / "auth.json"),
        True,
        65536,
    )
    first, second, third = spec.entries
    assert first.settings.multi_arch == "index-only" and first.settings.format == "v2s2"
    assert (str(first.tags.include), str(first.tags.exclude), first.tags.digests) == ("^v", "rc", ())
    assert (
        str(first.destination_for(first.sources[0], "p/app", tag="v1", digest=None)) == "b.example/app:v1-m"
    )
    assert second.settings.multi_arch == "all" and second.settings.format == "oci"
    assert second.tags.tags == (("v1", 26),) and second.tags.digests == ((Digest.parse(DIGEST), 26),)
    assert (
        str(second.destination_for(second.sources[0], "q/app", tag="v1", digest=None)) == "b.example/x/app:v1"
    )
    pinned = second.destination_for(second.sources[0], "q/app", tag=None, digest=Digest.parse(DIGEST))
    assert str(pinned) == f"b.example/x/app@{DIGEST}"
    assert str(third.sources[0]) == "docker.io/library/alpine" and third.tags.selects_all
    assert str(third.destination_for(third.sources[0], "library/alpine", tag="3", digest=None)) == (
        "b.example/hub/alpine:3"
    )


def test_globs_match_one_component_with_star_and_any_depth_with_double_star(tmp_path: Path) -> None:
    spec = load_spec(
        write(
            tmp_path,
            native(
                """\
                sync:
                  - {from: r.example/team/app-*, to: s.example/}
                  - {from: r.example/**, to: docker.io/mirror/}
                """
            ),
        )
    )
    star, everything = (e.sources[0] for e in spec.entries)
    assert (
        star.matches("team/app-api") and not star.matches("team/app-api/x") and not star.matches("team/web")
    )
    assert star.literal_prefix == "team" and star.remainder("team/app-api") == "app-api"
    assert everything.literal_prefix == "" and everything.matches("a/b/c")
    dest = spec.entries[1].destination_for(everything, "a/b", tag="1", digest=None)
    assert str(dest) == "docker.io/mirror/a/b:1"


# -- validation errors: exact file:line prefixes ------------------------------------------------------------


def test_unknown_entry_key_suggests(tmp_path: Path) -> None:
    err = spec_error(tmp_path, "sync:\n  - form: a.example/x\n    to: b.example/\n")
    assert_error(err, 3, "unknown key 'form' in sync entry 1 (did you mean 'from'?)")


def test_unknown_top_level_and_defaults_keys(tmp_path: Path) -> None:
    assert_error(
        spec_error(tmp_path, "sinc: []\n"), 2, "unknown key 'sinc' in the spec (did you mean 'sync'?)"
    )
    err = spec_error(tmp_path, "defaults:\n  paralel: 3\nsync: []\n")
    assert_error(err, 3, "unknown key 'paralel' in 'defaults' (did you mean 'parallel'?)")


def test_missing_from_or_to(tmp_path: Path) -> None:
    assert_error(spec_error(tmp_path, "sync:\n  - to: b.example/\n"), 3, "sync entry 1 needs a 'from' key")
    assert_error(spec_error(tmp_path, "sync:\n  - from: a.example/x\n"), 3, "sync entry 1 needs a 'to' key")


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("sync: {}\n", 2, "'sync' must be a list, not a mapping"),
        ("sync: []\n", 2, "'sync' lists no entries"),
        (
            "sync:\n  - from: [a.example/x, a.example/p/*]\n    to: b.example/one\n",
            4,
            "'to' of sync entry 1 names one repository but 'from' can match several; "
            "end it with '/' to put each repository under it",
        ),
        (
            "sync:\n  - from: a.example/x:1\n    to: b.example/\n",
            3,
            "'from' of sync entry 1 names repositories; put tags under 'tags' ('a.example/x:1')",
        ),
        (
            "sync:\n  - from: a.example/**/x\n    to: b.example/\n",
            3,
            "invalid source glob 'a.example/**/x' in sync entry 1: "
            "'**' is only allowed as the last path component",
        ),
        (
            "sync:\n  - from: a.example/x\n    to: b.example/Y/\n",
            4,
            "invalid destination 'b.example/Y/' in sync entry 1: invalid repository name 'Y' in "
            "'b.example/Y': must be lowercase",
        ),
        (
            "sync:\n  - from: a.example/x\n    to: b.example/\n    platforms: [linux]\n",
            5,
            "invalid platform 'linux' in sync entry 1 (expected os/arch[/variant])",
        ),
        (
            "sync:\n  - from: a.example/x\n    to: b.example/\n    platforms: [linux/amd64]\n"
            "    multi-arch: system\n",
            6,
            "a 'platforms' list needs multi-arch 'all' in sync entry 1",
        ),
        (
            "sync:\n  - from: a.example/x\n    to: b.example/\n    format: v2s1\n",
            5,
            "'format' of sync entry 1 must be one of oci, v2s2",
        ),
        (
            "sync:\n  - from: a.example/x\n    to: b.example/\n    multi-arch: some\n",
            5,
            "'multi-arch' of sync entry 1 must be one of all, system, index-only",
        ),
        (
            "sync:\n  - from: a.example/x\n    to: b.example/\n    skip-existing: maybe\n",
            5,
            "'skip-existing' of sync entry 1 must be true or false, not a string 'maybe'",
        ),
        (
            "sync:\n  - from: a.example/x\n    to: b.example/\n    tag-suffix: /x\n",
            5,
            "'tag-suffix' of sync entry 1 may only contain letters, digits, '_', '.', '-'",
        ),
        (
            "sync:\n  - from: a.example/x\n    to: b.example/\n    tags: [a, 'sha256:" + "ab" * 32 + "']\n"
            "    tag-suffix: -m\n",
            6,
            "'tag-suffix' cannot apply to the digests of sync entry 1",
        ),
        (
            "sync:\n  - from: a.example/x\n    to: b.example/\n    tags: {include: [a], exclude: b}\n",
            5,
            "'exclude' cannot be combined with a list of tags in 'tags' of sync entry 1",
        ),
        (
            "sync:\n  - from: a.example/x\n    to: b.example/\n    tags:\n      latest: 0\n",
            6,
            "'latest' of sync entry 1 must be at least 1, not 0",
        ),
        (
            "sync:\n  - from: a.example/x\n    to: b.example/\n    tags:\n      include: '(a'\n",
            6,
            "invalid regex '(a' in 'include' of sync entry 1: missing ): (a",
        ),
        (
            "sync:\n  - from: a.example/x\n    to: b.example/\n    tags:\n      semver: '^one'\n",
            6,
            "invalid semver range '^one' in 'tags' of sync entry 1: improper constraint '^one'",
        ),
        (
            "sync:\n  - from: a.example/x\n    to: b.example/\n    tags: []\n",
            5,
            "'tags' of sync entry 1 is an empty list (leave 'tags' out to copy every tag)",
        ),
        (
            "sync:\n  - from: a.example/x\n    to: b.example/\n    tags: latest\n",
            5,
            "'tags' of sync entry 1 (a list of tags or a mapping) must be a mapping, not a string",
        ),
        (
            "sync:\n  - from: a.example/x\n    to: b.example/\n    tags: {digests: [sha256:12]}\n",
            5,
            "invalid digest 'sha256:12': expected sha256:<64 hex characters> in 'tags' of sync entry 1",
        ),
        (
            "sync:\n  - from: a.example/x\n    to: b.example/\n    tags:\n      include: [ok, -no]\n",
            6,
            "invalid tag '-no' in 'include' of sync entry 1",
        ),
        ("sync:\n  - from: []\n    to: b.example/\n", 3, "'from' of sync entry 1 is an empty list"),
        (
            "sync:\n  - from: a.example/x\n    to: b.example/*/x\n",
            4,
            "'to' of sync entry 1 must be a repository or a prefix ending in '/', not 'b.example/*/x'",
        ),
        (
            "sync:\n  - from: a.example/Bad\n    to: b.example/\n",
            3,
            "invalid source 'a.example/Bad' in sync entry 1: invalid repository name 'Bad' in "
            "'a.example/Bad': must be lowercase",
        ),
        (
            "sync:\n  - from: a.example/x\n    to: b.example/\n    platforms: []\n",
            5,
            "'platforms' of sync entry 1 must not be empty (use 'all')",
        ),
        ("sync:\n  - a.example/x\n", 3, "sync entry 1 must be a mapping, not a string"),
    ],
)
def test_entry_errors(tmp_path: Path, body: str, line: int, message: str) -> None:
    assert_error(spec_error(tmp_path, body), line, message)


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (
            "defaults: {retry-delay: soon}\nsync: []\n",
            2,
            "'retry-delay' of 'defaults': invalid duration 'soon' (e.g. 30s, 1m30s, 1.5h, 300ms)",
        ),
        (
            "defaults: {chunk-size: 10}\nsync: []\n",
            2,
            "'chunk-size' of 'defaults' must be between 1KiB and 1GiB",
        ),
        (
            "defaults: {chunk-size: 4 XB}\nsync: []\n",
            2,
            "'chunk-size' of 'defaults': invalid size '4 XB' (e.g. 64MiB, 1GB, 512k, 1048576)",
        ),
        ("defaults: {parallel: 0}\nsync: []\n", 2, "'parallel' of 'defaults' must be at least 1, not 0"),
        (
            "defaults: {parallel: true}\nsync: []\n",
            2,
            "'parallel' of 'defaults' must be a whole number, not a boolean",
        ),
        (
            "defaults: {requests-per-second: -1}\nsync: []\n",
            2,
            "'requests-per-second' of 'defaults' must be a positive number, not -1",
        ),
        (
            "defaults:\n  platforms: [linux/amd64]\n  multi-arch: system\nsync: []\n",
            4,
            "a 'platforms' list needs multi-arch 'all' in 'defaults'",
        ),
    ],
)
def test_defaults_errors(tmp_path: Path, body: str, line: int, message: str) -> None:
    assert_error(spec_error(tmp_path, body), line, message)


def test_registry_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_PASSWORD", raising=False)
    cases = [
        (
            "registries:\n  a.example:\n    credentials: {username: u, password-env: NOPE_PASSWORD}\n",
            4,
            "environment variable NOPE_PASSWORD (password of registry 'a.example') is not set",
        ),
        (
            "registries:\n  a.example:\n    credentials: {username: u, password-file: missing.txt}\n",
            4,
            f"cannot read password file '{tmp_path / 'missing.txt'}': No such file or directory",
        ),
        (
            "registries:\n  a.example:\n    credentials:\n"
            "      username: u\n      password: p\n      password-env: X\n",
            7,
            "'credentials' of registry 'a.example' need exactly one of "
            "'password', 'password-env', 'password-file'",
        ),
        (
            "registries:\n  a.example:\n    credentials: {password: p}\n",
            4,
            "'credentials' of registry 'a.example' need a 'username'",
        ),
        (
            "registries:\n  a.example:\n    credentials: {username: u, password: p}\n    no-creds: true\n",
            5,
            "'no-creds' and 'credentials' conflict in registry 'a.example'",
        ),
        (
            "registries:\n  a.example:\n    authfile: nowhere.json\n",
            4,
            f"authfile '{tmp_path / 'nowhere.json'}' of registry 'a.example' does not exist",
        ),
        (
            "registries:\n  a.example:\n    cert-dir: nowhere\n",
            4,
            f"cert-dir '{tmp_path / 'nowhere'}' of registry 'a.example' is not a directory",
        ),
        (
            "defaults:\n  pull-quota-reserve: -1\n",
            3,
            "'pull-quota-reserve' of 'defaults' must be at least 0, not -1",
        ),
        (
            "registries:\n  a.example:\n    max-concurrent-requests: 0\n",
            4,
            "'max-concurrent-requests' of registry 'a.example' must be at least 1, not 0",
        ),
        (
            "registries:\n  a.example:\n    tls-verfy: true\n",
            4,
            "unknown key 'tls-verfy' in registry 'a.example' (did you mean 'tls-verify'?)",
        ),
        (
            "registries:\n  myregistry:\n    tls-verify: true\n",
            3,
            "invalid registry host 'myregistry' (expected e.g. registry.example.com)",
        ),
        ("registries:\n  a.example: {}\n  a.example: {}\n", 4, "duplicate key 'a.example' (first at line 3)"),
        (
            "registries:\n  docker.io: {}\n  index.docker.io: {}\n",
            4,
            "registry 'docker.io' is configured twice (first at line 3)",
        ),
        (
            "registries:\n  a..example: {}\n",
            3,
            "invalid registry host 'a..example' (expected e.g. registry.example.com)",
        ),
    ]
    for body, line, message in cases:
        assert_error(spec_error(tmp_path, body + "sync: []\n"), line, message)


def test_password_file_that_is_empty(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("\n")
    err = spec_error(
        tmp_path, "registries:\n  a.example:\n    credentials: {username: u, password-file: empty.txt}\n"
    )
    assert_error(err, 4, f"password file '{tmp_path / 'empty.txt'}' is empty")


def test_version_errors(tmp_path: Path) -> None:
    for text, message in [
        ("version: 2\nsync: []\n", "unsupported spec version 2 (this asyncsync reads version 1)"),
        ("version: one\nsync: []\n", "'version' must be a whole number, not a string"),
    ]:
        path = write(tmp_path, text)
        with pytest.raises(SpecError) as info:
            load_spec(path)
        assert_error(info.value, 1, message)
    path = write(tmp_path, "version: 1\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert_error(info.value, 1, "the spec has no 'sync' entries")


def test_duplicate_explicit_destination_names_both_lines(tmp_path: Path) -> None:
    err = spec_error(
        tmp_path,
        """\
        sync:
          - from: a.example/team-a/app
            to: b.example/apps/
            tags: [v1]
          - from: a.example/team-b/app
            to: b.example/apps/
            tags:
              - v2
              - v1
        """,
    )
    assert_error(
        err,
        10,
        "destination b.example/apps/app:v1 is also written by line 5 "
        "(from a.example/team-a/app:v1; here from a.example/team-b/app:v1)",
    )


def test_same_source_twice_with_other_settings_is_a_conflict_but_not_with_the_same(tmp_path: Path) -> None:
    item = "  - {from: a.example/x, to: b.example/, tags: [v1]}\n"
    same = "sync:\n" + item + item
    spec = load_spec(write(tmp_path, native(same)))
    assert isinstance(spec, SyncSpec) and len(spec.entries) == 2
    other = same.replace("tags: [v1]}\n  - {", "tags: [v1]}\n  - {format: oci, ", 1)
    err = spec_error(tmp_path, other)
    assert str(err).startswith(f"{err.file}:4: destination b.example/x:v1 is also written by line 3")


def test_durations_and_sizes_use_the_one_grammar(tmp_path: Path) -> None:
    """Go durations and every size unit of asyncsync.units, in the spec as on the command line."""
    body = (
        "defaults:\n  retry-delay: 1m30s\n  chunk-size: 1.5MiB\n"
        "registries:\n  b.example: {chunk-size: 512k}\n"
        "sync:\n  - from: a.example/x\n    to: b.example/\n"
    )
    spec = load_spec(write(tmp_path, native(body)))
    assert spec.defaults.retry_delay == 90.0
    assert spec.defaults.chunk_size == 3 << 19
    assert spec.registries[0].chunk_size == 512_000
