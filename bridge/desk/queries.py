"""What the desk's pages read from the database (plain synchronous functions, run via ``db.run``)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session

from bridge.cases.takes import TAKEN_EXPIRES_AFTER, take_holds  # noqa: F401 - the list's rule, named here too
from bridge.cases.validation import normalise_phone
from bridge.db.models import Call, CallDisposition, Case, Department, Role, User

DESK_ROLES = (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)
HISTORY_LIMIT = 5
CALLBACK_LIST_DAYS = 14
DONE_LIST_LIMIT = 100


@dataclass(frozen=True)
class DeskUser:
    id: int
    username: str
    display_name: str
    role: Role
    extension: str | None  # the one chosen at sign-in

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def units(session: Session) -> list[dict]:
    """Units in service, for the form's search box (name, pinyin initials, keywords)."""
    rows = session.scalars(select(Department).where(Department.retired_at.is_(None))
                           .order_by(Department.kind, Department.code))
    return [{"code": d.code, "name": d.name, "initials": d.pinyin_initials, "keywords": d.keywords}
            for d in rows]


def _phone_condition(column, number: str):
    e164 = normalise_phone(number)
    values = {number.strip()}
    if e164:
        values |= {e164, e164.removeprefix("+86"), "0" + e164.removeprefix("+86")}
    return column.in_(sorted(v for v in values if v))


def caller_history(session: Session, number: str | None, *, exclude_linkedid: str | None = None,
                   limit: int = HISTORY_LIMIT) -> dict:
    """This number's earlier calls and cases (newest first), and the units of its cases."""
    if not number or not number.strip():
        return {"calls": [], "cases": [], "units": []}
    calls_q = (select(Call, User).outerjoin(User, User.id == Call.taken_by_id)
               .where(_phone_condition(Call.caller_number, number)))
    if exclude_linkedid:
        calls_q = calls_q.where(Call.linkedid != exclude_linkedid)
    calls = list(session.execute(calls_q.order_by(Call.arrived_at.desc()).limit(limit)))
    e164 = normalise_phone(number)
    cases: list[Case] = []
    if e164:
        cases = list(session.scalars(
            select(Case).join(Case.department)
            .where(or_(Case.caller_phone == e164, Case.caller_phone_alt == e164))
            .order_by(Case.created_at.desc()).limit(limit)))
    seen: dict[str, str] = {}
    for case in cases:
        seen.setdefault(case.department.code, case.department.name)
    return {
        "calls": [{"linkedid": c.linkedid, "arrived_at": c.arrived_at, "disposition": c.disposition.value,
                   "hangup_cause": c.hangup_cause, "hangup_cause_text": c.hangup_cause_text,
                   "talk_s": c.talk_s, **_handled(c, u)} for c, u in calls],
        "cases": [{"number": c.number, "title": c.title, "state": c.state.value, "created_at": c.created_at,
                   "department": c.department.code, "department_name": c.department.name} for c in cases],
        "units": [{"code": code, "name": name} for code, name in seen.items()],
    }


def call_by_linkedid(session: Session, linkedid: str) -> dict | None:
    call = session.scalar(select(Call).where(Call.linkedid == linkedid))
    if call is None:
        return None
    return {"linkedid": call.linkedid, "caller_number": call.caller_number, "caller_name": call.caller_name,
            "arrived_at": call.arrived_at, "recording": call.recording, "message_file": call.message_file,
            "disposition": call.disposition.value}


CALLBACK_DISPOSITIONS = (CallDisposition.ABANDONED, CallDisposition.AFTER_HOURS_MESSAGE)
NOTE_MAX = 2000


def _handled(call: Call, taker: User | None) -> dict:
    """How a call was done without a case: when, by whom (who had taken it) and the note; None if not done."""
    done = call.handled_at is not None
    return {"handled_at": call.handled_at, "handled_note": call.handled_note if done else None,
            "handled_by": (taker.display_name or taker.username) if done and taker is not None else None}


def _on_the_list():
    """The conditions for a call on the shared list: unanswered or a message, no case, not done."""
    has_case = exists().where(Case.call_id == Call.id)
    return (Call.disposition.in_(CALLBACK_DISPOSITIONS), Call.handled_at.is_(None), ~has_case)


def callback_list(session: Session, now: datetime, days: int = CALLBACK_LIST_DAYS) -> list[dict]:
    """Calls that ended unanswered and after-hours messages with no case filed from them yet and not
    done without a case; with who took each (``taken_by_id`` / ``taken_by_name`` / ``taken_at``, None
    when free, or when the take is older than TAKEN_EXPIRES_AFTER: then it is back on the list)."""
    rows = session.execute(
        select(Call, User).outerjoin(User, and_(User.id == Call.taken_by_id, take_holds(now)))
        .where(*_on_the_list(), Call.arrived_at >= now - timedelta(days=days))
        .order_by(Call.arrived_at.desc()).limit(200))
    return [{"linkedid": c.linkedid, "caller_number": c.caller_number, "caller_name": c.caller_name,
             "arrived_at": c.arrived_at, "disposition": c.disposition.value, "queue_wait_s": c.queue_wait_s,
             "has_audio": bool(c.message_file or c.recording), "taken_by_id": u.id if u is not None else None,
             "taken_by_name": (u.display_name or u.username) if u is not None else None,
             "taken_at": c.taken_at if u is not None else None}
            for c, u in rows]


