"""``asyncsync manifest-digest FILE``: the digest a registry would give a manifest file.

For a signed schema 1 manifest that is the digest of the payload without its JWS signatures
(what ``docker pull`` shows); for everything else the sha256 of the exact bytes.
"""

from __future__ import annotations

from typing import Annotated

import anyio
import typer

from asyncsync.cli._run import run
from asyncsync.cli.app import app
from asyncsync.cli.common import SkopeoCommand
from asyncsync.errors import LocalStorageError
from asyncsync.manifest import MAX_MANIFEST_SIZE, manifest_digest


async def digest_of_file(path: str) -> str:
    """``sha256:...`` of the manifest in ``path``; :class:`LocalStorageError` when unreadable."""
    file = anyio.Path(path)
    try:
        if (await file.stat()).st_size > MAX_MANIFEST_SIZE:
            raise LocalStorageError(f"manifest file {path} is larger than {MAX_MANIFEST_SIZE} bytes")
        data = await file.read_bytes()
    except OSError as exc:
        raise LocalStorageError(f"cannot read manifest file {path}: {exc.strerror or exc}") from None
    return str(manifest_digest(data))


@app.command("manifest-digest", cls=SkopeoCommand)
def manifest_digest_command(
    manifest: Annotated[str, typer.Argument(metavar="MANIFEST-FILE", help="A manifest file.")],
) -> None:
    """Compute the manifest digest of MANIFEST-FILE and print it."""

    async def main() -> None:
        typer.echo(await digest_of_file(manifest))

    run(main)
