"""A five-field cron expression (``--cron "0 * * * *"``) and its next fire time.

Written here rather than taken from a library: the grammar is small and fixed, and the one
well-known implementation (croniter) brings timezone and second-field extensions we do not
want to document or test. Supported, as in Vixie cron / Kubernetes CronJob:

* fields ``minute hour day-of-month month day-of-week``, each ``*``, a number, a range ``a-b``,
  a step ``*/n`` or ``a-b/n`` or ``a/n`` (from ``a`` to the end), or a comma list of those;
* month names ``jan``..``dec`` and weekday names ``sun``..``sat`` (case-insensitive), weekday
  ``7`` = Sunday;
* ``@yearly``/``@annually``, ``@monthly``, ``@weekly``, ``@daily``/``@midnight``, ``@hourly``;
* when both day-of-month and day-of-week are restricted (neither starts with ``*``), a day
  matches if **either** does (cron's rule); otherwise the restricted one decides.

Times are evaluated in **UTC** (as a Kubernetes CronJob without ``timeZone``), at minute
resolution. An expression that can never fire (``0 0 30 2 *``) is refused when parsed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from asyncsync.errors import UsageError

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: i for i, name in enumerate(_MONTH_NAMES, 1)}
_WEEKDAYS = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_NO_NAMES: dict[str, int] = {}
#: (name, lowest, highest, names) per field.
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, _NO_NAMES),
    ("hour", 0, 23, _NO_NAMES),
    ("day-of-month", 1, 31, _NO_NAMES),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _WEEKDAYS),
)
#: How far ahead a next fire time is searched (covers every valid leap-day schedule).
SEARCH_YEARS = 8


def _value(text: str, field: str, low: int, high: int, names: dict[str, int]) -> int:
    number = names.get(text.lower()) if names else None
    if number is None:
        if not text.isdigit():
            raise UsageError(f"--cron: invalid {field} value {text!r}")
        number = int(text)
    if not low <= number <= high:
        raise UsageError(f"--cron: {field} value {number} is outside {low}-{high}")
    return number


def _field(text: str, field: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) < 1:
                raise UsageError(f"--cron: invalid step {step_text!r} in {field} {text!r}")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _value(first, field, low, high, names), _value(last, field, low, high, names)
            if start > end:
                raise UsageError(f"--cron: range {base!r} of {field} runs backwards")
        else:
            start = _value(base, field, low, high, names)
            end = high if slash else start
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed expression; :meth:`next_after` gives the next matching minute (UTC)."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    day_restricted: bool
    weekday_restricted: bool

    @classmethod
    def parse(cls, text: str) -> CronSchedule:
        expression = _MACROS.get(text.strip().lower(), text.strip())
        parts = expression.split()
        if len(parts) != 5:
            raise UsageError(
                f"--cron: expected 5 fields (minute hour day-of-month month day-of-week), not {text!r}"
            )
        minutes, hours, days, months, weekdays = (
            _field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)
        )
        schedule = cls(
            expression=text.strip(),
            minutes=minutes,
            hours=hours,
            days=days,
            months=months,
            weekdays=frozenset(0 if day == 7 else day for day in weekdays),
            day_restricted=not parts[2].startswith("*"),
            weekday_restricted=not parts[4].startswith("*"),
        )
        schedule.next_after(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))  # refuses "never"
        return schedule

    def _day_matches(self, day: dt.date) -> bool:
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.day_restricted and self.weekday_restricted:
            return in_month or in_week
        return in_month and in_week

    def next_after(self, when: dt.datetime) -> dt.datetime:
        """The first matching minute strictly after ``when`` (an aware datetime), in UTC."""
        start = when.astimezone(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        day = start.date()
        for _ in range(SEARCH_YEARS * 366):
            if day.month in self.months and self._day_matches(day):
                first = start if day == start.date() else None
                for hour in sorted(self.hours):
                    if first is not None and hour < first.hour:
                        continue
                    for minute in sorted(self.minutes):
                        if first is not None and hour == first.hour and minute < first.minute:
                            continue
                        return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC)
            day += dt.timedelta(days=1)
        raise UsageError(f"--cron: {self.expression!r} never fires")
