"""Real podman in tests, on private storage: never the machine's images, safe to run in parallel.

* :class:`PrivateStorage` is a containers-storage store in a directory of its own (``vfs`` driver,
  graph root, run root, podman's temporary directory) with a ``storage.conf`` and a
  ``containers.conf`` naming them. :meth:`PrivateStorage.env` gives ``CONTAINERS_STORAGE_CONF`` and
  ``CONTAINERS_CONF`` for that store, so plain ``podman``/``skopeo`` commands (and asyncsync, which
  runs podman) use it; :attr:`PrivateStorage.specifier` is the same store as a
  ``containers-storage:[vfs@root+runroot]`` specifier; :meth:`PrivateStorage.podman` runs podman
  on it with explicit ``--root/--runroot/--storage-driver`` flags.
* :class:`PodmanService` runs ``podman system service --time=0 unix://SOCKET`` on a private store
  (Docker Engine API and libpod API on one socket) until :meth:`PodmanService.stop`; it is ready
  when ``/_ping`` answers.

Nothing here imports asyncsync.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PodmanService", "PrivateStorage", "podman_binary", "start_podman_service"]


def podman_binary() -> str:
    found = shutil.which("podman")
    if found is None:
        raise RuntimeError("podman is not installed (apt-get install podman)")
    return found


@dataclass(frozen=True)
class PrivateStorage:
    """A private containers-storage store under ``base``."""

    base: Path

    @classmethod
    def create(cls, base: Path) -> PrivateStorage:
        """Create the store's directories and config files under ``base`` (keep it short: podman
        refuses a run root of 50 characters or more)."""
        storage = cls(base)
        if len(str(storage.run_root)) >= 50:
            raise RuntimeError(f"{storage.run_root}: podman refuses run roots of 50 characters or more")
        for directory in (storage.graph_root, storage.run_root, storage.tmp_dir):
            directory.mkdir(parents=True, exist_ok=True)
        storage.storage_conf.write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{storage.graph_root}"\nrunroot = "{storage.run_root}"\n'
        )
        storage.containers_conf.write_text(f'[engine]\ntmp_dir = "{storage.tmp_dir}"\n')
        return storage

    @property
    def graph_root(self) -> Path:
        return self.base / "root"

    @property
    def run_root(self) -> Path:
        return self.base / "run"

    @property
    def tmp_dir(self) -> Path:
        return self.base / "tmp"

    @property
    def storage_conf(self) -> Path:
        return self.base / "storage.conf"

    @property
    def containers_conf(self) -> Path:
        return self.base / "containers.conf"

    @property
    def specifier(self) -> str:
        """``[vfs@GRAPHROOT+RUNROOT]``: this store in a containers-storage reference."""
        return f"[vfs@{self.graph_root}+{self.run_root}]"

    def env(self) -> dict[str, str]:
        """Environment variables that make podman and skopeo use this store by default."""
        return {
            "CONTAINERS_STORAGE_CONF": str(self.storage_conf),
            "CONTAINERS_CONF": str(self.containers_conf),
            "TMPDIR": str(self.tmp_dir),
        }

    def flags(self) -> list[str]:
        return ["--root", str(self.graph_root), "--runroot", str(self.run_root), "--storage-driver", "vfs"]

    def podman(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``podman FLAGS ARGS`` on this store; raises with podman's stderr when ``check``."""
        # CONTAINER_HOST would turn podman into a remote client of some service.
        env = {key: value for key, value in os.environ.items() if key != "CONTAINER_HOST"}
        env.update(self.env())
        done = subprocess.run(
            [podman_binary(), *self.flags(), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)} failed: {done.stderr.strip()}")
        return done

    def images(self) -> list[dict[str, Any]]:
        """``podman images --format json`` (every image with its ``Id`` and ``Names``)."""
        listed: list[dict[str, Any]] = json.loads(self.podman("images", "--format", "json").stdout or "[]")
        return listed

    def inspect(self, name: str) -> dict[str, Any] | None:
        """``podman image inspect NAME`` (``None`` when podman knows no such image)."""
        done = self.podman("image", "inspect", name, check=False)
        if done.returncode != 0:
            return None
        found: list[dict[str, Any]] = json.loads(done.stdout)
        return found[0]


@dataclass
class PodmanService:
    """A running ``podman system service`` on a private store; ``host`` is ``unix://SOCKET``."""

    storage: PrivateStorage
    socket_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    log_path: Path
    #: ``127.0.0.1:PORT`` when the service listens on TCP instead of ``socket_path``.
    tcp: str | None = None

    @property
    def host(self) -> str:
        return f"tcp://{self.tcp}" if self.tcp else f"unix://{self.socket_path}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _pings(address: Path | tuple[str, int]) -> bool:
    family = socket.AF_UNIX if isinstance(address, Path) else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(str(address) if isinstance(address, Path) else address)
            sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: podman\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_podman_service(base: Path, timeout: float = 30, *, tcp: bool = False) -> PodmanService:
    """Start a service on a fresh private store under ``base``; returns once ``/_ping`` answers.

    With ``tcp`` it listens on a free loopback port (plain HTTP) instead of a unix socket."""
    storage = PrivateStorage.create(base)
    socket_path = base / "podman.sock"
    log_path = base / "service.log"
    tcp_address = f"127.0.0.1:{_free_port()}" if tcp else None
    listen = f"tcp://{tcp_address}" if tcp_address else f"unix://{socket_path}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [podman_binary(), *storage.flags(), "system", "service", "--time=0", listen],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **storage.env()},
        )
    service = PodmanService(storage, socket_path, process, log_path, tcp_address)
    address: Path | tuple[str, int] = socket_path
    if tcp_address:
        address = ("127.0.0.1", int(tcp_address.rsplit(":", 1)[1]))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"podman system service exited: {log_path.read_text()[-500:]}")
        if _pings(address):
            return service
        time.sleep(0.05)
    service.stop()
    raise RuntimeError(f"podman system service did not answer within {timeout}s")
