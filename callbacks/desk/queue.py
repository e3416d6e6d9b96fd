"""What the callback queue shows (plain synchronous reads, run through ``db.run``).

For an operator: *mine* (tasks they own or hold), then *the pool* (tasks whose owner's turn is
over, or that have no owner), the caller who has waited longest first
(:func:`callbacks.ownership.pool_order`).  A supervisor sees every open task besides (owners'
turns, tasks waiting for a check), the tasks closed lately that need their eye (not reached,
a poor grade) and the do-not-call list.  Each task carries what the operator needs to say:
the newest answer and its thread, the caller's surname and honorific, the case's timeline and
the earlier attempts (:func:`callbacks.tasks.briefing`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, selectinload

from bridge.cases.timeline import timeline_view, unit_codes, unit_names
from bridge.cases.validation import public_name
from bridge.pbx.waits import menu_and_queue
from bridge.db.models import (
    CallbackAttempt,
    CallbackAttemptResult,
    CallbackReason,
    CallbackState,
    CallbackTask,
    Case,
    DoNotCall,
    Role,
    User,
)
from callbacks import tasks
from callbacks.ownership import Pool, PoolEntry, pool_order
from callbacks.tasks import HOLD_EXPIRES_AFTER, OPEN_STATES, CallbackPolicy

SUPERVISING = (Role.SUPERVISOR, Role.ADMIN)
# Closed tasks a supervisor still sees: not reached, or graded poorly, this recently.
CLOSED_SHOWN_FOR = timedelta(days=14)
LIMIT = 200


@dataclass(frozen=True)
class Viewer:
    id: int
    role: Role

    @property
    def supervisor(self) -> bool:
        return self.role in SUPERVISING


def _loaded():
    return (selectinload(CallbackTask.case).selectinload(Case.events), selectinload(CallbackTask.call),
            selectinload(CallbackTask.owner), selectinload(CallbackTask.held_by),
            selectinload(CallbackTask.attempts).selectinload(CallbackAttempt.operator))


def _holder(task: CallbackTask, now: datetime) -> User | None:
    """Who holds the task now: a live attempt's operator, or a hold not yet expired."""
    if task.held_by_id is None:
        return None
    if tasks.live_attempt(task) is not None or (task.held_at is not None and now - task.held_at < HOLD_EXPIRES_AFTER):
        return task.held_by
    return None


def outcome_pending(task: CallbackTask) -> bool:
    """The last attempt reached someone (or its result was lost) and its outcome is not recorded yet."""
    last = tasks.last_attempt(task)
    if last is None or last.outcome is not None or task.state not in OPEN_STATES:
        return False
    if last.result in (CallbackAttemptResult.ANSWERED, CallbackAttemptResult.UNKNOWN):
        return True
    return last.ended_at is None and last.answered_at is not None


def _name(user: User | None) -> str | None:
    return None if user is None else (user.display_name or user.username)


def _attempt_view(attempt: CallbackAttempt) -> dict[str, Any]:
    return {"id": attempt.id, "started_at": attempt.started_at, "ended_at": attempt.ended_at,
            "result": attempt.result.value if attempt.result else "dialling", "operator": _name(attempt.operator),
            "outcome": attempt.outcome.value if attempt.outcome else None, "satisfaction": attempt.satisfaction,
            "note": attempt.note, "linkedid": attempt.linkedid,
            "recording": attempt.recording}


def _case_view(session: Session, task: CallbackTask, tr, names: dict[str, str]) -> dict[str, Any] | None:
    case = task.case
    if case is None:
        return None
    brief = tasks.briefing(session, task)
    entries = [{"at": e.at, "kind": e.kind, "actor": e.actor, "detail": e.detail} for e in case.events]
    return {"number": case.number, "title": case.title, "state": case.state.value,
            "caller": public_name(case.caller_surname, case.caller_honorific), "thread_url": brief.thread_url,
            "answer_text": brief.answer_text, "answer_unit": names.get(brief.answer_unit or "", brief.answer_unit),
            "newer_answer": brief.newer_answer, "moved_since": list(dict.fromkeys(brief.moved_since)),
            "timeline": timeline_view(entries, names, tr)}


