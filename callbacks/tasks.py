"""Callback tasks in the database: created from answers and missed calls, claimed, attempted,
settled and closed.  The rows of ``callback_tasks`` and ``callback_attempts`` are the record of
truth; everything here runs in the caller's transaction (a ``Session``) and does no other I/O.

The rules themselves are pure and live beside this module: the calling windows
(:mod:`callbacks.windows`), the retry ladders (:mod:`callbacks.retry`), who holds a task
(:mod:`callbacks.ownership`).  The dialler (Asterisk, Twilio) calls :func:`begin_attempt`
and commits **before** the call leaves the daemon, then :func:`settle_attempt` with what
Asterisk's events said; an attempt whose row has ``ended_at`` is never placed again.

A task's life::

    scheduled --due_at passes--> due --begin_attempt--> in_progress
    in_progress --settle_attempt(answered)--> in_progress, until record_outcome:
        informed / follow_up / do_not_call --> done;  wrong_number --> unreachable (check_number)
        voicemail --> the ladder, as an unreached attempt
    in_progress --settle_attempt(busy, no_answer, failed)--> scheduled (the ladder) | unreachable
    in_progress --settle_attempt(unknown)--> due with check_attempt: a person settles it
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any

import structlog
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bridge.cases.validation import normalise_phone
from bridge.config import Config
from bridge.db.models import (
    Call,
    CallbackAttempt,
    CallbackAttemptResult,
    CallbackCheck,
    CallbackMessage,
    CallbackOutcome,
    CallbackReason,
    CallbackState,
    CallbackTask,
    Case,
    CaseEvent,
    DoNotCall,
    ForumOutbox,
    OutboxOperation,
    User,
)
from bridge.domain_events import DomainEvent
from bridge.forum.outbox import PrivateDataInPost, check_public
from bridge.presence.service import signed_in_user_ids
from bridge.site.calendar import ChinaWorkingCalendar
from callbacks import retry
from callbacks.best_time import BestTime, parse_best_time
from callbacks.ownership import Owned, Owner, OwnerState, Pool, holder
from callbacks.windows import CallingWindows, is_open, next_opening

log = structlog.get_logger(__name__)

# Answers the capability sees later than this after they were given make no task: a caller is
# not phoned weeks late about an answer (e.g. a site upgrading with months of answered cases).
MAX_ANSWER_AGE = timedelta(days=14)
# The case events that carry an answer (the domain event topic case_answered).
ANSWER_KINDS = ("answered", "follow_up_answered")
OPEN_STATES = (CallbackState.SCHEDULED, CallbackState.DUE, CallbackState.IN_PROGRESS)
# A pool task taken by an operator stays theirs this long without an attempt.
HOLD_EXPIRES_AFTER = timedelta(minutes=30)
NOTE_MAX = 2000
FOLLOW_UP_MAX = 2000
SATISFACTION_GRADES = (1, 2, 3, 4, 5)
# A grade this low or lower (差评) flags the case for a supervisor's review.
POOR_GRADE = 2
# The outcomes an operator records (CallbackOutcome.SUPERSEDED and HANDLED are the system's).
RECORDED_OUTCOMES = (CallbackOutcome.INFORMED, CallbackOutcome.FOLLOW_UP, CallbackOutcome.WRONG_NUMBER,
                     CallbackOutcome.DO_NOT_CALL, CallbackOutcome.VOICEMAIL)
# Case events the callbacks write on the case's timeline.
CALLBACK_SCHEDULED = "callback_scheduled"
CALLBACK_NOT_PLACED = "callback_not_placed"
CALLBACK_OUTCOME = "callback_outcome"
CALLBACK_UNREACHABLE = "callback_unreachable"


@dataclass(frozen=True)
class CallbackPolicy:
    """Everything the rules need: the windows, the ladders, the calendar, the owner's turn."""

    windows: CallingWindows
    retry: retry.RetryPolicy
    calendar: ChinaWorkingCalendar
    owner_timeout: timedelta

    @classmethod
    def of(cls, config: Config, calendar: ChinaWorkingCalendar | None = None) -> CallbackPolicy:
        return cls(windows=CallingWindows.of(config.callbacks, config.site.zone),
                   retry=retry.RetryPolicy.of(config.callbacks), calendar=calendar or ChinaWorkingCalendar(),
                   owner_timeout=timedelta(minutes=config.callbacks.owner_timeout_minutes))


# ------------------------------------------------------------------- numbers


def phone_key(number: str | None) -> str:
    """The form numbers are compared in (E.164 when it parses, else the digits as given)."""
    return normalise_phone(number) or "".join(ch for ch in (number or "") if ch.isdigit() or ch == "+")


def do_not_call(session: Session, number: str) -> DoNotCall | None:
    """The active do-not-call entry of ``number``, if any."""
    return session.scalar(select(DoNotCall).where(DoNotCall.phone == phone_key(number),
                                                  DoNotCall.lifted_at.is_(None)))


