"""Calling windows: per kind of day, within the best time and "not before", never at night."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.site.calendar import ChinaWorkingCalendar
from callbacks.best_time import BestTime
from callbacks.days import DayKind, day_kind
from callbacks.windows import DAY_ENDS, DAY_STARTS, CallingWindows, is_open, next_opening
from tests.callbacks.policy_site import CAL, WINDOWS, ZONE, Before2026Arrangement, at, windows_of

ANY, MORNING, AFTERNOON, EVENING = BestTime.ANY, BestTime.MORNING, BestTime.AFTERNOON, BestTime.EVENING
# Windows the configuration would refuse (all day long): the policy must still keep the night closed.
WHOLE_DAY = CallingWindows(ZONE, {kind: ((time(0, 0), time(23, 59)),) for kind in DayKind},
                           {best: (time(0, 0), time(23, 59)) for best in BestTime if best is not ANY})


def opening(text_or_moment, best_time=ANY, not_before=None, calendar=CAL, windows=WINDOWS):
    after = at(text_or_moment) if isinstance(text_or_moment, str) else text_or_moment
    found = next_opening(after, best_time=best_time, not_before=not_before, calendar=calendar, windows=windows)
    return None if found is None else found.astimezone(ZONE)


def open_at(text, best_time=ANY, not_before=None, calendar=CAL, windows=WINDOWS):
    return is_open(at(text), best_time=best_time, not_before=not_before, calendar=calendar, windows=windows)


@pytest.mark.parametrize(("moment", "expected"), [
    ("2026-03-10 08:59", False), ("2026-03-10 09:00", True), ("2026-03-10 11:59", True),
    ("2026-03-10 12:00", False), ("2026-03-10 14:00", True), ("2026-03-10 19:59", True),
    ("2026-03-10 20:00", False), ("2026-03-10 23:30", False), ("2026-03-10 03:00", False),
    # weekend (Saturday): 10:00-12:00, 14:00-18:00
    ("2026-03-07 09:30", False), ("2026-03-07 10:00", True), ("2026-03-07 18:00", False),
    # Spring Festival: no window on a holiday
    ("2026-02-17 10:00", False), ("2026-02-21 10:00", False),
    # the make-up Saturday before it has a working day's windows
    ("2026-02-14 09:00", True), ("2026-02-14 19:30", True),
])
def test_is_open_on_the_shipped_windows(moment, expected):
    assert open_at(moment) is expected


@pytest.mark.parametrize(("after", "expected"), [
    ("2026-03-10 10:15", "2026-03-10 10:15"),   # open: at once
    ("2026-03-10 06:00", "2026-03-10 09:00"),   # early morning: when the day's first window opens
    ("2026-03-10 12:30", "2026-03-10 14:00"),   # lunch: the afternoon window
    ("2026-03-10 20:30", "2026-03-11 09:00"),   # night: the next morning
    ("2026-03-06 20:30", "2026-03-07 10:00"),   # Friday night: Saturday's later start
    ("2026-03-07 18:30", "2026-03-08 10:00"),   # Saturday evening: Sunday
    ("2026-02-13 20:30", "2026-02-14 09:00"),   # Friday night before the make-up Saturday
    ("2026-02-14 20:30", "2026-02-24 09:00"),   # no calls through Spring Festival (15-23 Feb)
    ("2026-09-30 20:00", "2026-10-08 09:00"),   # nor through National Day
])
def test_next_opening(after, expected):
    assert opening(after) == at(expected)


def test_a_moment_in_another_zone_is_read_in_the_sites_zone():
    # 01:00 UTC is 09:00 in Beijing
    assert is_open(datetime(2026, 3, 10, 1, 0, tzinfo=timezone.utc), best_time=ANY, not_before=None,
                   calendar=CAL, windows=WINDOWS)
    assert next_opening(datetime(2026, 3, 9, 13, 0, tzinfo=timezone.utc), best_time=ANY, not_before=None,
                        calendar=CAL, windows=WINDOWS) == datetime(2026, 3, 10, 1, 0, tzinfo=timezone.utc)


def test_the_result_is_utc():
    assert next_opening(at("2026-03-10 10:00"), best_time=ANY, not_before=None, calendar=CAL,
                        windows=WINDOWS).tzinfo is timezone.utc


def test_a_naive_moment_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        next_opening(datetime(2026, 3, 10, 10, 0), best_time=ANY, not_before=None, calendar=CAL, windows=WINDOWS)


@pytest.mark.parametrize(("after", "best_time", "expected"), [
    ("2026-03-10 12:30", MORNING, "2026-03-11 09:00"),     # morning is over: tomorrow's
    ("2026-03-10 08:00", MORNING, "2026-03-10 09:00"),     # morning hours start 08:00, the window 09:00
    ("2026-03-10 10:00", AFTERNOON, "2026-03-10 14:00"),
    ("2026-03-10 10:00", EVENING, "2026-03-10 18:00"),
    ("2026-03-10 19:59", EVENING, "2026-03-10 19:59"),
    ("2026-03-10 20:00", EVENING, "2026-03-11 18:00"),     # the window ends at 20:00 even for evening
    ("2026-03-06 19:00", EVENING, "2026-03-06 19:00"),
    ("2026-03-06 20:00", EVENING, "2026-03-09 18:00"),     # weekend windows end 18:00: Monday evening
    ("2026-03-07 09:00", MORNING, "2026-03-07 10:00"),
])
def test_best_time_narrows_the_windows(after, best_time, expected):
    assert opening(after, best_time) == at(expected)


def test_best_time_is_open_only_in_its_hours():
    assert open_at("2026-03-10 18:30", EVENING) and not open_at("2026-03-10 10:00", EVENING)
    assert open_at("2026-03-10 10:00", MORNING) and not open_at("2026-03-10 14:30", MORNING)
    assert open_at("2026-03-10 14:30", AFTERNOON) and not open_at("2026-03-10 11:00", AFTERNOON)


def test_not_before_keeps_earlier_days_closed():
    assert opening("2026-03-02 10:00", not_before=date(2026, 3, 10)) == at("2026-03-10 09:00")
    assert opening("2026-03-02 10:00", EVENING, not_before=date(2026, 3, 10)) == at("2026-03-10 18:00")
    assert opening("2026-03-02 10:00", not_before=date(2026, 3, 14)) == at("2026-03-14 10:00")  # a Saturday
    assert not open_at("2026-03-09 10:00", not_before=date(2026, 3, 10))
    assert open_at("2026-03-10 10:00", not_before=date(2026, 3, 10))


def test_not_before_in_the_past_changes_nothing():
    assert opening("2026-03-10 10:00", not_before=date(2026, 3, 1)) == at("2026-03-10 10:00")


def test_not_before_a_holiday_waits_for_its_end():
    assert opening("2026-02-10 10:00", not_before=date(2026, 2, 16)) == at("2026-02-24 09:00")


def test_holiday_windows_when_a_site_calls_on_holidays():
    windows = windows_of(windows={"holiday": ["10:00-11:00"]})
    assert opening("2026-02-14 20:30", windows=windows) == at("2026-02-15 10:00")
    assert opening("2026-02-15 11:00", windows=windows) == at("2026-02-16 10:00")


def test_night_is_closed_even_for_windows_that_were_never_validated():
    windows = WHOLE_DAY
    assert not open_at("2026-03-10 07:59", windows=windows)
    assert open_at("2026-03-10 08:00", windows=windows)
    assert not open_at("2026-03-10 21:00", windows=windows)
    assert opening("2026-03-10 21:00", windows=windows) == at("2026-03-11 08:00")


def test_no_opening_at_all_is_none_not_a_guess():
    rest = [date(2026, 3, 1) + timedelta(days=n) for n in range(80)]
    calendar = ChinaWorkingCalendar(extra_rest_days=rest)
    assert opening("2026-03-01 10:00", calendar=calendar) is None


def test_an_uncovered_year_is_called_on_statutory_rest_days_only_reading():
    calendar = Before2026Arrangement()
    assert opening("2026-02-13 20:30", calendar=calendar) == at("2026-02-24 09:00")  # 14 Feb not known as working
    assert opening("2026-05-08 20:30", calendar=calendar) == at("2026-05-09 10:00")  # make-up Saturday: weekend
    assert opening("2026-03-10 10:00", calendar=calendar) == at("2026-03-10 10:00")


# ------------------------------------------------------------------ properties

moments = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 20),
                       timezones=st.just(ZONE))
best_times = st.sampled_from(list(BestTime))
not_befores = st.none() | st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 12, 20))
quarter_hours = st.integers(min_value=8 * 4, max_value=21 * 4).map(lambda q: time(q // 4 % 24, q % 4 * 15))


@st.composite
def day_windows(draw):
    """Sorted, apart, quarter-hour windows inside the day bounds (what the configuration admits)."""
    points = sorted(set(draw(st.lists(quarter_hours, max_size=6))))
    starts_ends = points[: len(points) // 2 * 2]
    return [f"{a:%H:%M}-{b:%H:%M}" for a, b in zip(starts_ends[::2], starts_ends[1::2])]


@st.composite
def site_windows(draw):
    working = draw(day_windows().filter(bool))
    section = {"windows": {"working_day": working, "weekend": draw(day_windows()), "holiday": draw(day_windows())},
               # best times that always meet the first working window (as the configuration demands)
               "best_time_hours": {name: working[0] for name in ("morning", "afternoon", "evening")}}
    return windows_of(**section)


def assert_is_the_first_opening(after, found, best_time, not_before, windows):
    local = found.astimezone(ZONE)
    assert found >= after
    assert is_open(found, best_time=best_time, not_before=not_before, calendar=CAL, windows=windows)
    assert DAY_STARTS <= local.time() < DAY_ENDS
    # nothing opens between after and found: no day's opening meets [after, found)
    day = after.astimezone(ZONE).date()
    while day <= local.date():
        if not_before is None or day >= not_before:
            for start, end in windows.openings_on(day, day_kind(day, CAL), best_time):
                opens, closes = (datetime.combine(day, t, tzinfo=ZONE) for t in (start, end))
                assert not max(opens, after) < min(closes, found), (day, start, end)
        day += timedelta(days=1)


@settings(max_examples=150, deadline=None)
@given(moments, best_times, not_befores)
def test_next_opening_is_the_first_open_moment_on_the_shipped_windows(after, best_time, not_before):
    found = next_opening(after, best_time=best_time, not_before=not_before, calendar=CAL, windows=WINDOWS)
    assert found is not None
    assert_is_the_first_opening(after, found, best_time, not_before, WINDOWS)
    assert next_opening(found, best_time=best_time, not_before=not_before, calendar=CAL, windows=WINDOWS) == found


@settings(max_examples=150, deadline=None)
@given(moments, best_times, not_befores, site_windows())
def test_next_opening_is_the_first_open_moment_on_any_valid_windows(after, best_time, not_before, windows):
    found = next_opening(after, best_time=best_time, not_before=not_before, calendar=CAL, windows=windows)
    assert found is not None  # a working-day window meeting every best time exists
    assert_is_the_first_opening(after, found, best_time, not_before, windows)


night_times = st.times().filter(lambda t: not DAY_STARTS <= t < DAY_ENDS)


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 12, 31)), night_times, best_times,
       st.sampled_from([WINDOWS, WHOLE_DAY]))
def test_never_open_at_night(day, night, best_time, windows):
    moment = datetime.combine(day, night, tzinfo=ZONE)
    assert not is_open(moment, best_time=best_time, not_before=None, calendar=CAL, windows=windows)
    found = next_opening(moment, best_time=best_time, not_before=None, calendar=CAL, windows=windows)
    assert DAY_STARTS <= found.astimezone(ZONE).time() < DAY_ENDS


@settings(max_examples=150, deadline=None)
@given(moments, best_times)
def test_an_open_moment_is_its_own_next_opening(moment, best_time):
    if is_open(moment, best_time=best_time, not_before=None, calendar=CAL, windows=WINDOWS):
        assert next_opening(moment, best_time=best_time, not_before=None, calendar=CAL, windows=WINDOWS) == moment


def test_the_policy_and_the_configuration_name_the_same_days_and_best_times():
    from bridge.config import BestTimeHoursConfig, CallingWindowsConfig

    assert [kind.value for kind in DayKind] == list(CallingWindowsConfig.model_fields)
    assert [b.value for b in BestTime if b is not ANY] == list(BestTimeHoursConfig.model_fields)
