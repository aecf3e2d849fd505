"""The duration and size grammars (asyncsync.units) and their flag wrappers."""

from __future__ import annotations

import pytest

from asyncsync.errors import UsageError
from asyncsync.units import duration_flag, parse_duration, parse_size, size_flag


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("2", 2.0),
        ("0.5", 0.5),
        (" 2s ", 2.0),
        ("30s", 30.0),
        ("300ms", 0.3),
        ("1m30s", 90.0),
        ("1.5h", 5400.0),
        ("2h45m", 9900.0),
        ("250us", 0.00025),
        ("250µs", 0.00025),
        ("250μs", 0.00025),
        ("10ns", 1e-8),
        (".5s", 0.5),
        ("1.s", 1.0),
        ("+5s", 5.0),
        ("-0s", 0.0),
        ("1h1m1s1ms", 3661.001),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "soon", "5x", "1s-", "s", "1 s", "1m 30s", "1S", "1e3", "inf", "nan", ".s", "1..5s"]
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"^invalid duration .* \(e\.g\. 30s, 1m30s, 1\.5h, 300ms\)$"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["-1", "-1s", "-1m30s"])
def test_parse_duration_refuses_negative(text: str) -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1048576", 1048576),
        ("0", 0),
        ("10B", 10),
        ("512k", 512_000),
        ("512K", 512_000),
        ("512kB", 512_000),
        ("8M", 8_000_000),
        ("8MB", 8_000_000),
        ("1GB", 10**9),
        ("1T", 10**12),
        ("8Ki", 8192),
        ("64MiB", 64 << 20),
        ("64mib", 64 << 20),
        ("1GiB", 1 << 30),
        ("1.5Gi", 3 << 29),
        ("2TiB", 2 << 40),
        (" 16 MiB ", 16 << 20),
        ("1.5", 1),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "-1", "8X", "8MiBs", "8 M iB", "1e6", "MiB", "inf"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"^invalid size .* \(e\.g\. 64MiB, 1GB, 512k, 1048576\)$"):
        parse_size(text)


def test_flag_wrappers_name_the_flag() -> None:
    assert duration_flag("1m", "--every") == 60.0
    assert size_flag("8MiB", "--chunk-size") == 8 << 20
    with pytest.raises(UsageError, match=r"^--every: invalid duration 'soon'"):
        duration_flag("soon", "--every")
    with pytest.raises(UsageError, match=r"^--jitter: duration '-1s' must not be negative$"):
        duration_flag("-1s", "--jitter")
    with pytest.raises(UsageError, match=r"^--chunk-size: invalid size 'lots'"):
        size_flag("lots", "--chunk-size")
    with pytest.raises(UsageError, match=r"^--chunk-size: size must be positive$"):
        size_flag("0", "--chunk-size")
