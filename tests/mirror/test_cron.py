"""Five-field cron expressions: grammar, refusals, and next fire times (UTC)."""

from __future__ import annotations

import datetime as dt

import pytest

from asyncsync.errors import UsageError
from asyncsync.mirror.cron import CronSchedule

# A Sunday.
NOW = dt.datetime(2026, 11, 22, 6, 41, 30, tzinfo=dt.UTC)


def at(year: int, month: int, day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("expression", "first", "second"),
    [
        ("0 * * * *", at(2026, 11, 22, 7, 0), at(2026, 11, 22, 8, 0)),
        ("*/15 * * * *", at(2026, 11, 22, 6, 45), at(2026, 11, 22, 7, 0)),
        ("5,35 9-10 * * *", at(2026, 11, 22, 9, 5), at(2026, 11, 22, 9, 35)),
        ("30 2 * * mon-fri", at(2026, 11, 23, 2, 30), at(2026, 11, 24, 2, 30)),
        ("0 0 1 jan,JUL *", at(2027, 1, 1, 0, 0), at(2027, 7, 1, 0, 0)),
        ("0 0 29 2 *", at(2028, 2, 29, 0, 0), at(2032, 2, 29, 0, 0)),
        ("5 4 * * 7", at(2026, 11, 29, 4, 5), at(2026, 12, 6, 4, 5)),  # 7 is Sunday too
        ("10/20 * * * *", at(2026, 11, 22, 6, 50), at(2026, 11, 22, 7, 10)),
        # Both day fields restricted: either matches (the 13th, or any Friday).
        ("0 0 13 * fri", at(2026, 11, 27, 0, 0), at(2026, 12, 4, 0, 0)),
        ("@hourly", at(2026, 11, 22, 7, 0), at(2026, 11, 22, 8, 0)),
        ("@daily", at(2026, 11, 23, 0, 0), at(2026, 11, 24, 0, 0)),
        ("@weekly", at(2026, 11, 29, 0, 0), at(2026, 12, 6, 0, 0)),
        ("@monthly", at(2026, 12, 1, 0, 0), at(2027, 1, 1, 0, 0)),
        ("@yearly", at(2027, 1, 1, 0, 0), at(2028, 1, 1, 0, 0)),
    ],
)
def test_next_fire_times(expression: str, first: dt.datetime, second: dt.datetime) -> None:
    schedule = CronSchedule.parse(expression)
    assert schedule.next_after(NOW) == first
    assert schedule.next_after(first) == second


def test_next_is_strictly_after_and_converts_other_timezones() -> None:
    schedule = CronSchedule.parse("0 12 * * *")
    assert schedule.next_after(at(2026, 1, 1, 12, 0)) == at(2026, 1, 2, 12, 0)
    berlin = dt.timezone(dt.timedelta(hours=1))
    # 12:30 in UTC+1 is 11:30 UTC: noon UTC is still ahead that day.
    assert schedule.next_after(dt.datetime(2026, 1, 1, 12, 30, tzinfo=berlin)) == at(2026, 1, 1, 12, 0)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", "expected 5 fields"),
        ("60 * * * *", "minute value 60 is outside 0-59"),
        ("* 24 * * *", "hour value 24 is outside 0-23"),
        ("* * 0 * *", "day-of-month value 0 is outside 1-31"),
        ("* * * 13 *", "month value 13 is outside 1-12"),
        ("* * * * 8", "day-of-week value 8 is outside 0-7"),
        ("*/0 * * * *", "invalid step '0'"),
        ("5-1 * * * *", "range '5-1' of minute runs backwards"),
        ("* * * foo *", "invalid month value 'foo'"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
    ],
)
def test_refusals_name_the_problem(expression: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        CronSchedule.parse(expression)
    assert str(info.value).startswith("--cron: ")
    assert message in str(info.value)
