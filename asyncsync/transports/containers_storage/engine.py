"""Reaching containers-storage through podman: its libpod API on a service socket, or the binary.

asyncsync does not link containers/storage (skopeo does); it asks podman, which does. Which podman
(:func:`find_engine`), as the brief of this transport and skopeo's users expect, with nothing
started by the user:

1. no storage specifier, and a podman service socket: ``CONTAINER_HOST`` (``unix://PATH``; any
   other scheme is refused), else ``$XDG_RUNTIME_DIR/podman/podman.sock``, else
   ``/run/podman/podman.sock`` (a default socket is used only if it answers ``/_ping``; a stale
   one is skipped). Its libpod API serves that service's store. -> :class:`LibpodEngine`
2. otherwise the ``podman`` binary on ``PATH``, with ``--root/--runroot/--storage-driver/
   --storage-opt`` from the reference's storage specifier (a service cannot switch stores, so a
   specifier always takes this path). -> :class:`PodmanEngine`
3. neither: one :class:`~asyncsync.errors.LocalStorageError` line saying what was looked for.

Both engines move images as ``docker save`` archives (``docker-archive``), the format podman
loads and saves over a stream: :meth:`Engine.open_load` returns a :class:`LoadStream` that the
destination writes the archive into as its blobs arrive (``podman load`` on a pipe, or a chunked
``POST /libpod/images/load``); nothing is loaded unless :meth:`LoadStream.finish` runs, and
:meth:`LoadStream.abort` (or any failure) ends the load without an image. :meth:`Engine.save`
streams ``podman save --format docker-archive`` into a file.

Timeouts: the short commands (inspect, list, remove, ping) must answer within
:data:`COMMAND_TIMEOUT`; loads and saves take as long as the image does. Errors: a missing image
is ``LocalStorageError("... image not known")``; podman's own message (last line, capped) is
quoted in a ``LocalStorageError``; an unreachable socket is a non-temporary ``TransportError``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import IO, Any, Protocol
from urllib.parse import quote, urlsplit

import aiohttp
import anyio
import orjson
from anyio.abc import Process
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from asyncsync.errors import LocalStorageError, TransportError, UsageError
from asyncsync.transports.containers_storage.reference import StorageSpecifier
from asyncsync.transports.docker_daemon.client import api_message, export_image
from asyncsync.transports.local_files import write_chunks_atomic

log = logging.getLogger("asyncsync.containers_storage")

#: Longest wait for a short podman command or API call (inspect, list, remove, ping).
COMMAND_TIMEOUT = 120.0
#: Longest wait for a default socket to answer ``/_ping`` before it is considered stale.
PING_TIMEOUT = 5.0
#: Largest podman output or API error body read.
MAX_OUTPUT = 1024 * 1024
#: The libpod API version in request paths (podman 4.x serves it; newer ones accept older paths).
API_PREFIX = "/v4.0.0/libpod"
_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What podman says about one stored image: ``image_id`` (64 hex) and its names."""

    image_id: str
    names: tuple[str, ...]


class LoadStream(Protocol):
    """An archive on its way into podman; see the module docstring."""

    async def send(self, data: bytes) -> None:
        """Pass archive bytes on (waits while podman is busy: backpressure, not buffering)."""

    async def finish(self) -> list[str]:
        """End the archive and wait for the load; returns the names podman loaded."""

    async def abort(self) -> None:
        """Stop the load so that nothing is stored (idempotent)."""


class Engine(Protocol):
    """One podman (API or binary) serving one store."""

    @property
    def description(self) -> str:
        """Where the store is reached, for messages (``podman at unix:///...``, ``podman --root ...``)."""

    async def inspect(self, image: str) -> ImageInfo | None:
        """The image ``image`` (a name or ID) names, or ``None`` when there is none."""

    async def image_ids(self) -> list[str]:
        """IDs of every stored image (to resolve truncated IDs)."""

    async def images(self) -> list[ImageInfo]:
        """Every stored image that has a name, with all its names, sorted by ID (``sync --src``)."""

    async def save(self, image: str, path: str) -> int:
        """Write ``image`` as a docker-archive to ``path`` (atomically); returns its size."""

    async def open_load(self) -> LoadStream:
        """Start loading a docker-archive stream."""

    async def containers_using(self, image_id: str) -> list[str]:
        """Containers created from the image (which block its removal)."""

    async def remove(self, image_id: str) -> None:
        """Remove the image with all its names."""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[-1] if lines else "no message"
    for prefix in ("Error: ", "error: "):
        if line.startswith(prefix):
            line = line[len(prefix) :]
    return line[:500]


