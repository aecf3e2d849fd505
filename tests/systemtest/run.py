"""Run skopeo v1.9.3's own system tests (``systemtest/*.bats``) against skopeo or asyncsync, offline.

``python -m tests.systemtest.run [--tool skopeo|asyncsync|both] [FILTER ...]`` prints one line per .bats file
(passed, failed, skipped) per tool, a Markdown table, and with ``--json FILE`` writes the same results as
JSON. ``FILTER`` keeps the files whose name contains it (``020``, ``copy``). Exit code 0 when the run
happened (whatever the tests said), 2 on a setup error; ``--require-pass`` makes every test upstream's
skopeo passes count: exit 1 if asyncsync fails one not listed in :data:`EXPECTED_ASYNCSYNC_FAILURES`.

What is adapted, and how (the .bats files and upstream's helpers are used unchanged, from ``upstream/``):

* The run happens in a private network and mount namespace (``unshare --net --mount``): the tests' fixed
  ``localhost:5000`` cannot collide with other work on the machine, and the mounts below are private.
* ``quay.io`` resolves to 127.0.0.1 (a private ``/etc/hosts``) where a TLS ``docker-registry`` on port 443
  serves the stand-in images of :mod:`tests.systemtest.standin_images`; its CA is trusted the way both tools
  trust a registry's CA, ``/etc/containers/certs.d/quay.io/ca.crt`` (a private copy of ``/etc/containers``).
* containers-storage (``/var/lib/containers``, ``/run/containers``, ``/run/libpod``) is a fresh private
  directory per tool, so neither run sees the other's images nor the machine's.
* ``helpers.bash`` is replaced by ours (``tests/systemtest/helpers.bash``): it loads upstream's verbatim and
  replaces ``start_registry`` (a local ``docker-registry`` instead of a ``registry:2`` container) and
  ``podman rm -f NAME`` (stops it).
* ``skopeo`` is ``SKOPEO_BINARY``: the real ``/usr/bin/skopeo``, or a shim named ``skopeo`` that execs
  asyncsync.

HOME, XDG_* and the temp dir point into the run's work directory; the machine's auth files are not read.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from tests.helpers.certs import KeyPair, make_ca, make_server_cert, write_pem
from tests.systemtest.standin_images import seed

HERE = Path(__file__).resolve().parent
UPSTREAM = HERE / "upstream"
REPO_ROOT = HERE.parent.parent
_NS_FLAG = "ASYNCSYNC_SYSTEMTEST_IN_NAMESPACE"
QUAY = "quay.io"
# Seconds one .bats file may take before the runner gives up on it (each skopeo command has its own
# SKOPEO_TIMEOUT of 300 s inside the tests).
FILE_TIMEOUT = 1200
# asyncsync's known failures, each with why; --require-pass (and tests/systemtest/test_systemtest.py)
# fail on any other. Remove an entry when the work it names lands.
EXPECTED_ASYNCSYNC_FAILURES: dict[tuple[str, str], str] = {
    ("001-basic.bats", "skopeo version emits reasonable output"): "by design: --version names asyncsync",
}

_TAP_LINE = re.compile(r"^(?P<not>not )?ok (?P<number>\d+) (?P<name>.*?)(?: # skip(?: (?P<reason>.*))?)?$")


@dataclass
class FileResult:
    """One .bats file's outcome for one tool."""

    file: str
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    planned: int = 0
    seconds: float = 0.0
    error: str | None = None

    @property
    def summary(self) -> str:
        """``P pass, F fail, S skip`` (and the error, if bats did not finish)."""
        text = f"{len(self.passed)} pass, {len(self.failed)} fail, {len(self.skipped)} skip"
        return f"{text} ({self.error})" if self.error else text


