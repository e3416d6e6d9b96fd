"""Periods of the reports: half-open [from, to) in days of the site's zone, and the query's
``from``/``to`` read into them; pure.

Every report (the callback log, the units' figures, the call figures, the transparency page)
reads its period here, so a bad day is refused the same way everywhere: :class:`FilterError`
names the parameter and says what to send (in a language: :meth:`FilterError.text`)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from bridge.i18n import N_
from bridge.site.clock import midnight

THIS_MONTH, LAST_MONTH, THIS_YEAR = "this_month", "last_month", "this_year"
NAMED = (THIS_MONTH, LAST_MONTH, THIS_YEAR)
BAD_DAY = N_("must be a day written YYYY-MM-DD, e.g. 2026-12-01")
BACKWARDS = N_("must be a day after 'from' (the period is [from, to): 'to' is not included)")


class FilterError(ValueError):
    """A filter cannot be used: ``param`` names it, ``message_id`` (a message id, its ``params``)
    says what to send instead; :meth:`text` in a language, ``message`` in English."""

    def __init__(self, param: str, message_id: str, **params: Any) -> None:
        self.param, self.message_id, self.params = param, message_id, params
        self.message = message_id % params if params else message_id
        super().__init__(f"{param}: {self.message}")

    def text(self, gettext) -> str:
        return gettext(self.message_id) % self.params if self.params else gettext(self.message_id)


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

    def before(self) -> Period:
        """The period a comparison sets beside this one: the month before a month, the year
        before a year, else as many days just before."""
        if self.start.day == 1 and self.end.day == 1 and self.end > self.start:
            months = (self.end.year * 12 + self.end.month) - (self.start.year * 12 + self.start.month)
            return Period(_month_start(self.start, months), self.start)
        return Period(self.start - (self.end - self.start), self.start)

    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days)]


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


def parse_day(value: str | None, name: str) -> date | None:
    """A day of the query (``YYYY-MM-DD``); empty is none."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FilterError(name, BAD_DAY) from None


def parse_days(start: str | None, end: str | None) -> tuple[date | None, date | None]:
    """The query's ``from`` and ``to`` (either may be missing); ``to`` must come after ``from``."""
    first, last = parse_day(start, "from"), parse_day(end, "to")
    if first and last and last <= first:
        raise FilterError("to", BACKWARDS)
    return first, last


def parse_period(start: str | None, end: str | None, default: Period) -> Period:
    """[from, to) of the query, a missing side taken from ``default`` (usually this month)."""
    first, last = parse_days(start, end)
    period = Period(first or default.start, last or default.end)
    if period.end <= period.start:
        raise FilterError("to", BACKWARDS)
    return period