def _not_known(message: str) -> bool:
    return "image not known" in message or "no such image" in message.lower()


def _strip_sha(image_id: str) -> str:
    return image_id.removeprefix("sha256:")


# ---------------------------------------------------------------------------------- the binary


class PodmanEngine:
    """The ``podman`` binary, with the store's global flags on every command."""

    def __init__(self, binary: str, specifier: StorageSpecifier | None, where: str) -> None:
        self._binary = binary
        self._flags = specifier.podman_flags() if specifier is not None else []
        self._where = where

    @property
    def description(self) -> str:
        return " ".join(["podman", *self._flags])

    def _argv(self, *args: str) -> list[str]:
        return [self._binary, *self._flags, *args]

    @staticmethod
    def _env() -> dict[str, str]:
        # With CONTAINER_HOST (or CONTAINER_CONNECTION) set, podman would act as a remote client
        # and refuse the store flags; the binary path is taken to reach the store directly.
        return {k: v for k, v in os.environ.items() if k not in ("CONTAINER_HOST", "CONTAINER_CONNECTION")}

    async def _run(self, *args: str) -> tuple[int, str, str]:
        try:
            with anyio.fail_after(COMMAND_TIMEOUT):
                done = await anyio.run_process(self._argv(*args), check=False, stdin=None, env=self._env())
        except TimeoutError:
            raise LocalStorageError(
                f"{self._where}: `podman {args[0]}` did not answer within {COMMAND_TIMEOUT:.0f}s"
            ) from None
        except OSError as exc:
            raise LocalStorageError(f"{self._where}: cannot run podman: {exc.strerror or exc}") from None
        out = done.stdout[:MAX_OUTPUT].decode("utf-8", "replace")
        err = done.stderr[:MAX_OUTPUT].decode("utf-8", "replace")
        return done.returncode, out, err

    async def _checked(self, *args: str) -> str:
        code, out, err = await self._run(*args)
        if code != 0:
            raise LocalStorageError(f"{self._where}: podman {args[0]} failed: {_last_line(err)}")
        return out

    async def inspect(self, image: str) -> ImageInfo | None:
        code, out, err = await self._run("image", "inspect", "--", image)
        if code != 0:
            if _not_known(err):
                return None
            raise LocalStorageError(f"{self._where}: podman image inspect failed: {_last_line(err)}")
        return _image_info(_json(out, self._where), self._where)

    async def image_ids(self) -> list[str]:
        out = await self._checked("images", "--all", "--quiet", "--no-trunc")
        return sorted({_strip_sha(line.strip()) for line in out.splitlines() if line.strip()})

    async def images(self) -> list[ImageInfo]:
        out = await self._checked("images", "--format", "json")
        return named_images(_json(out, self._where), self._where)

    async def save(self, image: str, path: str) -> int:
        with tempfile.TemporaryFile() as errors:
            process = await self._start(
                ["save", "--format", "docker-archive", "--", image], errors, stdin=False
            )
            try:
                assert process.stdout is not None
                result = await write_chunks_atomic(path, _chunks(process.stdout))
                code = await process.wait()
            finally:
                await _stop(process)
            if code != 0:
                raise LocalStorageError(f"{self._where}: podman save failed: {_last_line(_read(errors))}")
        return result.size

    async def _start(self, args: list[str], errors: IO[bytes], *, stdin: bool) -> Process:
        try:
            return await anyio.open_process(
                self._argv(*args),
                stdin=subprocess.PIPE if stdin else None,
                stdout=errors if stdin else subprocess.PIPE,
                stderr=errors,
                env=self._env(),
            )
        except OSError as exc:
            raise LocalStorageError(f"{self._where}: cannot run podman: {exc.strerror or exc}") from None

    async def open_load(self) -> LoadStream:
        # podman's output goes to a file, not a pipe: a pipe nobody reads could fill up and
        # block podman (and so the archive we are writing into it).
        output = tempfile.TemporaryFile()  # noqa: SIM115 - owned by the stream, closed there
        try:
            process = await self._start(["load", "--quiet"], output, stdin=True)
        except BaseException:
            output.close()
            raise
        return _ProcessLoad(process, output, self._where)

    async def containers_using(self, image_id: str) -> list[str]:
        out = await self._checked(
            "container", "ls", "--all", "--quiet", "--no-trunc", "--filter", f"ancestor={image_id}"
        )
        return [line.strip() for line in out.splitlines() if line.strip()]

    async def remove(self, image_id: str) -> None:
        await self._checked("image", "rm", "--force", "--", image_id)


