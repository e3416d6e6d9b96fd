"""What the desk's pages read from the database (plain synchronous functions, run via ``db.run``)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bridge.cases.validation import normalise_phone
from bridge.db.models import Call, CallDisposition, Case, Department, Role, User
from bridge.departments.search import search_terms, synonym_initials

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
            "disposition": call.disposition.value}


def _handled(call: Call, taker: User | None) -> dict:
    """How a call was done without a case: when, by whom (who had taken it) and the note; None if not done."""
    done = call.handled_at is not None
    return {"handled_at": call.handled_at, "handled_note": call.handled_note if done else None,
            "handled_by": (taker.display_name or taker.username) if done and taker is not None else None}


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
