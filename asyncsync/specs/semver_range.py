"""Version tags and version ranges, with the semantics skopeo's ``images-by-semver`` uses.

skopeo filters tags with Masterminds/semver v3 (``semver.NewVersion`` + ``NewConstraint``);
this module reproduces that behaviour on top of the ``semver`` package's :class:`semver.Version`
(which provides semver 2.0 precedence, pre-releases included).

Versions (:func:`parse_version`) are *coerced* as Masterminds does: an optional ``v``, and
missing minor/patch parts count as 0, so the tags ``v1``, ``1.2`` and ``1.2.0`` are versions
while ``latest`` or ``1.2.3.4`` are not. Numeric pre-release identifiers with leading zeros
are refused, as in semver 2.0.

Ranges (:class:`VersionRange`) accept the npm/cargo-like syntax of Masterminds v3:

* comparisons ``=``, ``!=``, ``>``, ``<``, ``>=``, ``<=`` (also ``=>``/``=<``); a bare version
  means ``=``;
* AND: constraints separated by spaces or commas (``>=1.2 <2``, ``>= 1.2, < 2``);
* OR: ``||``; hyphen ranges ``1.2 - 1.4.5`` (= ``>=1.2 <=1.4.5``);
* wildcards ``1.x``, ``1.2.*``, ``*``; tilde ``~1.2`` (>=1.2.0 <1.3.0), ``~1`` (>=1 <2),
  ``~>`` as tilde; caret ``^1.2`` (>=1.2.0 <2.0.0), ``^0.2`` (>=0.2.0 <0.3.0), ``^0.0.3`` (=0.0.3).

Pre-release tags (``1.3.0-rc1``) satisfy a range only when one of the constraints in the
same OR group names a pre-release itself (``>=1.3.0-0``), again as Masterminds does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import semver

MAX_VERSION_LENGTH = 256
MAX_RANGE_LENGTH = 512
MAX_OR_GROUPS = 32

_LOOSE_VERSION = re.compile(
    r"^v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
# One version inside a constraint: like a version, but parts may be x, X or *.
_CV = (
    r"v?(?:[0-9xX*]+)(?:\.[0-9xX*]+)?(?:\.[0-9xX*]+)?"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)
_CV_PARTS = re.compile(
    r"^v?([0-9xX*]+)(\.[0-9xX*]+)?(\.[0-9xX*]+)?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
_OPS = r"!=|>=|=>|<=|=<|~>|>|<|=|~|\^|"
_ONE = re.compile(rf"^\s*({_OPS})\s*({_CV})\s*$")
_FIND = re.compile(rf"({_OPS})\s*({_CV})")
_VALID_GROUP = re.compile(rf"^\s*(?:{_OPS})\s*{_CV}\s*(?:(?:\s+|,\s*)(?:{_OPS})\s*{_CV}\s*)*$")
_HYPHEN = re.compile(rf"\s*({_CV})\s+-\s+({_CV})\s*")


class VersionError(ValueError):
    """A version or range that does not parse; ``str()`` is a one-line reason."""


def parse_version(text: str) -> semver.Version | None:
    """The version a tag denotes (coerced as Masterminds' ``NewVersion``), or ``None``."""
    if len(text) > MAX_VERSION_LENGTH:
        return None
    match = _LOOSE_VERSION.match(text)
    if match is None:
        return None
    major, minor, patch, pre, build = match.groups()
    if pre and any(part.isdigit() and len(part) > 1 and part[0] == "0" for part in pre.split(".")):
        return None
    return semver.Version(
        int(major),
        int(minor[1:]) if minor else 0,
        int(patch[1:]) if patch else 0,
        prerelease=pre or None,
        build=build or None,
    )


def _is_x(part: str | None) -> bool:
    return part in ("x", "X", "*")


@dataclass(frozen=True, slots=True)
class _Constraint:
    op: str
    version: semver.Version
    minor_dirty: bool
    patch_dirty: bool
    dirty: bool
    text: str

    def check(self, v: semver.Version, include_pre: bool) -> bool:
        if v.prerelease and not include_pre:
            return False
        return _CHECKS[self.op](self, v)


def _compare(a: semver.Version, b: semver.Version) -> int:
    # Build metadata never affects precedence (semver 2.0 section 10).
    return a.replace(build=None).compare(b.replace(build=None))


def _parse_constraint(op: str, text: str) -> _Constraint:
    match = _CV_PARTS.match(text)
    if match is None:  # pragma: no cover - _ONE/_FIND matched the same pattern
        raise VersionError(f"improper constraint {op + text!r}")
    major, minor, patch, pre, _build = match.groups()
    parts = [major, minor[1:] if minor else None, patch[1:] if patch else None]
    for part in parts:
        if part is not None and not part.isdigit() and not _is_x(part):
            raise VersionError(f"improper constraint {op + text!r}")
    minor_dirty = patch_dirty = dirty = False
    if _is_x(parts[0]):
        numbers, dirty = (0, 0, 0), True
    elif parts[1] is None or _is_x(parts[1]):
        numbers, dirty, minor_dirty = (int(major), 0, 0), True, True
    elif parts[2] is None or _is_x(parts[2]):
        numbers, dirty, patch_dirty = (int(major), int(parts[1]), 0), True, True
    else:
        numbers = (int(major), int(parts[1]), int(parts[2]))
    version = semver.Version(*numbers, prerelease=pre or None)
    return _Constraint(op or "=", version, minor_dirty, patch_dirty, dirty, f"{op}{text}")


def _tilde(c: _Constraint, v: semver.Version) -> bool:
    if _compare(v, c.version) < 0:
        return False
    con = c.version
    if con.major == con.minor == con.patch == 0 and not c.minor_dirty and not c.patch_dirty:
        return True
    if v.major != con.major:
        return False
    return v.minor == con.minor or c.minor_dirty


def _equal(c: _Constraint, v: semver.Version) -> bool:
    return _tilde(c, v) if c.dirty else _compare(v, c.version) == 0


def _not_equal(c: _Constraint, v: semver.Version) -> bool:
    con = c.version
    if c.dirty:
        if con.major != v.major:
            return True
        if c.minor_dirty:
            return False
        if con.minor != v.minor:
            return True
        if c.patch_dirty:
            if v.prerelease or con.prerelease:
                return (v.prerelease or "") != (con.prerelease or "")
            return False
    return _compare(v, con) != 0


def _greater(c: _Constraint, v: semver.Version) -> bool:
    con = c.version
    if not c.dirty:
        return _compare(v, con) > 0
    if v.major != con.major:
        return v.major > con.major
    if c.minor_dirty:
        return False  # ">1" wants 2.0.0 or more: 1.5 is not greater
    if c.patch_dirty:
        return v.minor > con.minor
    return _compare(v, con) > 0  # pragma: no cover - dirty implies one of the above


def _less_equal(c: _Constraint, v: semver.Version) -> bool:
    con = c.version
    if not c.dirty:
        return _compare(v, con) <= 0
    if v.major > con.major:
        return False
    return not (v.major == con.major and v.minor > con.minor and not c.minor_dirty)


def _caret(c: _Constraint, v: semver.Version) -> bool:
    con = c.version
    if _compare(v, con) < 0:
        return False
    if con.major > 0 or c.minor_dirty:
        return v.major == con.major
    if v.major > 0:
        return False
    if con.minor > 0 or c.patch_dirty:
        return v.minor == con.minor
    if v.minor > 0:
        return False
    return v.patch == con.patch


_CHECKS: dict[str, Callable[[_Constraint, semver.Version], bool]] = {
    "=": _equal,
    "!=": _not_equal,
    ">": _greater,
    "<": lambda c, v: _compare(v, c.version) < 0,
    ">=": lambda c, v: _compare(v, c.version) >= 0,
    "=>": lambda c, v: _compare(v, c.version) >= 0,
    "<=": _less_equal,
    "=<": _less_equal,
    "~": _tilde,
    "~>": _tilde,
    "^": _caret,
}


@dataclass(frozen=True, slots=True)
class VersionRange:
    """A parsed range; :meth:`matches` takes a tag, :meth:`contains` a version."""

    text: str
    groups: tuple[tuple[_Constraint, ...], ...]
    group_has_pre: tuple[bool, ...]

    @classmethod
    def parse(cls, text: str) -> VersionRange:
        """Parse a Masterminds v3 constraint string; raise :class:`VersionError` when it is invalid."""
        if not text.strip():
            raise VersionError("empty version range")
        if len(text) > MAX_RANGE_LENGTH:
            raise VersionError(f"version range longer than {MAX_RANGE_LENGTH} characters")
        rewritten = _HYPHEN.sub(lambda m: f" >= {m.group(1)}, <= {m.group(2)} ", text)
        ors = rewritten.split("||")
        if len(ors) > MAX_OR_GROUPS:
            raise VersionError(f"more than {MAX_OR_GROUPS} '||' alternatives")
        groups: list[tuple[_Constraint, ...]] = []
        for group in ors:
            if not _VALID_GROUP.match(group):
                raise VersionError(f"improper constraint {group.strip()!r}")
            constraints = tuple(_parse_constraint(op, version) for op, version in _FIND.findall(group))
            groups.append(constraints)
        has_pre = tuple(any(c.version.prerelease for c in group) for group in groups)
        return cls(text, tuple(groups), has_pre)

    def contains(self, version: semver.Version) -> bool:
        return any(
            all(c.check(version, pre) for c in group)
            for group, pre in zip(self.groups, self.group_has_pre, strict=True)
        )

    def matches(self, tag: str) -> bool:
        """True when ``tag`` is a version inside the range (tags that are not versions never match)."""
        version = parse_version(tag)
        return version is not None and self.contains(version)

    def __str__(self) -> str:
        return self.text


def version_sort_key(tag: str) -> tuple[semver.Version, str] | None:
    """Sort key ordering tags by version precedence, then by text; ``None`` for non-versions."""
    version = parse_version(tag)
    if version is None:
        return None
    return (version.replace(build=None), tag)
