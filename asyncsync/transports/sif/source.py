"""Reading a SIF file as a one-layer OCI image, the way containers/image's ``sif/`` package does.

The conversion (``sif/load.go`` and ``sif/src.go`` in containers/image 5.23, skopeo 1.9.3):

1. The primary system partition (a squashfs) is copied out of the SIF file into a private work
   directory under the big-files temp dir (``--tmpdir``, ``$TMPDIR``, ``/var/tmp``).
2. A definition file object with ``%environment`` or ``%runscript`` lines becomes
   ``/podman/runscript`` (``#!/bin/bash``, the environment lines, the runscript lines) and the
   image's command; without them the command is ``bash``.
3. Under ``fakeroot`` (so file owners survive for an unprivileged user),
   ``unsquashfs -d ROOT -f SQUASHFS && tar --acls --xattrs -C ROOT -cpf rootfs.tar ./``: the same
   commands, so the layer is the same tar skopeo makes on the same machine.
4. The layer is that uncompressed tar (``application/vnd.oci.image.layer.v1.tar``, its digest is
   also the diff id); the config and manifest are containers/image's, byte for byte: created =
   the SIF's modification time, architecture = the SIF header's, os ``linux``, ``Cmd``, one
   history entry for the layer (``imported from SIF, uuid: ...``) and one for the command.

The work directory is removed when the source is closed, or at once if the conversion fails.
``fakeroot`` is needed unless running as root; ``unsquashfs`` (squashfs-tools) and GNU ``tar``
always. A failing tool is one line naming it, with its last output line.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from contextlib import suppress

import anyio

from asyncsync.errors import LocalStorageError
from asyncsync.manifest import OCI_LAYER
from asyncsync.tempdirs import big_files_directory
from asyncsync.transports.docker_archive.archive import go_json
from asyncsync.transports.generated_image import (
    FileLayer,
    GeneratedImageSource,
    go_time,
    hash_file,
    oci_manifest,
)
from asyncsync.transports.local_files import remove_tree_quietly
from asyncsync.transports.sif.reference import SifReference
from asyncsync.transports.sif.sif_file import DATA_DEFFILE, DATA_PARTITION, PART_PRIMSYS, SifFile, read_sif

INJECTED_SCRIPT = "/podman/runscript"
_COPY_CHUNK = 1024 * 1024


def parse_def_file(text: str) -> tuple[list[str], list[str]]:
    """The non-trivial ``%environment`` lines and the ``%runscript`` lines of a definition file."""
    environment: list[str] = []
    runscript: list[str] = []
    state = "other"
    for raw in text.splitlines():
        line = raw.strip()
        if line == "%environment":
            state = "environment"
        elif line == "%runscript":
            state = "runscript"
        elif line.startswith("%"):
            state = "other"
        elif state == "environment":
            if line and not line.startswith("#"):
                environment.append(line)
        elif state == "runscript":
            runscript.append(line)
    return environment, runscript


def injected_script(environment: list[str], runscript: list[str]) -> bytes | None:
    """The script containers/image writes as ``/podman/runscript``, or ``None`` when not needed."""
    if not environment and not runscript:
        return None
    return ("#!/bin/bash\n" + "\n".join(environment) + "\n" + "\n".join(runscript) + "\n").encode()


def _read_range(path: str, offset: int, size: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read(size)


def _copy_range(source: str, offset: int, size: int, target: str) -> None:
    with open(source, "rb") as src, open(target, "wb") as out:
        src.seek(offset)
        remaining = size
        while remaining:
            data = src.read(min(_COPY_CHUNK, remaining))
            if not data:
                raise LocalStorageError(f"{source}: the root file system object is truncated")
            out.write(data)
            remaining -= len(data)


def _prepare(sif: SifFile, work: str) -> tuple[str, str | None]:
    """Write the squashfs and the injected script into ``work``; returns (command, script path)."""
    deffile = None
    try:
        deffile = sif.single(DATA_DEFFILE)
    except LocalStorageError:
        deffile = None  # containers/image ignores an ambiguous definition file, as a missing one
    environment: list[str] = []
    runscript: list[str] = []
    if deffile is not None:
        text = _read_range(sif.path, deffile.offset, deffile.size).decode("utf-8", "replace")
        environment, runscript = parse_def_file(text)
    script = injected_script(environment, runscript)
    try:
        rootfs = sif.single(DATA_PARTITION, PART_PRIMSYS)
    except LocalStorageError as exc:
        raise LocalStorageError(f"{sif.path}: looking up rootfs from SIF file: {exc}") from None
    if rootfs is None:
        raise LocalStorageError(f"{sif.path}: looking up rootfs from SIF file: object not found")
    _copy_range(sif.path, rootfs.offset, rootfs.size, os.path.join(work, "rootfs.squashfs"))
    if script is None:
        return "bash", None
    target = os.path.join(work, "rootfs", INJECTED_SCRIPT.lstrip("/"))
    os.makedirs(os.path.dirname(target), mode=0o755)
    with open(target, "wb") as handle:
        handle.write(script)
    os.chmod(target, 0o755)
    return INJECTED_SCRIPT, target


def _conversion_command(work: str) -> list[str]:
    root = shlex.quote(os.path.join(work, "rootfs"))
    squashfs = shlex.quote(os.path.join(work, "rootfs.squashfs"))
    tar = shlex.quote(os.path.join(work, "rootfs.tar"))
    script = os.path.join(work, "script")
    with open(script, "w") as handle:
        handle.write(
            f"#!/bin/sh\nunsquashfs -d {root} -f {squashfs} && tar --acls --xattrs -C {root} -cpf {tar} ./\n"
        )
    os.chmod(script, 0o755)
    for tool in ("unsquashfs", "tar"):
        if shutil.which(tool) is None:
            raise LocalStorageError(f"converting a SIF file needs {tool!r} (squashfs-tools, GNU tar)")
    fakeroot = shutil.which("fakeroot")
    if fakeroot is not None:
        return [fakeroot, "--", script]
    if os.geteuid() == 0:
        return [script]  # root keeps file owners without fakeroot
    raise LocalStorageError("converting a SIF file needs 'fakeroot' (or running as root)")


def image_config(sif: SifFile, command: str, layer: FileLayer) -> bytes:
    """containers/image's OCI config for a converted SIF (Go field order, compact)."""
    created = go_time(sif.modified_at)
    return go_json(
        {
            "created": created,
            "architecture": sif.arch,
            "os": "linux",
            "config": {"Cmd": [command]},
            "rootfs": {"type": "layers", "diff_ids": [str(layer.digest)]},
            "history": [
                {
                    "created": created,
                    "created_by": f"/bin/sh -c #(nop) ADD file:{layer.digest.hex} in /",
                    "comment": f"imported from SIF, uuid: {sif.id}",
                },
                {"created": created, "created_by": '/bin/sh -c #(nop) CMD ["bash"]', "empty_layer": True},
            ],
        }
    )


