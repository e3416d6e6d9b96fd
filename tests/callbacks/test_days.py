"""Kinds of day: working day, weekend, public holiday (its whole break), from the China calendar."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.site.calendar import ChinaWorkingCalendar
from callbacks.days import DayKind, covered, day_kind
from tests.callbacks.policy_site import CAL, Before2026Arrangement

HOLIDAY, WEEKEND, WORKING = DayKind.HOLIDAY, DayKind.WEEKEND, DayKind.WORKING_DAY


def kinds(first: date, last: date, calendar=CAL) -> list[DayKind]:
    return [day_kind(first + timedelta(days=n), calendar) for n in range((last - first).days + 1)]


def test_spring_festival_2026_is_a_holiday_from_15_to_23_february_weekends_included():
    # holidays names only 16-20 and 23 February; 15, 21, 22 are the Sundays and Saturday of the break.
    assert kinds(date(2026, 2, 15), date(2026, 2, 23)) == [HOLIDAY] * 9
    assert day_kind(date(2026, 2, 24), CAL) is WORKING


def test_make_up_saturdays_are_working_days():
    assert day_kind(date(2026, 2, 14), CAL) is WORKING   # Saturday before Spring Festival
    assert day_kind(date(2026, 2, 28), CAL) is WORKING   # Saturday after it
    assert day_kind(date(2026, 1, 4), CAL) is WORKING    # Sunday after New Year


def test_an_ordinary_weekend_is_a_weekend():
    assert kinds(date(2026, 3, 7), date(2026, 3, 9)) == [WEEKEND, WEEKEND, WORKING]


@pytest.mark.parametrize(("first", "last"), [
    (date(2026, 1, 1), date(2026, 1, 3)),     # New Year, Saturday 3rd inside the break
    (date(2026, 4, 4), date(2026, 4, 6)),     # Qingming: Saturday, Sunday, observed Monday
    (date(2026, 10, 1), date(2026, 10, 7)),   # National Day, Sunday 4th inside the break
])
def test_other_breaks_are_holidays_whole(first, last):
    assert kinds(first, last) == [HOLIDAY] * ((last - first).days + 1)
    assert day_kind(first - timedelta(days=1), CAL) is not HOLIDAY
    assert day_kind(last + timedelta(days=1), CAL) is not HOLIDAY


def test_site_declared_days_win():
    calendar = ChinaWorkingCalendar(extra_rest_days=[date(2026, 3, 11)], extra_working_days=[date(2026, 3, 8)])
    assert day_kind(date(2026, 3, 11), calendar) is HOLIDAY   # a declared rest Wednesday
    assert day_kind(date(2026, 3, 8), calendar) is WORKING    # a declared working Sunday
    assert day_kind(date(2026, 3, 7), calendar) is WEEKEND


def test_an_uncovered_year_reads_statutory_rest_days_only_and_says_so():
    calendar = Before2026Arrangement()
    with pytest.raises(LookupError):
        calendar.is_working_day(date(2026, 2, 14))        # the calendar itself refuses to guess
    # The make-up days are not known yet: a make-up Saturday reads as a weekend, or as part of
    # the break it adjoins (no call rather than a call on what may be a rest day).
    assert day_kind(date(2026, 5, 9), calendar) is WEEKEND
    assert day_kind(date(2026, 2, 14), calendar) is HOLIDAY
    assert day_kind(date(2026, 2, 17), calendar) is HOLIDAY    # Spring Festival is known early
    assert day_kind(date(2026, 2, 15), calendar) is HOLIDAY    # and its break's Sunday
    assert day_kind(date(2026, 3, 10), calendar) is WORKING
    assert not covered(date(2026, 3, 10), calendar)
    assert covered(date(2025, 12, 31), calendar)
    assert covered(date(2026, 3, 10), ChinaWorkingCalendar(extra_working_days=[date(2026, 3, 10)]))


def test_a_break_across_new_year_into_an_uncovered_year():
    # 31 Dec 2025 is a covered working day; 1-3 Jan 2026 (uncovered here) still read as a holiday.
    calendar = Before2026Arrangement()
    assert kinds(date(2025, 12, 31), date(2026, 1, 3), calendar) == [WORKING, HOLIDAY, HOLIDAY, HOLIDAY]


@given(st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)))
def test_every_day_has_a_kind_and_only_rest_days_are_not_working(day):
    kind = day_kind(day, CAL)
    if kind is not WORKING:
        assert day.weekday() >= 5 or day in {e.day for e in CAL.exceptions([day.year])}
