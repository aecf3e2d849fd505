"""Credentials: where they come from (skopeo's order), auth files, credential helpers.

Lookup order for a registry, as containers/image does it:

1. ``--creds user[:password]`` / ``--registry-token`` given on the command line;
2. ``--authfile`` (or ``REGISTRY_AUTH_FILE``, else ``$XDG_RUNTIME_DIR/containers/auth.json``);
3. ``$XDG_CONFIG_HOME/containers/auth.json`` (``~/.config/containers/auth.json``);
4. ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``;
5. ``~/.dockercfg`` (legacy format).

In each file ``credHelpers[host]`` wins, then an ``auths`` entry (most specific key first:
``host/ns/repo``, ``host/ns``, ``host``, as containers-auth.json(5) says), then ``credsStore``.
Credentials belong to a repository, not to a host: two repositories of one registry may use
different entries. Helpers run as ``docker-credential-<name> get`` with the server name on stdin,
never in argv, as child processes awaited without blocking the event loop (timeout
:data:`HELPER_TIMEOUT`).

:class:`StoredCredentials` is the lookup of one run: the auth files are read once, and each
helper is asked once per server name (concurrent askers share the answer).

Secrets never appear in ``repr``/``str`` of :class:`Credentials`.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import orjson

from asyncsync.errors import CredentialsError
from asyncsync.jsondoc import load_json_object
from asyncsync.limits import SingleFlight

IDENTITY_TOKEN_USER = "<token>"
#: Seconds a credential helper may take before it is killed and the lookup fails.
HELPER_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Credentials:
    """A username with a password, or an identity (refresh) token. Secrets are hidden in repr."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)

    def __bool__(self) -> bool:
        return bool(self.username or self.password or self.identity_token)


def parse_creds_flag(value: str, *, prompt: bool = True) -> Credentials:
    """Parse ``--creds user[:password]``; prompt for a missing password only on a TTY."""
    if not value:
        raise CredentialsError("--creds: empty value; expected USERNAME[:PASSWORD]")
    username, sep, password = value.partition(":")
    if not username:
        raise CredentialsError("--creds: missing username; expected USERNAME[:PASSWORD]")
    if not sep:
        if not (prompt and os.isatty(0)):
            raise CredentialsError(f"--creds: no password for {username!r} and stdin is not a terminal")
        import getpass

        password = getpass.getpass(f"Password for {username}: ")
    return Credentials(username=username, password=password)


def default_write_path(authfile: str | os.PathLike[str] | None = None) -> Path:
    """Where ``login`` writes and ``logout`` removes: the first auth file of the lookup order."""
    if authfile:
        return Path(authfile)
    env = os.environ.get("REGISTRY_AUTH_FILE")
    if env:
        return Path(env)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "containers" / "auth.json"
    return _xdg_config_home() / "containers" / "auth.json"


def _xdg_config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def auth_file_paths(authfile: str | os.PathLike[str] | None = None) -> list[tuple[Path, bool]]:
    """The auth files to search, in order, as ``(path, legacy_format)``."""
    paths: list[tuple[Path, bool]] = [(default_write_path(authfile), False)]
    paths.append((_xdg_config_home() / "containers" / "auth.json", False))
    docker_config = os.environ.get("DOCKER_CONFIG")
    if docker_config:
        paths.append((Path(docker_config) / "config.json", False))
    else:
        paths.append((Path.home() / ".docker" / "config.json", False))
    paths.append((Path.home() / ".dockercfg", True))
    seen: set[Path] = set()
    unique = []
    for path, legacy in paths:
        if path not in seen:
            seen.add(path)
            unique.append((path, legacy))
    return unique


