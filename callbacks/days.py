"""The kind of a day for calling: a working day, a weekend, or a public holiday.

One calendar for deadlines and callbacks: :class:`bridge.site.calendar.ChinaWorkingCalendar`
decides working days (statutory rest days, make-up working days such as Saturday
2026-02-14, site-declared days).  A day that is not a working day is a **holiday** when it
belongs to a public holiday's break: the unbroken run of rest days around it holds a
statutory rest day (or a site-declared rest day).  So the weekend days inside a break count
too: Spring Festival 2026 is 15-23 February, though ``holidays`` names only 16-20 and 23.
Any other rest day is a **weekend**.

A year the calendar does not cover yet (:class:`~bridge.site.calendar.CalendarNotCovered`:
its make-up working days are not known) is read as the dialplan's office hours read it:
its statutory rest days (which ``holidays`` knows early) are holidays, Monday-Friday are
working days, no make-up days.  Callbacks then still happen, never at night and never on a
known holiday; a make-up Saturday is called as a weekend (next to a break: as part of it, so
not called), a bridged rest day not yet known as one is called as a working day.
:func:`covered` says whether a day was judged from the full arrangement, so the caller of this
module can say so (the daemon's health already warns from December, see
:meth:`ChinaWorkingCalendar.coverage_problem`).

Pure: the day is an argument.
"""
from __future__ import annotations

from datetime import date, timedelta
from enum import Enum
from weakref import WeakKeyDictionary

from bridge.site.calendar import RESTDAY, CalendarNotCovered, ChinaWorkingCalendar

# A break is never longer than this (Spring Festival with its weekends: 9 days).
_LONGEST_BREAK = 16

_rest_days_cache: WeakKeyDictionary[ChinaWorkingCalendar, dict[int, frozenset[date]]] = WeakKeyDictionary()


class DayKind(str, Enum):
    """Which calling windows a day has (``[callbacks.windows]`` keys)."""

    WORKING_DAY = "working_day"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"


def day_kind(day: date, calendar: ChinaWorkingCalendar) -> DayKind:
    """The kind of ``day`` (a local date of the site); never raises for an uncovered year."""
    if _is_working_day(day, calendar):
        return DayKind.WORKING_DAY
    return DayKind.HOLIDAY if _in_a_break(day, calendar) else DayKind.WEEKEND


def covered(day: date, calendar: ChinaWorkingCalendar) -> bool:
    """Whether ``day``'s kind comes from the year's full arrangement rather than the
    statutory-rest-days-only reading (site-declared days are always known)."""
    known = day in calendar.extra_working_days or day in calendar.extra_rest_days
    return known or calendar.covers(day.year)


def _is_working_day(day: date, calendar: ChinaWorkingCalendar) -> bool:
    try:
        return calendar.is_working_day(day)
    except CalendarNotCovered:
        return day.weekday() < 5 and day not in _rest_days(day.year, calendar)


def _in_a_break(day: date, calendar: ChinaWorkingCalendar) -> bool:
    """Whether the unbroken run of rest days around ``day`` holds a declared rest day."""
    for step in (timedelta(days=-1), timedelta(days=1)):
        current = day
        for _ in range(_LONGEST_BREAK):
            if current in _rest_days(current.year, calendar):
                return True
            current += step
            if _is_working_day(current, calendar):
                break
    return False


def _rest_days(year: int, calendar: ChinaWorkingCalendar) -> frozenset[date]:
    """The statutory rest days of ``year`` and the site's rest days (cached per calendar)."""
    years = _rest_days_cache.setdefault(calendar, {})
    if year not in years:
        years[year] = frozenset(e.day for e in calendar.exceptions([year]) if e.kind == RESTDAY)
    return years[year]