def forbid_number(session: Session, number: str, *, task_id: int | None, by: User | None, note: str,
                  now: datetime) -> DoNotCall:
    """Put ``number`` on the do-not-call list (kept as it is when already there)."""
    entry = do_not_call(session, number)
    if entry is None:
        entry = DoNotCall(phone=phone_key(number), task_id=task_id, set_by_id=by.id if by else None,
                          set_at=now, note=note[:NOTE_MAX])
        session.add(entry)
        session.flush()
    return entry


def lift_do_not_call(session: Session, number: str, *, by: User, now: datetime) -> bool:
    """A supervisor lifts the entry: tasks may phone the number again.  False when there was none."""
    entry = do_not_call(session, number)
    if entry is None:
        return False
    entry.lifted_at, entry.lifted_by_id = now, by.id
    session.flush()
    return True


# ------------------------------------------------------------------ creating


def _best_time(case: Case) -> BestTime:
    if case.best_time_choice is not None:
        return BestTime(case.best_time_choice.value)
    return parse_best_time(case.best_time)


def _first_opening(policy: CallbackPolicy, after: datetime, case: Case | None) -> datetime:
    best = _best_time(case) if case is not None else BestTime.ANY
    not_before = case.callback_not_before if case is not None else None
    at = next_opening(after, best_time=best, not_before=not_before, calendar=policy.calendar,
                      windows=policy.windows)
    # None: the configuration leaves this caller no window at all; due now, and calling is refused
    # outside the windows, so a person sees the task rather than it waiting for ever.
    return at or after


def _state_for(due_at: datetime, now: datetime) -> CallbackState:
    return CallbackState.DUE if due_at <= now else CallbackState.SCHEDULED


def _timeline(session: Session, case_id: int | None, kind: str, now: datetime, detail: dict[str, Any],
              user: User | None = None) -> None:
    if case_id is None:
        return
    session.add(CaseEvent(case_id=case_id, at=now, kind=kind, actor_user_id=user.id if user else None,
                          actor=user.username if user else "callbacks", detail=detail))


def create_for_answer(session: Session, event: DomainEvent, policy: CallbackPolicy, now: datetime) -> CallbackTask | None:
    """The task that brings this answer to the caller: exactly one per answer (the unique
    ``answer_event_id``).  None when the caller wants no callback, has no number, is on the
    do-not-call list, or the answer is older than :data:`MAX_ANSWER_AGE`.  An older answer's
    task still waiting (scheduled or due) is superseded: the caller hears the newest answer."""
    return create_for_answers(session, [event], policy, now)[0]


def create_for_answers(session: Session, events: list[DomainEvent], policy: CallbackPolicy,
                       now: datetime) -> list[CallbackTask | None]:
    """:func:`create_for_answer` for each of ``events``, in order, in a few statements for the
    whole list (the domain-event consumer hands a batch: 1,000 answers at once make their tasks
    in well under the 2 s goal, docs/performance.md "Callback tasks")."""
    positions = [event.position for event in events]
    existing = {task.answer_event_id: task for task in session.scalars(
        select(CallbackTask).where(CallbackTask.answer_event_id.in_(positions)))}
    cases = {case.id: case for case in session.scalars(select(Case).where(Case.id.in_({e.case_id for e in events})))}
    waiting: dict[int, list[CallbackTask]] = {}  # per case: its answer tasks still scheduled or due
    newest: dict[int, int] = {}  # per case: the newest answer that has a task
    # By case only, the rest in Python: with the state in the WHERE clause SQLite walks
    # ix_callback_tasks_state_due over every waiting task of the site (88,000 in bench/callbacks.py).
    # Locked (PostgreSQL): a call being begun on a waiting task and its superseding go one after the other.
    for task in session.scalars(select(CallbackTask).where(CallbackTask.case_id.in_(list(cases)))
                                .order_by(CallbackTask.id).with_for_update()):
        if task.reason is CallbackReason.ANSWER and task.state in (CallbackState.SCHEDULED, CallbackState.DUE):
            waiting.setdefault(task.case_id, []).append(task)
        if task.answer_event_id is not None:
            newest[task.case_id] = max(newest.get(task.case_id, 0), task.answer_event_id)
    keys = {case.id: phone_key(case.caller_phone) for case in cases.values() if case.caller_phone}  # parsed once
    listed = set(session.scalars(select(DoNotCall.phone).where(DoNotCall.phone.in_(set(keys.values())),
                                                               DoNotCall.lifted_at.is_(None))))
    blocked = {case_id for case_id, key in keys.items() if key in listed}
    made: list[CallbackTask | None] = []
    for event in events:
        if event.position in existing:
            made.append(existing[event.position])
            continue
        if newest.get(event.case_id, 0) > event.position:
            # An older answer handed late (a parked event tried again): the caller is told the newer one.
            log.info("callbacks.answer_superseded_already", case_id=event.case_id, answer=event.position)
            made.append(None)
            continue
        task = _task_for_answer(session, event, cases.get(event.case_id), waiting, blocked, policy, now)
        if task is not None:
            newest[event.case_id] = event.position
            existing[event.position] = task
        made.append(task)
    new = list(dict.fromkeys(task for task in made if task is not None and task.id is None))  # once each
    if new:
        session.flush()  # their ids, for the timeline
    for task in new:
        _timeline(session, task.case_id, CALLBACK_SCHEDULED, now, {"task": task.id, "due_at": task.due_at.isoformat()})
        log.info("callbacks.task_created", task_id=task.id, case_number=cases[task.case_id].number, reason="answer",
                 due_at=task.due_at.isoformat())
    return made


