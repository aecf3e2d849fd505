"""registries.d: merging files, scope precedence, lookaside names, sigstore attachments."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from asyncsync.digest import Digest
from asyncsync.errors import PolicyError
from asyncsync.reference import parse_reference
from asyncsync.signature.registries_d import (
    SYSTEM_REGISTRIES_D,
    load_registries_d,
    registries_d_path,
    signature_url,
)

DIGEST = Digest.parse("sha256:" + "d" * 64)


def write(directory: Path, name: str, text: str) -> None:
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(text)


def test_scopes_staging_and_old_names(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "default-docker:\n  lookaside: https://sigs.example/default\n")
    write(
        tmp_path,
        "b.yaml",
        "docker:\n"
        "  registry.example:\n    sigstore: file:///old/name\n    sigstore-staging: file:///old/staging\n"
        "  registry.example/team:\n    lookaside: https://sigs.example/team\n"
        "    lookaside-staging: file:///staging/team\n    use-sigstore-attachments: true\n",
    )
    write(tmp_path, "ignored.yml", "this: [is not read")
    config = load_registries_d(str(tmp_path))
    team = parse_reference("registry.example/team/app:1")
    other = parse_reference("registry.example/other/app:1")
    elsewhere = parse_reference("docker.io/library/busybox:1")
    assert config.lookaside_base(team, write=False) == "https://sigs.example/team/team/app"
    assert config.lookaside_base(team, write=True) == "file:///staging/team/team/app"
    assert config.lookaside_base(other, write=False) == "file:///old/name/other/app"
    assert config.lookaside_base(other, write=True) == "file:///old/staging/other/app"
    assert config.lookaside_base(elsewhere, write=True) == "https://sigs.example/default/library/busybox"
    assert config.use_sigstore_attachments(team) and not config.use_sigstore_attachments(other)
    base = config.lookaside_base(other, write=False)
    assert signature_url(base, DIGEST, 0) == f"file:///old/name/other/app@sha256={'d' * 64}/signature-1"


def test_built_in_store_when_nothing_is_configured(tmp_path: Path, isolated_home: Path) -> None:
    config = load_registries_d(str(tmp_path / "missing"))
    base = config.lookaside_base(parse_reference("example.com/a/b:1"), write=True)
    store = (
        "/var/lib/containers/sigstore"
        if os.geteuid() == 0
        else f"{isolated_home}/.local/share/containers/sigstore"
    )
    assert base == f"file://{store}/a/b"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.yaml": "default-docker:\n", "b.yaml": "default-docker:\n  lookaside: file:///x\n"}, None),
        (
            {
                "a.yaml": "default-docker:\n  lookaside: file:///x\n",
                "b.yaml": "default-docker:\n  lookaside: file:///y\n",
            },
            '"default-docker" defined both',
        ),
        (
            {
                "a.yaml": "docker:\n  h:\n    lookaside: file:///x\n",
                "b.yaml": "docker:\n  h:\n    lookaside: file:///y\n",
            },
            '"docker" namespace "h" defined both',
        ),
        ({"a.yaml": "docker:\n  h:\n    lookaside: [1]\n"}, "lookaside must be a URL string"),
        ({"a.yaml": "docker:\n  h:\n   lookaside: x\n  bad"}, "a.yaml:"),
        ({"a.yaml": "docker:\n  h:\n    use-sigstore-attachments: maybe\n"}, "must be true or false"),
    ],
)
def test_bad_configuration(tmp_path: Path, files: dict[str, str], message: str | None) -> None:
    for name, text in files.items():
        write(tmp_path, name, text)
    if message is None:
        load_registries_d(str(tmp_path))
        return
    with pytest.raises(PolicyError, match=message):
        load_registries_d(str(tmp_path))


def test_unsupported_scheme(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "default-docker:\n  lookaside: ftp://x\n")
    with pytest.raises(PolicyError, match="Unsupported scheme"):
        load_registries_d(str(tmp_path)).lookaside_base(parse_reference("a.example/b:1"), write=False)


def test_directory_choice(tmp_path: Path) -> None:
    assert registries_d_path("/given", home=str(tmp_path)) == "/given"
    assert registries_d_path(None, home=str(tmp_path)) == SYSTEM_REGISTRIES_D
    (tmp_path / ".config" / "containers" / "registries.d").mkdir(parents=True)
    assert registries_d_path(None, home=str(tmp_path)).endswith(".config/containers/registries.d")
