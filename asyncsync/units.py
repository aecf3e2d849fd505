"""The one grammar for durations and the one grammar for sizes, used by every flag and spec key.

Durations are Go's ``time.ParseDuration`` (what skopeo's ``--command-timeout`` and
``--retry-delay`` take): one or more decimal numbers, each with a unit, summed::

    300ms   30s   1m30s   1.5h   2h45m   250us   .5s

Units: ``ns``, ``us`` (also ``µs``/``μs``), ``ms``, ``s``, ``m``, ``h``. Go's lone ``0`` is
accepted. A bare number (``30``, ``0.5``) is seconds, as asyncsync has always accepted it
where skopeo's flags take seconds. Negative durations are refused (no flag means "before").

Sizes are a whole or decimal number with an optional unit, case-insensitive, optional blank
between the two::

    1048576   512k   64MiB   1GB   1.5Gi   16 MiB

``k``/``KB``, ``M``/``MB``, ``G``/``GB``, ``T``/``TB`` are decimal (powers of 1000, as SI and
docker's ``units.FromHumanSize``); ``Ki``/``KiB``, ``Mi``/``MiB``, ``Gi``/``GiB``,
``Ti``/``TiB`` are binary (powers of 1024); ``B`` or no unit is bytes. A fractional result is
rounded down to whole bytes.

Both parsers raise :class:`ValueError` with a one-line reason; the callers put the flag name
(:func:`duration_flag`, :func:`size_flag`) or the spec file and line in front of it.
"""

from __future__ import annotations

import re

from asyncsync.errors import UsageError

#: The examples every duration error shows.
DURATION_EXAMPLES = "e.g. 30s, 1m30s, 1.5h, 300ms"
#: The examples every size error shows.
SIZE_EXAMPLES = "e.g. 64MiB, 1GB, 512k, 1048576"

_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_BARE_NUMBER = re.compile(rf"{_NUMBER}\Z")
_DURATION_PART = re.compile(rf"({_NUMBER})(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 MICRO SIGN
    "μs": 1e-6,  # U+03BC GREEK SMALL LETTER MU
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_SIZE = re.compile(rf"({_NUMBER})\s*([a-z]*)\Z", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    **{f"{p}{suffix}": 1000**n for n, p in enumerate("kmgt", 1) for suffix in ("", "b")},
    **{f"{p}i{suffix}": 1024**n for n, p in enumerate("kmgt", 1) for suffix in ("", "b")},
}


def parse_duration(text: str) -> float:
    """Seconds in ``text`` (Go duration or bare seconds); :class:`ValueError` when malformed."""
    text = text.strip()
    sign = text[:1] if text[:1] in ("+", "-") else ""
    body = text[len(sign) :]
    if _BARE_NUMBER.match(body):
        seconds = float(body)
    else:
        parts = _DURATION_PART.findall(body)
        if not parts or "".join(number + unit for number, unit in parts) != body:
            raise ValueError(f"invalid duration {text!r} ({DURATION_EXAMPLES})")
        seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    if sign == "-" and seconds > 0:
        raise ValueError(f"duration {text!r} must not be negative")
    return seconds


def parse_size(text: str) -> int:
    """Bytes in ``text`` (see the module docstring); :class:`ValueError` when malformed."""
    match = _SIZE.match(text.strip())
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(f"invalid size {text.strip()!r} ({SIZE_EXAMPLES})")
    number, scale = match.group(1), _SIZE_UNITS[unit]
    # Whole numbers stay exact integers; a fraction is rounded down to whole bytes.
    return int(number) * scale if number.isdigit() else int(float(number) * scale)


def duration_flag(text: str, flag: str) -> float:
    """:func:`parse_duration` for a command-line flag: a :class:`UsageError` names ``flag``."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def size_flag(text: str, flag: str) -> int:
    """:func:`parse_size` for a command-line flag: a positive size, or a :class:`UsageError`
    naming ``flag``."""
    try:
        size = parse_size(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None
    if size <= 0:
        raise UsageError(f"{flag}: size must be positive")
    return size