async def _chunks(stream: Any) -> AsyncIterator[bytes]:
    while True:
        try:
            data = await stream.receive(_CHUNK)
        except anyio.EndOfStream:
            return
        yield data


def _read(handle: IO[bytes]) -> str:
    handle.seek(0)
    return handle.read(MAX_OUTPUT).decode("utf-8", "replace")


async def _stop(process: Process) -> None:
    """Kill ``process`` if it still runs and reap it (shielded: cleanup must finish)."""
    with anyio.CancelScope(shield=True):
        if process.returncode is None:
            with suppress(ProcessLookupError):
                process.kill()
        await process.wait()
        await process.aclose()


class _ProcessLoad:
    """``podman load`` reading the archive from its stdin."""

    def __init__(self, process: Process, output: IO[bytes], where: str) -> None:
        self._process = process
        self._output = output
        self._where = where
        self._done = False

    def _failure(self) -> LocalStorageError:
        return LocalStorageError(f"{self._where}: podman load failed: {_last_line(_read(self._output))}")

    async def send(self, data: bytes) -> None:
        assert self._process.stdin is not None
        try:
            await self._process.stdin.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            await self.abort()
            raise self._failure() from None

    async def finish(self) -> list[str]:
        assert self._process.stdin is not None
        try:
            await self._process.stdin.aclose()
            code = await self._process.wait()
        except BaseException:
            await self.abort()
            raise
        self._done = True
        output = _read(self._output)
        await _stop(self._process)
        self._output.close()
        if code != 0:
            raise LocalStorageError(f"{self._where}: podman load failed: {_last_line(output)}")
        return [
            line.split(":", 1)[1].strip() for line in output.splitlines() if line.startswith("Loaded image")
        ]

    async def abort(self) -> None:
        if self._done:
            return
        self._done = True
        await _stop(self._process)
        self._output.close()


# ---------------------------------------------------------------------------------- the API