def _call_view(session: Session, task: CallbackTask) -> dict[str, Any] | None:
    call = task.call
    if call is None:
        return None
    filed = session.scalar(select(Case.number).where(Case.call_id == call.id).order_by(Case.id).limit(1))
    return {"linkedid": call.linkedid, "arrived_at": call.arrived_at, "caller_name": call.caller_name,
            "disposition": call.disposition.value, "queue_wait_s": call.queue_wait_s,
            **dict(zip(("menu_s", "queue_s"), menu_and_queue(call.arrived_at, call.queue_wait_s, call.answered_at,
                                                             call.ended_at))),
            "audio": [call.message_file, call.recording], "filed_case": filed}


def task_view(session: Session, task: CallbackTask, viewer: Viewer, now: datetime, policy: CallbackPolicy, tr,
              names: dict[str, str], signed_in: set[int]) -> dict[str, Any]:
    holder = _holder(task, now)
    live = tasks.live_attempt(task)
    pending = outcome_pending(task)
    state = tasks.state_at(task, now)
    in_pool = isinstance(tasks.turn(task, now, policy, owner_signed_in=task.owner_id in signed_in), Pool)
    held_by_me = holder is not None and holder.id == viewer.id
    free = holder is None or held_by_me
    callable_now = (state in (CallbackState.DUE, CallbackState.IN_PROGRESS) and live is None and not pending
                    and task.needs_check is None and free)
    return {
        "id": task.id, "reason": task.reason.value, "state": state.value, "due_at": task.due_at,
        "waiting_since": task.waiting_since, "waited_s": (now - task.waiting_since).total_seconds(),
        "phone": task.phone, "owner": _name(task.owner), "owner_id": task.owner_id,
        "held_by": _name(holder), "held_by_me": held_by_me, "in_pool": in_pool,
        "needs_check": task.needs_check.value if task.needs_check else None,
        "outcome": task.outcome.value if task.outcome else None, "satisfaction": task.satisfaction,
        "poor_grade": tasks.needs_review(task), "note": task.note, "completed_at": task.completed_at,
        "live_attempt": live is not None, "outcome_pending": pending,
        "may_take": in_pool and holder is None and task.state in OPEN_STATES,
        "may_call": callable_now and (in_pool or task.owner_id == viewer.id or held_by_me or viewer.supervisor),
        "may_release": viewer.supervisor and task.state in OPEN_STATES and live is None,
        # a missed call reached (or not) is closed with a note, or a case is filed from it
        "may_close_call": task.reason is CallbackReason.MISSED_CALL and task.state in OPEN_STATES and live is None
                          and free,
        "case": _case_view(session, task, tr, names), "call": _call_view(session, task),
        "attempts": [_attempt_view(a) for a in task.attempts],
    }


def _names(session: Session, found: list[CallbackTask]) -> dict[str, str]:
    codes: set[str] = set()
    for task in found:
        if task.case is not None:
            codes |= unit_codes({"detail": e.detail} for e in task.case.events)
    return unit_names(session, codes)


def _sections(found: list[CallbackTask], viewer: Viewer, now: datetime, policy: CallbackPolicy, signed_in: set[int]
              ) -> tuple[list[CallbackTask], list[CallbackTask], list[CallbackTask]]:
    """Open tasks as ``mine``, ``pool`` (longest waiting first) and, for a supervisor, ``others``."""
    mine, pool, others = [], [], []
    for task in found:  # (a task held by the viewer whose hold expired falls back to the pool's rule)
        holder = _holder(task, now)
        if task.owner_id == viewer.id or (holder is not None and holder.id == viewer.id):
            mine.append(task)
        elif task.needs_check is None and isinstance(
                tasks.turn(task, now, policy, owner_signed_in=task.owner_id in signed_in), Pool):
            pool.append(task)
        elif viewer.supervisor:
            others.append(task)
    by_id = {t.id: t for t in pool}
    ordered = [by_id[e.task_id] for e in pool_order(PoolEntry(t.id, t.waiting_since) for t in pool)]
    return sorted(mine, key=lambda t: (t.due_at, t.id)), ordered, others


