"""Tag selection: RE2-compatible tag regexes and the :class:`TagFilter` of a sync entry.

Regexes follow skopeo, which compiles them with Go's ``regexp`` (RE2) and tests tags with
``MatchString``: the match is **unanchored** (``1\\.2`` matches ``v1.2.3``; write ``^1\\.2$``
for an exact match). :func:`compile_tag_regex` accepts the RE2 syntax and refuses what RE2
lacks (lookaround, backreferences, atomic groups, possessive quantifiers, conditionals,
``\\Z``), so a spec that asyncsync accepts behaves the same in skopeo and vice versa. RE2
features Python writes differently are translated: POSIX classes (``[[:digit:]]``),
``\\z`` and ``\\Q...\\E``. Classes such as ``\\d``/``\\w`` are ASCII-only, as in RE2.

:class:`TagFilter` selection order (documented in ``configs/README.md``):

1. explicit ``tags`` (and ``digests``) are taken as written, with no tag listing;
2. otherwise the listed tags are kept when they match ``include`` (if set), fall inside the
   ``semver`` range (if set) and do not match ``exclude`` (if set);
3. ``latest: N`` then keeps the N highest versions among those (tags that are not versions
   never count as "latest"), ordered by semver precedence, ties by tag text.

The result is in a deterministic order: explicit tags as written, listed tags sorted by text
(``latest`` results by version, highest first).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

from asyncsync.digest import Digest
from asyncsync.sync.semver_range import VersionRange, version_sort_key

MAX_REGEX_LENGTH = 1024

_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_GROUP_REFUSED = {
    "(?=": "lookahead",
    "(?!": "negative lookahead",
    "(?<=": "lookbehind",
    "(?<!": "negative lookbehind",
    "(?P=": "a named backreference",
    "(?>": "an atomic group",
    "(?(": "a conditional group",
    "(?#": "a comment group",
}
_FLAG_GROUP = re.compile(r"\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?[:)]")


class TagRegexError(ValueError):
    """A tag regex that RE2 (and therefore skopeo) would not accept; ``str()`` is one line."""


def _translate(pattern: str) -> str:
    """Translate RE2 syntax to Python ``re`` syntax, refusing constructs RE2 does not have."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        char = pattern[i]
        if char == "\\":
            if i + 1 >= n:
                raise TagRegexError("trailing backslash")
            nxt = pattern[i + 1]
            if nxt.isdigit() and nxt != "0":
                raise TagRegexError(f"backreference \\{nxt} is not supported by RE2")
            if nxt in "pP":
                raise TagRegexError(f"Unicode class \\{nxt} is not supported for tags (tags are ASCII)")
            if nxt == "Z":
                raise TagRegexError("\\Z is not RE2 syntax (use \\z or $)")
            if nxt == "C":
                raise TagRegexError("\\C is not supported")
            if nxt == "z" and not in_class:
                out.append("\\Z")
                i += 2
                continue
            if nxt == "Q":
                end = pattern.find("\\E", i + 2)
                literal = pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]
                out.append(re.escape(literal))
                i = n if end < 0 else end + 2
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if char == "[" and pattern.startswith("[:", i):
                end = pattern.find(":]", i + 2)
                name = pattern[i + 2 : end] if end > 0 else ""
                negated = name.startswith("^")
                if end < 0 or name.lstrip("^") not in _POSIX_CLASSES:
                    raise TagRegexError(f"invalid character class range {pattern[i : end + 2]!r}")
                if negated:
                    raise TagRegexError("negated POSIX classes ([:^name:]) are not supported")
                out.append(_POSIX_CLASSES[name])
                i = end + 2
                continue
            if char == "]":
                in_class = False
                out.append(char)
            elif char in "[&~|":
                # Literal inside an RE2 class; Python reserves these pairs for set operations.
                out.append("\\" + char)
            else:
                out.append(char)
            i += 1
            continue
        if char == "[":
            in_class = True
            out.append(char)
            i += 1
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            if pattern.startswith("]", i):  # a leading ']' is a literal in RE2
                out.append("\\]")
                i += 1
            continue
        if char == "(" and pattern.startswith("(?", i):
            for prefix, what in _GROUP_REFUSED.items():
                if pattern.startswith(prefix, i):
                    raise TagRegexError(f"{what} is not supported by RE2")
            if pattern.startswith("(?<", i):
                # RE2's (?<name>...) is Python's (?P<name>...).
                out.append("(?P<")
                i += 3
                continue
            flags = _FLAG_GROUP.match(pattern, i)
            if flags and set((flags.group(1) or "") + (flags.group(2) or "")) - set("imsU"):
                raise TagRegexError(f"unsupported flag group {flags.group(0)!r} (RE2 knows i, m, s and U)")
            if flags and "U" in (flags.group(1) or "") + (flags.group(2) or ""):
                raise TagRegexError("the ungreedy flag U is not supported")
        if char in "*+?}" and i + 1 < n and pattern[i + 1] == "+":
            raise TagRegexError(f"invalid nested repetition operator {pattern[i : i + 2]!r}")
        out.append(char)
        i += 1
    if in_class:
        raise TagRegexError("missing closing ]")
    return "".join(out)


