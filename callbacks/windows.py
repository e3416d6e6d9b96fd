"""When a caller may be phoned: the calling windows of the day, narrowed to the caller's
best time and "not before" date, never at night.

* The windows depend on the kind of day (:mod:`callbacks.days`: working day, weekend,
  public holiday; ``[callbacks.windows]``), in the site's zone (``[site] timezone``).  With
  the shipped configuration a public holiday has no window: no calls during Spring Festival.
* The caller's best time (:class:`callbacks.best_time.BestTime`) narrows them to its hours
  (``[callbacks.best_time_hours]``); ``any`` keeps every window.
* ``not_before`` (a local date) keeps every day before it closed.
* Night is closed whatever the configuration says: every opening is clipped to
  ``CALLBACK_DAY_STARTS``-``CALLBACK_DAY_ENDS`` (08:00-21:00, ``bridge.config``).

A window is start-inclusive, end-exclusive, like the office hours.  Pure: the moment is an
argument; a result is an aware UTC instant.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo

from bridge.config import CALLBACK_DAY_ENDS, CALLBACK_DAY_STARTS, CallbacksConfig
from bridge.site.calendar import ChinaWorkingCalendar
from bridge.site.office_hours import Period, parse_period
from callbacks.best_time import BestTime
from callbacks.days import DayKind, day_kind

DAY_STARTS = time.fromisoformat(CALLBACK_DAY_STARTS)
DAY_ENDS = time.fromisoformat(CALLBACK_DAY_ENDS)
# How far next_opening looks: farther than any break (the longest is 9 days) with a margin for
# site-declared rest days; nothing within it means the configuration leaves this caller no time.
SEARCH_DAYS = 62


@dataclass(frozen=True)
class CallingWindows:
    """The site's calling windows per kind of day and the hours of each best time."""

    zone: tzinfo
    by_day_kind: Mapping[DayKind, Sequence[Period]]
    best_time_hours: Mapping[BestTime, Period]

    @classmethod
    def of(cls, config: CallbacksConfig, zone: tzinfo) -> CallingWindows:
        """The windows ``[callbacks]`` describes, in the site's ``zone``."""
        return cls(
            zone=zone,
            by_day_kind={kind: tuple(parse_period(p) for p in getattr(config.windows, kind.value))
                         for kind in DayKind},
            best_time_hours={best: parse_period(getattr(config.best_time_hours, best.value))
                             for best in BestTime if best is not BestTime.ANY},
        )

    def openings_on(self, day: date, kind: DayKind, best_time: BestTime) -> list[Period]:
        """The day's windows (of ``kind``) within ``best_time`` and the day bounds, in order."""
        low, high = self.best_time_hours.get(best_time, (DAY_STARTS, DAY_ENDS))
        low, high = max(low, DAY_STARTS), min(high, DAY_ENDS)
        clipped = [(max(start, low), min(end, high)) for start, end in self.by_day_kind[kind]]
        return [(start, end) for start, end in clipped if start < end]


def is_open(at: datetime, *, best_time: BestTime, not_before: date | None,
            calendar: ChinaWorkingCalendar, windows: CallingWindows) -> bool:
    """Whether the caller may be phoned at ``at`` (aware)."""
    local = _local(at, windows.zone)
    if not_before is not None and local.date() < not_before:
        return False
    openings = windows.openings_on(local.date(), day_kind(local.date(), calendar), best_time)
    return any(start <= local.time() < end for start, end in openings)


def next_opening(after: datetime, *, best_time: BestTime, not_before: date | None,
                 calendar: ChinaWorkingCalendar, windows: CallingWindows) -> datetime | None:
    """The first moment at or after ``after`` (aware) when the caller may be phoned, in UTC;
    ``after`` itself when it is open.  None when nothing opens within :data:`SEARCH_DAYS` of
    the later of ``after`` and ``not_before``."""
    start = _local(after, windows.zone)
    if not_before is not None and start.date() < not_before:
        start = datetime.combine(not_before, time(0), tzinfo=windows.zone)
    for offset in range(SEARCH_DAYS):
        day = start.date() + timedelta(days=offset)
        for open_at, close_at in windows.openings_on(day, day_kind(day, calendar), best_time):
            opens = datetime.combine(day, open_at, tzinfo=windows.zone)
            if datetime.combine(day, close_at, tzinfo=windows.zone) > start:
                return max(opens, start).astimezone(timezone.utc)
    return None


def start_of_next_day(moment: datetime, zone: tzinfo) -> datetime:
    """Midnight (in ``zone``) after ``moment``: where a "next day" retry starts looking."""
    return datetime.combine(_local(moment, zone).date() + timedelta(days=1), time(0), tzinfo=zone)


def _local(moment: datetime, zone: tzinfo) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"moment must be timezone-aware, got {moment!r}")
    return moment.astimezone(zone)