class LibpodEngine:
    """podman's libpod REST API on a unix socket (``podman system service``)."""

    def __init__(self, socket_path: str, where: str) -> None:
        self.socket_path = socket_path
        self._where = where
        self._session: aiohttp.ClientSession | None = None

    @property
    def description(self) -> str:
        return f"podman at unix://{self.socket_path}"

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=self.socket_path),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _url(self, path: str) -> str:
        return f"http://podman{API_PREFIX}{path}"

    def _failed(self, exc: BaseException) -> TransportError:
        return TransportError(f"{self._where}: cannot talk to {self.description}: {exc}", temporary=False)

    async def _error(self, response: aiohttp.ClientResponse, action: str) -> LocalStorageError:
        body = await response.content.read(MAX_OUTPUT)
        return LocalStorageError(f"{self._where}: podman refused to {action}: {api_message(body)}")

    @contextmanager
    def _answering(self) -> Iterator[None]:
        """One short API call: within :data:`COMMAND_TIMEOUT`, its failures as this engine's errors."""
        try:
            with anyio.fail_after(COMMAND_TIMEOUT):
                yield
        except TimeoutError:
            raise LocalStorageError(
                f"{self._where}: {self.description} did not answer within {COMMAND_TIMEOUT:.0f}s"
            ) from None
        except aiohttp.ClientError as exc:
            raise self._failed(exc) from None

    async def _get_json(self, path: str, action: str, *, missing_ok: bool = False) -> Any:
        with self._answering():
            async with self._client().get(self._url(path)) as response:
                if missing_ok and response.status == 404:
                    return None
                if response.status != 200:
                    raise await self._error(response, action)
                return _json((await response.content.read(MAX_OUTPUT)).decode(), self._where)

    async def ping(self) -> bool:
        """Whether the service answers (a default socket that does not is skipped)."""
        try:
            with anyio.fail_after(PING_TIMEOUT):
                async with self._client().get(self._url("/_ping")) as response:
                    return response.status == 200
        except (TimeoutError, aiohttp.ClientError, OSError):
            return False

    async def inspect(self, image: str) -> ImageInfo | None:
        found = await self._get_json(
            f"/images/{quote(image, safe='/:@')}/json", f"inspect {image}", missing_ok=True
        )
        return None if found is None else _image_info(found, self._where)

    async def image_ids(self) -> list[str]:
        listed = await self._get_json("/images/json?all=true", "list images")
        if not isinstance(listed, list):
            raise LocalStorageError(
                f"{self._where}: podman answered the image list with {type(listed).__name__}"
            )
        return sorted(
            {_strip_sha(str(item.get("Id", ""))) for item in listed if isinstance(item, dict)} - {""}
        )

    async def images(self) -> list[ImageInfo]:
        return named_images(await self._get_json("/images/json", "list images"), self._where)

    async def save(self, image: str, path: str) -> int:
        url = self._url(f"/images/{quote(image, safe='/:@')}/get?format=docker-archive")
        return await export_image(
            self._client(), url, path, lambda response: self._error(response, f"export {image}"), self._failed
        )

    async def open_load(self) -> LoadStream:
        return _ApiLoad(self._client(), self._url("/images/load"), self)

    async def containers_using(self, image_id: str) -> list[str]:
        filters = quote(orjson.dumps({"ancestor": [image_id]}).decode())
        listed = await self._get_json(f"/containers/json?all=true&filters={filters}", "list containers")
        return [str(item.get("Id")) for item in listed or [] if isinstance(item, dict)]

    async def remove(self, image_id: str) -> None:
        with self._answering():
            async with self._client().delete(self._url(f"/images/{image_id}?force=true")) as response:
                if response.status != 200:
                    raise await self._error(response, f"remove {image_id}")


class _ApiLoad:
    """A chunked ``POST /libpod/images/load`` whose body is written piece by piece.

    aiohttp consumes a streamed body inside the request coroutine, while the copy engine hands
    the destination its blobs in calls of its own; so the request runs as a task owned by this
    object (an asyncio task: the engine runs on asyncio, and the task's lifetime is the
    destination's, ended by :meth:`finish` or :meth:`abort`, never left running). The body comes
    through a zero-buffer memory stream: :meth:`send` waits until aiohttp took the previous
    piece. If the request ends early (podman refused it), the stream is closed and the next
    :meth:`send` fails at once instead of waiting forever.
    """

    def __init__(self, session: aiohttp.ClientSession, url: str, engine: LibpodEngine) -> None:
        self._engine = engine
        sender, receiver = anyio.create_memory_object_stream[bytes](0)
        self._sender: MemoryObjectSendStream[bytes] = sender
        self._receiver: MemoryObjectReceiveStream[bytes] = receiver
        self._task = asyncio.get_running_loop().create_task(self._request(session, url))
        self._done = False

    async def _body(self) -> AsyncIterator[bytes]:
        async with self._receiver:
            async for piece in self._receiver:
                yield piece

    async def _request(self, session: aiohttp.ClientSession, url: str) -> list[str]:
        headers = {"Content-Type": "application/x-tar"}
        body = b""
        try:
            async with session.post(url, data=self._body(), headers=headers) as response:
                body = await response.content.read(MAX_OUTPUT)
                if response.status != 200:
                    raise LocalStorageError(
                        f"{self._engine._where}: podman refused to load the image: {api_message(body)}"
                    )
        except aiohttp.ClientError as exc:
            raise self._engine._failed(exc) from None
        finally:
            self._receiver.close()
        answer = _json(body.decode(), self._engine._where)
        names = answer.get("Names") if isinstance(answer, dict) else None
        return [str(name) for name in names] if isinstance(names, list) else []

    async def _outcome(self) -> list[str]:
        # Shielded: the request must end (and its error be seen) even when the caller is cancelled.
        with anyio.CancelScope(shield=True):
            names = await self._task
        return names

    async def send(self, data: bytes) -> None:
        try:
            await self._sender.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            await self._outcome()  # raises the request's error
            raise LocalStorageError(f"{self._engine._where}: podman stopped reading the image") from None

    async def finish(self) -> list[str]:
        self._sender.close()
        self._done = True
        return await self._outcome()

    async def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._sender.close()
        self._task.cancel()
        with anyio.CancelScope(shield=True), suppress(BaseException):
            await self._task


