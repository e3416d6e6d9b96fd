"""The China working calendar: working days, make-up days, coverage of a year."""
from __future__ import annotations

from datetime import date

import holidays
import pytest

from bridge.site.calendar import RESTDAY, WORKDAY, CalendarNotCovered, ChinaWorkingCalendar

CAL = ChinaWorkingCalendar()


class BeforeThe2027Arrangement(ChinaWorkingCalendar):
    """``holidays`` as released before 2027's arrangement was announced (whatever is installed)."""

    def covers(self, year: int) -> bool:
        return year <= 2026 and super().covers(year)


@pytest.mark.parametrize("day, working", [
    (date(2026, 11, 26), True),    # an ordinary Thursday
    (date(2026, 11, 28), False),   # Saturday
    (date(2026, 11, 29), False),   # Sunday
    (date(2026, 10, 1), False),    # National Day
    (date(2026, 10, 6), False),    # rest day moved from 20 Sep
    (date(2026, 10, 7), False),    # rest day moved from 10 Oct
    (date(2026, 10, 8), True),     # back to work
    (date(2026, 9, 20), True),     # Sunday, make-up working day
    (date(2026, 10, 10), True),    # Saturday, make-up working day
    (date(2026, 2, 17), False),    # Spring Festival
    (date(2026, 2, 14), True),     # Saturday, make-up working day
])
def test_working_days_of_2026(day, working):
    assert CAL.is_working_day(day) is working


def test_coverage_is_judged_by_make_up_days_not_by_holidays():
    assert CAL.covers(2026)
    assert CAL.covers(2025)
    # Far years have statutory holidays in `holidays` but never an arrangement.
    assert holidays.country_holidays("CN", years=2099)
    assert not CAL.covers(2099)
    assert not BeforeThe2027Arrangement().covers(2027)


def test_an_uncovered_year_raises_instead_of_guessing():
    with pytest.raises(CalendarNotCovered) as exc:
        CAL.is_working_day(date(2099, 3, 3))
    assert exc.value.year == 2099
    assert "2099" in str(exc.value) and holidays.__version__ in str(exc.value)
    with pytest.raises(CalendarNotCovered):
        BeforeThe2027Arrangement().is_working_day(date(2027, 1, 4))


def test_site_declared_days_win_and_answer_even_in_an_uncovered_year():
    cal = ChinaWorkingCalendar(extra_working_days=[date(2026, 10, 1), date(2099, 3, 3)],
                               extra_rest_days=[date(2026, 11, 27), date(2099, 3, 4)])
    assert cal.is_working_day(date(2026, 10, 1))
    assert not cal.is_working_day(date(2026, 11, 27))
    assert cal.is_working_day(date(2099, 3, 3))
    assert not cal.is_working_day(date(2099, 3, 4))
    assert not cal.covers(2099)                       # declared days do not make a year covered
    both = ChinaWorkingCalendar(extra_working_days=[date(2026, 11, 28)], extra_rest_days=[date(2026, 11, 28)])
    assert both.is_working_day(date(2026, 11, 28))   # declared both ways: working (as in the dialplan)


def test_coverage_problem_names_the_missing_year_within_the_horizon():
    cal = BeforeThe2027Arrangement()
    assert cal.coverage_problem(date(2026, 6, 1)) is None
    assert cal.coverage_problem(date(2026, 11, 26)) is None     # 2027 is more than 31 days away
    problem = cal.coverage_problem(date(2026, 12, 5))
    assert problem is not None
    assert "no 2027 arrangement" in problem
    assert f"holidays {holidays.__version__}" in problem
    assert "deadline unknown" in problem and "upgrade holidays" in problem
    assert not problem.startswith("down")
    # The current year uncovered: named too.
    assert "no 2099 arrangement" in CAL.coverage_problem(date(2099, 6, 1))
    assert "2099 or 2100" in CAL.coverage_problem(date(2099, 12, 20))


def test_exceptions_list_rest_days_make_up_days_and_site_days():
    cal = ChinaWorkingCalendar(extra_working_days=[date(2026, 10, 1)], extra_rest_days=[date(2026, 11, 27)])
    days = {e.day: (e.kind, e.name) for e in cal.exceptions([2026])}
    assert days[date(2026, 2, 17)][0] == RESTDAY
    assert days[date(2026, 10, 10)] == (WORKDAY, "make-up working day")
    assert days[date(2026, 10, 1)] == (WORKDAY, "site working day")
    assert days[date(2026, 11, 27)] == (RESTDAY, "site rest day")
    assert date(2026, 11, 26) not in days
    assert not any(d.year == 2025 for d in days)
    listed = [e.day for e in cal.exceptions([2026])]
    assert listed == sorted(listed)


def test_exceptions_of_an_uncovered_year_hold_its_statutory_days_only():
    days = CAL.exceptions([2099])
    assert days and all(e.kind == RESTDAY for e in days)


def test_exceptions_agree_with_is_working_day_for_every_day_of_2026():
    special = {e.day: e.kind for e in CAL.exceptions([2026])}
    day = date(2026, 1, 1)
    while day.year == 2026:
        default = WORKDAY if day.weekday() < 5 else RESTDAY
        assert CAL.is_working_day(day) is (special.get(day, default) == WORKDAY), day
        day = date.fromordinal(day.toordinal() + 1)
