"""Small JSON documents of a known top-level shape, with one message for each way they fail.

Auth files, manifests, image configs, ``index.json`` and ``manifest.json`` are each parsed
here: ``load_json_object(raw, "auth file X", CredentialsError)`` returns the object, or raises
``CredentialsError("auth file X is not valid JSON")`` or ``("auth file X is not a JSON object")``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

#: Builds the error to raise from its one-line message (an error class will do).
ErrorFactory = Callable[[str], Exception]


def _loads(raw: bytes, subject: str, error: ErrorFactory) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise error(f"{subject} is not valid JSON") from None


def load_json_object(raw: bytes, subject: str, error: ErrorFactory) -> dict[str, Any]:
    """``raw`` parsed as a JSON object; otherwise ``error("<subject> is not valid JSON")`` or
    ``error("<subject> is not a JSON object")``."""
    data = _loads(raw, subject, error)
    if not isinstance(data, dict):
        raise error(f"{subject} is not a JSON object")
    return data


def load_json_list(raw: bytes, subject: str, error: ErrorFactory, *, shape: str = "a JSON list") -> list[Any]:
    """``raw`` parsed as a JSON list; otherwise ``error("<subject> is not valid JSON")`` or
    ``error("<subject> is not <shape>")``."""
    data = _loads(raw, subject, error)
    if not isinstance(data, list):
        raise error(f"{subject} is not {shape}")
    return data