def _normalise_key(key: str) -> str:
    """``https://index.docker.io/v1/`` -> ``docker.io``; strip scheme and trailing ``/v1/``/``/v2/``."""
    for prefix in ("https://", "http://"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
            key = key.split("/", 1)[0]
            break
    if key in ("index.docker.io", "registry-1.docker.io"):
        return "docker.io"
    if key.startswith("index.docker.io/"):
        return "docker.io/" + key[len("index.docker.io/") :]
    return key


def _load_json(path: Path) -> dict[str, Any] | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialsError(f"cannot read auth file {path}: {exc.strerror}") from None
    if not data.strip():
        return {}
    return load_json_object(data, f"auth file {path}", CredentialsError)


def _decode_entry(entry: Any, path: Path, key: str) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    identity = str(entry.get("identitytoken") or "")
    auth = entry.get("auth")
    username = password = ""
    if auth:
        try:
            decoded = base64.b64decode(str(auth), validate=False).decode()
        except (ValueError, UnicodeDecodeError):
            raise CredentialsError(f"auth file {path}: entry {key!r} has an invalid 'auth' value") from None
        username, _, password = decoded.partition(":")
    elif entry.get("username"):
        username, password = str(entry["username"]), str(entry.get("password") or "")
    creds = Credentials(username=username, password=password, identity_token=identity)
    return creds or None


def _lookup_keys(registry: str, repository: str | None) -> list[str]:
    """Most specific first: ``host/a/b``, ``host/a``, ``host``."""
    keys = []
    if repository:
        parts = repository.split("/")
        for i in range(len(parts), 0, -1):
            keys.append(f"{registry}/{'/'.join(parts[:i])}")
    keys.append(registry)
    return keys


async def credential_helper_get(helper: str, server: str) -> Credentials | None:
    """Run ``docker-credential-<helper> get`` without blocking the event loop.

    The server name goes on stdin, never argv; the helper's output never reaches a message
    (it may echo secrets). A helper still running after :data:`HELPER_TIMEOUT` seconds is killed.
    """
    program = f"docker-credential-{helper}"
    try:
        with anyio.fail_after(HELPER_TIMEOUT):
            proc = await anyio.run_process([program, "get"], input=server.encode(), check=False)
    except TimeoutError:
        raise CredentialsError(f"credential helper {program} timed out") from None
    except OSError as exc:
        problem = (
            "is not installed" if isinstance(exc, FileNotFoundError) else f"cannot be run: {exc.strerror}"
        )
        raise CredentialsError(f"credential helper {program} {problem}") from None
    if proc.returncode != 0:
        output = proc.stdout.decode(errors="replace").strip()
        if "credentials not found" in output.lower():
            return None
        # Helper output may echo secrets; report only the exit status.
        raise CredentialsError(f"credential helper {program} failed with exit status {proc.returncode}")
    # Not the parser's words: "returned invalid JSON" whatever is wrong with the answer.
    data = load_json_object(
        proc.stdout, program, lambda _: CredentialsError(f"credential helper {program} returned invalid JSON")
    )
    username, secret = str(data.get("Username", "")), str(data.get("Secret", ""))
    if username == IDENTITY_TOKEN_USER:
        return Credentials(identity_token=secret)
    creds = Credentials(username=username, password=secret)
    return creds or None


@dataclass(frozen=True, slots=True)
class _AuthFile:
    path: Path
    legacy: bool
    data: dict[str, Any]


class StoredCredentials:
    """Stored credentials for one run: auth files read once, each helper asked once per server.

    ``authfile`` is ``--authfile`` (``None``: the default lookup order). Resolve with
    :meth:`lookup` per repository; the answer may differ between repositories of one host.
    """

    def __init__(self, authfile: str | os.PathLike[str] | None = None) -> None:
        self._authfile = authfile
        self._files: list[_AuthFile] | None = None
        self._helper_answers = SingleFlight[tuple[str, str], Credentials | None]()

    def _auth_files(self) -> list[_AuthFile]:
        if self._files is None:
            files = []
            for path, legacy in auth_file_paths(self._authfile):
                data = _load_json(path)
                if data is not None:
                    _warn_once_if_exposed(path)
                    files.append(_AuthFile(path, legacy, data))
            self._files = files
        return self._files

    async def _helper(self, helper: str, server: str) -> Credentials | None:
        return await self._helper_answers.do((helper, server), lambda: credential_helper_get(helper, server))

    async def lookup(self, registry: str, repository: str | None = None) -> Credentials | None:
        """The stored credentials for ``repository`` of ``registry`` (or for the registry itself)."""
        keys = _lookup_keys(registry, repository)
        for file in self._auth_files():
            helpers = file.data.get("credHelpers") or {}
            if isinstance(helpers, dict):
                for key, helper in helpers.items():
                    if _normalise_key(key) == registry and helper:
                        return await self._helper(str(helper), key)
            auths = file.data if file.legacy else file.data.get("auths") or {}
            if isinstance(auths, dict):
                normalised = {_normalise_key(k): (k, v) for k, v in auths.items()}
                for key in keys:
                    if key in normalised:
                        original, entry = normalised[key]
                        creds = _decode_entry(entry, file.path, original)
                        if creds:
                            return creds
            store = file.data.get("credsStore")
            if store:
                creds = await self._helper(str(store), registry)
                if creds:
                    return creds
        return None


async def lookup_credentials(
    registry: str, repository: str | None = None, *, authfile: str | os.PathLike[str] | None = None
) -> Credentials | None:
    """Find stored credentials for ``repository`` of ``registry`` (a one-off :class:`StoredCredentials`)."""
    return await StoredCredentials(authfile).lookup(registry, repository)


_WARNED: set[Path] = set()


def _warn_once_if_exposed(path: Path) -> None:
    """Log :func:`warn_if_exposed`'s text on the ``asyncsync`` logger, once per file per process
    (the CLI shows warnings on stderr; a run reads each auth file once)."""
    if path in _WARNED:
        return
    warning = warn_if_exposed(path)
    if warning is not None:
        _WARNED.add(path)
        logging.getLogger("asyncsync").warning("%s", warning.removeprefix("warning: "))


def warn_if_exposed(path: Path) -> str | None:
    """A warning text when an auth file is readable or writable by group/others, else ``None``."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        mode_text = f"{stat.S_IMODE(mode):o}"
        return f"warning: auth file {path} is accessible by other users (mode {mode_text}); run chmod 600"
    return None


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON to ``path`` with mode 0600 via a temp file in the same directory + fsync + rename."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".auth-", suffix=".json", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def store_credentials(
    registry: str, creds: Credentials, *, authfile: str | os.PathLike[str] | None = None
) -> Path:
    """Save credentials for ``registry`` into the write auth file; returns its path."""
    path = default_write_path(authfile)
    data = _load_json(path) or {}
    auths = data.setdefault("auths", {})
    if not isinstance(auths, dict):
        raise CredentialsError(f"auth file {path}: 'auths' is not an object")
    entry: dict[str, str] = {}
    if creds.identity_token:
        entry["identitytoken"] = creds.identity_token
    if creds.username or creds.password:
        entry["auth"] = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    auths[registry] = entry
    _write_atomic(path, data)
    return path


def remove_credentials(registry: str | None, *, authfile: str | os.PathLike[str] | None = None) -> bool:
    """Remove ``registry``'s entry (or all entries when ``None``) from the write auth file.

    Returns whether anything was removed.
    """
    path = default_write_path(authfile)
    data = _load_json(path)
    if not data:
        return False
    auths = data.get("auths") or {}
    if registry is None:
        removed = bool(auths)
        data["auths"] = {}
    else:
        matching = [k for k in auths if _normalise_key(k) == registry]
        removed = bool(matching)
        for key in matching:
            del auths[key]
    if removed:
        _write_atomic(path, data)
    return removed
