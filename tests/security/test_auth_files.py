"""Auth files are written 0600 and atomically; reading one that others can read warns once."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncsync.registry.credentials import (
    Credentials,
    lookup_credentials,
    remove_credentials,
    store_credentials,
    warn_if_exposed,
)
from tests.helpers import cli_process
from tests.helpers.images import make_image, push_image_sync
from tests.helpers.registry import RegistryServer

CANARY = "canary-pass-7c1d"


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("permissive_umask")
def test_new_auth_file_is_0600_in_a_0700_directory(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "containers" / "auth.json"
    store_credentials("reg.example", Credentials("alice", CANARY), authfile=path)
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    entry = json.loads(path.read_text())["auths"]["reg.example"]
    assert base64.b64decode(entry["auth"]).decode() == f"alice:{CANARY}"


@pytest.mark.usefixtures("permissive_umask")
@pytest.mark.parametrize("operation", ["store", "remove"])
def test_rewriting_an_exposed_file_replaces_it_with_a_private_one(tmp_path: Path, operation: str) -> None:
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"auths": {"reg.example": {"auth": "Ym9iOm9sZA=="}}, "keep": 1}))
    path.chmod(0o644)
    before = path.stat().st_ino
    if operation == "store":
        store_credentials("other.example", Credentials("alice", CANARY), authfile=path)
    else:
        assert remove_credentials("reg.example", authfile=path)
    assert _mode(path) == 0o600
    assert path.stat().st_ino != before, "written in place: a reader could see a torn file"
    assert json.loads(path.read_text())["keep"] == 1, "unrelated keys must survive"
    assert [p.name for p in tmp_path.iterdir()] == ["auth.json"], "temporary file left behind"


def test_a_failed_write_leaves_the_old_file_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "auth.json"
    original = json.dumps({"auths": {"reg.example": {"auth": "Ym9iOm9sZA=="}}})
    path.write_text(original)

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        store_credentials("reg.example", Credentials("alice", CANARY), authfile=path)
    assert path.read_text() == original
    assert [p.name for p in tmp_path.iterdir()] == ["auth.json"], "temporary file left behind"


@pytest.mark.parametrize(("mode", "exposed"), [(0o600, False), (0o400, False), (0o640, True), (0o644, True)])
def test_warn_if_exposed(tmp_path: Path, mode: int, exposed: bool) -> None:
    path = tmp_path / "auth.json"
    path.write_text("{}")
    path.chmod(mode)
    warning = warn_if_exposed(path)
    if exposed:
        assert warning is not None and str(path) in warning and "chmod 600" in warning
        assert CANARY not in warning
    else:
        assert warning is None


@pytest.mark.anyio
async def test_reading_an_exposed_auth_file_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "auth.json"
    raw = base64.b64encode(f"alice:{CANARY}".encode()).decode()
    path.write_text(json.dumps({"auths": {"reg.example": {"auth": raw}}}))
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="asyncsync"):
        for _ in range(3):
            assert await lookup_credentials("reg.example", "a/b", authfile=path) == Credentials(
                "alice", CANARY
            )
    warnings = [r for r in caplog.records if r.name == "asyncsync" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(path) in warnings[0].getMessage() and "accessible by other users" in warnings[0].getMessage()
    assert CANARY not in caplog.text


@pytest.mark.anyio
async def test_reading_a_private_auth_file_is_silent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "auth.json"
    store_credentials("reg.example", Credentials("alice", CANARY), authfile=path)
    with caplog.at_level(logging.DEBUG, logger="asyncsync"):
        assert await lookup_credentials("reg.example", None, authfile=path) == Credentials("alice", CANARY)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_the_cli_prints_the_warning_once(registry_basic: RegistryServer, tmp_path: Path) -> None:
    push_image_sync(registry_basic, "authfile/exposed", "v1", make_image("authfile-exposed", layers=1))
    authfile = registry_basic.write_auth_file(tmp_path / "auth.json")
    authfile.chmod(0o644)
    name = f"docker://{registry_basic.host}/authfile/exposed"
    child = cli_process.run(["list-tags", "--tls-verify=false", "--authfile", str(authfile), name])
    assert child.returncode == 0, child.output
    warnings = [line for line in child.stderr.splitlines() if "accessible by other users" in line]
    assert len(warnings) == 1 and str(authfile) in warnings[0] and "chmod 600" in warnings[0]
    assert registry_basic.password is not None and registry_basic.password not in child.output
    authfile.chmod(0o600)
    quiet = cli_process.run(["list-tags", "--tls-verify=false", "--authfile", str(authfile), name])
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
