"""YAML with line numbers: PyYAML safe composition into a small immutable node tree.

:func:`load_yaml` reads a file, composes it with :class:`yaml.SafeLoader` (no Python object
tags, no code execution) and converts the node graph into :class:`YScalar` / :class:`YSeq` /
:class:`YMap`, each remembering the 1-based line where it starts; every mapping key keeps
its own line too. Scalars keep both the value PyYAML's safe constructor gives them and the
text as written, so a field that wants a string can take ``1.10`` verbatim (as Go's YAML
decoder does for skopeo) instead of the float ``1.1``.

Contracts:

* every problem is a :class:`~asyncsync.errors.SpecError` ``file:line: message`` (one line);
  an unreadable file is a :class:`~asyncsync.errors.UsageError` naming the file;
* a key repeated in one mapping is an error at the second occurrence, naming the first;
  merge keys (``<<: *defaults``) are honoured and explicit keys override merged ones;
* recursive aliases and alias bombs (more than :data:`MAX_NODES` nodes once expanded) are
  refused, so validating a hostile spec stays cheap.

:class:`Doc` carries the file name and offers the typed readers the spec parsers use
(``mapping``, ``string``, ``boolean``, ``integer`` ...), each producing messages such as
``sync.yaml:12: unknown key 'tls-verfy' in registry 'quay.io' (did you mean 'tls-verify'?)``.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from asyncsync.errors import SpecError, UsageError

#: Most nodes a document may expand to (aliases counted at every use).
MAX_NODES = 200_000
#: Largest spec file read, in bytes.
MAX_FILE_SIZE = 16 * 1024 * 1024

_MERGE_TAG = "tag:yaml.org,2002:merge"
_NULL_TAG = "tag:yaml.org,2002:null"
_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"})


@dataclass(frozen=True, slots=True)
class YScalar:
    """A scalar: ``value`` as the safe constructor builds it, ``text`` as written."""

    value: object
    text: str
    tag: str
    line: int

    @property
    def is_null(self) -> bool:
        return self.tag == _NULL_TAG


@dataclass(frozen=True, slots=True)
class YSeq:
    items: tuple[YNode, ...]
    line: int


@dataclass(frozen=True, slots=True)
class YEntry:
    key: str
    key_line: int
    value: YNode


@dataclass(frozen=True, slots=True)
class YMap:
    entries: tuple[YEntry, ...]
    line: int
    _index: dict[str, YEntry] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index.update((entry.key, entry) for entry in self.entries)

    def get(self, key: str) -> YEntry | None:
        return self._index.get(key)

    def value(self, key: str) -> YNode | None:
        """The value node under ``key``, or ``None`` when the key is absent."""
        entry = self._index.get(key)
        return entry.value if entry is not None else None

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def __iter__(self) -> Iterator[YEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)


YNode = YScalar | YSeq | YMap


def _kind(node: YNode) -> str:
    if isinstance(node, YMap):
        return "a mapping"
    if isinstance(node, YSeq):
        return "a list"
    if node.is_null:
        return "nothing (null)"
    return {
        "tag:yaml.org,2002:bool": "a boolean",
        "tag:yaml.org,2002:int": "a number",
        "tag:yaml.org,2002:float": "a number",
    }.get(node.tag, "a string")


def _edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, previous2[j - 2] + 1)
            current.append(cost)
        previous2, previous = previous, current
    return previous[-1]


def did_you_mean(word: str, choices: Collection[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice (typos, swapped letters), or an empty string."""
    if not choices:
        return ""
    scored = sorted(
        (
            _edit_distance(word.lower(), choice.lower()),
            -difflib.SequenceMatcher(None, word, choice).ratio(),
            choice,
        )
        for choice in choices
    )
    distance, _, best = scored[0]
    if distance <= max(1, len(word) // 3):
        return f" (did you mean {best!r}?)"
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Converter:
    """Turns a composed node graph into the Y* tree, checking duplicates, cycles and size."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.constructor = SafeConstructor()
        self.budget = MAX_NODES
        self.active: set[int] = set()

    def error(self, node: Node, message: str) -> SpecError:
        return SpecError(self.file, node.start_mark.line + 1, message)

    def convert(self, node: Node) -> YNode:
        self.budget -= 1
        if self.budget < 0:
            raise self.error(node, f"document expands to more than {MAX_NODES} nodes (alias expansion)")
        if id(node) in self.active:
            raise self.error(node, "recursive alias")
        line = node.start_mark.line + 1
        if isinstance(node, ScalarNode):
            try:
                value = self.constructor.construct_object(node, deep=True)
            except yaml.MarkedYAMLError as exc:
                raise self.error(node, f"invalid YAML: {exc.problem or exc}") from None
            return YScalar(value, node.value, node.tag, line)
        if node.tag not in _COLLECTION_TAGS:
            raise self.error(node, f"unsupported YAML tag {node.tag!r}")
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return YSeq(tuple(self.convert(item) for item in node.value), line)
            if isinstance(node, MappingNode):
                return self._mapping(node, line)
        finally:
            self.active.discard(id(node))
        raise self.error(node, f"unsupported YAML node {type(node).__name__}")  # pragma: no cover

    def _mapping(self, node: MappingNode, line: int) -> YMap:
        own: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self._key(key_node)
            key_line = key_node.start_mark.line + 1
            if key in own:
                raise self.error(key_node, f"duplicate key {key!r} (first at line {own[key]})")
            own[key] = key_line
        if any(key_node.tag == _MERGE_TAG for key_node, _ in node.value):
            try:
                # Puts merged pairs first, explicit ones after: later pairs win below.
                self.constructor.flatten_mapping(node)
            except yaml.MarkedYAMLError as exc:
                raise self.error(node, f"invalid merge key: {exc.problem or exc}") from None
        entries: dict[str, YEntry] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node)
            entries.pop(key, None)
            entries[key] = YEntry(key, key_node.start_mark.line + 1, self.convert(value_node))
        return YMap(tuple(entries.values()), line)

    def _key(self, key_node: Node) -> str:
        if not isinstance(key_node, ScalarNode):
            raise self.error(key_node, "mapping keys must be plain strings")
        return str(key_node.value)


def _line_of_offset(data: bytes | str, offset: int) -> int:
    if isinstance(data, bytes):
        return data[:offset].count(b"\n") + 1
    return data[:offset].count("\n") + 1


def parse_yaml(text: str | bytes, file: str) -> YNode | None:
    """Compose ``text`` safely; ``None`` for an empty document. Errors name ``file`` and a line."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SpecError(file, _line_of_offset(text, exc.start), "not UTF-8 text") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "syntax error"
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        raise SpecError(file, line, f"invalid YAML: {problem}{context}") from None
    except yaml.reader.ReaderError as exc:
        line = _line_of_offset(text, exc.position)
        char = chr(exc.character) if isinstance(exc.character, int) else str(exc.character)
        raise SpecError(file, line, f"invalid YAML: unacceptable character {char!r}") from None
    except yaml.YAMLError as exc:  # pragma: no cover - every PyYAML error above carries a mark
        raise SpecError(file, 1, f"invalid YAML: {' '.join(str(exc).split())}") from None
    if node is None:
        return None
    return _Converter(file).convert(node)


def load_yaml(path: str | Path) -> tuple[YNode | None, str]:
    """Read and compose the file at ``path``; return the tree and the file name used in messages."""
    file = str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_SIZE + 1)
    except OSError as exc:
        raise UsageError(f"{file}: cannot read sync spec: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_SIZE:
        raise SpecError(file, 1, f"spec file is larger than {MAX_FILE_SIZE // (1024 * 1024)} MiB")
    return parse_yaml(data, file), file


class Doc:
    """Typed readers over the tree; every failure is ``SpecError(file, line, message)``.

    ``what`` arguments describe the value in messages, e.g. ``"'tls-verify' of registry 'quay.io'"``.
    """

    def __init__(self, file: str) -> None:
        self.file = file

    def error(self, line: int, message: str) -> SpecError:
        return SpecError(self.file, line, message)

    def mapping(self, node: YNode, what: str, allowed: Collection[str] | None = None) -> YMap:
        """``node`` as a mapping whose keys are all in ``allowed`` (when given)."""
        if not isinstance(node, YMap):
            raise self.error(node.line, f"{what} must be a mapping, not {_kind(node)}")
        if allowed is not None:
            for entry in node:
                if entry.key not in allowed:
                    raise self.error(
                        entry.key_line,
                        f"unknown key {entry.key!r} in {what}{did_you_mean(entry.key, allowed)}",
                    )
        return node

    def sequence(self, node: YNode, what: str) -> YSeq:
        if not isinstance(node, YSeq):
            raise self.error(node.line, f"{what} must be a list, not {_kind(node)}")
        return node

    def string(self, node: YNode, what: str, *, allow_empty: bool = False) -> str:
        """A scalar as written. Numbers and booleans are taken verbatim (``1.10`` stays ``"1.10"``)."""
        if not isinstance(node, YScalar) or node.is_null:
            raise self.error(node.line, f"{what} must be a string, not {_kind(node)}")
        text = node.text
        if not text and not allow_empty:
            raise self.error(node.line, f"{what} must not be empty")
        if "\n" in text:
            raise self.error(node.line, f"{what} must be a single line")
        return text

    def boolean(self, node: YNode, what: str) -> bool:
        if not isinstance(node, YScalar) or not isinstance(node.value, bool):
            shown = f" {node.text!r}" if isinstance(node, YScalar) and not node.is_null else ""
            raise self.error(node.line, f"{what} must be true or false, not {_kind(node)}{shown}")
        return node.value

    def integer(self, node: YNode, what: str, *, minimum: int = 0) -> int:
        value = node.value if isinstance(node, YScalar) else None
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(node.line, f"{what} must be a whole number, not {_kind(node)}")
        if value < minimum:
            raise self.error(node.line, f"{what} must be at least {minimum}, not {value}")
        return value

    def number(self, node: YNode, what: str, *, positive: bool = True) -> float:
        value = node.value if isinstance(node, YScalar) else None
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self.error(node.line, f"{what} must be a number, not {_kind(node)}")
        if value != value or value in (float("inf"), float("-inf")) or (positive and value <= 0):
            raise self.error(node.line, f"{what} must be a positive number, not {value!r}")
        return float(value)

    def strings(self, node: YNode, what: str) -> list[tuple[str, int]]:
        """A list of strings with their lines; a single string is not accepted for a list."""
        return [
            (self.string(item, f"each item of {what}"), item.line) for item in self.sequence(node, what).items
        ]