def _task_for_answer(session: Session, event: DomainEvent, case: Case | None, waiting: dict[int, list[CallbackTask]],
                     blocked: set[int], policy: CallbackPolicy, now: datetime) -> CallbackTask | None:
    """The new (unflushed) task of one answer, the waiting ones of its case superseded; None: no task."""
    if case is None or not case.callback_wanted or not case.caller_phone:
        return None
    if now - event.at > MAX_ANSWER_AGE:
        log.info("callbacks.answer_too_old", case_number=case.number, answered_at=event.at.isoformat())
        return None
    for older in waiting.pop(case.id, ()):
        older.state, older.outcome, older.completed_at = CallbackState.DONE, CallbackOutcome.SUPERSEDED, now
    if case.id in blocked:  # the case's number is on the do-not-call list
        _timeline(session, case.id, CALLBACK_NOT_PLACED, now, {"reason": "do_not_call", "answer": event.position})
        log.info("callbacks.do_not_call", case_number=case.number)
        return None
    due_at = _first_opening(policy, max(now, event.at), case)
    task = CallbackTask(reason=CallbackReason.ANSWER, case_id=case.id, answer_event_id=event.position,
                        phone=case.caller_phone, state=_state_for(due_at, now), due_at=due_at,
                        waiting_since=event.at, owner_id=case.created_by_id, assigned_at=now,
                        created_at=now, updated_at=now)
    session.add(task)
    waiting[case.id] = [task]
    return task


def create_for_missed_call(session: Session, call: Call, policy: CallbackPolicy, now: datetime) -> CallbackTask | None:
    """The task to phone back a caller who abandoned in the queue or left a message: one per call.
    None without a caller number or when it is on the do-not-call list."""
    existing = session.scalar(select(CallbackTask).where(CallbackTask.call_id == call.id))
    if existing is not None:
        return existing
    if not call.caller_number or do_not_call(session, call.caller_number) is not None:
        return None
    due_at = _first_opening(policy, now, None)
    task = CallbackTask(reason=CallbackReason.MISSED_CALL, call_id=call.id, phone=call.caller_number,
                        state=_state_for(due_at, now), due_at=due_at, waiting_since=call.arrived_at,
                        assigned_at=now, created_at=now, updated_at=now)
    try:
        with session.begin_nested():
            session.add(task)
            session.flush()
    except IntegrityError:  # created meanwhile (the unique call_id)
        return session.scalar(select(CallbackTask).where(CallbackTask.call_id == call.id))
    log.info("callbacks.task_created", task_id=task.id, linkedid=call.linkedid, reason="missed_call",
             due_at=due_at.isoformat())
    return task


# ------------------------------------------------------------------- reading


def promote_due(session: Session, now: datetime) -> int:
    """``scheduled`` tasks whose time has come become ``due`` (one UPDATE); how many did."""
    result = session.execute(update(CallbackTask).where(
        CallbackTask.state == CallbackState.SCHEDULED, CallbackTask.due_at <= now)
        .values(state=CallbackState.DUE, updated_at=now).execution_options(synchronize_session=False))
    return result.rowcount or 0


def next_wake(session: Session) -> datetime | None:
    """When the next scheduled task falls due (the scheduler's next wake-up)."""
    return session.scalar(select(func.min(CallbackTask.due_at)).where(CallbackTask.state == CallbackState.SCHEDULED))


def due_tasks(session: Session, now: datetime, limit: int = 200) -> list[CallbackTask]:
    """Tasks that may be called now (due, or scheduled with their time come), the longest-waiting first."""
    return list(session.scalars(
        select(CallbackTask).where(or_(CallbackTask.state == CallbackState.DUE,
                                       and_(CallbackTask.state == CallbackState.SCHEDULED,
                                            CallbackTask.due_at <= now)))
        .order_by(CallbackTask.waiting_since, CallbackTask.id).limit(limit)))


