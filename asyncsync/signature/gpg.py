"""The ``gpg`` binary (GnuPG 2.x) for simple signing: import, verify and sign, each with a timeout.

Why the binary and not a library: python-gnupg and gpgme's bindings both drive this same binary
(gpgme through its own engine), the binary is what skopeo's tests and users have, and three
calls need no more than :func:`_run`. What this module guarantees:

* Every call has a deadline (:data:`GPG_TIMEOUT`); on expiry the process is killed and a
  :class:`~asyncsync.errors.SignatureError` says so.
* A passphrase reaches gpg only on its standard input (``--pinentry-mode loopback
  --passphrase-fd 0``), never in argv, the environment, logs or error messages.
* Verification for a policy runs in a temporary GPG home holding only the policy's keys
  (:class:`EphemeralKeyring`), so the caller's keyring never decides trust. Signing (and
  ``standalone-verify``, as skopeo) uses the caller's keyring (``GNUPGHOME`` or ``~/.gnupg``).
* The signature must be exactly one valid signature (``GOODSIG`` + ``VALIDSIG``, no expired or
  revoked key): gpg's status lines decide, never its exit code alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

import anyio

from asyncsync.errors import SignatureError

#: Seconds one gpg invocation may take (a gpg-agent start plus an RSA-4096 signature is < 2 s).
GPG_TIMEOUT = 60.0
_STATUS = "[GNUPG:] "


@dataclass(frozen=True, slots=True)
class GpgResult:
    returncode: int
    stdout: bytes
    status: list[list[str]]
    messages: list[str]

    def has(self, keyword: str) -> bool:
        return any(line and line[0] == keyword for line in self.status)

    def lines(self, keyword: str) -> list[list[str]]:
        return [line for line in self.status if line and line[0] == keyword]

    def last_message(self) -> str:
        """gpg's last human-readable line, without the ``gpg: `` prefix."""
        for message in reversed(self.messages):
            text = message.removeprefix("gpg: ").strip()
            if text:
                return text
        return f"gpg exited with status {self.returncode}"


def gpg_binary() -> str:
    found = shutil.which("gpg") or shutil.which("gpg2")
    if found is None:
        raise SignatureError("gpg is not installed (Debian: apt-get install gnupg)")
    return found


async def _run(args: list[str], *, home: str | None, stdin: bytes = b"") -> GpgResult:
    """Run gpg with ``args``; status lines go to stderr (``--status-fd 2``) and are split off."""
    command = [gpg_binary(), "--batch", "--no-tty", "--status-fd", "2"]
    if home is not None:
        command += ["--homedir", home]
    command += args
    env = dict(os.environ)
    env["LC_ALL"] = "C"  # English messages: "Bad passphrase" is matched by callers and tests
    timeout = GPG_TIMEOUT
    try:
        with anyio.fail_after(timeout):
            completed = await anyio.run_process(
                command, input=stdin, check=False, env=env, stderr=subprocess.PIPE
            )
    except TimeoutError:
        raise SignatureError(f"gpg did not finish within {timeout:g}s (killed)") from None
    except OSError as exc:
        raise SignatureError(f"running gpg: {exc.strerror or exc}") from None
    status: list[list[str]] = []
    messages: list[str] = []
    for line in completed.stderr.decode("utf-8", "replace").splitlines():
        if line.startswith(_STATUS):
            status.append(line[len(_STATUS) :].split(" "))
        else:
            messages.append(line)
    return GpgResult(completed.returncode, completed.stdout, status, messages)


@dataclass(frozen=True, slots=True)
class Verified:
    """A good signature: the signed bytes and the signer's fingerprints (signing key, primary key)."""

    payload: bytes
    fingerprint: str
    primary_fingerprint: str


