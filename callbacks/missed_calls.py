"""Missed calls become callback tasks of reason ``missed_call`` (the desk's old shared list of
calls to call back, carried over into the tasks' windows, retries, attempts and outcomes).

A missed call: disposition ``abandoned`` (hung up in the queue) or ``after_hours_message``,
ended, with a caller number, no case filed from it and not handled on the old list.  Each
becomes one task (:func:`callbacks.tasks.create_for_missed_call`, unique per call).

The sweep reads the calls through a durable cursor, the ``cursors`` row ``missed-calls``,
moved in the same transaction as the tasks it made.  It holds the newest ``calls.updated_at``
examined: the call log writes ``updated_at`` on every change, so a call still in progress at
one sweep is picked when its end is written, and one recovered from Asterisk's CDR hours later
(with an old ``ended_at``) is picked when it is stored.  Each sweep looks again at the calls
written within :data:`OVERLAP` before the cursor, so a write that committed after a younger one
is not passed over; a call that has a task makes no second one.  Calls older than
:data:`MISSED_CALL_DAYS` make no task, on every run: the first run (no cursor yet) so carries
over what the old list showed.  The cursor also holds the newest ``cases.created_at`` of a case
filed from a call, read the same way.

A case filed from the call (the form's ``call_linkedid``, i.e. ``cases.call_id``) links the
task and closes it: the caller was reached and their problem filed, the case's answer brings
its own task.  A call handled on the old list closes its task too.  :func:`close_without_case`
is the old "done without a case".

Everything here runs in the caller's transaction; :class:`MissedCallSweeper` is the daemon's
link that runs the sweep at start, every :data:`SWEEP_EVERY_S` seconds, and soon after a call
ends or a case is filed (live events).  The scheduler may call :func:`sweep_missed_calls` too.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from bridge.cases.takes import holder as take_holder
from bridge.db.engine import Database
from bridge.db.models import (
    Call,
    CallbackAttemptResult,
    CallbackOutcome,
    CallbackReason,
    CallbackState,
    CallbackTask,
    CallDisposition,
    Case,
    CaseEvent,
    Cursor,
    User,
    utcnow,
)
from bridge.live import LiveEvent, LiveEvents
from callbacks.tasks import (
    CALLBACK_OUTCOME,
    HOLD_EXPIRES_AFTER,
    NOTE_MAX,
    OPEN_STATES,
    CallbackPolicy,
    CallbackRefused,
    OutcomeError,
    Refusal,
    create_for_missed_call,
    held_by_other,
    live_attempt,
    may_work,
    owner_signed_in,
)

log = structlog.get_logger(__name__)

CURSOR_NAME = "missed-calls"
MISSED_DISPOSITIONS = (CallDisposition.ABANDONED, CallDisposition.AFTER_HOURS_MESSAGE)
# The old list's window (CALLBACK_LIST_DAYS of bridge.desk.queries): an older call makes no task.
MISSED_CALL_DAYS = 14
# A write committed this long after a younger one is still seen (the call log's and the CDR
# recovery's transactions are far shorter).
OVERLAP = timedelta(minutes=15)
SWEEP_EVERY_S = 5.0
# The call log writes a call's end about a second after the live "ended" event (it coalesces).
AFTER_CALL_ENDED_S = 1.5
NOTE_CASE_FILED = "case filed"


# --------------------------------------------------------------------- sweep


def sweep_missed_calls(session: Session, policy: CallbackPolicy, now: datetime) -> list[CallbackTask]:
    """One task per missed call not seen before; the tasks whose call has since had a case filed
    from it, or was handled on the old list, are closed.  Returns the tasks made.  Moves the
    cursor in this transaction (locked on PostgreSQL: two sweeps at once run one after the other)."""
    cursor = _cursor(session)
    seen = _Position.of(cursor)
    window = now - timedelta(days=MISSED_CALL_DAYS)
    rows = _missed_calls_written(session, window, seen.calls)
    filed = _calls_with_a_case(session, [call for call, task in rows if task is None])
    created = []
    for call, task in rows:
        if task is not None:
            if call.handled_at is not None and task.state in OPEN_STATES and task.case_id is None:
                _close(session, task, now, note=call.handled_note or "")  # done on the old list meanwhile
            continue
        if call.handled_at is not None or call.id in filed:
            continue
        task = create_for_missed_call(session, call, policy, now)
        if task is None:
            log.info("callbacks.missed_call_no_task", linkedid=call.linkedid, why="do_not_call")
            continue
        _carry_the_take(session, task, call, now)
        created.append(task)
    cases = _cases_filed_from_calls(session, window, seen.cases)
    link_filed_cases(session, cases, now)
    seen = _Position(calls=max([seen.calls, *(call.updated_at for call, _ in rows)], key=_order),
                     cases=max([seen.cases, *(case.created_at for case in cases)], key=_order))
    cursor.position, cursor.updated_at = seen.text(), now
    session.flush()
    return created


@dataclass(frozen=True)
class _Position:
    """The cursor: the newest ``calls.updated_at`` and ``cases.created_at`` (of a case filed from a
    call) examined; None before the first run."""

    calls: datetime | None = None
    cases: datetime | None = None

    @classmethod
    def of(cls, cursor: Cursor) -> _Position:
        if not cursor.position:
            return cls()
        stored = json.loads(cursor.position)
        return cls(*(datetime.fromisoformat(stored[key]) if stored.get(key) else None for key in ("calls", "cases")))

    def text(self) -> str:
        return json.dumps({"calls": self.calls.isoformat() if self.calls else None,
                           "cases": self.cases.isoformat() if self.cases else None})


def _order(moment: datetime | None) -> datetime:
    return moment or datetime.min.replace(tzinfo=timezone.utc)


def _cursor(session: Session) -> Cursor:
    cursor = session.get(Cursor, CURSOR_NAME, with_for_update=True, populate_existing=True)
    if cursor is None:  # the first run; a concurrent first run fails on the primary key and is retried
        cursor = Cursor(name=CURSOR_NAME, position=None)
        session.add(cursor)
        session.flush()
    return cursor


def _missed_calls_written(session: Session, window: datetime,
                          after: datetime | None) -> list[tuple[Call, CallbackTask | None]]:
    """The missed calls of the window written since ``after`` (less the overlap), with their task."""
    query = (select(Call, CallbackTask).outerjoin(CallbackTask, CallbackTask.call_id == Call.id)
             .where(Call.disposition.in_(MISSED_DISPOSITIONS), Call.ended_at.is_not(None), Call.caller_number != "",
                    Call.arrived_at >= window)
             .order_by(Call.updated_at, Call.id))
    if after is not None:
        query = query.where(Call.updated_at > after - OVERLAP)
    return [(call, task) for call, task in session.execute(query)]


def _calls_with_a_case(session: Session, calls: list[Call]) -> set[int]:
    if not calls:
        return set()
    # A case filed from a call is younger than the call: the bound lets the index on created_at serve.
    oldest = min(call.arrived_at for call in calls)
    ids = [call.id for call in calls]
    found: set[int] = set()
    for start in range(0, len(ids), 500):
        found.update(session.scalars(select(Case.call_id).where(
            Case.call_id.in_(ids[start:start + 500]), Case.created_at >= oldest)))
    return found


def _cases_filed_from_calls(session: Session, window: datetime, after: datetime | None) -> list[Case]:
    since = window if after is None else after - OVERLAP
    return list(session.scalars(select(Case).where(Case.call_id.is_not(None), Case.created_at > since)
                                .order_by(Case.created_at, Case.id)))


def _carry_the_take(session: Session, task: CallbackTask, call: Call, now: datetime) -> None:
    """A call an operator took on the old list (and whose take still holds) stays theirs: the
    task's hold starts now (the task's own rule, HOLD_EXPIRES_AFTER, from the upgrade on)."""
    if call.taken_by_id is None or task.held_by_id is not None:
        return
    taker = take_holder(session, call.id, now)
    if taker is not None:
        task.held_by_id, task.held_at = taker.id, now


def link_filed_cases(session: Session, cases: list[Case], now: datetime) -> list[CallbackTask]:
    """The missed-call task of each case's call gets the case (the first one filed from the call);
    an open one is closed: done, ``handled``, the caller's problem filed (the case's answer brings a
    task of its own).  Returns the tasks linked."""
    by_call = {}
    for case in cases:
        by_call.setdefault(case.call_id, case)
    if not by_call:
        return []
    linked = []
    for task in session.scalars(select(CallbackTask).where(
            CallbackTask.call_id.in_(list(by_call)), CallbackTask.reason == CallbackReason.MISSED_CALL,
            CallbackTask.case_id.is_(None))):
        case = by_call[task.call_id]
        if task.state in OPEN_STATES:
            _close(session, task, now, note=NOTE_CASE_FILED, case=case)
        else:
            task.case_id, task.updated_at = case.id, now
        linked.append(task)
    return linked


def _close(session: Session, task: CallbackTask, now: datetime, *, note: str, case: Case | None = None,
           by: User | None = None) -> None:
    task.state, task.outcome, task.note = CallbackState.DONE, CallbackOutcome.HANDLED, note[:NOTE_MAX]
    task.needs_check, task.completed_at, task.updated_at, task.held_by_id, task.held_at = None, now, now, None, None
    if case is not None:
        task.case_id = case.id
        session.add(CaseEvent(case_id=case.id, at=now, kind=CALLBACK_OUTCOME, actor="callbacks",
                              detail={"task": task.id, "outcome": CallbackOutcome.HANDLED.value,
                                      "reason": CallbackReason.MISSED_CALL.value, "via": "case_filed"}))
    session.flush()
    log.info("callbacks.missed_call_closed", task_id=task.id, outcome="handled",
             case_number=case.number if case is not None else None, operator=by.username if by else None)


# ------------------------------------------------------------ by an operator


def task_for_call(session: Session, linkedid: str) -> CallbackTask | None:
    """The missed-call task of the call ``linkedid`` (the old list's rows are named by it)."""
    return session.scalar(select(CallbackTask).join(Call, Call.id == CallbackTask.call_id)
                          .where(Call.linkedid == linkedid))


def close_without_case(session: Session, task_id: int, user: User, note: str, now: datetime,
                       policy: CallbackPolicy | None = None, *, supervisor: bool = False) -> CallbackTask:
    """The old "done without a case": the missed call was dealt with (``note`` says how, required);
    the task is done with outcome ``handled``, and the call shows it in the caller's history.
    With ``policy``, another operator's turn is respected (:func:`callbacks.tasks.may_work`).
    Raises :class:`OutcomeError` (what to fix) or :class:`CallbackRefused`; nothing is stored then."""
    note = note.strip()
    if not note:
        raise OutcomeError("note", "say how the call was handled: the note is required")
    if len(note) > NOTE_MAX:
        raise OutcomeError("note", f"the note is longer than {NOTE_MAX} characters")
    task = session.get(CallbackTask, task_id)
    if task is None:
        raise CallbackRefused(Refusal.NOT_FOUND)
    if task.reason is not CallbackReason.MISSED_CALL:
        raise OutcomeError("task", "only a missed call's task is closed without a case; record the outcome")
    if task.state not in OPEN_STATES:
        raise CallbackRefused(Refusal.CLOSED, task.state.value)
    if live_attempt(task) is not None:
        raise CallbackRefused(Refusal.ATTEMPT_LIVE)
    other = held_by_other(task, user, now)
    if other is not None:
        raise CallbackRefused(Refusal.HELD_BY_OTHER, holder=other.display_name or other.username)
    if policy is not None:
        may_work(task, user, now, policy, supervisor=supervisor,
                 owner_signed_in=owner_signed_in(session, task, now))
    # One conditional UPDATE: of two operators closing at once, one does.
    won = session.execute(update(CallbackTask).where(
        CallbackTask.id == task_id, CallbackTask.state.in_(OPEN_STATES),
        or_(CallbackTask.held_by_id.is_(None), CallbackTask.held_by_id == user.id,
            CallbackTask.held_at < now - HOLD_EXPIRES_AFTER))
        .values(state=CallbackState.DONE, updated_at=now).execution_options(synchronize_session=False)).rowcount
    session.refresh(task)
    if not won:
        raise CallbackRefused(Refusal.HELD_BY_OTHER if task.state in OPEN_STATES else Refusal.CLOSED)
    _close(session, task, now, note=note, by=user)
    reached = task.attempts[-1] if task.attempts else None
    if reached is not None and reached.result is CallbackAttemptResult.ANSWERED and reached.outcome is None:
        reached.outcome, reached.note = CallbackOutcome.HANDLED, note  # the answered callback's outcome
    call = task.call
    if call is not None and call.handled_at is None:  # the caller's earlier calls show how it was handled
        call.handled_at, call.handled_note, call.taken_by_id, call.taken_at = now, note, user.id, now
    session.flush()
    return task


# -------------------------------------------------------------- the daemon


class MissedCallSweeper:
    """The link that runs the sweep: at start, every ``every_s`` seconds, and soon after a call
    ends or a case is filed (the live events of the PBX and the desk).  A failed sweep (the
    database away) is logged and tried at the next turn; nothing is lost, the cursor is durable."""

    def __init__(self, db: Database, live: LiveEvents, policy: CallbackPolicy, *,
                 clock: Callable[[], datetime] = utcnow, every_s: float = SWEEP_EVERY_S,
                 after_call_ended_s: float = AFTER_CALL_ENDED_S) -> None:
        self.db, self.live, self.policy, self.clock = db, live, policy, clock
        self.every_s, self.after_call_ended_s = every_s, after_call_ended_s
        self.sweeps = 0
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(), name="missed-calls"),
                       asyncio.create_task(self._follow_live(), name="missed-calls-live")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks = []

    def wake(self) -> None:
        """Sweep now (from the event loop's thread)."""
        self._wake.set()

    async def sweep(self) -> list[tuple[int, str]]:
        """One sweep in a worker thread: the (task id, linkedid) of the tasks made."""
        def work(session: Session) -> list[tuple[int, str]]:
            return [(task.id, task.call.linkedid) for task in sweep_missed_calls(session, self.policy, self.clock())]

        made = await self.db.run_in_session(work)
        self.sweeps += 1
        for task_id, linkedid in made:
            self.live.publish(LiveEvent("callbacks", "changed", {"linkedid": linkedid, "kind": "missed_call",
                                                                 "task": task_id}))
        if made:
            log.info("callbacks.missed_calls_swept", tasks=len(made))
        return made

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.sweep()
            except Exception as exc:  # noqa: BLE001 - the next turn tries again from the cursor
                log.warning("callbacks.missed_calls_sweep_failed", error=repr(exc), retry_in_s=self.every_s)
            try:
                await asyncio.wait_for(self._wake.wait(), self.every_s)
            except asyncio.TimeoutError:
                pass

    async def _follow_live(self) -> None:
        loop = asyncio.get_running_loop()
        async with self.live.subscribe() as queue:
            while True:
                event = await queue.get()
                if event.topic == "call" and event.kind == "ended":
                    loop.call_later(self.after_call_ended_s, self._wake.set)
                elif event.topic == "case" and event.kind == "filed":
                    self._wake.set()
