"""Office hours: the periods of a working day (``[office_hours] periods``) and whether a
moment falls inside them.

One reading of the periods for the configuration check (bridge.config), the forum's
deadlines (bridge.forum.deadlines) and the dialplan include
(bridge.pbx.dialplan.render_office_hours).  A period is ``HH:MM-HH:MM`` in the site's time
zone, start inclusive, end exclusive; the days are the working days of the China calendar
(bridge.site.calendar).  Pure: no clock, the moment is passed in.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timezone, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.site.calendar import ChinaWorkingCalendar

Period = tuple[time, time]


def parse_period(period: str) -> Period:
    """'08:30-12:00' -> (time(8, 30), time(12, 0)); the string is already validated."""
    start, end = period.split("-")
    return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())


@lru_cache(maxsize=64)
def parse_periods(periods: tuple[str, ...]) -> tuple[Period, ...]:
    """Every period of ``[office_hours] periods``, parsed; at least one is needed."""
    if not periods:
        raise ValueError("at least one office period is needed")
    return tuple(parse_period(p) for p in periods)


def in_period(local: datetime, periods: Sequence[Period]) -> bool:
    """Whether the wall-clock time of ``local`` is inside a period (end exclusive)."""
    t = local.time()
    return any(start <= t < end for start, end in periods)


def office_intervals(day: date, periods: Sequence[Period], zone: tzinfo) -> Iterator[tuple[datetime, datetime]]:
    """``day``'s periods as UTC instants (whether ``day`` is a working day is the caller's question)."""
    for start, end in periods:
        yield (datetime.combine(day, start, tzinfo=zone).astimezone(timezone.utc),
               datetime.combine(day, end, tzinfo=zone).astimezone(timezone.utc))


def is_office_time(moment: datetime, *, calendar: ChinaWorkingCalendar,
                   office_periods: Sequence[str], zone: tzinfo) -> bool:
    """Whether ``moment`` (aware) is in office hours: inside a period of a working day.

    A time of day outside every period needs no calendar; otherwise
    :class:`bridge.site.calendar.CalendarNotCovered` may be raised."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"moment must be timezone-aware, got {moment!r}")
    local = moment.astimezone(zone)
    return in_period(local, parse_periods(tuple(office_periods))) and calendar.is_working_day(local.date())
