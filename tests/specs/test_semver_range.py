"""Version tags and ranges with skopeo's (Masterminds/semver v3) semantics."""

from __future__ import annotations

import pytest

from asyncsync.specs.semver_range import VersionError, VersionRange, parse_version, version_sort_key


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("1.2.3", (1, 2, 3, None)),
        ("v1.2.3", (1, 2, 3, None)),
        ("1.2", (1, 2, 0, None)),
        ("v2", (2, 0, 0, None)),
        ("01.2.3", (1, 2, 3, None)),  # Masterminds coerces leading zeros in numbers
        ("1.2.3-rc.1", (1, 2, 3, "rc.1")),
        ("7.2.4-alpine", (7, 2, 4, "alpine")),
    ],
)
def test_tags_that_are_versions(tag: str, expected: tuple[int, int, int, str | None]) -> None:
    version = parse_version(tag)
    assert version is not None
    assert (version.major, version.minor, version.patch, version.prerelease) == expected


@pytest.mark.parametrize("tag", ["latest", "1.2.3.4", "stable-1", "v", "1.2.3-01", "1..2", "x1.0", "1.2.3-"])
def test_tags_that_are_not_versions(tag: str) -> None:
    assert parse_version(tag) is None


# (range, version, satisfied) rows from Masterminds/semver v3's own constraint tests.
MASTERMINDS_CASES = [
    ("*", "1.2.3", True),
    ("~0.0.0", "1.2.3", True),
    ("0.x.x", "1.2.3", False),
    ("0.0.x", "1.2.3", False),
    ("0.0.0", "1.2.3", False),
    ("^0.0.0", "1.2.3", False),
    ("= 2.0", "1.2.3", False),
    ("= 2.0", "2.0.0", True),
    ("4.1", "4.1.0", True),
    ("4.1.x", "4.1.3", True),
    ("1.x", "1.4", True),
    ("!=4.1", "4.1.0", False),
    ("!=4.1-alpha", "4.1.0-alpha", False),
    ("!=4.1-alpha", "4.1.1-alpha", False),
    ("!=4.1-alpha", "4.1.0", True),
    ("!=4.1", "5.1.0", True),
    ("!=4.x", "5.1.0", True),
    ("!=4.x", "4.1.0", False),
    ("!=4.1.x", "4.2.0", True),
    ("!=4.2.x", "4.2.3", False),
    (">1.1", "4.1.0", True),
    (">1.1", "1.1.0", False),
    ("<1.1", "0.1.0", True),
    ("<1.1", "1.1.0", False),
    ("<1.1", "1.1.1", False),
    ("<1.x", "1.1.1", False),
    ("<1.x", "0.1.1", True),
    ("<1.x", "2.0.0", False),
    ("<1.1.x", "1.2.1", False),
    ("<1.1.x", "1.1.500", False),
    ("<1.1.x", "1.0.500", True),
    ("<1.2.x", "1.1.1", True),
    (">=1.1", "4.1.0", True),
    (">=1.1", "4.1.0-beta", False),
    (">=1.1", "1.1.0", True),
    (">=1.1", "0.0.9", False),
    ("<=1.1", "0.1.0", True),
    ("<=1.1", "0.1.0-alpha", False),
    ("<=1.1-a", "0.1.0-alpha", True),
    ("<=1.1", "1.1.0", True),
    ("<=1.x", "1.1.0", True),
    ("<=2.x", "3.0.0", False),
    ("<=1.1", "1.1.1", True),
    ("<=1.1.x", "1.2.500", False),
    ("<=4.5", "3.4.0", True),
    ("<=4.5", "3.7.0", True),
    ("<=4.5", "4.6.3", False),
    (">1.1, <2", "1.1.1", False),
    (">1.1, <2", "1.2.1", True),
    (">1.1, <3", "4.3.2", False),
    (">=1.1, <2, !=1.2.3", "1.2.3", False),
    (">1.1 <2", "1.1.1", False),
    (">1.1 <2", "1.2.1", True),
    (">1.1    <3", "4.3.2", False),
    (">=1.1    <2    !=1.2.3", "1.2.3", False),
    (">=1.1, <2, !=1.2.3 || > 3", "4.1.2", True),
    (">=1.1, <2, !=1.2.3 || > 3", "3.1.2", False),
    (">=1.1, <2, !=1.2.3 || >= 3", "3.0.0", True),
    (">=1.1, <2, !=1.2.3 || > 3", "3.0.0", False),
    (">=1.1, <2, !=1.2.3 || > 3", "1.2.3", False),
    ("> 1.1, <     2", "1.1.1", False),
    (">   1.1, <2", "1.2.1", True),
    (">= 1.1 <2 != 1.2.3 || >= 3", "3.0.0", True),
    ("1.1 - 2", "1.1.1", True),
    ("1.5.0 - 4.5", "3.7.0", True),
    ("1.1-3", "4.3.2", False),
    ("^1.1", "1.1.1", True),
    ("^1.1", "4.3.2", False),
    ("^1.x", "1.1.1", True),
    ("^2.x", "1.1.1", False),
    ("^1.x", "2.1.1", False),
    ("^1.x", "1.1.1-beta1", False),
    ("^1.1.2-alpha", "1.2.1-beta1", True),
    ("^1.2.x-alpha", "1.1.1-beta1", False),
    ("^0.0.1", "0.0.1", True),
    ("^0.0.1", "0.3.1", False),
    ("~*", "2.1.1", True),
    ("~1", "2.1.1", False),
    ("~1", "1.3.5", True),
    ("~1", "1.4", True),
    ("~1.x", "2.1.1", False),
    ("~1.x", "1.3.5", True),
    ("~1.1", "1.1.1", True),
    ("~1.1", "1.1.1-alpha", False),
    ("~1.1-alpha", "1.1.1-beta", True),
    ("~1.1.1-beta", "1.1.1-alpha", False),
    ("~1.1.1-beta", "1.1.1", True),
    ("~1.2.3", "1.2.5", True),
    ("~1.2.3", "1.2.2", False),
    ("~1.2.3", "1.3.2", False),
    ("~1.1", "1.2.3", False),
    ("~1.3", "2.4.5", False),
    (">0", "0", False),
    (">0", "1", True),
    (">=0-0", "0.0.1-alpha", True),
    ("*-0", "1.2.3-alpha.1", True),
    ("*", "1.2.3-alpha.1", False),
    ("2.*", "2.1.1", True),
    ("2", "2.1.1", True),
    ("2.1", "2.2.1", False),
    ("~1.2.3-beta.2", "1.2.4-beta.2", True),
    ("^0.2.3-beta.2", "0.3.4-beta.2", False),
    ("^0.2.3", "0.2.5", True),
    ("^0.2", "0.5.6", False),
    ("^0.0", "0.0.3", True),
    ("^0.0", "0.1.4", False),
    ("^0", "0.2.3", True),
    ("^0", "1.1.4", False),
    (">11.1", "11.1.1", False),
    (">11.1", "11.2.1", True),
    (">11", "11.1.0", False),
    ("<=11", "11.2.3", True),
    ("<=11", "12.2.3", False),
]


