"""Real ``docker-registry`` (CNCF distribution 2.8) processes for the benchmark.

The bench keeps its own launcher (it must not import ``tests/``): :func:`start_registry` runs
``docker-registry serve CONFIG`` on a free ``127.0.0.1`` port with deletes enabled, upload purging off, an
in-memory blob-descriptor cache (distribution's default, and what Harbor's registry runs with, only backed by
Redis there) and the access log on. The access log is the registry's stdout, appended to ``access.log`` in
the registry's work directory; :meth:`Registry.requests` and :meth:`Registry.truncate_log` read and clear it.

Access-log contract: distribution writes a request's log line after the response has been sent, so a
client can hold a response whose line is not yet in the file. Before reading or truncating, both methods
send one barrier request (``GET /v2/bench-log-barrier/<random>/tags/list``) and wait for its line; every
request answered before the call is then counted. Barrier lines are never reported.

Startup contract: :func:`start_registry` returns only once ``GET /v2/`` answers; if the port was taken in
the meantime or the process dies it retries on a new port (3 attempts), then raises
:class:`RegistryStartError`. :meth:`Registry.stop` terminates the process (kill after 5 s) and is
idempotent.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NamedTuple

import yaml

__all__ = [
    "AccessLogEntry",
    "Registry",
    "RegistryStartError",
    "disk_usage",
    "free_port",
    "registry_binary",
    "running_registry",
    "start_registry",
]

_BARRIER_REPO = "bench-log-barrier"
_ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<uri>\S+) HTTP/[0-9.]+" (?P<status>\d{3}) ')
_STARTUP_TIMEOUT = 15.0


class RegistryStartError(RuntimeError):
    """``docker-registry`` is missing, exited during startup or did not answer in time."""


class AccessLogEntry(NamedTuple):
    """One access-log line; ``path`` excludes the query string (which may hold a signed ``_state``)."""

    method: str
    path: str
    status: int


def registry_binary() -> str:
    """Path of ``docker-registry``; raises :class:`RegistryStartError` with a hint when it is absent."""
    found = shutil.which("docker-registry")
    if found is None:
        raise RegistryStartError(
            "docker-registry (CNCF distribution) is not installed: apt-get install docker-registry"
        )
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (callers retry if they lose the race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _http_status(port: int, path: str, timeout: float = 2.0) -> int:
    """GET ``path`` on 127.0.0.1:``port`` with a throw-away connection; raises OSError when unreachable."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@dataclass(eq=False)
class Registry:
    """A running registry: ``host`` is ``127.0.0.1:PORT``, ``data_dir`` its storage root."""

    name: str
    host: str
    work_dir: Path
    data_dir: Path
    access_log: Path
    error_log: Path
    _process: subprocess.Popen[bytes] = field(repr=False)
    _log_files: tuple[IO[bytes], IO[bytes]] = field(repr=False)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}"

    @property
    def port(self) -> int:
        """The TCP port."""
        return int(self.host.rpartition(":")[2])

    @property
    def pid(self) -> int:
        """The registry's process id."""
        return self._process.pid

    @property
    def running(self) -> bool:
        """Whether the process is still alive."""
        return self._process.poll() is None

    def cpu_seconds(self) -> float:
        """User + system CPU time the registry process has used so far (0.0 once it has exited)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return 0.0
        # After the ")" that ends the command name, utime and stime are the 12th and 13th fields.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _barrier(self, timeout: float = 10.0) -> None:
        if not self.running:
            return
        marker = secrets.token_hex(8)
        _http_status(self.port, f"/v2/{_BARRIER_REPO}/{marker}/tags/list")
        needle = marker.encode()
        deadline = time.monotonic() + timeout
        while needle not in self.access_log.read_bytes():
            if time.monotonic() > deadline:
                raise TimeoutError(f"access-log barrier never appeared in {self.access_log}")
            time.sleep(0.005)

    def requests(self) -> list[AccessLogEntry]:
        """Every request logged since startup or the last :meth:`truncate_log`, oldest first."""
        self._barrier()
        entries: list[AccessLogEntry] = []
        for line in self.access_log.read_text(errors="replace").splitlines(keepends=True):
            match = _ACCESS_LINE.search(line)
            if match is None or not line.endswith("\n"):
                continue
            path = match["uri"].partition("?")[0]
            if path.startswith(f"/v2/{_BARRIER_REPO}/"):
                continue
            entries.append(AccessLogEntry(match["method"], path, int(match["status"])))
        return entries

    def counts(self) -> Counter[str]:
        """Requests by method since the last truncation (see :meth:`requests`)."""
        return Counter(entry.method for entry in self.requests())

    def truncate_log(self) -> None:
        """Forget every request answered so far (the file is opened O_APPEND, so truncating is safe)."""
        self._barrier()
        with self.access_log.open("r+b") as handle:
            handle.truncate(0)

    def stop(self) -> None:
        """Terminate the process (kill after 5 s) and close its log files; idempotent."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        for handle in self._log_files:
            handle.close()


def _write_config(work_dir: Path, data_dir: Path, port: int) -> Path:
    config = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": False}},
        "storage": {
            "filesystem": {"rootdirectory": str(data_dir)},
            "delete": {"enabled": True},
            "cache": {"blobdescriptor": "inmemory"},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        # A fixed secret: without one distribution warns on every start and signs _state randomly.
        "http": {"addr": f"127.0.0.1:{port}", "secret": "asyncsync-bench"},
    }
    path = work_dir / "config.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_registry(work_dir: Path, *, name: str = "registry", data_dir: Path | None = None) -> Registry:
    """Start a registry whose files live in ``work_dir`` (created); storage in ``data_dir`` if given.

    ``data_dir`` lets a caller keep a seeded source registry's storage between runs (the bench cache).
    """
    binary = registry_binary()
    work_dir.mkdir(parents=True, exist_ok=True)
    storage = data_dir if data_dir is not None else work_dir / "data"
    storage.mkdir(parents=True, exist_ok=True)
    access_log, error_log = work_dir / "access.log", work_dir / "registry.err"
    last_error = "no attempt"
    for _attempt in range(3):
        port = free_port()
        config = _write_config(work_dir, storage, port)
        out = access_log.open("ab")
        err = error_log.open("ab")
        process = subprocess.Popen(
            [binary, "serve", str(config)], stdout=out, stderr=err, stdin=subprocess.DEVNULL
        )
        registry = Registry(
            name, f"127.0.0.1:{port}", work_dir, storage, access_log, error_log, process, (out, err)
        )
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            try:
                _http_status(port, "/v2/", timeout=1.0)
            except OSError:
                time.sleep(0.02)
                continue
            registry.truncate_log()
            return registry
        last_error = error_log.read_text(errors="replace")[-500:] or "no answer"
        registry.stop()
    raise RegistryStartError(f"docker-registry did not start in {work_dir}: {last_error.strip()}")


@contextlib.contextmanager
def running_registry(
    work_dir: Path, *, name: str = "registry", data_dir: Path | None = None
) -> Iterator[Registry]:
    """:func:`start_registry` as a context manager that always stops the registry."""
    registry = start_registry(work_dir, name=name, data_dir=data_dir)
    try:
        yield registry
    finally:
        registry.stop()


def disk_usage(path: Path) -> int:
    """Total size in bytes of the regular files under ``path`` (a registry's storage footprint)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total
