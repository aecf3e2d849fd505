"""``standalone-sign``, ``standalone-verify`` and ``generate-sigstore-key``, as skopeo has them.

* ``standalone-sign MANIFEST REFERENCE KEY -o SIGNATURE [--passphrase-file F]``: a simple
  signing signature of MANIFEST's digest for REFERENCE (written into the signature as given),
  made with KEY from the caller's GPG keyring.
* ``standalone-verify MANIFEST REFERENCE FINGERPRINT SIGNATURE``: checks SIGNATURE with the
  caller's keyring (as skopeo: the key must be there and be FINGERPRINT) against MANIFEST and
  REFERENCE; prints ``Signature verified, digest sha256:...``.
* ``generate-sigstore-key --output-prefix P [--passphrase-file F]``: ``P.private`` (cosign's
  encrypted format, mode 0600) and ``P.pub``; refuses to overwrite either.

Errors carry skopeo's wording ("creating signature: ...", "verifying signature: ...") on
one line; the passphrase is read from the file's first line and goes to gpg on stdin.
"""

from __future__ import annotations

import os
import sys
from getpass import getpass
from typing import Annotated, BinaryIO

import anyio
import typer

from asyncsync.cli._run import run
from asyncsync.cli.app import app
from asyncsync.cli.common import SkopeoCommand
from asyncsync.errors import InvalidReferenceError, LocalStorageError, SignatureError, UsageError
from asyncsync.manifest import MAX_MANIFEST_SIZE, manifest_digest
from asyncsync.reference import parse_reference
from asyncsync.signature import gpg
from asyncsync.signature import payload as payloads
from asyncsync.signature.signing import read_passphrase_file
from asyncsync.signature.sigstore import generate_key_pair
from asyncsync.transports.local_files import read_capped, write_file_atomic_sync

#: A signature larger than this is not one (containers/image's MaxSignatureBodySize).
MAX_SIGNATURE_SIZE = 4 * 1024 * 1024


def _write_sync(path: str, data: bytes, mode: int) -> None:
    """Atomically for a regular file; directly for a device such as /dev/null (as skopeo)."""
    try:
        if os.path.exists(path) and not os.path.isfile(path):
            with open(path, "wb") as handle:
                handle.write(data)
            return

        def produce(out: BinaryIO) -> None:
            out.write(data)

        write_file_atomic_sync(path, produce)
        os.chmod(path, mode)
    except OSError as exc:
        raise LocalStorageError(f"writing {path}: {exc.strerror or exc}") from None


async def _write(path: str, data: bytes, mode: int = 0o644) -> None:
    await anyio.to_thread.run_sync(_write_sync, path, data, mode)


async def standalone_sign(
    manifest: str, reference: str, key: str, output: str, passphrase_file: str | None
) -> None:
    data = await read_capped(manifest, MAX_MANIFEST_SIZE, f"reading manifest from {manifest}")
    passphrase = read_passphrase_file(passphrase_file, "--passphrase-file") if passphrase_file else None
    document = payloads.build(payloads.SIMPLE_SIGNING_TYPE, manifest_digest(data), reference)
    try:
        signature = await gpg.sign(document, key, passphrase=passphrase)
    except SignatureError as exc:
        raise SignatureError(f"creating signature: {str(exc).removeprefix('creating signature: ')}") from None
    await _write(output, signature)