def queue(session: Session, viewer: Viewer, now: datetime, policy: CallbackPolicy, tr) -> dict[str, Any]:
    """Everything the queue page shows ``viewer`` at ``now``: their own open tasks all (up to
    :data:`LIMIT`), and of the others the :data:`LIMIT` longest waiting (the pool's order)."""
    open_tasks = select(CallbackTask).options(*_loaded()).where(CallbackTask.state.in_(OPEN_STATES))
    theirs = or_(CallbackTask.owner_id == viewer.id, CallbackTask.held_by_id == viewer.id)
    not_theirs = and_(or_(CallbackTask.owner_id.is_(None), CallbackTask.owner_id != viewer.id),
                      or_(CallbackTask.held_by_id.is_(None), CallbackTask.held_by_id != viewer.id))  # NULL-safe
    found = list(session.scalars(open_tasks.where(theirs).order_by(CallbackTask.due_at, CallbackTask.id)
                                 .limit(LIMIT)))
    found += session.scalars(open_tasks.where(not_theirs).order_by(CallbackTask.waiting_since, CallbackTask.id)
                             .limit(LIMIT))
    closed: list[CallbackTask] = []
    if viewer.supervisor:
        closed = list(session.scalars(select(CallbackTask).options(*_loaded()).where(
            CallbackTask.completed_at >= now - CLOSED_SHOWN_FOR,
            or_(CallbackTask.state == CallbackState.UNREACHABLE,
                CallbackTask.satisfaction <= tasks.POOR_GRADE)).order_by(CallbackTask.completed_at.desc())
            .limit(LIMIT)))
    names = _names(session, found + closed)
    signed_in = tasks.signed_in_owners(session, now)  # a signed-out owner's task is the pool's at once
    mine, pool, others = _sections(found, viewer, now, policy, signed_in)

    def views(group: list[CallbackTask]) -> list[dict[str, Any]]:
        return [task_view(session, t, viewer, now, policy, tr, names, signed_in) for t in group]

    result: dict[str, Any] = {"mine": views(mine), "pool": views(pool), "others": views(others),
                              "closed": views(closed), "do_not_call": [], "operators": []}
    if viewer.supervisor:
        result["do_not_call"] = do_not_call_list(session)
        result["operators"] = [{"id": u.id, "name": _name(u)} for u in session.scalars(
            select(User).where(User.role.in_((Role.OPERATOR, *SUPERVISING)), User.disabled_at.is_(None))
            .order_by(User.username))]
    return result


def take_task(session: Session, task_id: int, user: User, now: datetime, policy: CallbackPolicy, *,
              supervisor: bool) -> CallbackTask:
    """``user`` takes the task; a missed call's task takes its call too, so that nobody else files a
    case from the call meanwhile (the filing rule of :mod:`bridge.cases.takes`, as on the old list)."""
    task = tasks.take(session, task_id, user, now, policy, supervisor=supervisor)
    call = task.call
    if call is not None and call.handled_at is None:
        call.taken_by_id, call.taken_at = user.id, now
        session.flush()
    return task


def release_task(session: Session, task_id: int, now: datetime) -> CallbackTask:
    """A supervisor puts the task in the pool (and a missed call's call back for anyone to file)."""
    task = tasks.release(session, task_id, now)
    call = task.call
    if call is not None and call.handled_at is None:
        call.taken_by_id, call.taken_at = None, None
        session.flush()
    return task


def do_not_call_list(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(select(DoNotCall, User).outerjoin(User, User.id == DoNotCall.set_by_id)
                           .where(DoNotCall.lifted_at.is_(None)).order_by(DoNotCall.set_at.desc()).limit(LIMIT))
    return [{"id": entry.id, "phone": entry.phone, "set_at": entry.set_at, "set_by": _name(user),
             "note": entry.note} for entry, user in rows]


def lift(session: Session, entry_id: int, user_id: int, now: datetime) -> bool:
    """A supervisor lifts the do-not-call entry ``entry_id`` (False: none active with that id)."""
    entry = session.get(DoNotCall, entry_id)
    if entry is None or entry.lifted_at is not None:
        return False
    return tasks.lift_do_not_call(session, entry.phone, by=session.get(User, user_id), now=now)


__all__ = ["Viewer", "do_not_call_list", "lift", "outcome_pending", "queue", "release_task", "take_task",
           "task_view"]
