"""The doublestar matcher (asyncsync.harbor.doublestar) against doublestar v1.3.4's behaviour.

``MATCH_TABLE`` holds the cases of doublestar v1.3.4's own ``Match`` test table (pattern, name,
expected; ``BAD`` = ``ErrBadPattern``), minus the symlink fixtures of its on-disk glob tests:
Harbor evaluates immutability and retention selectors with exactly that function, so every
answer, quirks and lazily reported malformed patterns included, must agree. The other tests
take the patterns Harbor's selector tests use and repository names with path separators.
"""

from __future__ import annotations

import time

import pytest

from asyncsync.errors import UsageError
from asyncsync.harbor.doublestar import match

BAD = "bad pattern"

MATCH_TABLE: list[tuple[str, str, bool | str]] = [
    ("*", "", True),
    ("*", "/", False),
    ("/*", "/", True),
    ("/*", "/debug/", False),
    ("/*", "//", False),
    ("abc", "abc", True),
    ("*", "abc", True),
    ("*c", "abc", True),
    ("*/", "a/", True),
    ("a*", "a", True),
    ("a*", "abc", True),
    ("a*", "ab/c", False),
    ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*", "axbxcxdxe", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True),
    ("a\\*b", "ab", False),
    ("a?b", "a☺b", True),
    ("a[^a]b", "a☺b", True),
    ("a???b", "a☺b", False),
    ("a[^a][^a][^a]b", "a☺b", False),
    ("[a-ζ]*", "\u03b1", True),  # Greek alpha
    ("*[a-ζ]", "A", False),
    ("a?b", "a/b", False),
    ("a*b", "a/b", False),
    ("[\\]a]", "]", True),
    ("[\\-]", "-", True),
    ("[x\\-]", "x", True),
    ("[x\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("[\\-x]", "x", True),
    ("[\\-x]", "-", True),
    ("[\\-x]", "a", False),
    ("[]a]", "]", BAD),
    ("[-]", "-", BAD),
    ("[x-]", "x", BAD),
    ("[x-]", "-", BAD),
    ("[x-]", "z", BAD),
    ("[-x]", "x", BAD),
    ("[-x]", "-", BAD),
    ("[-x]", "a", BAD),
    ("\\", "a", BAD),
    ("[a-b-c]", "a", BAD),
    ("[", "a", BAD),
    ("[^", "a", BAD),
    ("[^bc", "a", BAD),
    ("a[", "a", False),
    ("a[", "ab", BAD),
    ("*x", "xxx", True),
    ("[abc]", "b", True),
    ("a/**", "a", False),
    ("a/**", "a/b", True),
    ("a/**", "a/b/c", True),
    ("**/c", "c", True),
    ("**/c", "b/c", True),
    ("**/c", "a/b/c", True),
    ("**/c", "a/b", False),
    ("**/c", "abcd", False),
    ("**/c", "a/abc", False),
    ("a/**/b", "a/b", True),
    ("a/**/c", "a/b/c", True),
    ("a/**/d", "a/b/c/d", True),
    ("a/\\**", "a/b/c", False),
    ("a//b/c", "a/b/c", False),
    ("a/b/c", "a/b//c", False),
    ("a/", "a", False),
    ("ab{c,d}", "abc", True),
    ("ab{c,d,*}", "abcde", True),
    ("ab{c,d}[", "abcd", BAD),
    ("a{,bc}", "a", True),
    ("a{,bc}", "abc", True),
    ("a/{b/c,c/b}", "a/b/c", True),
    ("a/{b/c,c/b}", "a/c/b", True),
    ("{a/{b,c},abc}", "a/b", True),
    ("{a/{b,c},abc}", "a/c", True),
    ("{a/{b,c},abc}", "abc", True),
    ("{a/{b,c},abc}", "a/b/c", False),
    ("{a/ab*}", "a/abc", True),
    ("{a/*}", "a/b", True),
    ("{a/abc}", "a/abc", True),
    ("{a/b,a/c}", "a/c", True),
    ("abc/**", "abc/b", True),
    ("**/abc", "abc", True),
    ("abc**", "abc/b", False),
    ("**/*.txt", "abc/【test】.txt", True),
    ("**/【*", "abc/【test】.txt", True),
    ("working-sym*/*", "working-symlink/c", True),
    ("b/**/f", "b/symlink-dir/f", True),
]


@pytest.mark.parametrize(("pattern", "name", "expected"), MATCH_TABLE)
def test_match_agrees_with_doublestar_v1_3_4(pattern: str, name: str, expected: bool | str) -> None:
    if expected == BAD:
        with pytest.raises(UsageError, match="malformed doublestar pattern"):
            match(pattern, name)
    else:
        assert match(pattern, name) is expected


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        # Harbor's selector tests: tag patterns
        ("{latest,4.*}", "latest", True),
        ("{latest,4.*}", "4.0", True),
        ("{latest,4.*}", "5.0", False),
        ("4.*", "4.1", True),
        ("release-**", "release-1.10", True),
        ("release-**", "1.10", False),
        ("world**", "world", True),
        ("**", "anything-at-all", True),
        ("v1.?", "v1.2", True),
        ("v1.?", "v1.23", False),
        ("v[0-9].*", "v2.0", True),
        ("v[!0-9]*", "v2", True),  # "!" does not negate in doublestar: the class is "!" and 0-9
        ("v[^0-9]*", "v2", False),
        # repository names carry path separators: "*" and "?" stop at "/", "**" crosses it
        ("{redis}", "redis", True),
        ("har*", "harbor", True),
        ("*", "team/app", False),
        ("team/*", "team/app", True),
        ("team/*", "team/app/worker", False),
        ("team/**", "team/app/worker", True),
        ("team/**", "team", False),
        ("**/worker", "worker", True),
        ("**/worker", "team/app/worker", True),
        ("team/**/worker", "team/worker", True),
        ("tea?/app", "team/app", True),
        ("team?app", "team/app", False),
        ("{team,ops}/**", "ops/db", True),
        ("{team/app,ops}", "team/app", True),
        ("**", "a/b/c", True),
    ],
)
def test_harbor_style_patterns(pattern: str, name: str, expected: bool) -> None:
    assert match(pattern, name) is expected


def test_malformed_parts_raise_only_when_reached() -> None:
    assert match("x[", "a") is False  # "x" already fails: the "[" is never read
    with pytest.raises(UsageError):
        match("a[", "ab")
    with pytest.raises(UsageError):
        match("{a,b", "a")
    assert match("**/[", "a") is False  # doublestar ignores errors where "**" may stop


def test_many_stars_stay_fast_on_a_long_name() -> None:
    pattern, name = "*a*a*a*a*a*a*a*a*a*a*b", "a" * 120
    started = time.monotonic()
    assert match(pattern, name) is False
    assert match(pattern, name + "b") is True
    assert time.monotonic() - started < 2.0
