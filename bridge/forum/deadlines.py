"""The platform's deadlines (2 office hours to accept, 3 days to answer); pure, time passed in.

Rules and the decisions taken here:

* **Acceptance.**  A post made *in office hours* (:func:`bridge.site.office_hours.is_office_time`:
  a working day of the China calendar, inside one of ``[office_hours] periods``, start
  inclusive, end exclusive) must be accepted
  within **2 office hours**: only office time counts (periods on working days; lunch
  breaks, evenings, weekends and holidays are skipped; make-up working days count).  The
  due time is the instant the 2nd office hour is used up, so it can be a period's end
  (a post at 15:30 with a 17:30 close is due at 17:30, not at the next morning's start).
  A post made *outside* office hours (12:00 in a 08:30-12:00, 14:00-17:30 day, 17:30, a
  weekend, a holiday) must be accepted within **24 clock hours**.
  Consequence of the literal rule: the due time is monotonic among in-office posts and
  among out-of-office posts, but not across the two (a post at 11:59 is due 15:59 the
  same day, one at 12:00 is due 12:00 the next day).
* **A forward** restarts the acceptance clock at the new unit: call :func:`acceptance_due`
  with the forward's time.
* **Answer.**  "3 days" counts as the site says (``[forum] answer_days``):
  ``"calendar"`` (the default, the platform's words: 3天, not 3个工作日) is **72 clock
  hours** after acceptance, whatever the calendar, so it can fall on a Sunday;
  ``"working"`` is **72 hours of working days**: only the time of working days of the
  China calendar counts (rest days and holidays are skipped whole, make-up working days
  count), so the answer is due at the acceptance's time of day three working days on; a
  clock started on a rest day starts at the next working day's 00:00.  **A follow-up**
  restarts the answer clock: call :func:`answer_due` with the follow-up's time.
* **Countdown.**  Each deadline is counted down in its own measure (:data:`Measure`):
  office time for an in-office acceptance (the clock stops outside office hours),
  working-day time for a working-days answer, clock time otherwise
  (:func:`measured_left`).  Once overdue, lateness is clock time.
* **Uncovered year.**  When the acceptance count needs to know whether a day of a year
  ``holidays`` has no arrangement for is a working day, :class:`CalendarNotCovered`
  propagates: the caller shows "deadline unknown" (and the daemon already reports
  :meth:`ChinaWorkingCalendar.coverage_problem` in health and log).  No guessing.  Posts
  outside every period's time of day need no calendar (24 clock hours), and neither do
  counts that end before reaching the uncovered year.
* Overdue means strictly after the due instant; :func:`time_left` is negative then.

All datetimes must be timezone-aware; results are in the site's ``zone``.  Time is
counted as elapsed (UTC) time, office periods are wall-clock times of ``zone``.
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime, time, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo

from bridge.site.calendar import CalendarNotCovered, ChinaWorkingCalendar
from bridge.site.office_hours import is_office_time, office_intervals, parse_periods

__all__ = [
    "ACCEPT_IN_OFFICE", "ACCEPT_OUT_OF_OFFICE", "ANSWER_DAYS", "ANSWER_WITHIN", "AnswerDays",
    "CalendarNotCovered", "Deadline", "Measure", "acceptance_due", "acceptance_measure", "answer_due",
    "answer_measure", "is_counting", "is_office_time", "is_overdue", "measured_left", "owed_step", "time_left",
]

ACCEPT_IN_OFFICE = timedelta(hours=2)      # office time
ACCEPT_OUT_OF_OFFICE = timedelta(hours=24)  # clock time
ANSWER_WITHIN = timedelta(hours=72)        # "3 days": clock time, or working-day time
ANSWER_DAYS = ("calendar", "working")      # [forum] answer_days

# No run of rest days is this long; a longer one means the site declared nearly
# everything a rest day, which is a configuration problem, not a deadline.
_MAX_REST_RUN_DAYS = 60

Step = Literal["accept", "answer"]
AnswerDays = Literal["calendar", "working"]
# What a deadline's countdown counts: office time, working-day time or clock time.
Measure = Literal["office", "working_days", "clock"]


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")
    return value


def acceptance_due(posted_at: datetime, *, calendar: ChinaWorkingCalendar,
                   office_periods: Sequence[str], zone: ZoneInfo) -> datetime:
    """When a post made (or forwarded to a unit) at ``posted_at`` must be accepted by.

    2 office hours for a post made in office hours, else 24 clock hours (module doc).
    Raises :class:`CalendarNotCovered` when the count needs a day of an uncovered year.
    """
    local = _aware(posted_at, "posted_at").astimezone(zone)
    if not is_office_time(local, calendar=calendar, office_periods=office_periods, zone=zone):
        return (local.astimezone(timezone.utc) + ACCEPT_OUT_OF_OFFICE).astimezone(zone)
    return _after(_office_spans(local, office_periods, calendar, zone), ACCEPT_IN_OFFICE, zone)


def answer_due(accepted_at: datetime, *, days: AnswerDays = "calendar",
               calendar: ChinaWorkingCalendar | None = None, zone: ZoneInfo | None = None) -> datetime:
    """When an accepted post (or a follow-up, asked at ``accepted_at``) must be answered by.

    ``days="calendar"``: 72 clock hours later, in ``accepted_at``'s time zone (no calendar
    needed).  ``days="working"``: 72 hours of working days of ``calendar`` (days of ``zone``),
    in ``zone``; raises :class:`CalendarNotCovered` when the count needs an uncovered year.
    """
    _aware(accepted_at, "accepted_at")
    if days == "calendar":
        return (accepted_at.astimezone(timezone.utc) + ANSWER_WITHIN).astimezone(accepted_at.tzinfo)
    if days != "working" or calendar is None or zone is None:
        raise ValueError(f"answer days {days!r}: 'calendar', or 'working' with a calendar and a zone")
    return _after(_working_day_spans(accepted_at, calendar, zone), ANSWER_WITHIN, zone)


def _spans(start: datetime, calendar: ChinaWorkingCalendar, zone: ZoneInfo,
           intervals_of: Callable[[date], Iterable[tuple[datetime, datetime]]]) -> Iterator[tuple[datetime, datetime]]:
    """The (begin, end) UTC instants of counted time from ``start`` on: ``intervals_of(day)`` of each
    working day, the first cut at ``start``.  Endless; a too long run of rest days is an error."""
    now = start.astimezone(timezone.utc)
    day, rest_run = start.astimezone(zone).date(), 0
    while True:
        if calendar.is_working_day(day):
            rest_run = 0
            for begin, end in intervals_of(day):
                if end > now:
                    yield max(begin, now), end
        else:
            rest_run += 1
            if rest_run > _MAX_REST_RUN_DAYS:
                raise ValueError(f"no working day in the {_MAX_REST_RUN_DAYS} days before {day}; "
                                 "check the site's declared rest days")
        day += timedelta(days=1)


def _office_spans(start: datetime, office_periods: Sequence[str], calendar: ChinaWorkingCalendar, zone: ZoneInfo):
    periods = parse_periods(tuple(office_periods))
    return _spans(start, calendar, zone, lambda day: office_intervals(day, periods, zone))


def _working_day_spans(start: datetime, calendar: ChinaWorkingCalendar, zone: ZoneInfo):
    def whole_day(day: date):
        yield (datetime.combine(day, time(0), tzinfo=zone).astimezone(timezone.utc),
               datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(timezone.utc))

    return _spans(start, calendar, zone, whole_day)


def _after(spans: Iterator[tuple[datetime, datetime]], amount: timedelta, zone: ZoneInfo) -> datetime:
    """The instant ``amount`` of counted time (``spans``) is used up, in ``zone``."""
    remaining = amount
    for begin, end in spans:
        if remaining <= end - begin:
            return (begin + remaining).astimezone(zone)
        remaining -= end - begin
    raise AssertionError("unreachable: the spans never end")


def acceptance_measure(posted_at: datetime, *, calendar: ChinaWorkingCalendar, office_periods: Sequence[str],
                       zone: ZoneInfo) -> Measure:
    """What the acceptance of a post made at ``posted_at`` is counted in: office time, or clock time."""
    in_office = is_office_time(posted_at, calendar=calendar, office_periods=office_periods, zone=zone)
    return "office" if in_office else "clock"


def answer_measure(days: AnswerDays) -> Measure:
    return "working_days" if days == "working" else "clock"


def measured_left(due: datetime, now: datetime, measure: Measure, *, calendar: ChinaWorkingCalendar,
                  office_periods: Sequence[str], zone: ZoneInfo) -> timedelta:
    """The time left to ``due`` in ``measure`` (office, working-day or clock time); once overdue,
    the (negative) clock time since ``due``.  May raise :class:`CalendarNotCovered`."""
    left = time_left(due, now)
    if left <= timedelta(0) or measure == "clock":
        return left
    if measure == "office":
        spans = _office_spans(now, office_periods, calendar, zone)
    else:
        spans = _working_day_spans(now, calendar, zone)
    end_at = due.astimezone(timezone.utc)
    total = timedelta(0)
    for begin, end in spans:
        if begin >= end_at:
            return total
        total += min(end, end_at) - begin
    raise AssertionError("unreachable")  # the spans never end


def is_counting(measure: Measure, now: datetime, *, calendar: ChinaWorkingCalendar, office_periods: Sequence[str],
                zone: ZoneInfo) -> bool:
    """Whether time in ``measure`` passes at ``now`` (the countdown runs; else it is stopped)."""
    if measure == "office":
        return is_office_time(now, calendar=calendar, office_periods=office_periods, zone=zone)
    if measure == "working_days":
        return calendar.is_working_day(_aware(now, "now").astimezone(zone).date())
    return True


def is_overdue(due: datetime, now: datetime) -> bool:
    """True once ``now`` is past ``due`` (at the due instant itself the step is still on time)."""
    return _aware(now, "now") > _aware(due, "due")


def time_left(due: datetime, now: datetime) -> timedelta:
    """Elapsed time from ``now`` to ``due``; negative when overdue."""
    return _aware(due, "due").astimezone(timezone.utc) - _aware(now, "now").astimezone(timezone.utc)


@dataclass(frozen=True)
class Deadline:
    """A step a unit owes on a case: ``accept`` or ``answer``, by ``unit_code``, by ``due_at``.

    ``measure`` is what its countdown counts; ``follow_up``: the answer owed is to a follow-up."""

    step: Step
    unit_code: str
    due_at: datetime
    measure: Measure = "clock"
    follow_up: bool = False

    def is_overdue(self, now: datetime) -> bool:
        return is_overdue(self.due_at, now)

    def time_left(self, now: datetime) -> timedelta:
        return time_left(self.due_at, now)


# Case state -> the step the thread's current unit owes.  "reopened" is a follow-up
# asked in the thread: it restarts the answer clock (issue 5); the forum has no separate
# "follow-up accepted" event, so the answer is the one step owed.
_OWED: dict[str, Step] = {"posted": "accept", "forwarded": "accept",
                          "accepted": "answer", "reopened": "answer"}


def owed_step(state: str, unit_code: str, since: datetime, *, calendar: ChinaWorkingCalendar,
              office_periods: Sequence[str], zone: ZoneInfo, answer_days: AnswerDays = "calendar"
              ) -> Deadline | None:
    """The step owed on a case in ``state`` by the unit now holding it, or None.

    ``since`` is when the clock (re)started: the post (``posted``), the forward to
    ``unit_code`` (``forwarded``), the acceptance (``accepted``) or the follow-up
    (``reopened``).  ``queued``, ``answered`` and ``closed`` owe nothing.  Raises
    :class:`CalendarNotCovered` like :func:`acceptance_due` ("deadline unknown").
    """
    step = _OWED.get(state)
    if step is None:
        return None
    if step == "accept":
        due = acceptance_due(since, calendar=calendar, office_periods=office_periods, zone=zone)
        measure = acceptance_measure(since, calendar=calendar, office_periods=office_periods, zone=zone)
        return Deadline(step, unit_code, due, measure)
    due = answer_due(since, days=answer_days, calendar=calendar, zone=zone).astimezone(zone)
    return Deadline(step, unit_code, due, answer_measure(answer_days), follow_up=state == "reopened")
