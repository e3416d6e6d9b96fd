"""What the desk's pages read from the database (plain synchronous functions, run via ``db.run``)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from bridge.cases.validation import normalise_phone
from bridge.db.models import Call, CallDisposition, Case, Department, Role, User
from bridge.departments.search import search_terms, synonym_initials
from bridge.pbx.waits import menu_and_queue
from bridge.site.clock import midnight

DESK_ROLES = (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)
HISTORY_LIMIT = 5


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


def desk_user(user: User, session_values) -> DeskUser:
    """The desk's view of a signed-in ``user`` (``session_values``: the session, with the extension)."""
    return DeskUser(id=user.id, username=user.username, display_name=user.display_name or user.username,
                    role=user.role, extension=session_values.get("ext") or None)


def units(session: Session) -> list[dict]:
    """Units in service, for the form's search box: name, synonyms, the terms a query is matched
    against (bridge.departments.search) and the keywords that suggest a unit from the text."""
    rows = session.scalars(select(Department).where(Department.retired_at.is_(None))
                           .order_by(Department.kind, Department.code))
    return [{"code": d.code, "name": d.name, "initials": d.pinyin_initials, "keywords": d.keywords,
             "synonyms": d.synonyms.split(), "synonym_initials": [synonym_initials(w) for w in d.synonyms.split()],
             "terms": search_terms(d.code, d.name, d.pinyin_initials, d.synonyms)}
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
            "disposition": call.disposition.value, **call_waits(call)}


def call_waits(call: Call, now: datetime | None = None) -> dict:
    """``menu_s`` and ``queue_s`` of a stored call (:func:`bridge.pbx.waits.menu_and_queue`)."""
    menu_s, queue_s = menu_and_queue(call.arrived_at, call.queue_wait_s, call.answered_at, call.ended_at, now=now)
    return {"menu_s": menu_s, "queue_s": queue_s}


def _handled(call: Call, taker: User | None) -> dict:
    """How a call was done without a case: when, by whom (who had taken it) and the note; None if not done."""
    done = call.handled_at is not None
    return {"handled_at": call.handled_at, "handled_note": call.handled_note if done else None,
            "handled_by": (taker.display_name or taker.username) if done and taker is not None else None}


# How long a call stays the operator's current call at most (a pop left open overnight goes).
CURRENT_CALL_HOURS = 12


def _answered_by(user: DeskUser):
    """Calls answered at the extension the operator signed in with, or linked to their account."""
    mine = [Call.operator_id == user.id]
    if user.extension:
        mine.append(Call.extension == user.extension)
    return and_(or_(*mine), Call.disposition.in_((CallDisposition.IN_PROGRESS, CallDisposition.ANSWERED)),
                Call.extension.is_not(None))


def _filed(session: Session, call_ids: list[int]) -> dict[int, str]:
    """The first case filed from each of these calls: call id -> case number."""
    if not call_ids:
        return {}
    rows = session.execute(select(Case.call_id, Case.number).where(Case.call_id.in_(call_ids)).order_by(Case.id))
    found: dict[int, str] = {}
    for call_id, number in rows:
        found.setdefault(call_id, number)
    return found


def _pop_view(session: Session, call: Call) -> dict:
    return {"linkedid": call.linkedid, "extension": call.extension, "caller_number": call.caller_number,
            "caller_name": call.caller_name, "arrived_at": call.arrived_at.isoformat(),
            "answered_at": call.answered_at.isoformat() if call.answered_at else None,
            "ended": call.ended_at is not None, **call_waits(call),
            "history": caller_history(session, call.caller_number, exclude_linkedid=call.linkedid)}


def current_calls(session: Session, user: DeskUser, now: datetime, dismissed=()) -> list[dict]:
    """The operator's current call(s), shown as pops on every desk page until dealt with.

    Derived from the calls table: answered by this operator in the last hours, no case filed
    from it, not marked done and not dismissed (``dismissed``: Linkedids).  Every call still in
    progress, and of the ended ones the newest only."""
    rows = session.scalars(
        select(Call).where(_answered_by(user), Call.handled_at.is_(None),
                           Call.arrived_at >= now - timedelta(hours=CURRENT_CALL_HOURS),
                           ~select(Case.id).where(Case.call_id == Call.id).exists())
        .order_by(Call.arrived_at.desc(), Call.id.desc()).limit(10))
    shown, ended_shown = [], False
    for call in rows:
        if call.linkedid in dismissed:
            continue
        if call.ended_at is not None:
            if ended_shown:
                continue
            ended_shown = True
        shown.append(_pop_view(session, call))
    return shown[:3]


def day_start(now: datetime, zone: ZoneInfo) -> datetime:
    """Midnight of ``now``'s day in the site's zone."""
    return midnight(now.astimezone(zone).date(), zone)


def my_calls_today(session: Session, user: DeskUser, now: datetime, zone: ZoneInfo) -> list[dict]:
    """The calls this operator answered today (site zone), newest first, with what came of each."""
    rows = list(session.scalars(
        select(Call).where(_answered_by(user), Call.arrived_at >= day_start(now, zone))
        .order_by(Call.arrived_at.desc(), Call.id.desc()).limit(500)))
    filed = _filed(session, [c.id for c in rows])
    return [{"linkedid": c.linkedid, "caller_number": c.caller_number, "caller_name": c.caller_name,
             "arrived_at": c.arrived_at, "answered_at": c.answered_at, "talk_s": c.talk_s,
             "in_progress": c.ended_at is None, "filed_case": filed.get(c.id),
             "handled_at": c.handled_at, "handled_note": c.handled_note, "recording": c.recording,
             **call_waits(c)} for c in rows]