async def standalone_verify(manifest: str, reference: str, fingerprint: str, signature: str) -> str:
    data = await read_capped(manifest, MAX_MANIFEST_SIZE, f"reading manifest from {manifest}")
    blob = await read_capped(signature, MAX_SIGNATURE_SIZE, f"reading signature from {signature}")
    try:
        expected = parse_reference(reference, default_tag=False)
    except InvalidReferenceError as exc:
        raise UsageError(f"verifying signature: {exc}") from None
    try:
        verified = await gpg.verify(blob, home=None)
    except SignatureError as exc:
        raise SignatureError(f"verifying signature: {exc}") from None
    if verified.fingerprint != fingerprint:
        raise SignatureError(
            f"verifying signature: Signature by {verified.fingerprint} does not match expected "
            f"fingerprint {fingerprint}"
        )
    try:
        claims = payloads.parse(verified.payload, payloads.SIMPLE_SIGNING_TYPE)
    except payloads.InvalidPayloadError as exc:
        raise SignatureError(f"verifying signature: Invalid signature: {exc}") from None
    if claims.digest != str(manifest_digest(data)):
        raise SignatureError(
            f'verifying signature: Signature for docker digest "{claims.digest}" does not match'
        )
    try:
        signed = parse_reference(claims.docker_reference, default_tag=False)
    except InvalidReferenceError:
        raise SignatureError(
            f"verifying signature: Invalid docker reference {claims.docker_reference} in signature"
        ) from None
    if str(signed) != str(expected):
        raise SignatureError(
            f"verifying signature: Docker reference {claims.docker_reference} does not match {reference}"
        )
    return claims.digest


@app.command("standalone-sign", cls=SkopeoCommand)
def standalone_sign_command(
    manifest: Annotated[str, typer.Argument(metavar="MANIFEST")],
    reference: Annotated[str, typer.Argument(metavar="DOCKER-REFERENCE")],
    fingerprint: Annotated[str, typer.Argument(metavar="KEY-FINGERPRINT")],
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", metavar="SIGNATURE", help="Output the signature to SIGNATURE."),
    ] = None,
    passphrase_file: Annotated[
        str | None,
        typer.Option(
            "--passphrase-file", metavar="PATH", help="File that contains a passphrase for the key."
        ),
    ] = None,
) -> None:
    """Create a signature using local files."""

    async def main() -> None:
        if not output:
            raise UsageError(
                "Usage: asyncsync standalone-sign manifest docker-reference key-fingerprint -o signature"
            )
        await standalone_sign(manifest, reference, fingerprint, output, passphrase_file)

    run(main)


@app.command("standalone-verify", cls=SkopeoCommand)
def standalone_verify_command(
    manifest: Annotated[str, typer.Argument(metavar="MANIFEST")],
    reference: Annotated[str, typer.Argument(metavar="DOCKER-REFERENCE")],
    fingerprint: Annotated[str, typer.Argument(metavar="KEY-FINGERPRINT")],
    signature: Annotated[str, typer.Argument(metavar="SIGNATURE")],
) -> None:
    """Verify a signature using local files."""

    async def main() -> None:
        digest = await standalone_verify(manifest, reference, fingerprint, signature)
        typer.echo(f"Signature verified, digest {digest}")

    run(main)


@app.command("generate-sigstore-key", cls=SkopeoCommand)
def generate_sigstore_key_command(
    output_prefix: Annotated[
        str | None,
        typer.Option(
            "--output-prefix", metavar="PREFIX", help="Write the keys to PREFIX.pub and PREFIX.private."
        ),
    ] = None,
    passphrase_file: Annotated[
        str | None,
        typer.Option(
            "--passphrase-file", metavar="PATH", help="Read a passphrase for the private key from PATH."
        ),
    ] = None,
) -> None:
    """Generate a sigstore public/private key pair."""

    async def main() -> None:
        if not output_prefix:
            raise UsageError("Usage: generate-sigstore-key --output-prefix PREFIX")
        public, private = f"{output_prefix}.pub", f"{output_prefix}.private"
        for path in (public, private):
            if await anyio.Path(path).exists() or await anyio.Path(path).is_symlink():
                raise UsageError(f'Refusing to overwrite existing "{path}"')
        if passphrase_file:
            passphrase = read_passphrase_file(passphrase_file, "--passphrase-file")
        elif sys.stdin.isatty():
            passphrase = getpass(f"Enter a passphrase for {private}: ")
            if getpass("Repeat the passphrase: ") != passphrase:
                raise UsageError("passphrases do not match")
        else:
            raise UsageError(
                "generate-sigstore-key: no --passphrase-file and no terminal to ask for a passphrase"
            )
        keys = await anyio.to_thread.run_sync(generate_key_pair, passphrase.encode("utf-8"))
        await _write(private, keys.private_pem, 0o600)
        await _write(public, keys.public_pem, 0o644)
        typer.echo(f'Key written to "{private}" and "{public}"')

    run(main)