def state_at(task: CallbackTask, now: datetime) -> CallbackState:
    """The task's state as of ``now`` (a scheduled task whose time has come reads ``due``)."""
    if task.state is CallbackState.SCHEDULED and task.due_at <= now:
        return CallbackState.DUE
    return task.state


def live_attempt(task: CallbackTask) -> CallbackAttempt | None:
    return next((a for a in task.attempts if a.ended_at is None), None)


def last_attempt(task: CallbackTask) -> CallbackAttempt | None:
    return task.attempts[-1] if task.attempts else None


def newest_answer(session: Session, case_id: int) -> CaseEvent | None:
    return session.scalar(select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.kind.in_(ANSWER_KINDS))
                          .order_by(CaseEvent.id.desc()).limit(1))


# ------------------------------------------------------------------ holding


def signed_in_owners(session: Session, now: datetime) -> set[int]:
    """The users signed in to the desk now (``bridge.presence``: an active sign-in, its page open
    or not): an owner not among them, signed out or disabled, has no turn, the pool has the task."""
    return signed_in_user_ids(session, now)


def owner_signed_in(session: Session, task: CallbackTask, now: datetime) -> bool:
    return task.owner_id is not None and task.owner_id in signed_in_owners(session, now)


def owner_state(user: User | None, signed_in: bool) -> Owner | None:
    if user is None:
        return None
    if not user.active:
        return Owner(user.id, OwnerState.DISABLED)
    return Owner(user.id, OwnerState.SIGNED_IN if signed_in else OwnerState.SIGNED_OUT)


def turn(task: CallbackTask, now: datetime, policy: CallbackPolicy, *, owner_signed_in: bool) -> Owned | Pool:
    """Whose task it is at ``now``: the owner's (until when) or the pool's (why)."""
    return holder(owner_state(task.owner, owner_signed_in), assigned_at=task.assigned_at, due_at=task.due_at,
                  now=now, timeout=policy.owner_timeout)


def held_by_other(task: CallbackTask, user: User, now: datetime) -> User | None:
    """The operator other than ``user`` who holds the task now (a live attempt holds it too)."""
    if task.held_by_id in (None, user.id):
        return None
    if live_attempt(task) is not None or (task.held_at is not None and now - task.held_at < HOLD_EXPIRES_AFTER):
        return task.held_by
    return None


class Refusal(str, Enum):
    """Why no call is placed (the API answers 409 with the value)."""

    NOT_FOUND = "not_found"
    CLOSED = "closed"  # done or unreachable
    NOT_DUE = "not_due"  # scheduled for later
    OUTSIDE_WINDOWS = "outside_windows"
    DO_NOT_CALL = "do_not_call"
    HELD_BY_OTHER = "held_by_other"
    OWNERS_TURN = "owners_turn"  # still the owner's, and the owner is signed in
    ATTEMPT_LIVE = "attempt_live"
    OUTCOME_PENDING = "outcome_pending"  # the last attempt was answered: record its outcome first
    NEEDS_CHECK = "needs_check"
    NO_EXTENSION = "no_extension"  # the operator has no desk phone
    DEVICE_UNREGISTERED = "device_unregistered"
    DEVICE_BUSY = "device_busy"
    PBX_DOWN = "pbx_down"


class CallbackRefused(Exception):
    def __init__(self, refusal: Refusal, detail: str = "", holder: str | None = None):
        super().__init__(f"{refusal.value}: {detail}" if detail else refusal.value)
        self.refusal, self.detail, self.holder = refusal, detail, holder


def _name(user: User | None) -> str | None:
    return None if user is None else (user.display_name or user.username)


def may_work(task: CallbackTask, user: User, now: datetime, policy: CallbackPolicy, *, supervisor: bool,
              owner_signed_in: bool) -> None:
    other = held_by_other(task, user, now)
    if other is not None:
        raise CallbackRefused(Refusal.HELD_BY_OTHER, holder=_name(other))
    if supervisor or task.owner_id in (None, user.id) or task.held_by_id == user.id:
        return
    whose = turn(task, now, policy, owner_signed_in=owner_signed_in)
    if isinstance(whose, Owned):
        raise CallbackRefused(Refusal.OWNERS_TURN, f"until {whose.until.isoformat()}", holder=_name(task.owner))


def take(session: Session, task_id: int, user: User, now: datetime, policy: CallbackPolicy, *,
         supervisor: bool = False, owner_is_signed_in: bool | None = None) -> CallbackTask:
    """``user`` holds the task (from the pool, or as its owner): one conditional UPDATE, so of two
    operators taking it at once one wins and the other is refused ``held_by_other``.
    ``owner_is_signed_in`` None: read from the sign-ins now."""
    task = _open_task(session, task_id)
    if owner_is_signed_in is None:
        owner_is_signed_in = owner_signed_in(session, task, now)
    may_work(task, user, now, policy, supervisor=supervisor, owner_signed_in=owner_is_signed_in)
    free = or_(CallbackTask.held_by_id.is_(None), CallbackTask.held_by_id == user.id,
               CallbackTask.held_at < now - HOLD_EXPIRES_AFTER)
    won = session.execute(update(CallbackTask).where(CallbackTask.id == task_id, free)
                          .values(held_by_id=user.id, held_at=now, updated_at=now)
                          .execution_options(synchronize_session=False)).rowcount
    session.refresh(task)
    if not won:
        raise CallbackRefused(Refusal.HELD_BY_OTHER, holder=_name(task.held_by))
    return task


