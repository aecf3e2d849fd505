"""Start-up: typer's per-parameter coercion is built only for a value that needs it.

typer 0.29 coerces every non-flag parameter through a pydantic ``TypeAdapter`` that it builds the
first time the parameter is processed, even when the value is the default ``None``; the first one
imports pydantic. For ``asyncsync sync`` that was 52 adapters and pydantic's import, about a third
of the CPU a no-op re-sync spends before its first request. :func:`install` makes each parameter's
coercion lazy: ``None`` (and an empty multi-value) is answered as typer itself answers it, a
string value of a plain ``str`` parameter is the string and an ``int`` value (a default such as
``copy --image-parallel-copies``'s) of a plain ``int`` parameter the int (what the adapter
returns for both), and anything else builds typer's own coercion on first use, so validation and
messages are typer's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Annotations whose string values pass unchanged (pydantic's ``str`` validation of a ``str``).
_PLAIN_STR: tuple[object, ...] = (str, str | None)
#: Annotations whose int values pass unchanged (pydantic's ``int`` validation of an ``int``).
_PLAIN_INT: tuple[object, ...] = (int, int | None)


def install() -> None:
    """Swap typer's coercion builder for the lazy one (once; a typer without it is left alone)."""
    try:
        from typer import core
        from typer._coercion import RuntimeParam, TypeDescriptor
    except ImportError:  # another typer: nothing to speed up, nothing to break
        return
    found: Callable[[TypeDescriptor], RuntimeParam] | None = getattr(core, "build_runtime_param", None)
    if found is None or getattr(found, "_asyncsync_lazy", False):
        return
    original = found

    @dataclass(frozen=True)
    class LazyRuntimeParam(RuntimeParam):  # type: ignore[misc]
        descriptor: TypeDescriptor

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if isinstance(value, str) and self.annotation in _PLAIN_STR:
                return value
            if type(value) is int and self.annotation in _PLAIN_INT:  # not a bool
                return value
            real = original(self.descriptor)
            param._runtime_param = real  # later values of this parameter go straight to typer's
            return real._coerce_value(value, param=param, ctx=ctx)

    def build_lazily(descriptor: TypeDescriptor) -> RuntimeParam:
        if descriptor.file_annotation is not None:
            return original(descriptor)
        return LazyRuntimeParam(
            parameter_info=descriptor.parameter_info, annotation=descriptor.annotation, descriptor=descriptor
        )

    build_lazily._asyncsync_lazy = True  # type: ignore[attr-defined]
    setattr(core, "build_runtime_param", build_lazily)  # noqa: B010 (typer does not export it)
