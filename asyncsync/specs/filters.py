"""Tag selection: RE2 tag regexes and the :class:`TagFilter` of a sync entry.

Regexes follow skopeo, which compiles them with Go's ``regexp`` (RE2) and tests tags with
``MatchString``: the match is **unanchored** (``1\\.2`` matches ``v1.2.3``; write ``^1\\.2$``
for an exact match). They are compiled by Google's RE2 itself (the ``google-re2`` package),
so the accepted syntax and the matches are RE2's (as Go's, bar the few syntax extensions Go
added on its own), and matching takes linear time: Python's backtracking ``re`` needs
seconds for ``^(v?\\d+)+$`` on a 24-character tag and doubles with every character more,
which a spec must never be able to trigger. What RE2 refuses (lookaround, backreferences,
atomic groups, possessive quantifiers) is a spec error naming the construct.

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

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import re2  # type: ignore[import-untyped]

from asyncsync.digest import Digest
from asyncsync.specs.semver_range import VersionRange, version_sort_key

MAX_REGEX_LENGTH = 1024

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # RE2 would also print its parse errors to stderr; ours are one line
_HINTS = (
    (("(?=", "(?!"), "RE2 has no lookahead"),
    (("(?<=", "(?<!"), "RE2 has no lookbehind"),
    (("(?P=", "\\1", "\\2", "\\3", "\\4", "\\5", "\\6", "\\7", "\\8", "\\9"), "RE2 has no backreferences"),
    (("(?>",), "RE2 has no atomic groups"),
    (("*+", "++", "?+", "}+"), "RE2 has no possessive quantifiers"),
)


class TagRegexError(ValueError):
    """A tag regex that RE2 (and therefore skopeo) would not accept; ``str()`` is one line."""


@dataclass(frozen=True, slots=True)
class TagRegex:
    """A compiled RE2 tag regex; ``text`` is the pattern as written in the spec."""

    text: str
    compiled: Any

    def search(self, tag: str) -> bool:
        """Unanchored match, like Go's ``regexp.MatchString``."""
        return self.compiled.search(tag) is not None

    def __str__(self) -> str:
        return self.text


def compile_tag_regex(text: str) -> TagRegex:
    """Compile an RE2 tag regex; raise :class:`TagRegexError` with RE2's one-line reason."""
    if len(text) > MAX_REGEX_LENGTH:
        raise TagRegexError(f"regex longer than {MAX_REGEX_LENGTH} characters")
    try:
        compiled = re2.compile(text, options=_RE2_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else b"invalid regex"
        reason = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
        reason = " ".join(reason.split())
        # RE2 reports "(?P=name)" as a bad "(?P" operator: look at the pattern for that one.
        context = reason + (" (?P=" if "(?P=" in text else "")
        for needles, hint in _HINTS:
            if any(needle in context for needle in needles):
                reason = f"{reason} ({hint})"
                break
        raise TagRegexError(reason) from None
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