def _json(text: str, where: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise LocalStorageError(f"{where}: podman answered with something that is not JSON") from None


def _image_info(found: Any, where: str) -> ImageInfo:
    if isinstance(found, list):
        found = found[0] if found else None
    if not isinstance(found, dict) or not isinstance(found.get("Id"), str):
        raise LocalStorageError(f"{where}: podman's image inspect has no Id")
    tags = found.get("RepoTags") or []
    return ImageInfo(_strip_sha(found["Id"]), tuple(str(tag) for tag in tags if isinstance(tag, str)))


def named_images(listed: Any, where: str) -> list[ImageInfo]:
    """The named images of an image list (``podman images --format json`` or libpod's
    ``/images/json``: one entry per image, or per name of an image, each with ``Id`` and
    ``Names``, or ``RepoTags`` when an answer has no ``Names``), one per ID with its names in
    first-seen order, sorted by ID. Untagged names (``<none>``) are left out."""
    if not isinstance(listed, list):
        raise LocalStorageError(f"{where}: podman answered the image list with {type(listed).__name__}")
    names: dict[str, list[str]] = {}
    for item in listed:
        if not isinstance(item, dict) or not isinstance(item.get("Id"), str):
            continue
        found = names.setdefault(_strip_sha(item["Id"]), [])
        for name in item.get("Names") or item.get("RepoTags") or []:
            if isinstance(name, str) and "<none>" not in name and name not in found:
                found.append(name)
    return [ImageInfo(image_id, tuple(found)) for image_id, found in sorted(names.items()) if found]


# ---------------------------------------------------------------------------------- discovery

#: Where a podman service socket is looked for after ``CONTAINER_HOST`` (``$XDG_RUNTIME_DIR`` first).
SYSTEM_SOCKET = "/run/podman/podman.sock"


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def default_sockets(environ: dict[str, str] | None = None) -> list[str]:
    """The default service sockets, in the order they are tried."""
    env = os.environ if environ is None else environ
    found: list[str] = []
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime:
        found.append(os.path.join(runtime, "podman", "podman.sock"))
    found.append(SYSTEM_SOCKET)
    return found


def container_host_socket(value: str) -> str:
    """The socket path of a ``CONTAINER_HOST`` value; only ``unix://PATH`` is supported."""
    parts = urlsplit(value)
    if parts.scheme != "unix" or not parts.path:
        raise UsageError(
            f"CONTAINER_HOST={value!r}: only a local podman service (unix:///path/podman.sock) is supported"
        )
    return parts.path


async def find_engine(specifier: StorageSpecifier | None, where: str) -> PodmanEngine | LibpodEngine:
    """The engine for a reference (see the module docstring for the order)."""
    if specifier is None:
        host = os.environ.get("CONTAINER_HOST")
        if host:
            return LibpodEngine(container_host_socket(host), where)
        for path in default_sockets():
            if not await anyio.to_thread.run_sync(_is_socket, path):
                continue
            engine = LibpodEngine(path, where)
            if await engine.ping():
                return engine
            await engine.close()
            log.debug("%s: podman socket %s does not answer; skipped", where, path)
    binary = shutil.which("podman")
    if binary is None:
        looked = (
            ""
            if specifier is not None
            else "no podman service socket (CONTAINER_HOST, " + ", ".join(default_sockets()) + ") and "
        )
        raise LocalStorageError(f"{where}: containers-storage needs podman: {looked}no podman binary on PATH")
    return PodmanEngine(binary, specifier, where)


async def close_engine(engine: PodmanEngine | LibpodEngine) -> None:
    if isinstance(engine, LibpodEngine):
        await engine.close()


def describe_names(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "no name"
