"""Doublestar glob matching as Harbor evaluates its selector patterns.

Harbor's tag-immutability (and retention) selectors of kind ``doublestar`` match with
``doublestar.Match`` of github.com/bmatcuk/doublestar **v1.3.4** (Harbor's ``src/go.mod``), with
``/`` as the separator. :func:`match` implements the same algorithm, quirks included, because
an immutability verdict that differs from Harbor's either skips a tag Harbor would have
accepted or wastes an upload Harbor refuses:

* ``*`` matches any run of characters within one path component (also the empty run);
  ``**`` *inside* a component (``release-**``) is the same as ``*``;
* a component that is exactly ``**`` matches any number of whole components: ``**/c`` matches
  ``c`` and ``a/b/c``; a trailing ``/**`` needs at least one more component (``a/**`` does not
  match ``a``, it matches ``a/b``);
* ``?`` matches one character (never ``/``); ``[abc]``, ``[a-z]``, ``[^a-z]`` are classes;
* ``{a,b}`` are alternatives, may nest, and may contain ``/`` (``{a/{b,c},abc}``);
* ``\\`` escapes the next character.

A malformed pattern (``[``, ``[-x]``, ``\\`` at the end, an unclosed ``{``) raises
:class:`~asyncsync.errors.UsageError`, but only when matching reaches the malformed part, as
in doublestar: ``a[`` against ``a`` is simply ``False`` while against ``ab`` it raises.

Harbor's own wrapper treats an empty pattern as "matches everything"; that rule lives in
:mod:`asyncsync.harbor.immutable`, not here. Everything here is pure and synchronous.
"""

from __future__ import annotations

import functools

from asyncsync.errors import UsageError

__all__ = ["match"]


def match(pattern: str, name: str) -> bool:
    """Whether ``pattern`` matches all of ``name`` (doublestar v1.3.4 ``Match``, ``/`` separator).

    Raises :class:`UsageError` when matching reaches a malformed part of ``pattern``."""
    return _match_components(pattern, _split_name(name))


def _bad(pattern: str) -> UsageError:
    return UsageError(f"malformed doublestar pattern {pattern!r}")


def _find_unescaped(text: str, char: str) -> int:
    """Index of the first ``char`` in ``text`` not directly preceded by a backslash, or -1."""
    start = 0
    while True:
        found = text.find(char, start)
        if found <= 0 or text[found - 1] != "\\":
            return found
        start = found + 1


def _split_name(name: str) -> list[str]:
    """``name``'s components (an escaped ``/`` does not split; a trailing ``/`` adds ``""``)."""
    parts: list[str] = []
    start = 0
    while True:
        found = _find_unescaped(name[start:], "/")
        if found == -1:
            parts.append(name[start:])
            return parts
        parts.append(name[start : start + found])
        start += found + 1


def _alternatives(text: str) -> tuple[list[str], int]:
    """The options of ``{...}`` whose body starts ``text`` and the index just past its ``}``;
    ``([], -1)`` when the brace is never closed. Nested braces and escapes are respected."""
    options: list[str] = []
    depth = 1
    escaped = False
    start = 0
    index = 0
    while depth > 0:
        if index >= len(text):
            return [], -1
        char = text[index]
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "," and depth == 1:
            options.append(text[start:index])
            start = index + 1
        index += 1
    options.append(text[start : index - 1])
    return options, index


def _may_be_empty(pattern: str) -> bool:
    """Whether one pattern component can match the empty string the way doublestar decides it:
    ``""``, ``*``, ``**``, or alternatives with an empty-capable option followed by such a rest."""
    if pattern in ("", "*", "**"):
        return True
    if not pattern.startswith("{"):
        return False
    options, end = _alternatives(pattern[1:])
    if end == -1:
        raise _bad(pattern)
    if not _may_be_empty(pattern[1 + end :]):
        return False
    return any(_may_be_empty(option) for option in options)