async def verify(signature: bytes, *, home: str | None) -> Verified:
    """Check ``signature`` (an OpenPGP signed message) with the keys in ``home`` (``None``: the
    caller's keyring). Raises :class:`SignatureError` "Invalid GPG signature: ..." otherwise."""
    result = await _run(["--decrypt"], home=home, stdin=signature)
    if result.has("DECRYPTION_INFO") or result.has("BEGIN_DECRYPTION") or result.has("ENC_TO"):
        raise SignatureError("Invalid GPG signature: the message is encrypted, not signed")
    signatures = len(result.lines("NEWSIG")) or len(
        [
            line
            for line in result.status
            if line[0] in ("GOODSIG", "BADSIG", "ERRSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG")
        ]
    )
    if signatures != 1:
        raise SignatureError(f"Invalid GPG signature: Unexpected GPG signature count {signatures}")
    for keyword, reason in (
        ("BADSIG", "bad signature"),
        ("EXPSIG", "the signature has expired"),
        ("EXPKEYSIG", "signed by an expired key"),
        ("REVKEYSIG", "signed by a revoked key"),
    ):
        found = result.lines(keyword)
        if found:
            key = found[0][1] if len(found[0]) > 1 else "?"
            raise SignatureError(f"Invalid GPG signature: {reason} (key {key})")
    errors = result.lines("ERRSIG")
    if errors:
        key = errors[0][1] if len(errors[0]) > 1 else "?"
        code = errors[0][6] if len(errors[0]) > 6 else ""
        reason = "no public key" if code == "9" else f"cannot check signature (error {code or '?'})"
        raise SignatureError(f"Invalid GPG signature: {reason} for key ID {key}")
    valid = result.lines("VALIDSIG")
    if not result.has("GOODSIG") or not valid or result.returncode != 0:
        raise SignatureError(f"Invalid GPG signature: {result.last_message()}")
    fields = valid[0]
    fingerprint = fields[1]
    primary = fields[10] if len(fields) > 10 else fingerprint
    return Verified(result.stdout, fingerprint, primary)


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


async def sign(payload: bytes, key: str, *, passphrase: str | None, home: str | None = None) -> bytes:
    """Sign ``payload`` with ``key`` (fingerprint, key ID or e-mail) from the caller's keyring.

    The OpenPGP message is binary (not armored), as containers/image's gpgme signer writes it.
    With ``passphrase``, gpg reads it from its standard input; the payload goes in a temporary
    file. Raises :class:`SignatureError` with gpg's reason ("Bad passphrase", "No secret key").
    """
    if passphrase is not None and "\n" in passphrase:
        raise SignatureError("invalid passphrase: must not contain a line break")
    with tempfile.TemporaryDirectory(prefix="asyncsync-sign-") as scratch:
        path = os.path.join(scratch, "payload")
        await anyio.to_thread.run_sync(_write, path, payload)
        args = ["--local-user", key, "--output", "-"]
        stdin = b""
        if passphrase is not None:
            args = ["--pinentry-mode", "loopback", "--passphrase-fd", "0", *args]
            stdin = passphrase.encode("utf-8") + b"\n"
        result = await _run([*args, "--sign", path], home=home, stdin=stdin)
    if result.has("BAD_PASSPHRASE") and not result.has("SIG_CREATED"):
        raise SignatureError("creating signature: Bad passphrase")
    if result.returncode != 0 or not result.has("SIG_CREATED") or not result.stdout:
        raise SignatureError(f"creating signature: {result.last_message()}")
    return result.stdout


class EphemeralKeyring:
    """A temporary GPG home holding only the given public keys; remove it with :meth:`close`.

    ``fingerprints`` are those gpg reports imported (``IMPORT_OK``): the trusted identities
    of a ``signedBy`` requirement. Calls on one keyring are serialised (gpg locks its keyring).
    """

    def __init__(self) -> None:
        # Short path under the system temp dir: gpg-agent's socket path has a length limit.
        self.home = tempfile.mkdtemp(prefix="asyncsync-gpg-")
        self.fingerprints: list[str] = []
        self._lock = anyio.Lock()

    async def import_keys(self, blobs: list[bytes]) -> list[str]:
        for blob in blobs:
            async with self._lock:
                result = await _run(["--import"], home=self.home, stdin=blob)
            for line in result.lines("IMPORT_OK"):
                if len(line) > 2 and line[2] not in self.fingerprints:
                    self.fingerprints.append(line[2])
        return self.fingerprints

    async def verify(self, signature: bytes) -> Verified:
        async with self._lock:
            return await verify(signature, home=self.home)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            shutil.rmtree(self.home)