def reassign(session: Session, task_id: int, to: User, now: datetime) -> CallbackTask:
    """A supervisor gives the task to ``to`` (their turn starts now); not while a call of it is
    live (the operator on the line records its outcome)."""
    task = _open_task(session, task_id)
    if live_attempt(task) is not None:
        raise CallbackRefused(Refusal.ATTEMPT_LIVE)
    task.owner_id, task.assigned_at, task.held_by_id, task.held_at, task.updated_at = to.id, now, None, None, now
    session.flush()
    return task


def release(session: Session, task_id: int, now: datetime) -> CallbackTask:
    """A supervisor (or the holder) puts the task in the shared pool: no owner, nobody holds it."""
    task = _open_task(session, task_id)
    if live_attempt(task) is not None:
        raise CallbackRefused(Refusal.ATTEMPT_LIVE)
    task.owner_id, task.held_by_id, task.held_at, task.updated_at = None, None, None, now
    session.flush()
    return task


def _open_task(session: Session, task_id: int) -> CallbackTask:
    # Locked (PostgreSQL) for the transaction: a task's moves (call, outcome, superseding) queue up.
    task = session.get(CallbackTask, task_id, with_for_update=True)
    if task is None:
        raise CallbackRefused(Refusal.NOT_FOUND)
    if task.state not in OPEN_STATES:
        raise CallbackRefused(Refusal.CLOSED, task.state.value)
    return task


# ------------------------------------------------------------------ attempts


@dataclass(frozen=True)
class Briefing:
    """What the operator sees just before the call: the newest answer, and what moved since."""

    answer_event_id: int | None
    answer_text: str
    answer_unit: str | None
    thread_url: str | None
    case_state: str | None
    newer_answer: bool  # the case was answered again since the task's answer
    moved_since: list[str] = field(default_factory=list)  # forwarded / follow_up_asked since the answer


def briefing(session: Session, task: CallbackTask) -> Briefing:
    if task.case_id is None:
        return Briefing(None, "", None, None, None, False)
    case = task.case
    newest = newest_answer(session, case.id)
    since = task.answer_event_id or 0
    moved = list(session.scalars(select(CaseEvent.kind).where(
        CaseEvent.case_id == case.id, CaseEvent.id > since,
        CaseEvent.kind.in_(("forwarded", "follow_up_asked"))).order_by(CaseEvent.id)))
    detail = newest.detail if newest is not None else {}
    return Briefing(newest.id if newest else None, detail.get("text", ""), detail.get("unit"), case.forum_url,
                    case.state.value, newest is not None and task.answer_event_id is not None
                    and newest.id != task.answer_event_id, moved)


def attempt_key(task_id: int) -> str:
    """A fresh idempotency key (the Originate's ActionID): never reused, even across restarts."""
    return f"cb-{task_id}-{uuid.uuid4().hex[:16]}"


def begin_attempt(session: Session, task_id: int, user: User | None, now: datetime, policy: CallbackPolicy, *,
                  dialler: str, extension: str | None = None, supervisor: bool = False,
                  owner_is_signed_in: bool | None = None) -> tuple[CallbackAttempt, Briefing]:
    """The attempt row (``dialling``), written before anything is dialled; raise
    :class:`CallbackRefused` when no call may be placed now.  ``user`` None: an automated
    attempt (voice callback).  Commit, then place the call with ``attempt.idempotency_key``."""
    task = _open_task(session, task_id)
    if task.needs_check is not None:
        raise CallbackRefused(Refusal.NEEDS_CHECK, task.needs_check.value)
    last = last_attempt(task)
    if live_attempt(task) is not None:
        raise CallbackRefused(Refusal.ATTEMPT_LIVE)
    if task.state is CallbackState.IN_PROGRESS and last is not None and last.result is CallbackAttemptResult.ANSWERED:
        raise CallbackRefused(Refusal.OUTCOME_PENDING)
    if state_at(task, now) is CallbackState.SCHEDULED:
        raise CallbackRefused(Refusal.NOT_DUE, task.due_at.isoformat())
    if do_not_call(session, task.phone) is not None:
        raise CallbackRefused(Refusal.DO_NOT_CALL)
    case = task.case
    if not is_open(now, best_time=_best_time(case) if case else BestTime.ANY,
                   not_before=case.callback_not_before if case else None, calendar=policy.calendar,
                   windows=policy.windows):
        opens = _first_opening(policy, now, case)
        raise CallbackRefused(Refusal.OUTSIDE_WINDOWS, opens.isoformat())
    if user is not None:
        if owner_is_signed_in is None:
            owner_is_signed_in = owner_signed_in(session, task, now)
        may_work(task, user, now, policy, supervisor=supervisor, owner_signed_in=owner_is_signed_in)
    brief = briefing(session, task)
    attempt = CallbackAttempt(task_id=task.id, idempotency_key=attempt_key(task.id), dialler=dialler,
                              operator_id=user.id if user else None, extension=extension,
                              answer_event_id=brief.answer_event_id, started_at=now)
    try:
        with session.begin_nested():
            task.attempts.append(attempt)
            session.flush()
    except IntegrityError:  # another attempt went live meanwhile (the partial unique index)
        raise CallbackRefused(Refusal.ATTEMPT_LIVE) from None
    task.state, task.updated_at = CallbackState.IN_PROGRESS, now
    if user is not None:
        task.held_by_id, task.held_at = user.id, now
    session.flush()
    log.info("callbacks.attempt_started", task_id=task.id, attempt=attempt.idempotency_key, dialler=dialler,
             operator=user.username if user else None)
    return attempt, brief


