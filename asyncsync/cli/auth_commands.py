"""``asyncsync login`` and ``logout``, as skopeo's (containers/common ``auth`` package).

``login`` checks the credentials against the registry before writing anything: a ``GET /v2/``
with them, through the token service when the registry asks for bearer tokens. Only then are
they written to the auth file (atomically, mode 0600). ``logout`` removes entries from that same
file. Passwords are never echoed, printed or put in an error message.
"""

from __future__ import annotations

import getpass
import re
import sys
from typing import Annotated

import anyio
import typer

from asyncsync.cli._run import run
from asyncsync.cli.app import app
from asyncsync.cli.common import RegistryFlags, SkopeoCommand, registry_group
from asyncsync.cli.flag_groups import with_flag_groups
from asyncsync.errors import AuthenticationError, CredentialsError, UsageError
from asyncsync.reference import DEFAULT_DOMAIN, LEGACY_DEFAULT_DOMAIN
from asyncsync.registry.client import RegistryOptions, RegistrySession
from asyncsync.registry.credentials import (
    Credentials,
    lookup_credentials,
    remove_credentials,
    store_credentials,
)
from asyncsync.retry import RetryPolicy

_HOST = re.compile(
    r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)"
    r"(?::[0-9]{1,5})?$"
)
_PATH = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")

#: The registry flags login and logout take (skopeo's: no --creds, its own --username/--password).
_LOGIN_FLAGS = registry_group(("authfile", "tls_verify", "cert_dir"))
# --tls-verify: skopeo's logout takes it; removing a file entry reaches no registry, so it changes nothing.
_LOGOUT_FLAGS = registry_group(("authfile", "tls_verify"))


def parse_login_key(text: str) -> tuple[str, str]:
    """``(key, host)`` for a ``login``/``logout`` argument: ``host[:port][/namespace]``.

    A scheme and a trailing ``/v1/``/``/v2/`` are tolerated (``docker login`` accepts URLs);
    ``index.docker.io`` means ``docker.io``. Anything else raises :class:`UsageError`.
    """
    key = text.strip()
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme) :]
    key = re.sub(r"/(v1|v2)/?$", "", key).rstrip("/")
    host, _, path = key.partition("/")
    if host in (LEGACY_DEFAULT_DOMAIN, "registry-1.docker.io"):
        host = DEFAULT_DOMAIN
    if not host or not _HOST.match(host) or (path and not _PATH.match(path)):
        raise UsageError(f"invalid registry {text!r}: expected HOST[:PORT][/NAMESPACE]")
    return (f"{host}/{path}" if path else host), host


async def verify_credentials(
    host: str, creds: Credentials, *, tls_verify: bool, cert_dir: str | None
) -> None:
    """Authenticate to ``host`` with ``creds`` (``GET /v2/``); raises :class:`AuthenticationError`."""
    options = RegistryOptions(tls_verify=tls_verify, cert_dir=cert_dir, credentials=creds)
    # One attempt: a refused password must not be retried (lockout policies count failures).
    async with RegistrySession(retry=RetryPolicy(attempts=1)) as session:
        client = session.client(host, options)
        await client.request("GET", "/v2/", what=f"logging in to {host}")


def _read_password_stdin() -> str:
    # containers/common strips the line ending only, so passwords may contain spaces.
    return sys.stdin.read().rstrip("\r\n")


def _interactive() -> bool:
    return sys.stdin.isatty()


async def _stored_username(key: str, host: str, authfile: str | None) -> str:
    """``login --get-login``: the username stored for ``key``; :class:`CredentialsError` when none."""
    found = await lookup_credentials(host, key.partition("/")[2] or None, authfile=authfile)
    if not found or not found.username:
        raise CredentialsError(f"not logged into {key}")
    return found.username


async def _given_password(username: str | None, password: str | None, password_stdin: bool) -> str | None:
    """The password from ``--password`` or ``--password-stdin`` (validated as skopeo does), or ``None``."""
    if password_stdin and password is not None:
        raise UsageError("--password and --password-stdin are mutually exclusive")
    if password_stdin and not username:
        raise UsageError("must provide --username with --password-stdin")
    if password_stdin:
        return await anyio.to_thread.run_sync(_read_password_stdin)
    return password


