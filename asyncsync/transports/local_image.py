"""What every source or destination of one image in a local file (an archive, a layout) carries.

The reference it was opened for, the place messages name (``where``: the reference as the user
wrote it) and ``on_close``, a clean-up owned by whoever opened it (closing a temporary tar index,
removing a daemon export's staging directory), run exactly once however often the image is closed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asyncsync.transports.base import ImageReference

#: A clean-up step, run when the image is closed.
CloseHook = Callable[[], Awaitable[None]]


class LocalImage:
    """``reference``, ``where`` and the once-only ``on_close`` of one opened local image."""

    __slots__ = ("_on_close", "reference", "where")

    def __init__(
        self, reference: ImageReference, on_close: CloseHook | None = None, *, where: str | None = None
    ) -> None:
        self.reference = reference
        #: ``str(reference)`` unless the caller opened it under another name (a resolved reference).
        self.where = str(reference) if where is None else where
        self._on_close = on_close

    async def release(self) -> None:
        """Run ``on_close`` the first time; later calls do nothing."""
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            await on_close()


class OnLocalImage:
    """Base of a source or destination of one :class:`LocalImage`: its ``reference`` (as the
    source/destination protocols ask) and ``_where`` for messages; ``close`` calls ``release``."""

    def __init__(self, image: LocalImage) -> None:
        self._image = image

    @property
    def reference(self) -> ImageReference:
        return self._image.reference

    @property
    def _where(self) -> str:
        return self._image.where
