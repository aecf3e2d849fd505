"""``asyncsync mirror`` as a process: --once exit codes, usage errors, SIGTERM in and between cycles."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.helpers.asyncsync_cli import REPO_ROOT, run_cli
from tests.helpers.harbor_server import HarborServer
from tests.helpers.images import list_tags_sync, make_image, push_image_sync
from tests.helpers.registry import RegistryFactory


def _spec(tmp_path: Path, source: str, target: str, credentials: str = "") -> Path:
    path = tmp_path / "mirror.yaml"
    path.write_text(
        f"""version: 1
registries:
  {source}: {{tls-verify: false}}
  {target}:
    tls-verify: false
{credentials}
sync:
  - from: {source}/team/*
    to: {target}/mirror/
"""
    )
    return path


def test_once_exit_codes_and_report(make_registry: RegistryFactory, tmp_path: Path) -> None:
    source, target = make_registry("anon"), make_registry("anon")
    push_image_sync(source, "team/app", "1", make_image("mirror-once", layers=1))
    spec = _spec(tmp_path, source.host, target.host)
    report = tmp_path / "report.json"

    ok = run_cli("mirror", "--once", "--no-mount-cache", "--report", str(report), str(spec))

    assert ok.returncode == 0, ok.all_output
    assert ok.out.splitlines()[0] == "mirror: cycle 1 started"
    assert "1 copied, 0 skipped, 0 failed" in ok.out
    assert json.loads(report.read_text())["summary"]["copied"] == 1
    assert list_tags_sync(target, "mirror/app") == ["1"]

    missing = tmp_path / "missing.yaml"
    missing.write_text(spec.read_text().replace("team/*", "nothing/here"))
    failed = run_cli("mirror", "--once", "--no-mount-cache", str(missing))
    assert failed.returncode == 1, failed.all_output
    assert "plan error" in failed.out


def test_destination_username_and_password_flags(make_registry: RegistryFactory, tmp_path: Path) -> None:
    source, target = make_registry("anon"), make_registry("basic")
    push_image_sync(source, "team/app", "1", make_image("mirror-user-flags", layers=1))
    spec = _spec(tmp_path, source.host, target.host)
    base = ("mirror", "--once", "--no-mount-cache")

    denied = run_cli(*base, str(spec))
    accepted = run_cli(
        *base, "--dest-username", target.username or "", "--dest-password", target.password or "", str(spec)
    )

    assert denied.returncode == 1 and "unauthorized" in denied.all_output.lower()
    assert accepted.returncode == 0, accepted.all_output
    assert list_tags_sync(target, "mirror/app") == ["1"]
    assert (target.password or "") not in accepted.all_output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "say when to sync: --every DURATION, --cron EXPRESSION, or --once"),
        (["--every", "1h", "--cron", "@hourly"], "--every and --cron cannot be used together"),
        (["--once", "--every", "1h"], "--once and --every cannot be used together"),
        (["--cron", "61 * * * *"], "--cron: minute value 61 is outside 0-59"),
        (["--every", "500ms"], "--every: the interval must be at least 1s"),
        (["--every", "soon"], "--every: invalid duration 'soon' (e.g. 30s, 1m30s, 1.5h, 300ms)"),
        (["--once", "--shard", "2/2"], "--shard: index must be in 0..1, not 2"),
        (["--once", "--log-format", "xml"], "--log-format: unknown format 'xml' (text or json)"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    spec = _spec(tmp_path, "src.example", "dst.example")
    result = run_cli("mirror", *args, str(spec))
    assert result.returncode == 2, result.all_output
    assert result.stderr.strip() == f"Error: {message}"


def test_a_spec_that_does_not_load_at_start_is_a_usage_error(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("version: 1\nsync:\n  - from: a.example/x\n")
    result = run_cli("mirror", "--every", "1h", str(spec))
    assert result.returncode == 2
    assert result.stderr.strip() == f"Error: {spec}:3: sync entry 1 needs a 'to' key"


class _Mirror:
    """``asyncsync mirror`` in a subprocess whose output lines arrive on a queue."""

    def __init__(self, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "asyncsync", "mirror", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO_ROOT,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            self.output.append(line)
            if text in line:
                return
        raise AssertionError(f"{text!r} never printed; output so far: {self.output}")

    def finish(self, timeout: float = 20.0) -> int:
        code = self.process.wait(timeout)
        self.reader.join(5)
        while not self.lines.empty():
            self.output.append(self.lines.get())
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.reader.join(5)
        assert self.process.stdout is not None
        self.process.stdout.close()


def test_sigterm_mid_cycle_finishes_the_image_in_flight_and_exits_cleanly(
    make_registry: RegistryFactory, tmp_path: Path
) -> None:
    source = make_registry("anon")
    for index in range(3):
        push_image_sync(source, f"team/app{index}", "1", make_image(f"mirror-sigterm-{index}", layers=1))
    with HarborServer(tmp_path / "harbor") as target:
        target.add_project("mirror")
        target.upload_delay = 1.5  # each blob upload answers late: the first image is slow
        credentials = f'    credentials: {{username: admin, password: "{target.admin_password}"}}'
        spec = _spec(tmp_path, source.host, target.host, credentials)
        report = tmp_path / "report.json"
        mirror = _Mirror(
            "--every", "1h", "--parallel", "1", "--no-mount-cache", "--report", str(report), str(spec)
        )
        try:
            mirror.wait_for("mirror: cycle 1 started")
            assert target.registry is not None
            deadline = time.monotonic() + 15
            while target.registry.count("POST", r"/v2/mirror/.+/blobs/uploads/") == 0:
                assert time.monotonic() < deadline, "no upload started"
                time.sleep(0.05)
            mirror.process.send_signal(signal.SIGTERM)
            code = mirror.finish()
        finally:
            mirror.close()
        output = "\n".join(mirror.output)
        assert code == 0, output
        assert "mirror: stopped (SIGTERM received)" in output
        data = json.loads(report.read_text())
        assert (data["summary"]["copied"], data["summary"]["failed"]) == (1, 0), output
        assert "SIGTERM received" in data["summary"]["stopped"]
        tagged = [i for i in range(3) if list_tags_sync(target.as_registry(), f"mirror/app{i}") == ["1"]]
        assert len(tagged) == 1  # the image in flight completed; no other was started


def test_sigterm_between_cycles_exits_at_once(make_registry: RegistryFactory, tmp_path: Path) -> None:
    source, target = make_registry("anon"), make_registry("anon")
    push_image_sync(source, "team/app", "1", make_image("mirror-idle", layers=1))
    spec = _spec(tmp_path, source.host, target.host)
    mirror = _Mirror("--every", "1h", "--no-mount-cache", "--metrics-port", "0", str(spec))
    try:
        mirror.wait_for("mirror: next cycle at")
        started = time.monotonic()
        mirror.process.send_signal(signal.SIGTERM)
        code = mirror.finish()
    finally:
        mirror.close()
    assert code == 0, mirror.output
    assert time.monotonic() - started < 5
    assert mirror.output[-1] == "mirror: stopped (SIGTERM received)"
    assert any(line.startswith("mirror: metrics on http://127.0.0.1:") for line in mirror.output)