async def open_sif_source(reference: SifReference) -> GeneratedImageSource:
    """Convert the SIF file and serve it; the work directory lives until the source is closed."""
    where = str(reference)
    path = await anyio.to_thread.run_sync(os.path.abspath, reference.path)
    sif = await anyio.to_thread.run_sync(read_sif, path)
    try:
        work = await anyio.to_thread.run_sync(
            lambda: tempfile.mkdtemp(prefix="sif", dir=big_files_directory())
        )
    except OSError as exc:
        raise LocalStorageError(f"{where}: creating temp directory: {exc.strerror or exc}") from None

    async def cleanup() -> None:
        await anyio.to_thread.run_sync(remove_tree_quietly, work)

    try:
        command, _script = await anyio.to_thread.run_sync(_prepare, sif, work)
        argv = await anyio.to_thread.run_sync(_conversion_command, work)
        result = await anyio.run_process(argv, check=False, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace").strip().splitlines()
            last = output[-1] if output else f"exit status {result.returncode}"
            raise LocalStorageError(f"{where}: converting rootfs from SquashFS to Tarball: {last}")
        tar_path = os.path.join(work, "rootfs.tar")
        await anyio.to_thread.run_sync(_remove_intermediates, work)
        digest, size = await anyio.to_thread.run_sync(hash_file, tar_path)
        layer = FileLayer(digest, size, OCI_LAYER, path=tar_path)
        config = image_config(sif, command, layer)
        manifest = oci_manifest(config, [layer], media_type_field=True)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await cleanup()
        raise
    return GeneratedImageSource(reference, manifest, config, [layer], where, on_close=cleanup)


def _remove_intermediates(work: str) -> None:
    """Drop the squashfs copy, the extracted tree and the script: only the tar is served."""
    remove_tree_quietly(os.path.join(work, "rootfs"))
    for name in ("rootfs.squashfs", "script"):
        with suppress(FileNotFoundError):
            os.unlink(os.path.join(work, name))
