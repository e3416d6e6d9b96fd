"""Cases follow their forum thread: thread events applied to cases, once each.

Plain synchronous functions in the caller's session (``db.session()`` /
``db.run_in_session``), the time passed in:

- :func:`mark_posted` — the outbox's post is up: ``posted``, ``forum_url``,
  ``forum_post_id``, the acceptance deadline; timeline entry ``posted`` (once per case).
- :func:`record_post_failure` — a failed attempt: timeline entry ``forum_post_failed``
  with the error (each failure is its own entry, visible on the case).
- :func:`apply_event` — one :class:`ThreadEvent`: a timeline entry whose
  ``source_event_id`` is the event's id (a second delivery changes nothing), the
  case's state, unit (a forward's target, else the unit that acted) and deadline.  Events
  arrive in any order (a webhook, polling, verification, the board's own write); one older
  than the newest event applied to the case (by the forum's time, then its order in the
  thread), or an acceptance its unit no longer owes, is kept on the timeline as
  ``late_event`` and changes nothing: a late "accepted" cannot undo an answer.
- :func:`flag_overdue` — cases past their deadline get one ``overdue`` entry per
  deadline (naming the unit that owes the step); the caller pushes them live.

=====================  ==============  ======================================
thread event           case state      deadline_at
=====================  ==============  ======================================
(posted)               posted          acceptance due (from the posting time)
accepted               accepted        answer due (from the acceptance)
forwarded              forwarded       acceptance due at the new unit; unit changes
answered               answered        none
follow_up_asked        reopened        answer due (from the follow-up)
follow_up_answered     answered        none
=====================  ==============  ======================================

Deadlines come from :mod:`bridge.forum.deadlines` through :class:`Deadlines`;
for a year the China calendar does not cover, the deadline is left empty
("unknown") and :attr:`Deadlines.problem` says why (the link puts it in health).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from bridge.cases.service import OPEN_STATES
from bridge.db.models import Case, CaseEvent, CaseState, Department, OutboxOperation
from bridge.domain_events import announce_case_event
from bridge.forum.adapter import PostRef, ThreadEvent, ThreadEventKind

log = structlog.get_logger(__name__)

FORUM_ACTOR = "forum"
POSTED = "posted"
POST_FAILED = "forum_post_failed"
OVERDUE = "overdue"
# A thread event that came after a newer one (or an acceptance nobody waited for): kept on the
# timeline with ``detail.forum_event`` and ``detail.late``; it changes nothing.
LATE_EVENT = "late_event"
LATE_OLDER = "older"
LATE_NOT_AWAITED = "not_awaited"
THREAD_EVENT_KINDS = tuple(kind.value for kind in ThreadEventKind)

STATE_AFTER = {
    ThreadEventKind.ACCEPTED: CaseState.ACCEPTED,
    ThreadEventKind.FORWARDED: CaseState.FORWARDED,
    ThreadEventKind.ANSWERED: CaseState.ANSWERED,
    ThreadEventKind.FOLLOW_UP_ASKED: CaseState.REOPENED,
    ThreadEventKind.FOLLOW_UP_ANSWERED: CaseState.ANSWERED,
}
# The step a unit owes in each open state (for overdue flags).
STEP_OWED = {CaseState.QUEUED: "post", CaseState.POSTED: "accept", CaseState.FORWARDED: "accept",
             CaseState.ACCEPTED: "answer", CaseState.REOPENED: "answer"}


# ------------------------------------------------------------------- deadlines


class DeadlinePolicy(Protocol):
    def acceptance_due(self, at: datetime) -> datetime | None: ...

    def answer_due(self, at: datetime) -> datetime | None: ...


class Deadlines:
    """The platform's deadlines for this site (office hours, China calendar, time zone, and how
    the 3 days to answer count: ``[forum] answer_days``).

    Wraps :mod:`bridge.forum.deadlines`; a calendar gap gives ``None`` (deadline
    unknown) and sets :attr:`problem`, never a guessed deadline.  Every place that
    computes a deadline (the outbox, thread events from the builtin board, Discourse's
    webhook and polling, the pages' countdowns) goes through one of these.
    """

    def __init__(self, *, office_periods: list[str] | tuple[str, ...], zone: ZoneInfo, calendar: Any = None,
                 answer_days: str = "calendar") -> None:
        if calendar is None:
            from bridge.site.calendar import ChinaWorkingCalendar

            calendar = ChinaWorkingCalendar()
        from bridge.forum.deadlines import ANSWER_DAYS

        if answer_days not in ANSWER_DAYS:
            raise ValueError(f"answer_days must be one of {', '.join(ANSWER_DAYS)}, got {answer_days!r}")
        self.calendar = calendar
        self.office_periods = tuple(office_periods)  # "08:30-12:00" strings, as in [office_hours]
        self.zone = zone
        self.answer_days = answer_days
        self.problem: str | None = None

    @classmethod
    def from_config(cls, config) -> Deadlines:
        return cls(office_periods=tuple(config.office_hours.periods), zone=config.site.zone,
                   answer_days=config.forum.answer_days)

    def _guard(self, fn, *args, **kwargs) -> Any:
        from bridge.site.calendar import CalendarNotCovered

        try:
            due = fn(*args, **kwargs)
        except CalendarNotCovered as exc:
            self.problem = str(exc)
            log.error("forum.deadline_unknown", error=str(exc))
            return None
        return due

    def acceptance_due(self, at: datetime) -> datetime | None:
        from bridge.forum import deadlines

        return self._guard(deadlines.acceptance_due, at, calendar=self.calendar,
                           office_periods=self.office_periods, zone=self.zone)

    def answer_due(self, at: datetime) -> datetime | None:
        from bridge.forum import deadlines

        return self._guard(deadlines.answer_due, at, days=self.answer_days, calendar=self.calendar, zone=self.zone)

    def owed(self, state: str, unit_code: str, since: datetime):
        """The :class:`~bridge.forum.deadlines.Deadline` owed in ``state`` since ``since``, or None
        (nothing owed, or the deadline is unknown)."""
        from bridge.forum import deadlines

        return self._guard(deadlines.owed_step, state, unit_code, since, calendar=self.calendar,
                           office_periods=self.office_periods, zone=self.zone, answer_days=self.answer_days)

    def left(self, deadline, now: datetime):
        """The countdown of ``deadline`` at ``now`` in its own measure (a timedelta), or None if unknown."""
        from bridge.forum import deadlines

        return self._guard(deadlines.measured_left, deadline.due_at, now, deadline.measure, calendar=self.calendar,
                           office_periods=self.office_periods, zone=self.zone)

    def counting(self, deadline, now: datetime) -> bool:
        """Whether ``deadline``'s countdown runs at ``now`` (office time, a working day; clock: always)."""
        from bridge.forum import deadlines

        counts = self._guard(deadlines.is_counting, deadline.measure, now, calendar=self.calendar,
                             office_periods=self.office_periods, zone=self.zone)
        return True if counts is None else counts


def site_deadlines(app) -> Deadlines:
    """The app's deadline policy (made from the config once, kept on ``app.state.forum_deadlines``)."""
    policy = getattr(app.state, "forum_deadlines", None)
    if policy is None:
        policy = Deadlines.from_config(app.state.config)
        app.state.forum_deadlines = policy
    return policy


# ---------------------------------------------------------------------- results


@dataclass(frozen=True)
class CaseChange:
    """What changed on a case (for the live event ``case`` / ``state_changed``)."""

    number: str
    state: str
    department: str
    kind: str
    deadline_at: datetime | None
    forum_url: str | None

    def live_data(self) -> dict[str, Any]:
        return {"number": self.number, "state": self.state, "department": self.department, "kind": self.kind,
                "deadline_at": self.deadline_at.isoformat() if self.deadline_at else None,
                "forum_url": self.forum_url}


def _change(case: Case, kind: str) -> CaseChange:
    return CaseChange(number=case.number, state=case.state.value, department=case.department.code, kind=kind,
                      deadline_at=case.deadline_at, forum_url=case.forum_url)


def _case(session: Session, number: str) -> Case | None:
    return session.scalar(select(Case).options(joinedload(Case.department)).where(Case.number == number)
                          .with_for_update(of=Case).execution_options(populate_existing=True))


def _seen(session: Session, source_event_id: str) -> bool:
    return session.scalar(select(CaseEvent.id).where(CaseEvent.source_event_id == source_event_id)) is not None


def due_detail(case: Case) -> dict[str, str]:
    """The deadline the step starts, kept on the timeline entry (``due_at``, UTC ISO 8601), so the
    units' figures (bridge/transparency) read it in SQL instead of recomputing office hours."""
    if case.deadline_at is None:
        return {}
    return {"due_at": case.deadline_at.astimezone(timezone.utc).isoformat()}


# ---------------------------------------------------------------------- posting


def mark_posted(session: Session, number: str, ref: PostRef, now: datetime, deadlines: DeadlinePolicy,
                *, attempts: int = 1) -> CaseChange | None:
    """The case's post is up: record it once; the state moves only from ``queued``.

    (A thread event may have been applied before the outbox saw its own success.)
    """
    source = f"posted:{number}"
    case = _case(session, number)
    if case is None or _seen(session, source):
        return None
    case.forum_post_id = ref.remote_id
    case.forum_url = ref.url
    started = case.state is CaseState.QUEUED  # else a thread event came first and set the deadline owed
    if started:
        case.state = CaseState.POSTED
        case.deadline_at = deadlines.acceptance_due(now)
    case.updated_at = now
    session.add(CaseEvent(case_id=case.id, at=now, kind=POSTED, actor=FORUM_ACTOR, source_event_id=source,
                          detail={"url": ref.url, "remote_id": ref.remote_id, "attempts": attempts,
                                  "department": case.department.code, **(due_detail(case) if started else {})}))
    session.flush()
    return _change(case, POSTED)


def record_post_failure(session: Session, case_id: int, *, error: str, attempt: int, now: datetime,
                        next_attempt_at: datetime | None, gave_up: bool, operation: str = OutboxOperation.CREATE_POST.value) -> None:
    """One failed attempt, on the case's timeline (each failure its own entry)."""
    session.add(CaseEvent(case_id=case_id, at=now, kind=POST_FAILED, actor=FORUM_ACTOR, detail={
        "operation": operation, "error": error[:500], "attempt": attempt, "gave_up": gave_up,
        "next_attempt_at": next_attempt_at.isoformat() if next_attempt_at else None}))
    session.flush()


# ----------------------------------------------------------------------- events


def apply_event(session: Session, event: ThreadEvent, deadlines: DeadlinePolicy) -> CaseChange | None:
    """Apply one thread event to its case; ``None`` when already applied (or no such case), or
    when it came too late to change the case (see :func:`why_late`: it is kept as ``late_event``)."""
    if _seen(session, event.event_id):
        return None
    case = _case(session, event.case_number)
    if case is None:
        log.warning("forum.event_for_unknown_case", case_number=event.case_number, event_id=event.event_id)
        return None
    detail: dict[str, Any] = {"unit": event.unit_code, "actor": event.actor, "forum_event": event.kind.value}
    if event.text:
        detail["text"] = event.text
    if event.kind is ThreadEventKind.FORWARDED:
        detail["to_unit"] = event.to_unit_code
    if event.sequence is None:
        detail["time_seen"] = True  # not the forum's time: it orders nothing after it
    else:
        detail["sequence"] = event.sequence
    applied = _applied_events(session, case.id)
    newest = newest_place(applied)
    late = why_late(event, newest, acceptance_awaited=acceptance_awaited(applied, event.unit_code))
    try:
        with session.begin_nested():
            if late is None:
                _move(session, case, event, deadlines)
                kind = event.kind.value
                detail.update(due_detail(case))
            else:
                kind = LATE_EVENT
                detail.update(late=late, newer_event=newest.event_id if newest else None)
            announce_case_event(session, kind)  # domain events (case answered) after commit
            session.add(CaseEvent(case_id=case.id, at=event.at, kind=kind, actor=FORUM_ACTOR,
                                  detail=detail, source_event_id=event.event_id))
            session.flush()
    except IntegrityError:  # applied meanwhile by another worker (the unique source_event_id)
        session.expire(case)
        return None
    if late is not None:
        log.info("forum.event_late", case_number=case.number, kind=event.kind.value, event_id=event.event_id,
                 reason=late, newer_event=detail["newer_event"], state=case.state.value)
        return None
    log.info("forum.event_applied", case_number=case.number, kind=event.kind.value, event_id=event.event_id,
             state=case.state.value)
    return _change(case, event.kind.value)


def _move(session: Session, case: Case, event: ThreadEvent, deadlines: DeadlinePolicy) -> None:
    """The case's state, unit and deadline after ``event``.  The unit: a forward's target, else
    the unit that acted (the same one, unless a forward to it came late and changed nothing)."""
    if event.kind is ThreadEventKind.FORWARDED:
        _move_to_unit(session, case, event.to_unit_code)
        case.deadline_at = deadlines.acceptance_due(event.at)
    else:
        if event.unit_code != case.department.code:
            _move_to_unit(session, case, event.unit_code)
        if event.kind in (ThreadEventKind.ACCEPTED, ThreadEventKind.FOLLOW_UP_ASKED):
            case.deadline_at = deadlines.answer_due(event.at)
        else:  # answered, follow-up answered: nothing owed
            case.deadline_at = None
    case.state = STATE_AFTER[event.kind]
    case.updated_at = event.at


def _move_to_unit(session: Session, case: Case, code: str | None) -> None:
    target = session.scalar(select(Department).where(Department.code == code))
    if target is None:
        log.warning("forum.event_for_unknown_unit", case_number=case.number, unit=code)
        return
    case.department_id = target.id
    case.department = target


# -------------------------------------------------------------- late events


@dataclass(frozen=True)
class ThreadPlace:
    """Where an applied event stands in its case's thread: the forum's time, then its order."""

    at: datetime
    sequence: int | None
    event_id: str

    def sort_key(self) -> tuple[datetime, int]:
        return self.at, -1 if self.sequence is None else self.sequence


@dataclass(frozen=True)
class AppliedEvent:
    """A thread event the case's timeline holds as applied (not late)."""

    kind: str
    place: ThreadPlace
    time_seen: bool  # its time is when the bridge saw it (no sequence)
    to_unit: str | None  # a forward's target


def newest_place(applied: list[AppliedEvent]) -> ThreadPlace | None:
    """The newest applied event, leaving out those whose time is when the bridge saw them: they
    would make a truly newer event (posted before the bridge saw them) look older."""
    return max((e.place for e in applied if not e.time_seen), key=ThreadPlace.sort_key, default=None)


def acceptance_awaited(applied: list[AppliedEvent], unit: str) -> bool:
    """Whether ``unit`` still owes its acceptance: no unit has accepted or answered since the case
    last came to ``unit`` (``applied`` oldest first).  A step by another unit means the case moved
    on, even when the forward that took it there has not been applied (it came late)."""
    for event in reversed(applied):
        if event.kind == ThreadEventKind.FORWARDED.value:
            return event.to_unit == unit
        if event.kind in _UNIT_STEPS:
            return False
    return True


_UNIT_STEPS = (ThreadEventKind.ACCEPTED.value, ThreadEventKind.ANSWERED.value,
               ThreadEventKind.FOLLOW_UP_ANSWERED.value)


def why_late(event: ThreadEvent, newest: ThreadPlace | None, *, acceptance_awaited: bool) -> str | None:
    """Why ``event`` must not change its case, whose newest applied event is ``newest``;
    ``None`` when it may.

    - ``older``: it happened before ``newest`` (by the forum's time; at the same time, by the
      forum's order when both have one). Delivery order (webhook, polling, a board's own
      write, verification) says nothing about the thread's order.
    - ``not_awaited``: an acceptance by a unit that does not owe one (it accepted or answered
      since the case came to it, or the case is elsewhere): a Discourse tag acceptance carries
      the time the bridge saw it, not the unit's, so it may look newer than the answer after it.
    """
    if newest is not None:
        if event.at != newest.at:
            if event.at < newest.at:
                return LATE_OLDER
        elif event.sequence is not None and newest.sequence is not None and event.sequence < newest.sequence:
            return LATE_OLDER
    if event.kind is ThreadEventKind.ACCEPTED and not acceptance_awaited:
        return LATE_NOT_AWAITED
    return None


def _applied_events(session: Session, case_id: int) -> list[AppliedEvent]:
    """The case's applied thread events, from its timeline, oldest first."""
    rows = session.execute(select(CaseEvent.kind, CaseEvent.at, CaseEvent.detail, CaseEvent.source_event_id)
                           .where(CaseEvent.case_id == case_id, CaseEvent.kind.in_(THREAD_EVENT_KINDS),
                                  CaseEvent.source_event_id.is_not(None))
                           .order_by(CaseEvent.id)).all()
    applied = []
    for kind, at, detail, source in rows:
        detail = detail or {}
        applied.append(AppliedEvent(kind=kind, place=ThreadPlace(at, detail.get("sequence"), source),
                                    time_seen=bool(detail.get("time_seen")), to_unit=detail.get("to_unit")))
    return applied


def apply_events(session: Session, events: list[ThreadEvent], deadlines: DeadlinePolicy) -> list[CaseChange]:
    changes = []
    for event in events:
        change = apply_event(session, event, deadlines)
        if change is not None:
            changes.append(change)
    return changes


# ---------------------------------------------------------------------- overdue


def flag_overdue(session: Session, now: datetime) -> list[dict[str, Any]]:
    """Open cases past their deadline, flagged once per deadline; returns the new flags."""
    cases = session.scalars(select(Case).options(joinedload(Case.department))
                            .where(Case.deadline_at.is_not(None), Case.deadline_at < now,
                                   Case.state.in_(OPEN_STATES))).unique().all()
    flags = []
    for case in cases:
        assert case.deadline_at is not None
        source = f"overdue:{case.number}:{case.deadline_at.isoformat()}"
        if _seen(session, source):
            continue
        flag = {"number": case.number, "state": case.state.value, "unit": case.department.code,
                "unit_name": case.department.name, "step": STEP_OWED.get(case.state, ""),
                "deadline_at": case.deadline_at.isoformat()}
        try:
            with session.begin_nested():
                session.add(CaseEvent(case_id=case.id, at=now, kind=OVERDUE, actor="scheduler", detail=flag,
                                      source_event_id=source))
                session.flush()
        except IntegrityError:
            continue
        flags.append(flag)
    return flags


__all__ = ["AppliedEvent", "CaseChange", "DeadlinePolicy", "Deadlines", "site_deadlines", "ThreadPlace", "acceptance_awaited",
           "apply_event", "apply_events", "flag_overdue", "mark_posted", "newest_place", "record_post_failure",
           "why_late"]