async def _still_valid(
    key: str, host: str, existing: Credentials, *, tls_verify: bool, cert_dir: str | None
) -> bool:
    """Whether the stored credentials still log in (skopeo's messages either way)."""
    typer.echo(f"Authenticating with existing credentials for {key}")
    try:
        await verify_credentials(host, existing, tls_verify=tls_verify, cert_dir=cert_dir)
    except AuthenticationError:
        typer.echo("Existing credentials are invalid, please enter valid username and password")
        return False
    typer.echo(f"Existing credentials are valid. Already logged in to {key}")
    return True


async def _prompt_missing(user: str | None, secret: str | None) -> Credentials:
    """The credentials, asking on the terminal for what was not given; :class:`UsageError` when it
    cannot ask (stdin is not a terminal) or an answer is empty."""
    if user is None:
        if not _interactive():
            raise UsageError("no username given (use --username) and stdin is not a terminal")
        user = (await anyio.to_thread.run_sync(input, "Username: ")).strip()
    if secret is None:
        if not _interactive():
            raise UsageError("no password given (use --password-stdin) and stdin is not a terminal")
        secret = await anyio.to_thread.run_sync(getpass.getpass, "Password: ")
    if not user:
        raise UsageError("username cannot be empty")
    if not secret:
        raise UsageError("password cannot be empty")
    return Credentials(username=user, password=secret)


@app.command("login", cls=SkopeoCommand)
@with_flag_groups
def login_command(
    registry: Annotated[str, typer.Argument(metavar="REGISTRY", help="host[:port] (or host/namespace).")],
    *,
    username: Annotated[
        str | None, typer.Option("--username", "-u", help="Username for the registry.")
    ] = None,
    password: Annotated[
        str | None, typer.Option("--password", "-p", help="Password for the registry.")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Take the password from stdin.")
    ] = False,
    get_login: Annotated[
        bool, typer.Option("--get-login", help="Print the username stored for the registry and exit.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Write more detailed information to stdout.")
    ] = False,
    flags: Annotated[RegistryFlags, _LOGIN_FLAGS],
) -> None:
    """Log in to a registry: verify the credentials, then store them in the auth file."""
    authfile, tls_verify, cert_dir = flags.authfile, flags.tls_verify is not False, flags.cert_dir

    async def main() -> None:
        key, host = parse_login_key(registry)
        if get_login:
            typer.echo(await _stored_username(key, host, authfile))
            return
        secret = await _given_password(username, password, password_stdin)
        if username is None and secret is None:
            existing = await lookup_credentials(host, key.partition("/")[2] or None, authfile=authfile)
            if existing and await _still_valid(key, host, existing, tls_verify=tls_verify, cert_dir=cert_dir):
                return
        creds = await _prompt_missing(username, secret)
        await verify_credentials(host, creds, tls_verify=tls_verify, cert_dir=cert_dir)
        used = store_credentials(key, creds, authfile=authfile)
        if verbose:
            typer.echo(f"Used:  {used}")  # containers/common's fmt.Println("Used: ", path) spacing
        typer.echo("Login Succeeded!")

    run(main)


@app.command("logout", cls=SkopeoCommand)
@with_flag_groups
def logout_command(
    registry: Annotated[
        str | None, typer.Argument(metavar="[REGISTRY]", help="host[:port] (or host/namespace).")
    ] = None,
    all_registries: Annotated[
        bool, typer.Option("--all", "-a", help="Remove the credentials of every registry.")
    ] = False,
    *,
    flags: Annotated[RegistryFlags, _LOGOUT_FLAGS],
) -> None:
    """Remove stored credentials for a registry (or all of them with --all)."""
    authfile = flags.authfile

    async def main() -> None:
        if all_registries:
            if registry is not None:
                raise UsageError("--all takes no REGISTRY argument")
            remove_credentials(None, authfile=authfile)
            typer.echo("Removed login credentials for all registries")
            return
        if registry is None:
            raise UsageError("give a REGISTRY to log out of, or --all")
        key, host = parse_login_key(registry)
        if remove_credentials(key, authfile=authfile):
            typer.echo(f"Removed login credentials for {key}")
            return
        if await lookup_credentials(host, key.partition("/")[2] or None, authfile=authfile):
            raise CredentialsError(
                f"not logged into {key} with asyncsync's auth file; the credentials in use come from "
                "another file (such as ~/.docker/config.json), remove them there"
            )
        raise CredentialsError(f"not logged into {key}")

    run(main)
