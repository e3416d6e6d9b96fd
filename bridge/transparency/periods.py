"""Periods of the figures: half-open [from, to) in days of the site's zone; pure."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from bridge.site.clock import midnight

THIS_MONTH, LAST_MONTH, THIS_YEAR = "this_month", "last_month", "this_year"
NAMED = (THIS_MONTH, LAST_MONTH, THIS_YEAR)


@dataclass(frozen=True)
class Period:
    """``start`` included, ``end`` excluded (days of the site's zone)."""

    start: date
    end: date
    name: str | None = None

    def instants(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """The period's UTC instants: from local midnight of ``start`` to local midnight of ``end``."""
        return (midnight(self.start, zone).astimezone(timezone.utc),
                midnight(self.end, zone).astimezone(timezone.utc))


def _month_start(day: date, months_back: int = 0) -> date:
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def named_period(name: str, today: date) -> Period:
    """This month, last month or this year as of ``today`` (a day of the site's zone)."""
    if name == THIS_MONTH:
        start = _month_start(today)
        return Period(start, _month_start(start, -1), name)
    if name == LAST_MONTH:
        start = _month_start(today, 1)
        return Period(start, _month_start(today), name)
    if name == THIS_YEAR:
        return Period(date(today.year, 1, 1), date(today.year + 1, 1, 1), name)
    raise ValueError(f"unknown period {name!r}: one of {', '.join(NAMED)}")
