"""The reports' periods: [from, to) read from the query, and the period a comparison sets beside one."""
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from bridge.site.periods import FilterError, Period, named_period, parse_days, parse_period

SHANGHAI = ZoneInfo("Asia/Shanghai")
DECEMBER = Period(date(2026, 12, 1), date(2027, 1, 1))


def test_a_missing_side_comes_from_the_default():
    assert parse_period("2026-12-03", None, DECEMBER) == Period(date(2026, 12, 3), date(2027, 1, 1))
    assert parse_period(None, "2026-12-10", DECEMBER) == Period(date(2026, 12, 1), date(2026, 12, 10))
    assert parse_period("", " ", DECEMBER) == DECEMBER


@pytest.mark.parametrize("start, end, param", [("2026/12/01", None, "from"), (None, "tomorrow", "to"),
                                               ("2026-12-02", "2026-12-02", "to"), ("2026-12-05", "2026-12-01", "to")])
def test_a_bad_day_names_its_parameter(start, end, param):
    with pytest.raises(FilterError) as refused:
        parse_days(start, end)
    assert refused.value.param == param


def test_a_period_past_the_default_end_is_refused():
    with pytest.raises(FilterError) as refused:
        parse_period("2027-02-01", None, DECEMBER)
    assert refused.value.param == "to"


def test_the_period_before_a_month_is_the_month_before():
    assert DECEMBER.before() == Period(date(2026, 11, 1), date(2026, 12, 1))
    assert Period(date(2026, 1, 1), date(2026, 2, 1)).before() == Period(date(2025, 12, 1), date(2026, 1, 1))
    assert named_period("this_year", date(2026, 12, 3)).before() == Period(date(2025, 1, 1), date(2026, 1, 1))
    # a week: the seven days before it
    assert Period(date(2026, 12, 7), date(2026, 12, 14)).before() == Period(date(2026, 11, 30), date(2026, 12, 7))
    # March against February: by months, not by the 31 days before
    assert Period(date(2026, 3, 1), date(2026, 4, 1)).before() == Period(date(2026, 2, 1), date(2026, 3, 1))


def test_a_period_starts_at_local_midnight():
    start, end = Period(date(2026, 12, 3), date(2026, 12, 4)).instants(SHANGHAI)
    assert start == datetime(2026, 12, 2, 16, tzinfo=timezone.utc) and end == datetime(2026, 12, 3, 16, tzinfo=timezone.utc)
    assert len(DECEMBER.days()) == 31 and DECEMBER.days()[-1] == date(2026, 12, 31)
