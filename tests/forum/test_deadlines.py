"""The platform's deadlines: acceptance in office time, the answer in 72 clock hours or 72 hours of
working days ([forum] answer_days), and the countdowns in each deadline's own measure."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, example, given, reject, settings
from hypothesis import strategies as st

from bridge.site.office_hours import parse_period
from bridge.site.calendar import CalendarNotCovered, ChinaWorkingCalendar
from bridge.forum.deadlines import (
    Deadline,
    acceptance_due,
    answer_due,
    is_counting,
    is_office_time,
    is_overdue,
    measured_left,
    owed_step,
    time_left,
)

ZONE = ZoneInfo("Asia/Shanghai")
PERIODS = ["08:30-12:00", "14:00-17:30"]
CAL = ChinaWorkingCalendar()


class BeforeThe2027Arrangement(ChinaWorkingCalendar):
    def covers(self, year: int) -> bool:
        return year <= 2026 and super().covers(year)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZONE)


def due(text_or_dt, *, periods=PERIODS, calendar=CAL) -> datetime:
    posted = at(text_or_dt) if isinstance(text_or_dt, str) else text_or_dt
    return acceptance_due(posted, calendar=calendar, office_periods=periods, zone=ZONE)


# ------------------------------------------------------------------ examples


@pytest.mark.parametrize("posted, expected", [
    # office-hours boundaries, Thursday 26 Nov 2026
    ("2026-11-26 08:30", "2026-11-26 10:30"),   # exactly at opening: in office
    ("2026-11-26 08:29", "2026-11-27 08:29"),   # a minute before: 24 clock hours
    ("2026-11-26 10:00", "2026-11-26 12:00"),   # due exactly at the lunch break
    ("2026-11-26 11:59", "2026-11-26 15:59"),   # 1 min before lunch + 1 h 59 after it
    ("2026-11-26 12:00", "2026-11-27 12:00"),   # at 12:00 the office is closed: 24 h
    ("2026-11-26 13:59", "2026-11-27 13:59"),
    ("2026-11-26 14:00", "2026-11-26 16:00"),
    ("2026-11-26 15:30", "2026-11-26 17:30"),   # due exactly at closing, not next morning
    ("2026-11-26 17:29", "2026-11-27 10:29"),   # one minute before closing
    ("2026-11-26 17:30", "2026-11-27 17:30"),   # exactly at closing: out of office
    ("2026-11-26 20:00", "2026-11-27 20:00"),
    # across a weekend
    ("2026-11-27 16:30", "2026-11-30 09:30"),   # Friday afternoon -> Monday morning
    ("2026-11-28 10:00", "2026-11-29 10:00"),   # Saturday: 24 clock hours
    # National Day 1-7 Oct 2026 (and its make-up days 20 Sep and 10 Oct)
    ("2026-09-30 16:00", "2026-10-08 09:00"),
    ("2026-10-01 10:00", "2026-10-02 10:00"),   # a holiday, inside the periods' times: 24 h
    ("2026-09-20 09:00", "2026-09-20 11:00"),   # Sunday make-up working day: in office
    ("2026-09-19 16:00", "2026-09-20 16:00"),   # the Saturday before: out of office
    ("2026-09-18 17:00", "2026-09-20 10:00"),   # Friday -> the make-up Sunday
    ("2026-10-09 17:00", "2026-10-10 10:00"),   # Friday -> the make-up Saturday
    ("2026-10-10 17:00", "2026-10-12 10:00"),   # make-up Saturday -> Monday
    # Spring Festival 2026 (16-23 Feb rest; 14 and 28 Feb make-up Saturdays)
    ("2026-02-13 17:00", "2026-02-14 10:00"),
    ("2026-02-14 17:00", "2026-02-24 10:00"),
])
def test_acceptance_examples(posted, expected):
    assert due(posted) == at(expected)


def test_the_result_is_in_the_site_zone_whatever_the_input_zone():
    posted = datetime(2026, 11, 26, 2, 0, tzinfo=timezone.utc)      # 10:00 in Shanghai
    result = due(posted)
    assert result == at("2026-11-26 12:00") and result.tzinfo == ZONE
    assert due(datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc)) == at("2026-11-27 17:30")  # 17:30 local


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        due(datetime(2026, 11, 26, 10, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        answer_due(datetime(2026, 11, 26, 10, 0))


def test_one_continuous_period_and_adjacent_periods():
    assert due("2026-11-26 23:00", periods=["00:00-23:59"]) == at("2026-11-27 01:01")
    assert due("2026-11-26 11:00", periods=["08:00-12:00", "12:00-13:00"]) == at("2026-11-26 13:00")
    assert due("2026-11-26 11:30", periods=["08:00-12:00", "12:00-13:00"]) == at("2026-11-27 08:30")
    assert due("2026-11-26 11:30", periods=["08:00-12:00", "12:00-13:00", "15:00-16:00"]) == at("2026-11-26 15:30")


def test_site_days_change_the_count():
    cal = ChinaWorkingCalendar(extra_rest_days=[date(2026, 11, 30)], extra_working_days=[date(2026, 11, 28)])
    assert due("2026-11-27 16:30", calendar=cal) == at("2026-11-28 09:30")     # declared working Saturday
    assert due("2026-11-28 17:00", calendar=cal) == at("2026-12-01 10:00")     # declared rest Monday


def test_a_forward_restarts_the_acceptance_clock_at_the_new_unit():
    first = owed_step("posted", "procuratorate", at("2026-11-26 09:00"), calendar=CAL,
                      office_periods=PERIODS, zone=ZONE)
    assert first == Deadline("accept", "procuratorate", at("2026-11-26 11:00"), "office")
    forwarded = owed_step("forwarded", "land", at("2026-11-26 16:45"), calendar=CAL,
                          office_periods=PERIODS, zone=ZONE)
    assert forwarded == Deadline("accept", "land", at("2026-11-27 09:45"), "office")


def test_answer_is_due_72_clock_hours_after_acceptance_and_a_follow_up_restarts_it():
    assert answer_due(at("2026-11-27 16:00")) == at("2026-11-30 16:00")      # weekend counts
    assert answer_due(at("2026-09-30 16:00")) == at("2026-10-03 16:00")      # holidays count
    accepted = owed_step("accepted", "housing", at("2026-11-26 10:00"), calendar=CAL,
                         office_periods=PERIODS, zone=ZONE)
    assert accepted == Deadline("answer", "housing", at("2026-11-29 10:00"))
    follow_up = owed_step("reopened", "housing", at("2026-12-01 20:15"), calendar=CAL,
                          office_periods=PERIODS, zone=ZONE)
    assert follow_up == Deadline("answer", "housing", at("2026-12-04 20:15"), "clock", follow_up=True)


@pytest.mark.parametrize("state", ["queued", "answered", "closed"])
def test_nothing_is_owed_when_nothing_is_pending(state):
    assert owed_step(state, "land", at("2026-11-26 10:00"), calendar=CAL,
                     office_periods=PERIODS, zone=ZONE) is None


def test_answer_due_counts_elapsed_hours_across_a_dst_change():
    berlin = ZoneInfo("Europe/Berlin")
    result = answer_due(datetime(2026, 3, 27, 10, 0, tzinfo=berlin))     # clocks go forward 29 Mar
    assert result == datetime(2026, 3, 30, 11, 0, tzinfo=berlin)


def test_overdue_and_time_left():
    due_at = at("2026-11-26 12:00")
    assert not is_overdue(due_at, at("2026-11-26 11:59"))
    assert not is_overdue(due_at, at("2026-11-26 12:00"))          # at the due instant: on time
    assert is_overdue(due_at, at("2026-11-26 12:00") + timedelta(seconds=1))
    assert time_left(due_at, at("2026-11-26 10:30")) == timedelta(hours=1, minutes=30)
    assert time_left(due_at, datetime(2026, 11, 26, 5, 0, tzinfo=timezone.utc)) == timedelta(hours=-1)
    d = Deadline("accept", "land", due_at)
    assert d.is_overdue(at("2026-11-26 13:00")) and d.time_left(at("2026-11-26 13:00")) == timedelta(hours=-1)


def test_is_office_time():
    kw = dict(calendar=CAL, office_periods=PERIODS, zone=ZONE)
    assert is_office_time(at("2026-11-26 08:30"), **kw)
    assert not is_office_time(at("2026-11-26 12:00"), **kw)
    assert not is_office_time(at("2026-11-26 17:30"), **kw)
    assert is_office_time(at("2026-10-10 09:00"), **kw)            # make-up Saturday
    assert not is_office_time(at("2026-10-02 09:00"), **kw)        # National Day


# -------------------------------------------------------------- uncovered year


def test_a_count_reaching_into_an_uncovered_year_raises_deadline_unknown():
    cal = BeforeThe2027Arrangement()
    with pytest.raises(CalendarNotCovered) as exc:
        due("2026-12-31 16:00", calendar=cal)                      # 1.5 h left on 31 Dec, then 2027
    assert exc.value.year == 2027
    with pytest.raises(CalendarNotCovered):
        owed_step("forwarded", "land", at("2026-12-31 16:00"), calendar=cal,
                  office_periods=PERIODS, zone=ZONE)


def test_what_needs_no_calendar_of_an_uncovered_year_is_still_computed():
    cal = BeforeThe2027Arrangement()
    assert due("2026-12-31 10:00", calendar=cal) == at("2026-12-31 12:00")    # ends inside 2026
    assert due("2026-12-31 20:00", calendar=cal) == at("2027-01-01 20:00")    # 24 clock hours
    assert due("2027-03-03 20:00", calendar=cal) == at("2027-03-04 20:00")    # outside every period
    assert answer_due(at("2027-03-03 10:00")) == at("2027-03-06 10:00")       # clock hours
    with pytest.raises(CalendarNotCovered):
        due("2027-03-03 10:00", calendar=cal)                      # in office or a holiday? unknown


def test_site_declared_days_fill_in_an_uncovered_year():
    cal = ChinaWorkingCalendar(extra_working_days=[date(2099, 3, 3), date(2099, 3, 4)])
    assert due("2099-03-03 17:00", calendar=cal) == at("2099-03-04 10:00")


# ------------------------------------------------------------ property tests

START = datetime(2025, 1, 1, tzinfo=ZONE)
END = datetime(2026, 12, 31, tzinfo=ZONE)        # 2027 may not be covered yet
MINUTES = int((END - START).total_seconds() // 60)


def _boundary_times():
    times = set()
    for p in PERIODS:
        for t in parse_period(p):
            base = datetime.combine(date(2000, 1, 1), t)
            # at, just before and after each bound, and 2 h before it (due exactly at a bound)
            times |= {(base + timedelta(minutes=m)).time() for m in (-1, 0, 1, -120)}
    return sorted(times)


SPECIAL_DAYS = [date(2026, 9, 18), date(2026, 9, 19), date(2026, 9, 20), date(2026, 9, 30),
                date(2026, 10, 1), date(2026, 10, 7), date(2026, 10, 8), date(2026, 10, 9),
                date(2026, 10, 10), date(2026, 11, 27), date(2026, 11, 28), date(2026, 2, 13),
                date(2026, 2, 14), date(2026, 2, 24), date(2026, 12, 30)]

posts = st.one_of(
    st.integers(0, MINUTES - 1).map(lambda m: START + timedelta(minutes=m)),
    st.builds(lambda d, t: datetime.combine(d, t, tzinfo=ZONE),
              st.sampled_from(SPECIAL_DAYS), st.sampled_from(_boundary_times())),
)


@st.composite
def period_lists(draw):
    """1-3 ordered periods on minute boundaries (adjacent allowed), at least 30 min a day."""
    marks = draw(st.lists(st.integers(0, 23 * 60 + 59), min_size=2, max_size=6, unique=True)
                 .filter(lambda xs: len(xs) % 2 == 0).map(sorted))
    pairs = list(zip(marks[::2], marks[1::2]))
    assume(sum(b - a for a, b in pairs) >= 30)
    return [f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in pairs]


def office_minutes(a: datetime, b: datetime, periods) -> int:
    """Reference count of office minutes in [a, b), day by day (independent of the module)."""
    a, b = a.astimezone(ZONE), b.astimezone(ZONE)
    total = timedelta()
    day = a.date()
    while day <= b.date():
        if CAL.is_working_day(day):
            for p in periods:
                s, e = (datetime.combine(day, t, tzinfo=ZONE) for t in parse_period(p))
                lo, hi = max(s, a), min(e, b)
                if hi > lo:
                    total += hi - lo
        day += timedelta(days=1)
    return int(total.total_seconds() // 60)


def in_office(moment: datetime, periods) -> bool:
    local = moment.astimezone(ZONE)
    return CAL.is_working_day(local.date()) and any(
        s <= local.time() < e for s, e in map(parse_period, periods))


def at_period_end(moment: datetime, periods) -> bool:
    local = moment.astimezone(ZONE)
    return CAL.is_working_day(local.date()) and any(local.time() == e for _, e in map(parse_period, periods))


FIRST_UNCOVERED = datetime(2027, 1, 1, tzinfo=ZONE)   # the installed calendar may lack 2027
LAST_COVERED_MINUTE = FIRST_UNCOVERED - timedelta(minutes=1)  # periods end by 23:59


def due_or_uncovered(posted: datetime, periods) -> datetime:
    """The acceptance due time; a post whose 2 office hours run into an uncovered year must
    raise CalendarNotCovered (never guess), and is then left out of the property."""
    try:
        return due(posted, periods=periods)
    except CalendarNotCovered:
        assert not CAL.covers(FIRST_UNCOVERED.year)
        assert in_office(posted, periods) and office_minutes(posted, LAST_COVERED_MINUTE, periods) < 120
        reject()


@settings(max_examples=300, deadline=None)
@given(posted=posts, periods=st.one_of(st.just(PERIODS), period_lists()))
@example(posted=datetime(2026, 12, 30, 13, 59, tzinfo=ZONE), periods=["12:02-14:00"])  # runs into 2027
def test_property_acceptance_due(posted, periods):
    result = due_or_uncovered(posted, periods)
    assert result > posted
    assert result.tzinfo == ZONE
    if in_office(posted, periods):
        # exactly 2 office hours lie between, and not one minute less would do
        assert office_minutes(posted, result, periods) == 120
        assert office_minutes(posted, result - timedelta(minutes=1), periods) == 119
        # the due time is office time, or the end of a period
        assert in_office(result, periods) or at_period_end(result, periods)
    else:
        assert result.astimezone(timezone.utc) - posted.astimezone(timezone.utc) == timedelta(hours=24)


@settings(max_examples=300, deadline=None)
@given(a=posts, b=posts, periods=st.one_of(st.just(PERIODS), period_lists()))
def test_property_monotonic_within_in_office_and_within_out_of_office(a, b, periods):
    first, second = sorted((a, b))
    assume(in_office(first, periods) == in_office(second, periods))
    assert due_or_uncovered(first, periods) <= due_or_uncovered(second, periods)


def test_monotonicity_does_not_hold_across_the_two_rules():
    # The literal rule: the lunch break is outside office hours, so 24 clock hours.
    assert due("2026-11-26 12:00") > due("2026-11-26 14:00")


@settings(max_examples=100, deadline=None)
@given(posted=posts, zone_name=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]))
def test_property_the_same_instant_in_any_zone_has_the_same_due_time(posted, zone_name):
    assert due(posted.astimezone(ZoneInfo(zone_name))) == due(posted)


@given(accepted=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1),
                             timezones=st.sampled_from([ZONE, timezone.utc, ZoneInfo("Europe/Berlin")])))
def test_property_answer_due_is_72_clock_hours(accepted):
    result = answer_due(accepted)
    # elapsed time (UTC): across a DST change the wall clock moves 71 or 73 hours
    assert result.astimezone(timezone.utc) - accepted.astimezone(timezone.utc) == timedelta(hours=72)
    assert result.tzinfo == accepted.tzinfo


@settings(deadline=None)
@given(day=st.dates(min_value=date(2027, 1, 1), max_value=date(2027, 12, 30)),
       minute=st.integers(0, 24 * 60 - 1))
def test_property_uncovered_year_never_guesses(day, minute):
    posted = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=ZONE)
    cal = BeforeThe2027Arrangement()
    inside_periods = any(s <= posted.time() < e for s, e in map(parse_period, PERIODS))
    if inside_periods:
        with pytest.raises(CalendarNotCovered):
            due(posted, calendar=cal)
    else:
        assert due(posted, calendar=cal) == posted + timedelta(hours=24)


# ------------------------------------------------- the answer's 3 days: calendar or working days

def working_due(text_or_dt, *, calendar=CAL) -> datetime:
    accepted = at(text_or_dt) if isinstance(text_or_dt, str) else text_or_dt
    return answer_due(accepted, days="working", calendar=calendar, zone=ZONE)


@pytest.mark.parametrize("accepted, calendar_days, working_days", [
    # an ordinary week: both agree (Monday 10:00 -> Thursday 10:00)
    ("2026-11-23 10:00", "2026-11-26 10:00", "2026-11-26 10:00"),
    # Friday: calendar days end on Monday; working days skip the weekend (Wednesday)
    ("2026-11-27 10:00", "2026-11-30 10:00", "2026-12-02 10:00"),
    # Thursday: the calendar count falls on a Sunday; working days: Tuesday
    ("2026-11-26 15:00", "2026-11-29 15:00", "2026-12-01 15:00"),
    # accepted on a Saturday: working days start Monday 00:00, three whole days
    ("2026-11-28 11:00", "2026-12-01 11:00", "2026-12-03 00:00"),
    # Spring Festival 2026: rest 15-23 Feb, make-up working Saturdays 14 and 28 Feb
    ("2026-02-12 09:00", "2026-02-15 09:00", "2026-02-24 09:00"),   # Thu, Fri, make-up Sat 14, then Tue 24
    ("2026-02-14 16:00", "2026-02-17 16:00", "2026-02-26 16:00"),   # the make-up Saturday counts
    ("2026-02-18 10:00", "2026-02-21 10:00", "2026-02-27 00:00"),   # inside the break: 24-26 Feb
    ("2026-02-26 10:00", "2026-03-01 10:00", "2026-03-02 10:00"),   # Thu, Fri, make-up Sat 28, (Sun), Mon
    # National Day 2026: rest 1-7 Oct, make-up Sunday 20 Sep and Saturday 10 Oct
    ("2026-09-30 16:00", "2026-10-03 16:00", "2026-10-10 16:00"),   # 30 Sep, 8, 9 Oct, make-up Sat 10
    ("2026-09-18 12:00", "2026-09-21 12:00", "2026-09-22 12:00"),   # Fri, make-up Sun 20, Mon 21 -> Tue
])
def test_answer_due_in_calendar_days_and_in_working_days(accepted, calendar_days, working_days):
    assert answer_due(at(accepted)) == at(calendar_days)
    assert answer_due(at(accepted), days="calendar", calendar=CAL, zone=ZONE) == at(calendar_days)
    assert working_due(accepted) == at(working_days)


def test_working_days_need_the_calendar_and_refuse_an_unknown_mode():
    with pytest.raises(ValueError, match="calendar"):
        answer_due(at("2026-11-27 10:00"), days="working")
    with pytest.raises(ValueError, match="calendar"):
        answer_due(at("2026-11-27 10:00"), days="weekdays", calendar=CAL, zone=ZONE)  # type: ignore[arg-type]


def test_working_days_follow_site_declared_days_and_never_guess_an_uncovered_year():
    cal = ChinaWorkingCalendar(extra_working_days=[date(2026, 11, 28)], extra_rest_days=[date(2026, 11, 30)])
    assert working_due("2026-11-27 10:00", calendar=cal) == at("2026-12-02 10:00")  # Sat in, Mon out
    with pytest.raises(CalendarNotCovered):
        working_due("2026-12-30 10:00", calendar=BeforeThe2027Arrangement())
    assert answer_due(at("2026-12-30 10:00")) == at("2027-01-02 10:00")  # calendar days need no calendar


def test_owed_step_says_the_step_its_measure_and_a_follow_up():
    kw = dict(calendar=CAL, office_periods=PERIODS, zone=ZONE)
    assert owed_step("posted", "land", at("2026-11-27 16:30"), **kw) == \
        Deadline("accept", "land", at("2026-11-30 09:30"), "office")
    assert owed_step("posted", "land", at("2026-11-27 20:00"), **kw).measure == "clock"   # out of office: 24 h
    assert owed_step("accepted", "land", at("2026-11-27 10:00"), answer_days="working", **kw) == \
        Deadline("answer", "land", at("2026-12-02 10:00"), "working_days")
    assert owed_step("reopened", "land", at("2026-11-27 10:00"), answer_days="working", **kw) == \
        Deadline("answer", "land", at("2026-12-02 10:00"), "working_days", follow_up=True)


def test_countdowns_count_in_the_deadlines_own_measure():
    kw = dict(calendar=CAL, office_periods=PERIODS, zone=ZONE)
    accept = at("2026-11-30 09:30")  # posted Friday 16:30 in office: 1 h on Friday, 1 h on Monday
    assert measured_left(accept, at("2026-11-27 16:30"), "office", **kw) == timedelta(hours=2)
    assert measured_left(accept, at("2026-11-28 12:00"), "office", **kw) == timedelta(hours=1)  # stopped Saturday
    assert measured_left(accept, at("2026-11-30 09:00"), "office", **kw) == timedelta(minutes=30)
    assert measured_left(accept, at("2026-11-28 12:00"), "clock", **kw) == timedelta(hours=45, minutes=30)
    answer = at("2026-12-02 10:00")  # accepted Friday 10:00, working days
    assert measured_left(answer, at("2026-11-27 10:00"), "working_days", **kw) == timedelta(hours=72)
    assert measured_left(answer, at("2026-11-29 18:00"), "working_days", **kw) == timedelta(hours=58)
    # overdue: the clock time since the due instant, whatever the measure
    assert measured_left(accept, at("2026-11-30 12:00"), "office", **kw) == -timedelta(hours=2, minutes=30)
    assert is_counting("office", at("2026-11-28 12:00"), **kw) is False
    assert is_counting("office", at("2026-11-30 09:00"), **kw) is True
    assert is_counting("working_days", at("2026-11-29 18:00"), **kw) is False
    assert is_counting("working_days", at("2026-02-14 18:00"), **kw) is True      # make-up Saturday
    assert is_counting("clock", at("2026-11-29 18:00"), **kw) is True


def working_minutes(a: datetime, b: datetime) -> int:
    """Reference count of working-day minutes in [a, b), day by day (independent of the module)."""
    a, b = a.astimezone(ZONE), b.astimezone(ZONE)
    total = timedelta()
    day = a.date()
    while day <= b.date():
        if CAL.is_working_day(day):
            s = datetime.combine(day, time(0), tzinfo=ZONE)
            lo, hi = max(s, a), min(s + timedelta(days=1), b)
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return int(total.total_seconds() // 60)


LAST_WORKING_START = datetime(2026, 12, 20, tzinfo=ZONE)  # 3 working days on stay inside covered 2026
accepts = st.one_of(
    st.integers(0, int((LAST_WORKING_START - START).total_seconds() // 60)).map(lambda m: START + timedelta(minutes=m)),
    st.builds(lambda d, t: datetime.combine(d, t, tzinfo=ZONE),
              st.sampled_from(SPECIAL_DAYS[:-1]), st.sampled_from(_boundary_times() + [time(0), time(23, 59)])),
)


@settings(max_examples=300, deadline=None)
@given(accepted=accepts)
def test_property_working_days_answer_due(accepted):
    result = working_due(accepted)
    assert result.tzinfo == ZONE and result > accepted
    # exactly 72 hours of working days lie between, and not a minute less would do
    assert working_minutes(accepted, result) == 72 * 60
    assert working_minutes(accepted, result - timedelta(minutes=1)) == 72 * 60 - 1
    # the due instant is on a working day, or the midnight ending one
    assert CAL.is_working_day(result.date()) or (
        result.time() == time(0) and CAL.is_working_day(result.date() - timedelta(days=1)))
    # never sooner than the calendar-days count; the same when no rest day comes in between
    assert result >= answer_due(accepted)
    # the countdown starts at the full 3 working days and reaches zero at the due instant
    kw = dict(calendar=CAL, office_periods=PERIODS, zone=ZONE)
    assert measured_left(result, accepted, "working_days", **kw) == timedelta(hours=72)
    assert measured_left(result, result, "working_days", **kw) == timedelta(0)


@settings(max_examples=300, deadline=None)
@given(a=accepts, b=accepts)
def test_property_working_days_answer_due_is_monotonic(a, b):
    first, second = sorted((a, b))
    assert working_due(first) <= working_due(second)


@settings(max_examples=200, deadline=None)
@given(posted=posts, minutes=st.integers(0, 3 * 24 * 60))
def test_property_office_countdown_is_the_office_time_left(posted, minutes):
    """From an in-office post, the countdown is 2 h less the office time gone by (clock time once late)."""
    assume(in_office(posted, PERIODS))
    due_at = due_or_uncovered(posted, PERIODS)
    now = posted + timedelta(minutes=minutes)
    kw = dict(calendar=CAL, office_periods=PERIODS, zone=ZONE)
    left = measured_left(due_at, now, "office", **kw)
    if now <= due_at:
        assert left == timedelta(minutes=120 - office_minutes(posted, now, PERIODS))
    else:
        assert left == due_at - now
