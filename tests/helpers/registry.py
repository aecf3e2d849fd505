"""Real ``docker-registry`` (CNCF distribution 2.8) processes for integration tests.

:func:`start_registry` (or the context manager :func:`run_registry`) starts ``docker-registry serve CONFIG``
on a free ``127.0.0.1`` port inside a work directory, waits (polling every 20 ms) until ``GET /v2/``
answers with any status, truncates the access log and returns a :class:`RegistryServer`. The server must
be stopped with :meth:`RegistryServer.stop` (terminate, then kill after 5 s); :func:`run_registry` and the
conftest fixtures do that.

Flavours (:data:`Flavour`):

``anon``
    Plain HTTP, no authentication.
``basic``
    Plain HTTP, htpasswd (bcrypt) authentication; ``username`` (default ``alice``) with ``password`` (given,
    or random), plus any extra ``users``.
``token``
    Plain HTTP, ``auth.token`` backed by a :class:`~tests.helpers.token_service.TokenService` (started
    here unless one is passed in, and then stopped with the registry). The same ``username``/``password``
    (plus ``users``) are its accounts; anonymous callers get ``anonymous_actions`` (default pull).
``tls``
    HTTPS without authentication, with a server certificate signed by a CA generated for this registry.
    ``ca_cert`` is that CA's PEM file and ``cert_dir`` a directory holding it as ``ca.crt`` (for
    ``skopeo --cert-dir``). ``tls=True`` adds the same HTTPS setup to the other flavours.

Every registry has deletes enabled, upload purging off, log level ``error`` (stderr to ``registry.err``) and
its access log on (stdout, appended to ``access.log``); :meth:`RegistryServer.requests`,
:meth:`RegistryServer.count` and :meth:`RegistryServer.reset_log` read and clear it.

Contract of the access-log readers: before reading or truncating they send one "barrier" request
(``GET /v2/asyncsync-log-barrier/<random>/tags/list``) and wait until its line is in the log, so every
request whose response the caller has already received is counted; barrier lines are never reported.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol, get_args

import bcrypt
import yaml

from tests.helpers.certs import make_ca, make_server_cert, write_pem
from tests.helpers.token_service import TokenService

__all__ = [
    "FLAVOURS",
    "AccessLogEntry",
    "Flavour",
    "RegistryFactory",
    "RegistryServer",
    "RegistryStartError",
    "free_port",
    "registry_binary",
    "run_registry",
    "start_registry",
]

Flavour = Literal["anon", "basic", "token", "tls"]
FLAVOURS: tuple[Flavour, ...] = get_args(Flavour)

POLL_INTERVAL = 0.02
_BARRIER_REPO = "asyncsync-log-barrier"
_ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<uri>\S+) HTTP/[0-9.]+" (?P<status>\d{3}) ')


class RegistryStartError(RuntimeError):
    """``docker-registry`` is missing, exited during startup or did not answer in time."""


class AccessLogEntry(NamedTuple):
    """One access-log line: ``path`` is the request path without its query string."""

    method: str
    path: str
    status: int


def registry_binary() -> str:
    """Path of ``docker-registry``; raises :class:`RegistryStartError` with a fix-it hint if absent."""
    found = shutil.which("docker-registry") or (
        "/usr/bin/docker-registry" if os.access("/usr/bin/docker-registry", os.X_OK) else None
    )
    if found is None:
        raise RegistryStartError(
            "docker-registry (CNCF distribution) is not installed; run scripts/setup.sh "
            "(apt-get install docker-registry) before the integration tests"
        )
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the caller must survive losing a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, eq=False)
class RegistryServer:
    """A running registry. Fields are fixed once started; only the process state changes.

    ``host`` is ``127.0.0.1:PORT``; ``url`` is ``http://host`` or ``https://host``; ``username`` and
    ``password`` are None for ``anon``/``tls``; ``ca_cert`` and ``cert_dir`` are None without TLS;
    ``token_service`` is None except for the ``token`` flavour; ``users`` holds every account
    (``username`` included).
    """

    flavour: Flavour
    host: str
    scheme: Literal["http", "https"]
    work_dir: Path
    data_dir: Path
    config_path: Path
    access_log: Path
    error_log: Path
    username: str | None
    password: str | None
    users: Mapping[str, str]
    ca_cert: Path | None
    cert_dir: Path | None
    token_service: TokenService | None
    _process: subprocess.Popen[bytes] = field(repr=False)
    _owns_token_service: bool = field(repr=False, default=False)
    _cleanup_dir: tempfile.TemporaryDirectory[str] | None = field(repr=False, default=None)

    # ------------------------------------------------------------------ addresses and clients

    @property
    def url(self) -> str:
        """``scheme://127.0.0.1:PORT``."""
        return f"{self.scheme}://{self.host}"

    @property
    def port(self) -> int:
        """The TCP port."""
        return int(self.host.rpartition(":")[2])

    @property
    def tls(self) -> bool:
        """Whether the registry speaks HTTPS."""
        return self.scheme == "https"

    @property
    def running(self) -> bool:
        """Whether the process is still alive."""
        return self._process.poll() is None

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context trusting only this registry's CA, or None for plain HTTP."""
        if self.ca_cert is None:
            return None
        return ssl.create_default_context(cafile=str(self.ca_cert))

    def basic_auth_header(self) -> str | None:
        """``Basic base64(user:password)`` for ``username``/``password``, or None without credentials."""
        if self.username is None or self.password is None:
            return None
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def skopeo_flags(self, prefix: str = "") -> list[str]:
        """skopeo options to reach this registry: TLS trust and, when it has them, credentials.

        ``prefix`` is ``""`` (inspect, delete, list-tags), ``"src-"`` or ``"dest-"`` (copy, sync).
        """
        flags = [f"--{prefix}cert-dir={self.cert_dir}"] if self.cert_dir else [f"--{prefix}tls-verify=false"]
        if self.username is not None and self.password is not None:
            flags.append(f"--{prefix}creds={self.username}:{self.password}")
        return flags

    def write_auth_file(self, path: Path) -> Path:
        """Write a containers-auth.json / Docker config.json granting ``username`` on ``host``."""
        auths: dict[str, Any] = {}
        if self.username is not None and self.password is not None:
            raw = f"{self.username}:{self.password}".encode()
            auths[self.host] = {"auth": base64.b64encode(raw).decode("ascii")}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"auths": auths}, indent=2))
        return path

    def _http_get(self, path: str, timeout: float = 2.0) -> int:
        """GET ``path`` with a throw-away connection; returns the status. Raises OSError on failure."""
        conn: http.client.HTTPConnection
        host, port = "127.0.0.1", self.port
        if self.scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=self.ssl_context())
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Host": self.host, "Connection": "close"})
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    # ------------------------------------------------------------------ access log

    def _barrier(self, timeout: float = 5.0) -> None:
        """Make sure the log holds every request answered so far (see the module docstring)."""
        if not self.running:
            return
        marker = secrets.token_hex(8)
        self._http_get(f"/v2/{_BARRIER_REPO}/{marker}/tags/list")
        deadline = time.monotonic() + timeout
        needle = marker.encode()
        while needle not in self.access_log.read_bytes():
            if time.monotonic() > deadline:
                raise TimeoutError(f"access-log barrier {marker} never appeared in {self.access_log}")
            time.sleep(0.005)

    def requests(self) -> list[AccessLogEntry]:
        """Every request logged since startup or the last :meth:`reset_log`, oldest first."""
        self._barrier()
        entries: list[AccessLogEntry] = []
        for line in self.access_log.read_text(errors="replace").splitlines(keepends=True):
            match = _ACCESS_LINE.search(line)
            if not line.endswith("\n") or match is None:
                continue
            path = match["uri"].partition("?")[0]
            if path.startswith(f"/v2/{_BARRIER_REPO}/"):
                continue
            entries.append(AccessLogEntry(match["method"], path, int(match["status"])))
        return entries

    def count(self, method: str | None, path_regex: str, status: int | None = None) -> int:
        """How many logged requests have ``method`` (None: any) and a path ``re.fullmatch``-ing
        ``path_regex`` (query strings are never part of the path), and ``status`` if given."""
        pattern = re.compile(path_regex)
        return sum(
            1
            for entry in self.requests()
            if (method is None or entry.method == method.upper())
            and pattern.fullmatch(entry.path)
            and (status is None or entry.status == status)
        )

    def reset_log(self) -> None:
        """Truncate the access log after the barrier (the registry appends, so it keeps writing at 0)."""
        self._barrier()
        with self.access_log.open("r+b") as fh:
            fh.truncate(0)

    # ------------------------------------------------------------------ lifecycle

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the registry (kill after ``timeout``), stop an owned token service. Idempotent."""
        try:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
        finally:
            if self._owns_token_service and self.token_service is not None:
                self.token_service.stop()
            if self._cleanup_dir is not None:
                self._cleanup_dir.cleanup()


def _htpasswd_line(user: str, password: str) -> str:
    # Cost 4 (the minimum): the registry checks the hash on every request.
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode("ascii")
    return f"{user}:{hashed}\n"


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value
    return base


def start_registry(
    flavour: Flavour = "anon",
    *,
    base_dir: Path | None = None,
    username: str = "alice",
    password: str | None = None,
    users: Mapping[str, str] | None = None,
    tls: bool | None = None,
    token_service: TokenService | None = None,
    anonymous_actions: Sequence[str] = ("pull",),
    expires_in: int = 300,
    readonly: bool = False,
    extra_config: Mapping[str, Any] | None = None,
    startup_timeout: float = 15.0,
) -> RegistryServer:
    """Start a registry of ``flavour`` and return it once ``/v2/`` answers; the caller must ``stop()`` it.

    ``base_dir`` (created if needed) holds config, data, certificates and logs and is kept afterwards;
    without it a temporary directory is used and removed by ``stop()``. ``username``/``password``/``users``
    apply to ``basic`` and ``token``; ``anonymous_actions``/``expires_in`` configure the token service this
    function starts for ``token`` unless ``token_service`` (already started, not stopped here) is given;
    that service's ``users`` then gain these accounts.
    ``tls`` defaults to True only for ``tls``. ``readonly`` turns on maintenance read-only mode.
    ``extra_config`` is deep-merged into the generated YAML config. Raises :class:`RegistryStartError`.
    """
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown registry flavour {flavour!r}; expected one of {FLAVOURS}")
    binary = registry_binary()
    cleanup_dir: tempfile.TemporaryDirectory[str] | None = None
    if base_dir is None:
        cleanup_dir = tempfile.TemporaryDirectory(prefix=f"registry-{flavour}-")
        work_dir = Path(cleanup_dir.name)
    else:
        work_dir = base_dir
        work_dir.mkdir(parents=True, exist_ok=True)
    owned_service: TokenService | None = None
    try:
        authenticated = flavour in ("basic", "token")
        if authenticated:
            password = password if password is not None else secrets.token_urlsafe(12)
            accounts = {username: password, **(users or {})}
        else:
            password, accounts = None, {}
        username_opt = username if authenticated else None
        data_dir = work_dir / "data"
        data_dir.mkdir(exist_ok=True)
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "error", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(data_dir)},
                "delete": {"enabled": True},
                "maintenance": {
                    "uploadpurging": {"enabled": False},
                    "readonly": {"enabled": readonly},
                },
            },
            "http": {"secret": secrets.token_hex(16)},
        }
        ca_cert: Path | None = None
        cert_dir: Path | None = None
        use_tls = tls if tls is not None else flavour == "tls"
        if use_tls:
            ca = make_ca()
            server = make_server_cert(ca)
            ca_cert = write_pem(work_dir / "tls" / "ca.pem", ca.cert_pem)
            cert_dir = work_dir / "certs.d"
            write_pem(cert_dir / "ca.crt", ca.cert_pem)
            config["http"]["tls"] = {
                "certificate": str(write_pem(work_dir / "tls" / "server.crt", server.cert_pem)),
                "key": str(write_pem(work_dir / "tls" / "server.key", server.key_pem, private=True)),
            }
        if flavour == "basic":
            htpasswd = work_dir / "htpasswd"
            htpasswd.write_text("".join(_htpasswd_line(u, p) for u, p in accounts.items()))
            config["auth"] = {"htpasswd": {"realm": "asyncsync-basic-realm", "path": str(htpasswd)}}
        service: TokenService | None = None
        if flavour == "token":
            if token_service is None:
                owned_service = TokenService(
                    users=accounts, anonymous_actions=anonymous_actions, expires_in=expires_in
                ).start()
                service = owned_service
            else:
                service = token_service
                service.users.update(accounts)
            config["auth"] = {
                "token": {
                    "realm": service.realm,
                    "service": service.service,
                    "issuer": service.issuer,
                    "rootcertbundle": str(service.write_root_cert_bundle(work_dir / "token-root.pem")),
                    "autoredirect": False,
                }
            }
        _deep_merge(config, extra_config or {})
        process, host = _spawn(binary, work_dir, config, ca_cert, startup_timeout)
        registry = RegistryServer(
            flavour=flavour,
            host=host,
            scheme="https" if ca_cert is not None else "http",
            work_dir=work_dir,
            data_dir=data_dir,
            config_path=work_dir / "config.yml",
            access_log=work_dir / "access.log",
            error_log=work_dir / "registry.err",
            username=username_opt,
            password=password,
            users=accounts,
            ca_cert=ca_cert,
            cert_dir=cert_dir,
            token_service=service,
            _process=process,
            _owns_token_service=owned_service is not None,
            _cleanup_dir=cleanup_dir,
        )
    except BaseException:
        if owned_service is not None:
            owned_service.stop()
        if cleanup_dir is not None:
            cleanup_dir.cleanup()
        raise
    try:
        registry.reset_log()
    except BaseException:
        registry.stop()
        raise
    return registry


def _spawn(
    binary: str, work_dir: Path, config: dict[str, Any], ca_cert: Path | None, startup_timeout: float
) -> tuple[subprocess.Popen[bytes], str]:
    """Write the config with a free port, start the process and wait for ``/v2/``; retry lost port races."""
    context = ssl.create_default_context(cafile=str(ca_cert)) if ca_cert is not None else None
    last_error = ""
    for _attempt in range(5):
        port = free_port()
        config["http"]["addr"] = f"127.0.0.1:{port}"
        config_path = work_dir / "config.yml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        with (work_dir / "access.log").open("ab") as out, (work_dir / "registry.err").open("wb") as err:
            process = subprocess.Popen(
                [binary, "serve", str(config_path)], stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )
        try:
            if _wait_ready(process, port, context, startup_timeout):
                return process, f"127.0.0.1:{port}"
        except BaseException:
            _kill(process)
            raise
        _kill(process)
        last_error = (work_dir / "registry.err").read_text(errors="replace")[-2000:]
        if "address already in use" not in last_error:
            break
    raise RegistryStartError(f"docker-registry exited during startup (work dir {work_dir}):\n{last_error}")


def _wait_ready(
    process: subprocess.Popen[bytes], port: int, context: ssl.SSLContext | None, timeout: float
) -> bool:
    """Poll ``GET /v2/`` every 20 ms: True once it answers, False if the process exits first."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        if process.poll() is not None:
            return False
        conn: http.client.HTTPConnection
        if context is not None:
            conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=1.0, context=context)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
        try:
            conn.request("GET", "/v2/", headers={"Connection": "close"})
            conn.getresponse().read()
            return True
        except (OSError, http.client.HTTPException) as exc:
            last = exc
        finally:
            conn.close()
        if time.monotonic() > deadline:
            _kill(process)
            raise RegistryStartError(
                f"docker-registry on port {port} did not answer /v2/ in {timeout} s (last error: {last!r})"
            )
        time.sleep(POLL_INTERVAL)


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()


class RegistryFactory(Protocol):
    """The callable the ``make_registry`` fixture yields (annotate test parameters with it)."""

    def __call__(self, flavour: Flavour = "anon", **options: Any) -> RegistryServer:
        """Start a registry of ``flavour`` with :func:`start_registry` options; stopped when the test ends."""
        ...


@contextlib.contextmanager
def run_registry(flavour: Flavour = "anon", **options: Any) -> Iterator[RegistryServer]:
    """``with run_registry("basic", base_dir=...) as server:`` — :func:`start_registry`, stopped on exit."""
    server = start_registry(flavour, **options)
    try:
        yield server
    finally:
        server.stop()