def attempt_by_key(session: Session, key: str) -> CallbackAttempt | None:
    return session.scalar(select(CallbackAttempt).where(CallbackAttempt.idempotency_key == key))


def settle_attempt(session: Session, key: str, result: CallbackAttemptResult, now: datetime,
                   policy: CallbackPolicy, *, settled_by: str, hangup_cause: int | None = None,
                   answered_at: datetime | None = None, linkedid: str | None = None,
                   recording: str | None = None) -> CallbackAttempt | None:
    """An attempt ended with ``result``: the task follows (retry, give up, check, or wait for
    the outcome of an answered call).  Settling an attempt already settled changes nothing
    (events and recovery may both report it); None when no attempt has ``key``."""
    # Locked (PostgreSQL): the dialler's events and the recovery settle an attempt one after the other.
    attempt = session.scalar(select(CallbackAttempt).where(CallbackAttempt.idempotency_key == key).with_for_update())
    if attempt is None:
        return None
    if linkedid and not attempt.linkedid:
        attempt.linkedid = linkedid
    if recording and not attempt.recording:
        attempt.recording = recording
    if attempt.ended_at is not None:
        return attempt
    attempt.ended_at, attempt.result, attempt.settled_by = now, result, settled_by
    attempt.hangup_cause = hangup_cause
    if answered_at is not None:
        attempt.answered_at = answered_at
    session.flush()
    task = attempt.task
    log.info("callbacks.attempt_settled", task_id=task.id, attempt=key, result=result.value, settled_by=settled_by,
             hangup_cause=hangup_cause)
    if task.state not in OPEN_STATES or result is CallbackAttemptResult.ANSWERED:
        return attempt  # an answered call waits for the operator's outcome
    _after_unreached(session, task, _retry_result(attempt), now, policy, hangup_cause=hangup_cause)
    return attempt


def call_ended(session: Session, key: str, now: datetime) -> CallbackAttempt | None:
    """The call of an answered attempt hung up: ``ended_at`` moves from the moment of the answer
    (when :func:`settle_attempt` settled it) to the hang-up, so the attempt tells how long it lasted."""
    attempt = attempt_by_key(session, key)
    if attempt is None or attempt.result is not CallbackAttemptResult.ANSWERED or attempt.ended_at is None:
        return attempt
    if now > attempt.ended_at:
        attempt.ended_at = now
        session.flush()
    return attempt


def _retry_result(attempt: CallbackAttempt) -> retry.AttemptResult:
    if attempt.outcome is CallbackOutcome.VOICEMAIL:
        return retry.AttemptResult.VOICEMAIL
    return retry.AttemptResult(attempt.result.value)


def _history(task: CallbackTask, without: CallbackAttempt | None) -> list[retry.AttemptResult]:
    return [_retry_result(a) for a in task.attempts
            if a is not without and a.result is not None and a.dialler != "sms"]


