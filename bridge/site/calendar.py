"""The China working calendar: the ONE place that knows which days are working days.

Working days are Monday-Friday, minus the statutory rest days, plus the make-up working
days (调休上班, ``weekend_workdays``) of the State Council's yearly arrangement, all taken
from ``holidays.country_holidays("CN")``.  Site-declared days (``extra_working_days``,
``extra_rest_days``) win over the calendar.

Coverage.  ``holidays`` lists a year's statutory holidays long before the year's
arrangement is announced (usually in November of the year before), but the arrangement
moves rest days and adds make-up working days, so a year without make-up-day data is
*not covered*: :meth:`ChinaWorkingCalendar.covers` is judged by make-up-day data, not by
the year having holidays.  For an uncovered year the calendar does not guess:
:meth:`ChinaWorkingCalendar.is_working_day` raises :class:`CalendarNotCovered` (unless the
site declared that very day), the deadline code lets it propagate and the caller shows the
step as "deadline unknown"; :meth:`ChinaWorkingCalendar.coverage_problem` gives the
sentence the daemon puts into health (a ``calendar`` warning) and its log.

The dialplan include (``bridge.pbx.dialplan.render_office_hours``) draws its day list from
:meth:`ChinaWorkingCalendar.exceptions`, which does not raise: for an uncovered year it
lists what is known (the statutory rest days) and the include carries a warning.  Health,
log and include say it in the same words: :meth:`ChinaWorkingCalendar.not_covered_warning`.

Pure: no I/O, no clock; ``today`` is passed in.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Iterable, Literal

RESTDAY = "restday"
WORKDAY = "workday"
DayKind = Literal["restday", "workday"]

# How far ahead coverage_problem looks: deadlines computed today can reach this far
# (2 office hours never span more than the longest holiday; this leaves ample warning).
DEFAULT_HORIZON = timedelta(days=31)


class CalendarNotCovered(LookupError):
    """A working-day question about a year whose arrangement ``holidays`` does not have."""

    def __init__(self, year: int, version: str):
        self.year = year
        self.version = version
        super().__init__(
            f"the China working calendar (holidays {version}) has no {year} arrangement yet "
            f"(no make-up working days): cannot tell working days in {year}; upgrade holidays")


@dataclass(frozen=True)
class DayException:
    """A day that breaks the Monday-Friday rule (or that the site declared)."""

    day: date
    kind: DayKind
    name: str


class ChinaWorkingCalendar:
    """Working days in mainland China, from ``holidays`` plus site-declared days."""

    def __init__(self, extra_working_days: Iterable[date] = (), extra_rest_days: Iterable[date] = ()):
        self.extra_working_days = frozenset(extra_working_days)
        # A day declared both ways is a working day (as in the dialplan include, where
        # the working days are applied last).
        self.extra_rest_days = frozenset(extra_rest_days)
        self._years: dict[int, tuple[dict[date, str], frozenset[date]]] = {}

    # ------------------------------------------------------------------ source
    @property
    def version(self) -> str:
        import holidays

        return holidays.__version__

    @property
    def source(self) -> str:
        """Where the calendar comes from, e.g. ``python-holidays 0.109``."""
        return f"python-holidays {self.version}"

    def _year(self, year: int) -> tuple[dict[date, str], frozenset[date]]:
        """(statutory rest days -> name, make-up working days) of ``year``, cached."""
        cached = self._years.get(year)
        if cached is None:
            import holidays

            cal = holidays.country_holidays("CN", years=[year - 1, year, year + 1])
            rest = {d: name for d, name in sorted(cal.items()) if d.year == year}
            makeup = frozenset(d for d in cal.weekend_workdays if d.year == year)
            cached = self._years[year] = (rest, makeup)
        return cached

    # ---------------------------------------------------------------- coverage
    def covers(self, year: int) -> bool:
        """True when ``holidays`` has ``year``'s arrangement (its make-up working days)."""
        return bool(self._year(year)[1])

    def uncovered_years(self, start: date, end: date) -> list[int]:
        """The years from ``start`` to ``end`` (inclusive) that are not covered."""
        return [y for y in range(start.year, end.year + 1) if not self.covers(y)]

    def coverage_problem(self, today: date, *, horizon: timedelta = DEFAULT_HORIZON) -> str | None:
        """None, or the sentence for health and log when a year deadlines need is not covered.

        Checks the current year and every year reached within ``horizon`` of ``today``
        (the next year from early December, with the default).
        """
        missing = self.uncovered_years(today, today + horizon)
        return self.not_covered_warning(missing) if missing else None

    def not_covered_warning(self, years: Iterable[int]) -> str:
        """The one sentence (health, log, dialplan include) saying that ``years`` are not covered."""
        named = " or ".join(str(y) for y in sorted(set(years)))
        return (f"no make-up working days known for {named}: the China working calendar "
                f"(holidays {self.version}) has no {named} arrangement yet, so office-hours deadlines "
                f"reaching into {named} show as 'deadline unknown' and the phone line's office hours "
                f"in {named} follow the statutory rest days only; upgrade holidays "
                f"(pip install -U holidays) once it is announced, then regenerate the dialplan's "
                f"extensions_hours.conf (hotline-bridge dialplan hours)")

    # ------------------------------------------------------------------- days
    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day; raises :class:`CalendarNotCovered` for a day of an
        uncovered year, unless the site declared that day."""
        if day in self.extra_working_days:
            return True
        if day in self.extra_rest_days:
            return False
        if not self.covers(day.year):
            raise CalendarNotCovered(day.year, self.version)
        rest, makeup = self._year(day.year)
        if day in makeup:
            return True
        return day.weekday() < 5 and day not in rest

    def exceptions(self, years: Iterable[int]) -> list[DayException]:
        """Every day of ``years`` that breaks "Monday-Friday work", in date order.

        Statutory rest days (weekend ones too), make-up working days, then site days
        (rest, then working) override; site days are listed whatever their year.  Never
        raises: an uncovered year contributes its statutory rest days only; check
        :meth:`covers`.
        """
        years = set(years)
        days: dict[date, tuple[DayKind, str]] = {}
        for year in sorted(years):
            rest, makeup = self._year(year)
            for day, name in rest.items():
                days[day] = (RESTDAY, name)
            for day in sorted(makeup):
                days[day] = (WORKDAY, "make-up working day")
        for day in self.extra_rest_days:
            days[day] = (RESTDAY, "site rest day")
        for day in self.extra_working_days:
            days[day] = (WORKDAY, "site working day")
        return [DayException(d, *days[d]) for d in sorted(days)]
