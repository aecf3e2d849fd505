"""Tag regexes (RE2 semantics, unanchored like skopeo) and TagFilter selection."""

from __future__ import annotations

import time

import pytest

from asyncsync.digest import Digest
from asyncsync.specs.filters import TagFilter, TagRegexError, compile_tag_regex
from asyncsync.specs.semver_range import VersionRange

DIGEST = Digest.parse("sha256:" + "cd" * 32)


@pytest.mark.parametrize(
    ("pattern", "tag", "matches"),
    [
        (r"1\.2", "v1.2.3", True),  # unanchored, as Go's MatchString
        (r"^1\.2$", "v1.2", False),
        (r"^1\.13\.[12]-alpine-perl$", "1.13.2-alpine-perl", True),
        (r"^[12]\.0$", "11.0", False),
        (r"[[:digit:]]+$", "v12", True),
        (r"^[[:alpha:]]+$", "v12", False),
        (r"(?i)^RC", "rc1", True),
        (r"(?<major>\d+)\.", "10.1", True),
        (r"\Qa.b\E", "a.b", True),
        (r"\Qa.b\E", "axb", False),
        (r"(?U)^v\d+", "v12", True),
        (r"a(?i)b", "aB", True),  # flags in the middle, as RE2 allows
        (r"^v\d+\z", "v12", True),
        (r"\d", "\u0661", False),  # ASCII-only classes, as RE2 (Arabic-Indic digit one)
        (r"[[a]", "[", True),
        (r"[]a]", "]", True),
    ],
)
def test_regex_semantics(pattern: str, tag: str, matches: bool) -> None:
    assert compile_tag_regex(pattern).search(tag) is matches


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("a(?=b)", "invalid perl operator: (?= (RE2 has no lookahead)"),
        ("a(?!b)", "invalid perl operator: (?! (RE2 has no lookahead)"),
        ("(?<=a)b", "invalid perl operator: (?<= (RE2 has no lookbehind)"),
        ("(?<!a)b", "invalid perl operator: (?<! (RE2 has no lookbehind)"),
        (r"(a)\1", r"invalid escape sequence: \1 (RE2 has no backreferences)"),
        ("(?P<x>a)(?P=x)", "invalid perl operator: (?P (RE2 has no backreferences)"),
        ("(?>a)", "invalid perl operator: (?> (RE2 has no atomic groups)"),
        ("a*+", "bad repetition operator: *+ (RE2 has no possessive quantifiers)"),
        ("a{2}+", "bad repetition operator: {2}+ (RE2 has no possessive quantifiers)"),
        (r"a\Z", r"invalid escape sequence: \Z"),
        ("(?x)a", "invalid perl operator: (?x"),
        ("[[:foo:]]", "invalid character class range: [:foo:]"),
        ("[a-z", "missing ]: [a-z"),
        ("(a", "missing ): (a"),
        ("a\\", "trailing \\"),
        ("x" * 1025, "regex longer than 1024 characters"),
    ],
)
def test_constructs_re2_lacks_are_refused(pattern: str, reason: str) -> None:
    with pytest.raises(TagRegexError) as info:
        compile_tag_regex(pattern)
    assert str(info.value) == reason


def test_matching_takes_linear_time() -> None:
    # Python's backtracking re needs about a second for 24 characters here, and 4x more per 2 more.
    regex = compile_tag_regex(r"^(v?\d+)+$")
    started = time.perf_counter()
    assert not regex.search("1" * 127 + "x")
    assert regex.search("1" * 128)
    assert time.perf_counter() - started < 0.5


LISTED = ["1.0.0", "1.1.0", "1.2.0-rc1", "1.2.0", "1.10.0", "2.0.0", "latest", "main-abc123", "v1.9"]


def test_default_filter_takes_every_tag_sorted() -> None:
    f = TagFilter()
    assert f.selects_all and f.needs_tag_list
    assert f.select(reversed(LISTED)) == sorted(LISTED)
    assert f.describe() == "all tags"


def test_explicit_tags_need_no_listing_and_keep_their_order() -> None:
    f = TagFilter(tags=(("b", 3), ("a", 4), ("b", 5)))
    assert not f.needs_tag_list
    assert f.select([]) == ["b", "a"]


def test_digests_only_need_no_listing_but_digests_with_patterns_do() -> None:
    assert not TagFilter(digests=((DIGEST, 1),)).needs_tag_list
    assert TagFilter(digests=((DIGEST, 1),)).select(LISTED) == []
    with_regex = TagFilter(digests=((DIGEST, 1),), include=compile_tag_regex("^1"))
    assert with_regex.needs_tag_list and with_regex.select(["1.0", "2.0"]) == ["1.0"]


def test_include_exclude_semver_compose() -> None:
    f = TagFilter(
        include=compile_tag_regex(r"^v?\d"),
        exclude=compile_tag_regex("-rc"),
        semver=VersionRange.parse(">=1.1 <2 || >=1.2.0-0 <1.3"),
    )
    assert f.select(LISTED) == ["1.1.0", "1.10.0", "1.2.0", "v1.9"]
    assert f.describe() == r"include /^v?\d/, semver >=1.1 <2 || >=1.2.0-0 <1.3, exclude /-rc/"


def test_latest_n_by_semver_precedence_ignoring_non_versions() -> None:
    f = TagFilter(latest=3)
    assert f.select(LISTED) == ["2.0.0", "1.10.0", "v1.9"]
    assert TagFilter(latest=2, exclude=compile_tag_regex("^2")).select(LISTED) == ["1.10.0", "v1.9"]
    # A release ranks above its pre-releases; equal versions are ordered by text, highest first.
    assert TagFilter(latest=10).select(["1.2.0-rc1", "1.2.0", "v1.2", "1.2"]) == [
        "v1.2",
        "1.2.0",
        "1.2",
        "1.2.0-rc1",
    ]
    assert TagFilter(latest=5).select(["latest", "main"]) == []


def test_latest_applies_after_the_other_filters() -> None:
    f = TagFilter(semver=VersionRange.parse("<2"), latest=2)
    assert f.select(LISTED) == ["1.10.0", "v1.9"]
    assert f.describe() == "semver <2, latest 2"
