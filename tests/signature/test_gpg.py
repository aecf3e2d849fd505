"""The gpg client with the real gpg binary: sign, verify, ephemeral keyrings, timeouts, secrets."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from asyncsync.errors import SignatureError
from asyncsync.signature import gpg
from tests.helpers.gpg_keys import PASSPHRASE, GpgKeys

pytestmark = pytest.mark.anyio


async def test_sign_then_verify_in_a_keyring_of_only_the_policy_keys(gnupg_home: GpgKeys) -> None:
    signature = await gpg.sign(b'{"payload": 1}', "alice@test.example", passphrase=PASSPHRASE)
    assert signature[0] in (0xA3, 0xC8, 0x90, 0xC4)  # a binary OpenPGP message, as gpgme writes
    keyring = gpg.EphemeralKeyring()
    try:
        imported = await keyring.import_keys([gnupg_home.alice_pub.read_bytes(), b"not a key at all"])
        assert imported == [gnupg_home.alice]
        verified = await keyring.verify(signature)
        assert verified.payload == b'{"payload": 1}'
        assert verified.fingerprint == gnupg_home.alice
        assert os.listdir(keyring.home)  # a real, separate GPG home
    finally:
        keyring.close()
    assert not await anyio.Path(keyring.home).exists()


async def test_verification_failures(gnupg_home: GpgKeys) -> None:
    signature = await gpg.sign(b"data", "bob@test.example", passphrase=None)
    alice_only = gpg.EphemeralKeyring()
    try:
        await alice_only.import_keys([gnupg_home.alice_pub.read_bytes()])
        with pytest.raises(SignatureError, match="Invalid GPG signature: no public key for key ID"):
            await alice_only.verify(signature)
        bob = gpg.EphemeralKeyring()
        await bob.import_keys([gnupg_home.bob_pub.read_bytes()])
        tampered = bytearray(signature)
        tampered[len(tampered) // 2] ^= 0x01
        with pytest.raises(SignatureError, match="Invalid GPG signature"):
            await bob.verify(bytes(tampered))
        with pytest.raises(SignatureError, match="Invalid GPG signature"):
            await bob.verify(b"\xa3garbage")
        bob.close()
    finally:
        alice_only.close()


async def test_signing_failures_name_gpg_reason_never_the_passphrase(gnupg_home: GpgKeys) -> None:
    with pytest.raises(SignatureError) as caught:
        await gpg.sign(b"data", "alice@test.example", passphrase="wrong secret words")
    assert "Bad passphrase" in str(caught.value)
    assert "wrong secret words" not in str(caught.value)
    with pytest.raises(SignatureError, match="No secret key"):
        await gpg.sign(b"data", "nobody@test.example", passphrase=PASSPHRASE)
    with pytest.raises(SignatureError, match="line break"):
        await gpg.sign(b"data", "alice@test.example", passphrase="two\nlines")


async def test_every_call_has_a_deadline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A gpg that hangs (here: a script standing in for it) is killed at the deadline."""
    fake = tmp_path / "gpg"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(gpg, "GPG_TIMEOUT", 0.5)
    with pytest.raises(SignatureError, match=r"gpg did not finish within 0.5s \(killed\)"):
        await gpg.verify(b"\xa3x", home=str(tmp_path))


async def test_passphrase_never_in_argv(gnupg_home: GpgKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    real = gpg.anyio.run_process

    async def spy(command: list[str], **kwargs: object) -> object:
        seen.append(list(command))
        return await real(command, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(gpg.anyio, "run_process", spy)
    await gpg.sign(b"data", "alice@test.example", passphrase=PASSPHRASE)
    assert seen and all(PASSPHRASE not in " ".join(command) for command in seen)
    assert "--passphrase-fd" in seen[0] and "0" in seen[0]