def parse_tap(file: str, tap: str) -> FileResult:
    """Count bats' TAP output: ``ok N name``, ``not ok N name``, ``ok N name # skip reason``.

    Tests announced by the plan line (``1..N``) that never reported (bats killed) count as failed."""
    result = FileResult(file)
    reported: set[int] = set()
    for line in tap.splitlines():
        if line.startswith("1.."):
            result.planned = int(line[3:] or 0)
            continue
        match = _TAP_LINE.match(line)
        if match is None:
            continue
        reported.add(int(match["number"]))
        name = match["name"]
        if match["not"]:
            result.failed.append(name)
        elif " # skip" in line:
            result.skipped.append(name)
        else:
            result.passed.append(name)
    result.failed.extend(
        f"(test {n} never reported)" for n in range(1, result.planned + 1) if n not in reported
    )
    return result


# ------------------------------------------------------------------------------------------- sandbox


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)


def _bind(source: Path, target: Path) -> None:
    _run("mount", "--bind", str(source), str(target))


def _enter_namespace(argv: Sequence[str]) -> int:
    """Re-run this module inside ``unshare --net --mount`` (as root; otherwise also a user namespace)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        print("systemtest: unshare (util-linux) is required", file=sys.stderr)
        return 2
    command = [unshare, "--net", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        command.append("--map-root-user")
    command += [sys.executable, "-m", "tests.systemtest.run", *argv]
    env = {**os.environ, _NS_FLAG: "1"}
    return subprocess.run(command, env=env, cwd=REPO_ROOT, check=False).returncode


@dataclass
class Sandbox:
    """The run's work directory and the private mounts made in it."""

    work: Path
    state: Path
    bats_dir: Path
    bin_dir: Path
    quay_process: subprocess.Popen[bytes] | None = None

    def storage(self, tool: str) -> None:
        """Give ``tool`` fresh containers-storage directories (bind-mounted over the system paths)."""
        for system_path in ("/var/lib/containers", "/run/containers", "/run/libpod"):
            target = Path(system_path)
            if not target.is_dir():
                continue
            private = self.work / "storage" / tool / system_path.strip("/").replace("/", "-")
            private.mkdir(parents=True, exist_ok=True)
            _bind(private, target)


def _network_up() -> None:
    _run("ip", "link", "set", "lo", "up")


def _private_etc(work: Path, ca_pem: bytes) -> None:
    """``/etc/hosts`` with quay.io -> 127.0.0.1; ``/etc/containers`` with the stand-in quay.io's CA."""
    hosts = work / "etc" / "hosts"
    hosts.parent.mkdir(parents=True)
    hosts.write_text(Path("/etc/hosts").read_text() + f"\n127.0.0.1\t{QUAY}\n")
    _bind(hosts, Path("/etc/hosts"))
    containers = work / "etc" / "containers"
    if Path("/etc/containers").is_dir():
        shutil.copytree("/etc/containers", containers, symlinks=True)
        write_pem(containers / "certs.d" / QUAY / "ca.crt", ca_pem)
        _bind(containers, Path("/etc/containers"))
    else:
        raise RuntimeError("/etc/containers is missing: install skopeo or podman (containers-common)")


def _serve_quay(work: Path, ca: KeyPair) -> subprocess.Popen[bytes]:
    """Seed the stand-in images and serve them as https://quay.io (127.0.0.1:443, a certificate signed by
    ``ca``); returns the registry process once it answers."""
    data_dir, _pushed = seed(work / "quay-seed")
    server = make_server_cert(ca, (QUAY,))
    tls = work / "quay-tls"
    config = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(data_dir)}},
        "http": {
            "addr": "127.0.0.1:443",
            "tls": {
                "certificate": str(write_pem(tls / "server.crt", server.cert_pem)),
                "key": str(write_pem(tls / "server.key", server.key_pem, private=True)),
            },
        },
    }
    config_path = work / "quay.yml"
    config_path.write_text(yaml.safe_dump(config))
    with (work / "quay.log").open("wb") as log:
        process = subprocess.Popen(
            ["docker-registry", "serve", str(config_path)], stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    context = ssl.create_default_context(cadata=ca.cert_pem.decode())
    deadline = time.monotonic() + 15
    while True:
        try:
            with urllib.request.urlopen(f"https://{QUAY}/v2/", context=context, timeout=1):
                break
        except OSError as exc:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"the stand-in {QUAY} registry did not start: {exc}") from exc
            time.sleep(0.05)
    return process