def _after_unreached(session: Session, task: CallbackTask, result: retry.AttemptResult, now: datetime,
                     policy: CallbackPolicy, *, hangup_cause: int | None) -> None:
    case = task.case
    current = last_attempt(task)
    step = retry.next_step(_history(task, current), result, now, hangup_cause=hangup_cause,
                           best_time=_best_time(case) if case else BestTime.ANY,
                           not_before=case.callback_not_before if case else None, policy=policy.retry,
                           windows=policy.windows, calendar=policy.calendar)
    task.held_by_id, task.held_at, task.updated_at = None, None, now
    if isinstance(step, retry.Retry):
        task.due_at, task.state = step.at, _state_for(step.at, now)
    elif isinstance(step, retry.CheckAttempt):
        task.state, task.needs_check = CallbackState.DUE, CallbackCheck.ATTEMPT
    elif isinstance(step, retry.CheckNumber):
        task.state, task.needs_check, task.completed_at = CallbackState.UNREACHABLE, CallbackCheck.NUMBER, now
        _timeline(session, task.case_id, CALLBACK_UNREACHABLE, now, {"task": task.id, "why": "check_number",
                                                                   "hangup_cause": step.hangup_cause})
    else:
        give_up(session, task, now, why=step.reason.value)
    session.flush()
    log.info("callbacks.next_step", task_id=task.id, step=type(step).__name__, state=task.state.value,
             due_at=task.due_at.isoformat())


def give_up(session: Session, task: CallbackTask, now: datetime, *, why: str) -> None:
    """The task is ``unreachable``; a caller who consented to SMS gets one (recorded here, sent by
    the SMS sender: at most one per task, the unique ``callback_messages.task_id``)."""
    task.state, task.completed_at, task.updated_at = CallbackState.UNREACHABLE, now, now
    _timeline(session, task.case_id, CALLBACK_UNREACHABLE, now, {"task": task.id, "why": why})
    case = task.case
    if case is not None and case.sms_consent and session.scalar(
            select(CallbackMessage.id).where(CallbackMessage.task_id == task.id)) is None:
        session.add(CallbackMessage(task_id=task.id, body="", created_at=now, status="recorded"))
    session.flush()


# ------------------------------------------------------------------- outcome


class OutcomeError(ValueError):
    """The outcome cannot be recorded as given; ``field`` names what to fix."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _check_outcome(outcome: str, satisfaction: int | None, text: str) -> CallbackOutcome:
    try:
        chosen = CallbackOutcome(outcome)
    except ValueError:
        chosen = None
    if chosen not in RECORDED_OUTCOMES:
        raise OutcomeError("outcome", "outcome must be one of " + ", ".join(o.value for o in RECORDED_OUTCOMES))
    if chosen is CallbackOutcome.INFORMED and satisfaction not in SATISFACTION_GRADES:
        raise OutcomeError("satisfaction", "informed needs the caller's satisfaction grade, 1 to 5")
    if chosen is not CallbackOutcome.INFORMED and satisfaction is not None:
        raise OutcomeError("satisfaction", "a satisfaction grade goes only with informed")
    if chosen is CallbackOutcome.FOLLOW_UP and not text.strip():
        raise OutcomeError("text", "follow_up needs the caller's further question as text")
    if chosen is not CallbackOutcome.FOLLOW_UP and text.strip():
        raise OutcomeError("text", "text (the further question) goes only with follow_up; use note")
    if len(text) > FOLLOW_UP_MAX:
        raise OutcomeError("text", f"text is longer than {FOLLOW_UP_MAX} characters")
    return chosen


def needs_review(task: CallbackTask) -> bool:
    """A poor grade (差评) flags the case for a supervisor's review."""
    return task.satisfaction is not None and task.satisfaction <= POOR_GRADE


def record_outcome(session: Session, task_id: int, user: User, now: datetime, policy: CallbackPolicy, *,
                   outcome: str, satisfaction: int | None = None, text: str = "", note: str = "") -> CallbackTask:
    """What the operator learnt on the answered call (or found when settling an unknown one).
    Raises :class:`OutcomeError` (what to fix) or :class:`CallbackRefused`; nothing is stored then."""
    chosen = _check_outcome(outcome, satisfaction, text)
    task = _open_task(session, task_id)
    attempt = last_attempt(task)
    reached = attempt is not None and (attempt.result in (CallbackAttemptResult.ANSWERED, CallbackAttemptResult.UNKNOWN)
                                       or (attempt.ended_at is None and attempt.answered_at is not None))
    if not reached:
        raise CallbackRefused(Refusal.NOT_DUE, "no answered attempt to record an outcome for")
    other = held_by_other(task, user, now)
    if other is not None and attempt.operator_id not in (None, user.id):
        raise CallbackRefused(Refusal.HELD_BY_OTHER, holder=_name(other))
    if chosen is CallbackOutcome.FOLLOW_UP:
        _post_follow_up(session, task, attempt, text.strip(), now)
    attempt.outcome, attempt.note = chosen, note.strip()[:NOTE_MAX]
    attempt.satisfaction = satisfaction
    if attempt.result is CallbackAttemptResult.UNKNOWN or attempt.result is None:
        attempt.result = CallbackAttemptResult.ANSWERED if chosen is not CallbackOutcome.VOICEMAIL else attempt.result
        attempt.settled_by = "person"
        attempt.ended_at = attempt.ended_at or now
    task.needs_check = None
    task.note = note.strip()[:NOTE_MAX]
    _timeline(session, task.case_id, CALLBACK_OUTCOME, now,
              {"task": task.id, "outcome": chosen.value, "satisfaction": satisfaction}, user)
    if chosen is CallbackOutcome.VOICEMAIL:
        attempt.result = attempt.result or CallbackAttemptResult.ANSWERED
        session.flush()
        _after_unreached(session, task, retry.AttemptResult.VOICEMAIL, now, policy, hangup_cause=None)
        return task
    if chosen is CallbackOutcome.DO_NOT_CALL:
        forbid_number(session, task.phone, task_id=task.id, by=user, note=note, now=now)
    if chosen is CallbackOutcome.WRONG_NUMBER:
        task.state, task.needs_check = CallbackState.UNREACHABLE, CallbackCheck.NUMBER
    else:
        task.state = CallbackState.DONE
    task.outcome, task.satisfaction = chosen, satisfaction
    task.completed_at, task.updated_at, task.held_by_id, task.held_at = now, now, None, None
    if chosen is not CallbackOutcome.WRONG_NUMBER:
        _supersede_served(session, task, attempt, now)
    session.flush()
    log.info("callbacks.outcome", task_id=task.id, outcome=chosen.value, satisfaction=satisfaction,
             operator=user.username)
    return task


