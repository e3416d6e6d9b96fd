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
* **Answer.**  "3 days" is taken as the platform states it: **72 clock hours** after
  acceptance, whatever the calendar.  **A follow-up** restarts the answer clock: call
  :func:`answer_due` with the follow-up's time.
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
from datetime import datetime, timedelta, timezone
from typing import Literal, Sequence
from zoneinfo import ZoneInfo

from bridge.site.calendar import CalendarNotCovered, ChinaWorkingCalendar
from bridge.site.office_hours import is_office_time, office_intervals, parse_periods

__all__ = [
    "ACCEPT_IN_OFFICE", "ACCEPT_OUT_OF_OFFICE", "ANSWER_WITHIN", "CalendarNotCovered",
    "Deadline", "acceptance_due", "answer_due", "is_office_time", "is_overdue", "owed_step",
    "time_left",
]

ACCEPT_IN_OFFICE = timedelta(hours=2)      # office time
ACCEPT_OUT_OF_OFFICE = timedelta(hours=24)  # clock time
ANSWER_WITHIN = timedelta(hours=72)        # clock time: "3 days"

# No run of rest days is this long; a longer one means the site declared nearly
# everything a rest day, which is a configuration problem, not a deadline.
_MAX_REST_RUN_DAYS = 60

Step = Literal["accept", "answer"]


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
    periods = parse_periods(tuple(office_periods))
    local = _aware(posted_at, "posted_at").astimezone(zone)
    if not is_office_time(local, calendar=calendar, office_periods=office_periods, zone=zone):
        return (local.astimezone(timezone.utc) + ACCEPT_OUT_OF_OFFICE).astimezone(zone)
    now = local.astimezone(timezone.utc)
    remaining = ACCEPT_IN_OFFICE
    day, rest_run = local.date(), 0
    while True:
        if calendar.is_working_day(day):
            rest_run = 0
            for start, end in office_intervals(day, periods, zone):
                if end <= now:
                    continue
                begin = max(start, now)
                available = end - begin
                if remaining <= available:
                    return (begin + remaining).astimezone(zone)
                remaining -= available
        else:
            rest_run += 1
            if rest_run > _MAX_REST_RUN_DAYS:
                raise ValueError(f"no working day in the {_MAX_REST_RUN_DAYS} days before {day}; "
                                 "check the site's declared rest days")
        day += timedelta(days=1)


def answer_due(accepted_at: datetime) -> datetime:
    """When an accepted post (or a follow-up, asked at ``accepted_at``) must be answered by:
    72 clock hours later, in ``accepted_at``'s time zone."""
    _aware(accepted_at, "accepted_at")
    return (accepted_at.astimezone(timezone.utc) + ANSWER_WITHIN).astimezone(accepted_at.tzinfo)


def is_overdue(due: datetime, now: datetime) -> bool:
    """True once ``now`` is past ``due`` (at the due instant itself the step is still on time)."""
    return _aware(now, "now") > _aware(due, "due")


def time_left(due: datetime, now: datetime) -> timedelta:
    """Elapsed time from ``now`` to ``due``; negative when overdue."""
    return _aware(due, "due").astimezone(timezone.utc) - _aware(now, "now").astimezone(timezone.utc)


@dataclass(frozen=True)
class Deadline:
    """A step a unit owes on a case: ``accept`` or ``answer``, by ``unit_code``, by ``due_at``."""

    step: Step
    unit_code: str
    due_at: datetime

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
              office_periods: Sequence[str], zone: ZoneInfo) -> Deadline | None:
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
    else:
        due = answer_due(since).astimezone(zone)
    return Deadline(step, unit_code, due)
