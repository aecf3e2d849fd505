"""Real GnuPG keys for the trust tests: a GNUPGHOME with two signing keys, made with the gpg binary.

``alice`` has a passphrase (what ``--sign-passphrase-file`` is for), ``bob`` none. Keys are Ed25519
so generating them takes milliseconds (RSA keys take seconds on a busy machine); skopeo's gpgme
verifies them like any other. The agent is told not to cache passphrases, so a wrong passphrase
is always asked about (skopeo's tests kill the agent instead). :func:`stop_agent` ends the agent
the home started.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PASSPHRASE = "correct horse battery staple"


@dataclass(frozen=True)
class GpgKeys:
    home: Path
    alice: str  # fingerprint
    bob: str
    alice_pub: Path  # armored public keys
    bob_pub: Path
    passphrase_file: Path
    wrong_passphrase_file: Path

    def env(self) -> dict[str, str]:
        return {"GNUPGHOME": str(self.home)}


def _gpg(home: Path, *args: str, stdin: bytes = b"") -> bytes:
    done = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--no-tty", *args],
        input=stdin,
        capture_output=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def _fingerprint(home: Path, email: str) -> str:
    for line in _gpg(home, "--with-colons", "--list-keys", email).decode().splitlines():
        if line.startswith("fpr:"):
            return line.split(":")[9]
    raise AssertionError(f"no key for {email}")


def make_gpg_home(base: Path) -> GpgKeys:
    home = base / "gnupg"
    home.mkdir(mode=0o700)
    (home / "gpg-agent.conf").write_text("default-cache-ttl 0\nmax-cache-ttl 0\nallow-loopback-pinentry\n")
    _gpg(
        home,
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        PASSPHRASE,
        "--quick-gen-key",
        "Test key - alice <alice@test.example>",
        "ed25519",
        "sign",
        "never",
    )
    _gpg(
        home,
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        "--quick-gen-key",
        "Test key - bob <bob@test.example>",
        "ed25519",
        "sign",
        "never",
    )
    keys = {}
    for name in ("alice", "bob"):
        pub = base / f"pubkey-{name}.gpg"
        pub.write_bytes(_gpg(home, "--armor", "--export", f"{name}@test.example"))
        keys[name] = (_fingerprint(home, f"{name}@test.example"), pub)
    right, wrong = base / "passphrase", base / "passphrase-wrong"
    right.write_text(PASSPHRASE + "\n")
    wrong.write_text("not the passphrase\n")
    return GpgKeys(home, keys["alice"][0], keys["bob"][0], keys["alice"][1], keys["bob"][1], right, wrong)


def stop_agent(home: Path) -> None:
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, check=False, timeout=30
    )


def run_tool(
    tool: str, *args: str, keys: GpgKeys, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run ``asyncsync`` (this checkout) or ``skopeo`` with ``keys`` as the GnuPG home; no stdin."""
    command = [sys.executable, "-m", "asyncsync"] if tool == "asyncsync" else ["skopeo"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), GNUPGHOME=str(keys.home))
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