@pytest.mark.parametrize(("constraint", "version", "expected"), MASTERMINDS_CASES)
def test_masterminds_compatibility(constraint: str, version: str, expected: bool) -> None:
    parsed = parse_version(version)
    assert parsed is not None
    assert VersionRange.parse(constraint).contains(parsed) is expected


@pytest.mark.parametrize(
    ("constraint", "groups"),
    [
        (">= 1.1", [1]),
        (">40.50.60, < 50.70", [2]),
        ("v2.3.5-20161202202307-sha.e8fc5e5", [1]),
        (">= 1.2.3 < 2.0 || => 3.0 < 4", [2, 2]),
        ("3 - 4 || => 3.0, < 4", [2, 2]),
        ("12.3.34 ~1.2.3", [2]),
    ],
)
def test_range_structure(constraint: str, groups: list[int]) -> None:
    assert [len(group) for group in VersionRange.parse(constraint).groups] == groups


@pytest.mark.parametrize(
    "constraint",
    [
        "",
        "   ",
        ">= bar",
        "BAR >= 1.2.3",
        "12.3.4.1234",
        "12.3.34~ 1.2.3",
        ">> 1",
        "1.x2",
        "||".join(["1"] * 33),
        "1" * 513,
    ],
)
def test_invalid_ranges(constraint: str) -> None:
    with pytest.raises(VersionError):
        VersionRange.parse(constraint)


def test_npm_style_ranges_on_tags() -> None:
    tags = ["1.0.0", "1.2.0", "v1.2.5", "1.3.0-rc1", "1.3.0", "2.0.0", "latest", "1.2"]
    assert [t for t in tags if VersionRange.parse(">=1.2 <2").matches(t)] == [
        "1.2.0",
        "v1.2.5",
        "1.3.0",
        "1.2",
    ]
    assert [t for t in tags if VersionRange.parse("~1.2").matches(t)] == ["1.2.0", "v1.2.5", "1.2"]
    assert [t for t in tags if VersionRange.parse("1.x").matches(t)] == [
        "1.0.0",
        "1.2.0",
        "v1.2.5",
        "1.3.0",
        "1.2",
    ]
    assert [t for t in tags if VersionRange.parse(">=1.3.0-0").matches(t)] == ["1.3.0-rc1", "1.3.0", "2.0.0"]
    assert str(VersionRange.parse("^1.2")) == "^1.2"


def test_version_sort_key_orders_by_precedence_then_text() -> None:
    tags = ["1.10.0", "1.9.0", "1.10.0-rc1", "v1.2", "1.2.0", "latest"]
    keyed = sorted((key, tag) for tag in tags if (key := version_sort_key(tag)) is not None)
    assert [tag for _, tag in keyed] == ["1.2.0", "v1.2", "1.9.0", "1.10.0-rc1", "1.10.0"]
    assert version_sort_key("latest") is None