def _stage(work: Path, asyncsync: Path) -> tuple[Path, Path]:
    """The bats directory (upstream files, our helpers.bash) and a bin directory with the skopeo shim."""
    bats_dir = work / "systemtest"
    bats_dir.mkdir()
    for path in UPSTREAM.glob("*.bats"):
        shutil.copy2(path, bats_dir)
    shutil.copytree(UPSTREAM / "testdata", bats_dir / "testdata")
    shutil.copy2(UPSTREAM / "helpers.bash", bats_dir / "helpers.upstream.bash")
    shutil.copy2(HERE / "helpers.bash", bats_dir / "helpers.bash")
    bin_dir = work / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "skopeo"
    shim.write_text(f'#!/bin/sh\n# skopeo -> asyncsync (systemtest shim)\nexec "{asyncsync}" "$@"\n')
    shim.chmod(0o755)
    return bats_dir, bin_dir


@contextmanager
def sandbox(asyncsync: Path, keep: bool) -> Iterator[Sandbox]:
    """Set up everything inside the namespace; stop every process started here on exit."""
    work = Path(tempfile.mkdtemp(prefix="skopeo-systemtest-"))
    box = Sandbox(work, work / "state", *_stage(work, asyncsync))
    box.state.mkdir()
    try:
        _network_up()
        ca = make_ca("asyncsync systemtest quay.io CA")
        _private_etc(work, ca.cert_pem)
        box.quay_process = _serve_quay(work, ca)
        yield box
    finally:
        for pid_file in box.state.glob("registry-*/pid"):
            with suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
        if box.quay_process is not None:
            box.quay_process.kill()
            box.quay_process.wait()
        if keep:
            print(f"systemtest: work directory kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


# -------------------------------------------------------------------------------------------- running


def run_file(box: Sandbox, tool: str, binary: Path, bats_file: Path, log_dir: Path) -> FileResult:
    """Run one .bats file with ``bats --tap`` for ``tool`` and count its results."""
    home = box.work / "home" / tool
    tmp = box.work / "tmp" / tool
    for directory in (home, tmp, home / "run"):
        directory.mkdir(parents=True, exist_ok=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("REGISTRY_AUTH_FILE", "DOCKER_CONFIG", "CONTAINERS_REGISTRIES_CONF", _NS_FLAG)
        and not key.startswith(("XDG_", "BATS_"))
    }
    env.update(
        HOME=str(home),
        XDG_RUNTIME_DIR=str(home / "run"),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        TMPDIR=str(tmp),
        BATS_TMPDIR=str(tmp),
        PATH=f"{box.bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        SKOPEO_BINARY=str(binary),
        TEST_SOURCE_DIR=str(box.bats_dir),
        SYSTEMTEST_STATE=str(box.state),
    )
    started = time.monotonic()
    error = None
    try:
        completed = subprocess.run(
            ["bats", "--tap", str(bats_file)],
            env=env,
            cwd=box.bats_dir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=FILE_TIMEOUT,
            check=False,
        )
        output = completed.stdout.decode(errors="replace") + completed.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode(errors="replace")
        error = f"bats timed out after {FILE_TIMEOUT} s"
    result = parse_tap(bats_file.name, output)
    result.seconds = round(time.monotonic() - started, 1)
    result.error = error
    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / f"{bats_file.stem}.tap").write_text(output)
    return result


def run_tool(
    box: Sandbox, tool: str, binary: Path, files: Sequence[Path], log_root: Path
) -> list[FileResult]:
    """Every selected .bats file for ``tool``, in a fresh containers-storage."""
    box.storage(tool)
    results = []
    for bats_file in files:
        result = run_file(box, tool, binary, box.bats_dir / bats_file.name, log_root / tool)
        print(f"{tool:9} {result.file:30} {result.summary}  [{result.seconds} s]", flush=True)
        results.append(result)
    return results