def _supersede_served(session: Session, task: CallbackTask, attempt: CallbackAttempt, now: datetime) -> None:
    """The caller was told the answer the attempt's briefing showed: the case's other waiting answer
    tasks for that answer or an older one (one made while the call was on) are superseded."""
    if task.case_id is None or attempt.answer_event_id is None:
        return
    for other in session.scalars(select(CallbackTask).where(
            CallbackTask.case_id == task.case_id, CallbackTask.id != task.id,
            CallbackTask.reason == CallbackReason.ANSWER,
            CallbackTask.state.in_((CallbackState.SCHEDULED, CallbackState.DUE)),
            CallbackTask.answer_event_id <= attempt.answer_event_id).with_for_update()):
        other.state, other.outcome, other.completed_at, other.updated_at = (
            CallbackState.DONE, CallbackOutcome.SUPERSEDED, now, now)


def _post_follow_up(session: Session, task: CallbackTask, attempt: CallbackAttempt, text: str, now: datetime) -> None:
    """The caller's further question, into the same forum thread under the hotline account (the
    forum outbox sends it once; the unit's answer to it brings a new task)."""
    case = task.case
    if case is None:
        raise OutcomeError("outcome", "follow_up needs a case: file one from this call first")
    try:
        check_public(case, text)
    except PrivateDataInPost as exc:
        raise OutcomeError("text", f"{exc}; leave the phone number and full name out of the question") from None
    body = f"{case.caller_surname}{case.caller_honorific.value}: {text}"  # as the forum names the caller
    session.add(ForumOutbox(case_id=case.id, operation=OutboxOperation.POST_FOLLOW_UP.value,
                            idempotency_key=f"{case.number}:follow-up:{attempt.id}", payload={"text": body},
                            next_attempt_at=now, created_at=now))


def heard_answer(session: Session, task_id: int, now: datetime, *, via: str) -> CallbackTask | None:
    """The caller heard the answer without a person (status line, automated voice callback): the
    task is done, ``informed`` without a grade.  None when it was no longer open."""
    task = session.get(CallbackTask, task_id)
    if task is None or task.state not in OPEN_STATES or (via == "status_line" and live_attempt(task) is not None):
        return None
    task.state, task.outcome, task.satisfaction = CallbackState.DONE, CallbackOutcome.INFORMED, None
    task.note = task.note or via
    task.completed_at, task.updated_at, task.held_by_id, task.held_at = now, now, None, None
    _timeline(session, task.case_id, CALLBACK_OUTCOME, now, {"task": task.id, "outcome": "informed", "via": via})
    session.flush()
    return task


def correct_number(session: Session, task_id: int, phone: str, user: User, now: datetime,
                   policy: CallbackPolicy) -> CallbackTask:
    """After ``check_number``: the number as checked (or the same one, confirmed); due again."""
    task = session.get(CallbackTask, task_id)
    if task is None:
        raise CallbackRefused(Refusal.NOT_FOUND)
    if task.needs_check is not CallbackCheck.NUMBER:
        raise CallbackRefused(Refusal.CLOSED, "the number was not put in question")
    number = normalise_phone(phone)
    if number is None:
        raise OutcomeError("phone", "not a phone number; type it as the caller gave it, e.g. 13912345678")
    due_at = _first_opening(policy, now, task.case)
    task.phone, task.needs_check, task.state, task.due_at = number, None, _state_for(due_at, now), due_at
    task.outcome, task.completed_at, task.updated_at = None, None, now
    session.flush()
    return task


def utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)