def _match_components(pattern: str, names: list[str]) -> bool:
    if not pattern and not names:
        return True
    if not pattern and names == [""]:
        return True
    slash = _find_unescaped(pattern, "/")
    last = slash == -1
    head = pattern if last else pattern[:slash]
    if head == "**":
        if last:
            return True
        rest = pattern[slash + 1 :]
        for index in range(len(names)):
            try:
                if _match_components(rest, names[index:]):
                    return True
            except UsageError:
                continue  # doublestar ignores a malformed rest while trying where ``**`` stops
        return False
    continuations = _match_one(pattern, names[0])
    if continuations is None:
        return False
    if not continuations and len(names) == 1:
        return True
    if len(names) > 1:
        for continuation in continuations:
            if _match_components(continuation, names[1:]):
                return True
    return False


# Stars retry the rest of the pattern at every position: caching (pattern, component) keeps
# patterns such as ``*a*a*a*b`` polynomial instead of exponential on long tags.
@functools.lru_cache(maxsize=4096)
def _match_one(pattern: str, name: str) -> tuple[str, ...] | None:
    """Match the start of ``pattern`` against one name component.

    ``None``: no match. Otherwise the patterns the *next* components must match: ``()`` when
    ``pattern`` is used up with ``name``, one entry per way of matching (alternatives can end
    the component in several places)."""
    p = n = 0
    while p < len(pattern) and n < len(name):
        char = pattern[p]
        if char == "/":
            p += 1
            break
        if char == "\\":
            p += 1
            if p >= len(pattern):
                raise _bad(pattern)
            if pattern[p] != name[n]:
                return None
            p += 1
            n += 1
        elif char == "*":
            p += 1
            if p >= len(pattern):
                return ()
            if pattern[p] == "/":
                return (pattern[p + 1 :],)
            # Try the rest at every later position; the empty remainder is handled below only
            # when the name is already used up, as doublestar does.
            while n < len(name):
                found = _match_one(pattern[p:], name[n:])
                if found is not None:
                    return found
                n += 1
            return None
        elif char == "[":
            p += 1
            end = _find_unescaped(pattern[p:], "]")
            if end == -1:
                raise _bad(pattern)
            end += p
            if not _in_class(pattern[p:end], name[n], pattern):
                return None
            p = end + 1
            n += 1
        elif char == "{":
            options, end = _alternatives(pattern[p + 1 :])
            if end == -1:
                raise _bad(pattern)
            rest = pattern[p + 1 + end :]
            matched = False
            continuations: tuple[str, ...] = ()
            for option in options:
                found = _match_one(option + rest, name[n:])
                if found is not None:
                    matched = True
                    continuations += found
            return continuations if matched else None
        elif char == "?" or char == name[n]:
            p += 1
            n += 1
        else:
            return None
    if n < len(name):
        return None
    if p >= len(pattern):
        return ()
    rest = pattern[p:]
    slash = _find_unescaped(rest, "/")
    if _may_be_empty(rest if slash == -1 else rest[:slash]):
        return () if slash == -1 else (rest[slash + 1 :],)
    return None


def _in_class(body: str, char: str, pattern: str) -> bool:
    """Whether ``char`` is selected by the class ``[body]`` (``^`` negates; ``\\`` escapes)."""
    if not body:
        raise _bad(pattern)
    negated = body[0] == "^"
    index = 1 if negated else 0
    found = False
    while index < len(body):
        low, index = _class_char(pattern, body, index)
        high = low
        if index < len(body) and body[index] == "-":
            high, index = _class_char(pattern, body, index + 1)
        if low <= char <= high:
            found = True
    return found != negated


def _class_char(pattern: str, body: str, index: int) -> tuple[str, int]:
    """The character at ``body[index]`` of a class (``\\`` escapes one) and the index after it; an
    unescaped ``-`` or a class ending here is a bad pattern."""
    if index >= len(body) or body[index] == "-":
        raise _bad(pattern)
    if body[index] == "\\":
        if index + 1 >= len(body):
            raise _bad(pattern)
        return body[index + 1], index + 2
    return body[index], index + 1
