"""Strict JSON with line numbers, for policy.json's ``file:line`` errors.

``orjson`` and ``json`` give a position only for syntax errors; a policy error such as an
unknown requirement type needs the line of the object that has it. :func:`parse` first lets
the standard library find syntax errors (its ``JSONDecodeError`` has ``lineno``), then walks
the now known-valid text once more, building :class:`Node` values that remember the line
where each value starts. Objects keep their keys in order and duplicates are refused, as
containers/image's paranoid parser refuses them (a duplicated key in a security policy is
a mistake, never an override).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from json.decoder import scanstring  # type: ignore[attr-defined]  # public, untyped in typeshed
from typing import Any

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")


class JSONLinesError(ValueError):
    """Malformed JSON or a duplicated key; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass(frozen=True, slots=True)
class Node:
    """A JSON value and the line it starts on.

    ``value`` is ``dict[str, Node]`` for objects (insertion order kept), ``list[Node]`` for
    arrays, and the plain Python value (str, int, float, bool, None) otherwise. ``key_lines``
    maps each object key to the line of the key itself.
    """

    value: Any
    line: int
    key_lines: dict[str, int] | None = None

    @property
    def kind(self) -> str:
        """``object``, ``array``, ``string``, ``number``, ``boolean`` or ``null`` (for messages)."""
        value = self.value
        if isinstance(value, dict):
            return "object"
        if isinstance(value, list):
            return "array"
        if isinstance(value, str):
            return "string"
        if isinstance(value, bool):
            return "boolean"
        if value is None:
            return "null"
        return "number"


class _Walker:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def line(self, pos: int | None = None) -> int:
        return self.text.count("\n", 0, self.pos if pos is None else pos) + 1

    def skip(self) -> None:
        match = _WHITESPACE.match(self.text, self.pos)
        assert match is not None
        self.pos = match.end()

    def value(self) -> Node:
        self.skip()
        line = self.line()
        char = self.text[self.pos]
        if char == "{":
            return self.object(line)
        if char == "[":
            self.pos += 1
            items: list[Node] = []
            self.skip()
            if self.text[self.pos] == "]":
                self.pos += 1
                return Node(items, line)
            while True:
                items.append(self.value())
                self.skip()
                char = self.text[self.pos]
                self.pos += 1
                if char == "]":
                    return Node(items, line)
        if char == '"':
            text, self.pos = scanstring(self.text, self.pos + 1)
            return Node(text, line)
        for word, constant in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return Node(constant, line)
        match = _NUMBER.match(self.text, self.pos)
        if match is None:  # NaN and Infinity: Python's json accepts them, JSON does not
            raise JSONLinesError(line, f"invalid value starting with {self.text[self.pos : self.pos + 8]!r}")
        self.pos = match.end()
        number = match.group()
        return Node(float(number) if any(c in number for c in ".eE") else int(number), line)

    def object(self, line: int) -> Node:
        self.pos += 1
        members: dict[str, Node] = {}
        key_lines: dict[str, int] = {}
        self.skip()
        if self.text[self.pos] == "}":
            self.pos += 1
            return Node(members, line, key_lines)
        while True:
            self.skip()
            key_line = self.line()
            key, self.pos = scanstring(self.text, self.pos + 1)
            if key in members:
                raise JSONLinesError(key_line, f'Duplicate key "{key}"')
            self.skip()
            self.pos += 1  # the colon
            members[key] = self.value()
            key_lines[key] = key_line
            self.skip()
            char = self.text[self.pos]
            self.pos += 1
            if char == "}":
                return Node(members, line, key_lines)


def parse(text: str) -> Node:
    """Parse ``text`` into a :class:`Node` tree; raises :class:`JSONLinesError` with a line."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise JSONLinesError(exc.lineno, f"{exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise JSONLinesError(1, "JSON nested too deeply") from None
    try:
        return _Walker(text).value()
    except RecursionError:
        raise JSONLinesError(1, "JSON nested too deeply") from None