@dataclass(frozen=True, slots=True)
class TagRegex:
    """A compiled tag regex; ``text`` is the pattern as written in the spec."""

    text: str
    compiled: re.Pattern[str]

    def search(self, tag: str) -> bool:
        """Unanchored match, like Go's ``regexp.MatchString``."""
        return self.compiled.search(tag) is not None

    def __str__(self) -> str:
        return self.text


def compile_tag_regex(text: str) -> TagRegex:
    """Compile an RE2 tag regex; raise :class:`TagRegexError` with a one-line reason."""
    if len(text) > MAX_REGEX_LENGTH:
        raise TagRegexError(f"regex longer than {MAX_REGEX_LENGTH} characters")
    translated = _translate(text)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            compiled = re.compile(translated, re.ASCII)
    except re.error as exc:
        raise TagRegexError(exc.msg) from None
    except (FutureWarning, DeprecationWarning) as exc:
        raise TagRegexError(f"ambiguous pattern: {exc}") from None
    return TagRegex(text, compiled)


@dataclass(frozen=True, slots=True)
class TagFilter:
    """Which references of a repository an entry copies. See the module docstring for the order.

    ``tags``/``digests`` are explicit references with the spec line of each (for messages);
    when ``tags`` is non-empty the pattern fields are all ``None`` (the spec parsers refuse
    the mix). With no explicit tags, the repository's tag list is needed unless the entry
    names digests only.
    """

    tags: tuple[tuple[str, int], ...] = ()
    digests: tuple[tuple[Digest, int], ...] = ()
    include: TagRegex | None = None
    exclude: TagRegex | None = None
    semver: VersionRange | None = None
    latest: int | None = None

    @property
    def has_patterns(self) -> bool:
        return any(x is not None for x in (self.include, self.exclude, self.semver, self.latest))

    @property
    def needs_tag_list(self) -> bool:
        """True when selecting requires listing the repository's tags."""
        if self.tags:
            return False
        return self.has_patterns or not self.digests

    @property
    def selects_all(self) -> bool:
        """Every tag, unfiltered."""
        return not self.tags and not self.digests and not self.has_patterns

    def select(self, listed: Iterable[str]) -> list[str]:
        """The tags to copy out of ``listed`` (ignored when explicit tags are set)."""
        if self.tags:
            return _unique(tag for tag, _ in self.tags)
        if not self.needs_tag_list:
            return []
        chosen = sorted(
            {
                tag
                for tag in listed
                if (self.include is None or self.include.search(tag))
                and (self.semver is None or self.semver.matches(tag))
                and (self.exclude is None or not self.exclude.search(tag))
            }
        )
        if self.latest is not None:
            keyed = [(key, tag) for tag in chosen if (key := version_sort_key(tag)) is not None]
            keyed.sort(key=lambda pair: pair[0], reverse=True)
            chosen = [tag for _, tag in keyed[: self.latest]]
        return chosen

    def describe(self) -> str:
        """A short human description, for plan output."""
        parts = []
        if self.tags:
            parts.append(f"{len(self.tags)} tag(s)")
        if self.include is not None:
            parts.append(f"include /{self.include}/")
        if self.semver is not None:
            parts.append(f"semver {self.semver}")
        if self.exclude is not None:
            parts.append(f"exclude /{self.exclude}/")
        if self.latest is not None:
            parts.append(f"latest {self.latest}")
        if self.digests:
            parts.append(f"{len(self.digests)} digest(s)")
        return ", ".join(parts) or "all tags"


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