def done_list(session: Session, now: datetime, days: int = CALLBACK_LIST_DAYS,
              limit: int = DONE_LIST_LIMIT) -> list[dict]:
    """Calls of the shared list done without a case in the last ``days``, last done first, with the
    note, who did it and when (for supervisors: the done rows leave the shared list)."""
    rows = session.execute(
        select(Call, User).outerjoin(User, User.id == Call.taken_by_id)
        .where(Call.handled_at.is_not(None), Call.handled_at >= now - timedelta(days=days))
        .order_by(Call.handled_at.desc(), Call.id.desc()).limit(limit))
    return [{"linkedid": c.linkedid, "caller_number": c.caller_number, "caller_name": c.caller_name,
             "arrived_at": c.arrived_at, "disposition": c.disposition.value, **_handled(c, u)}
            for c, u in rows]


def _holder_name(session: Session, linkedid: str, now: datetime) -> str | None:
    """Who holds the call now (a take not yet expired), else None."""
    user = session.scalar(select(User).join(Call, Call.taken_by_id == User.id)
                          .where(Call.linkedid == linkedid, take_holds(now)))
    return None if user is None else (user.display_name or user.username)


def take_call(session: Session, linkedid: str, user_id: int, now: datetime) -> tuple[str, str | None]:
    """Take a call off the shared list for ``user_id``, atomically (one conditional UPDATE).

    Returns ``("taken", None)``, ``("mine", None)`` (already taken by this user), ``("taken_by_other",
    name)`` (someone was first) or ``("missing", None)`` (not on the list: unknown, filed or done).
    A take older than TAKEN_EXPIRES_AFTER counts as free: taking the call again overwrites it.
    """
    result = session.execute(
        update(Call).where(Call.linkedid == linkedid, ~take_holds(now), *_on_the_list())
        .values(taken_by_id=user_id, taken_at=now, updated_at=now)
        .execution_options(synchronize_session=False))
    if result.rowcount == 1:
        return "taken", None
    call = session.scalar(select(Call).where(Call.linkedid == linkedid, take_holds(now), *_on_the_list()))
    if call is None:
        return "missing", None
    if call.taken_by_id == user_id:
        return "mine", None
    return "taken_by_other", _holder_name(session, linkedid, now)


def done_call(session: Session, linkedid: str, user_id: int, note: str, now: datetime) -> tuple[str, str | None]:
    """Mark a call the user took as dealt with without a case (``note`` says how; required).

    Returns ``("done", None)``, ``("note_missing", None)``, ``("not_yours", name or None)`` or ``("missing", None)``.
    The user's take must still hold (not older than TAKEN_EXPIRES_AFTER); else ``("not_yours", holder or None)``.
    """
    note = note.strip()[:NOTE_MAX]
    if not note:
        return "note_missing", None
    result = session.execute(
        update(Call).where(Call.linkedid == linkedid, Call.taken_by_id == user_id, take_holds(now), *_on_the_list())
        .values(handled_at=now, handled_note=note, updated_at=now)
        .execution_options(synchronize_session=False))
    if result.rowcount == 1:
        return "done", None
    call = session.scalar(select(Call).where(Call.linkedid == linkedid, *_on_the_list()))
    if call is None:
        return "missing", None
    return "not_yours", _holder_name(session, linkedid, now)


def release_call(session: Session, linkedid: str, now: datetime) -> str:
    """Put a taken call back on the shared list for anyone (supervisors): ``"released"`` or ``"missing"``."""
    result = session.execute(
        update(Call).where(Call.linkedid == linkedid, Call.taken_by_id.is_not(None), *_on_the_list())
        .values(taken_by_id=None, taken_at=None, updated_at=now)
        .execution_options(synchronize_session=False))
    return "released" if result.rowcount == 1 else "missing"


def open_calls_at(session: Session, extension: str | None, now: datetime, hours: int = 4) -> list[dict]:
    """Calls in progress connected to ``extension`` (the desk shows their pops again after a reload)."""
    if not extension:
        return []
    rows = session.scalars(
        select(Call).where(Call.disposition == CallDisposition.IN_PROGRESS, Call.extension == extension,
                           Call.ended_at.is_(None), Call.arrived_at >= now - timedelta(hours=hours))
        .order_by(Call.arrived_at.desc()).limit(3))
    out = []
    for c in rows:
        waited = (c.answered_at - c.arrived_at).total_seconds() if c.answered_at else None
        out.append({"linkedid": c.linkedid, "extension": c.extension, "caller_number": c.caller_number,
                    "caller_name": c.caller_name, "arrived_at": c.arrived_at.isoformat(), "waited_s": waited,
                    "history": caller_history(session, c.caller_number, exclude_linkedid=c.linkedid)})
    return out