def markdown_table(results: dict[str, list[FileResult]]) -> str:
    """One row per .bats file, one column per tool: ``passed/total`` plus failed/skipped counts."""
    tools = list(results)
    header = "| .bats file | tests | " + " | ".join(tools) + " |"
    rule = "|---|---|" + "---|" * len(tools)
    rows = [header, rule]
    by_file = [dict((r.file, r) for r in results[tool]) for tool in tools]
    files = [r.file for r in results[tools[0]]]
    totals = [[0, 0, 0] for _ in tools]
    planned_total = 0
    for name in files:
        cells = []
        planned = max(by_tool[name].planned for by_tool in by_file)
        planned_total += planned
        for index, by_tool in enumerate(by_file):
            r = by_tool[name]
            counts = (len(r.passed), len(r.failed), len(r.skipped))
            totals[index] = [a + b for a, b in zip(totals[index], counts, strict=True)]
            cells.append(_cell(*counts))
        rows.append(f"| {name} | {planned} | " + " | ".join(cells) + " |")
    rows.append(f"| **total** | {planned_total} | " + " | ".join(_cell(*t) for t in totals) + " |")
    return "\n".join(rows)


def _cell(passed: int, failed: int, skipped: int) -> str:
    extra = [f"{failed} failed"] if failed else []
    extra += [f"{skipped} skipped"] if skipped else []
    return f"{passed} passed" + (f" ({', '.join(extra)})" if extra else "")


def unexpected_failures(results: dict[str, list[FileResult]]) -> list[str]:
    """asyncsync's failed tests that are not in :data:`EXPECTED_ASYNCSYNC_FAILURES` (``file: test``)."""
    return [
        f"{r.file}: {name}"
        for r in results.get("asyncsync", [])
        for name in r.failed
        if (r.file, name) not in EXPECTED_ASYNCSYNC_FAILURES
    ]


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.systemtest.run", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("filters", nargs="*", help="run only .bats files whose name contains one of these")
    parser.add_argument("--tool", choices=("skopeo", "asyncsync", "both"), default="both")
    parser.add_argument("--skopeo", default=shutil.which("skopeo") or "/usr/bin/skopeo", help="skopeo binary")
    parser.add_argument(
        "--asyncsync",
        default=str(Path(sys.executable).parent / "asyncsync"),
        help="asyncsync entry point (default: beside this Python)",
    )
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--logs", type=Path, help="copy each file's TAP output here (TOOL/NAME.tap)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--require-pass", action="store_true", help="exit 1 if asyncsync fails a test other than --version"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; see the module docstring."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parse_args(argv)
    if os.environ.get(_NS_FLAG) != "1":
        return _enter_namespace(argv)
    files = sorted(
        path
        for path in UPSTREAM.glob("*.bats")
        if not args.filters or any(f in path.name for f in args.filters)
    )
    if not files:
        print(f"systemtest: no .bats file matches {args.filters}", file=sys.stderr)
        return 2
    tools = ["skopeo", "asyncsync"] if args.tool == "both" else [args.tool]
    binaries = {"skopeo": Path(args.skopeo), "asyncsync": Path(args.asyncsync)}
    for tool in tools:
        if not os.access(binaries[tool], os.X_OK):
            print(f"systemtest: {tool} binary {binaries[tool]} is not executable", file=sys.stderr)
            return 2
    results: dict[str, list[FileResult]] = {}
    try:
        with sandbox(binaries["asyncsync"], args.keep) as box:
            log_root = args.logs or box.work / "logs"
            for tool in tools:
                binary = box.bin_dir / "skopeo" if tool == "asyncsync" else binaries[tool]
                results[tool] = run_tool(box, tool, binary, files, log_root)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"systemtest: setup failed: {exc}", file=sys.stderr)
        return 2
    print()
    print(markdown_table(results))
    for tool, file_results in results.items():
        for r in file_results:
            for name in r.failed:
                print(f"{tool} FAILED {r.file}: {name}")
    if args.json:
        args.json.write_text(
            json.dumps({tool: [asdict(r) for r in rs] for tool, rs in results.items()}, indent=2) + "\n"
        )
    if args.require_pass and unexpected_failures(results):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
