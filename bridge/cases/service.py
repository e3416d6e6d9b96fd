"""Cases: file one (all or nothing), read one back with its timeline, list and search.

Every function takes the caller's SQLAlchemy session and does its work in the
caller's transaction (``db.session()`` / ``db.run``), and takes the time as an
argument.

Filing (:func:`file_case`) checks the form (:func:`bridge.cases.validation.validate_case`
plus the rules that need the database: the unit exists and is not retired, the
call's linkedid is known and, when another operator took the call from the desk's shared
"to call back / to file" list, the user is that operator or a supervisor), then in the same
transaction

1. takes the case number of the year *in the site's time zone*
   (``96811-2026-000123``, :func:`bridge.db.case_numbers.next_case_number`),
2. inserts the case in state ``queued``,
3. appends the first timeline entry (kind ``filed``, the user as actor; its
   detail holds no private data),
4. inserts one forum outbox row (operation ``create_post``, idempotency key =
   the case number) whose payload is the public part only (:func:`forum_payload`).

If anything fails the caller's transaction rolls back and nothing is stored,
not even the number.  The forum bridge (issue 5) sends the outbox row; until
then the case waits in ``queued`` with no ``forum_url`` and no ``deadline_at``
(the acceptance deadline runs from the moment the post is up).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from bridge.cases import takes
from bridge.cases.takes import TAKEN_EXPIRES_AFTER  # re-exported: the rule's one home is bridge.cases.takes
from bridge.cases.validation import (
    FIELDS,
    CaseDraft,
    CaseValidationError,
    FieldError,
    normalise_phone,
    public_name,
    validate_case,
)
from bridge.db.case_numbers import DEFAULT_PREFIX, next_case_number
from bridge.db.models import (
    Call,
    CallbackBestTime,
    Case,
    CaseEvent,
    CaseState,
    Department,
    ForumOutbox,
    OutboxOperation,
    Role,
    User,
)

FILED = "filed"
SYSTEM_ACTOR = "system"
# States in which a unit still owes the forum a step (and so can be overdue).
OPEN_STATES = (CaseState.QUEUED, CaseState.POSTED, CaseState.ACCEPTED, CaseState.FORWARDED, CaseState.REOPENED)
MAX_PER_PAGE = 200
# Roles that may file a case from a call another operator took.
OVERRIDE_ROLES = (Role.SUPERVISOR, Role.ADMIN)


# ----------------------------------------------------------------------- filing


def _cleaned_text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    return value.strip() if isinstance(value, str) else ""


def taken_by_someone_else(session: Session, call: Call, user: User | None, now: datetime | None) -> User | None:
    """Who holds ``call`` on the shared list when it is not ``user`` (None: free, expired, done or ``user``'s).

    A supervisor or an admin is never held back (None), nor a filing without a user or a time."""
    if user is None or now is None or user.role in OVERRIDE_ROLES:
        return None
    if call.taken_by_id is None or call.taken_by_id == user.id or call.handled_at is not None:
        return None
    return takes.holder(session, call.id, now)


def _database_checks(session: Session, data: Mapping[str, Any], errors: list[FieldError], *,
                     user: User | None = None, now: datetime | None = None
                     ) -> tuple[Department | None, Call | None]:
    """The rules that need the database, for fields without an error yet."""
    failed = {e.field for e in errors}
    department = call = None
    code = _cleaned_text(data, "department").upper()
    if code and "department" not in failed:
        department = session.scalar(select(Department).where(Department.code == code))
        if department is None:
            errors.append(FieldError("department", "department_unknown", {"value": code}))
        elif department.retired_at is not None:
            errors.append(FieldError("department", "department_retired", {"value": code, "name": department.name}))
            department = None
    linkedid = _cleaned_text(data, "call_linkedid")
    if linkedid and "call_linkedid" not in failed:
        # locked, so that a take (a conditional UPDATE of this row) and this check see each other
        call = session.scalar(select(Call).where(Call.linkedid == linkedid).with_for_update())
        if call is None:
            errors.append(FieldError("call_linkedid", "call_unknown", {"value": linkedid}))
        else:
            holder = taken_by_someone_else(session, call, user, now)
            if holder is not None:
                errors.append(FieldError("call_linkedid", "call_taken",
                                             {"name": holder.display_name or holder.username}))
    return department, call


def check_case(session: Session, data: Mapping[str, Any], *, today: date, user: User | None = None,
               now: datetime | None = None) -> tuple[CaseDraft, Department, Call | None]:
    """Every rule of the form, the database's included; raise CaseValidationError listing all problems.

    ``today`` is the site's date.  With ``user`` and ``now``: a call another operator took from the
    shared list is refused."""
    draft, errors = validate_case(data, today=today)
    department, call = _database_checks(session, data, errors, user=user, now=now)
    if errors or draft is None or department is None:
        raise CaseValidationError(errors)
    return draft, department, call


def hotline_line(prefix: str = DEFAULT_PREFIX) -> str:
    """The line every post carries, saying it came through the hotline."""
    return f"本帖由 {prefix} 热线代来电群众发布。"


def forum_payload(case: Case, department: Department, prefix: str = DEFAULT_PREFIX) -> dict[str, Any]:
    """What the forum receives for a new case: the public part and nothing else.

    Never the caller's phone numbers, full name, best time, notes or SMS consent.
    ``body`` is the post as the forum shows it (Chinese: the forum is Chinese).
    """
    caller = public_name(case.caller_surname, case.caller_honorific)
    lines = [case.description, ""]
    if case.location:
        lines.append(f"地点：{case.location}")
    lines += [f"反映人：{caller}", f"热线编号：{case.number}", hotline_line(prefix)]
    return {
        "case_number": case.number,
        "department": department.code,
        "department_name": department.name,
        "caller": caller,
        "location": case.location,
        "title": case.title,
        "description": case.description,
        "source": f"{prefix} 热线",
        "body": "\n".join(lines),
    }


def _outbox_entry(case: Case, department: Department, now: datetime, prefix: str) -> ForumOutbox:
    return ForumOutbox(case_id=case.id, operation=OutboxOperation.CREATE_POST.value, idempotency_key=case.number,
                       payload=forum_payload(case, department, prefix), next_attempt_at=now, created_at=now)


def file_case(session: Session, data: Mapping[str, Any], *, user: User | None, now: datetime,
              zone: ZoneInfo, prefix: str = DEFAULT_PREFIX) -> Case:
    """File a case from a form (field name -> value); raise CaseValidationError when invalid.

    Runs in the caller's transaction: commit it to keep the case, its first
    timeline entry and its outbox row together; roll back and nothing is kept.
    ``now`` must be aware; the number's year, and the day a "not before" date may not precede, are
    the year and the date in ``zone`` at ``now``.
    """
    local = now.astimezone(zone)
    draft, department, call = check_case(session, data, today=local.date(), user=user, now=now)
    number = next_case_number(session, local.year, prefix)
    case = Case(
        number=number, call_id=call.id if call else None, channel=draft.channel, state=CaseState.QUEUED,
        department_id=department.id, caller_surname=draft.caller_surname,
        caller_honorific=draft.caller_honorific, location=draft.location, title=draft.title,
        description=draft.description, caller_full_name=draft.caller_full_name,
        caller_phone=draft.caller_phone, caller_phone_alt=draft.caller_phone_alt,
        best_time_choice=draft.best_time, callback_not_before=draft.callback_not_before,
        callback_wanted=draft.callback_wanted, sms_consent=draft.sms_consent, voice_callback=draft.voice_callback,
        operator_notes=draft.operator_notes, created_by_id=user.id if user else None,
        created_at=now, updated_at=now,
    )
    session.add(case)
    session.flush()
    session.add(CaseEvent(
        case_id=case.id, at=now, kind=FILED, actor_user_id=user.id if user else None,
        actor=user.username if user else SYSTEM_ACTOR,
        detail={"department": department.code, "channel": draft.channel.value,
                "call_linkedid": call.linkedid if call else None},
    ))
    session.add(_outbox_entry(case, department, now, prefix))
    session.flush()
    return get_case(session, number)  # type: ignore[return-value]


# ---------------------------------------------------------------------- reading


def _loaded():
    return (joinedload(Case.department), joinedload(Case.call), joinedload(Case.created_by),
            selectinload(Case.events))


def get_case(session: Session, number: str) -> Case | None:
    """The case with ``number``, its unit, call, author and timeline loaded (usable detached)."""
    return session.scalar(select(Case).options(*_loaded()).where(Case.number == number.strip())
                          .execution_options(populate_existing=True))


def is_overdue(case: Case, now: datetime) -> bool:
    return case.deadline_at is not None and case.deadline_at < now and case.state in OPEN_STATES


def case_view(case: Case, zone: ZoneInfo, now: datetime, *, timeline: bool = True) -> dict[str, Any]:
    """A case as the API and the desk show it (times in the site's zone).

    Holds the private part: for hotline staff only, never for the forum.  ``best_time`` is the
    clicked choice (``any`` for a case filed before there was one), ``best_time_text`` what such a
    case was filed with as free text (empty since).
    """
    local = lambda t: t.astimezone(zone) if t else None  # noqa: E731
    view: dict[str, Any] = {
        "number": case.number,
        "state": case.state.value,
        "channel": case.channel.value,
        "department": case.department.code,
        "department_name": case.department.name,
        "forum_url": case.forum_url,
        "deadline_at": local(case.deadline_at),
        "overdue": is_overdue(case, now),
        "call_linkedid": case.call.linkedid if case.call else None,
        "caller_surname": case.caller_surname,
        "caller_honorific": case.caller_honorific.value,
        "caller_public_name": public_name(case.caller_surname, case.caller_honorific),
        "caller_full_name": case.caller_full_name,
        "caller_phone": case.caller_phone,
        "caller_phone_alt": case.caller_phone_alt,
        "location": case.location,
        "title": case.title,
        "description": case.description,
        "callback_wanted": case.callback_wanted,
        "sms_consent": case.sms_consent,
        "voice_callback": case.voice_callback,
        "best_time": (case.best_time_choice or CallbackBestTime.ANY).value,
        "best_time_text": case.best_time,
        "callback_not_before": case.callback_not_before,
        "operator_notes": case.operator_notes,
        "created_at": local(case.created_at),
        "created_by": case.created_by.username if case.created_by else None,
        "updated_at": local(case.updated_at),
    }
    if timeline:
        view["timeline"] = [{"at": local(e.at), "kind": e.kind, "actor": e.actor, "detail": e.detail}
                            for e in case.events]
    return view


# ---------------------------------------------------------------------- listing


@dataclass(frozen=True)
class CaseFilter:
    """The case list's filters; all optional, combined with AND."""

    mine: bool = False  # filed by the user given to list_cases
    state: CaseState | None = None
    department: str | None = None  # unit code
    q: str | None = None  # a case number (or part of one) or a phone number (or 4+ of its digits)
    overdue: bool = False
    today: bool = False  # filed today in the site's time zone


_NUMBER_QUERY = re.compile(r"^[0-9\-]+$")


def _search(q: str):
    q = q.strip()
    conditions = []
    if _NUMBER_QUERY.match(q):
        conditions.append(Case.number.contains(q, autoescape=True))
    phone = normalise_phone(q)
    if phone:
        conditions += [Case.caller_phone == phone, Case.caller_phone_alt == phone]
    digits = re.sub(r"\D", "", q.translate({0xFF10 + i: ord("0") + i for i in range(10)}))
    if len(digits) >= 4 and len(digits) == len(re.sub(r"[\s\-()+]", "", q)):
        conditions += [Case.caller_phone.contains(digits, autoescape=True),
                       Case.caller_phone_alt.contains(digits, autoescape=True)]
    return or_(*conditions) if conditions else Case.id.is_(None)


def list_cases(session: Session, filters: CaseFilter, *, user: User | None, now: datetime, zone: ZoneInfo,
               page: int = 1, per_page: int = 50) -> tuple[list[Case], int]:
    """One page of cases matching ``filters``, newest first, and the number of all matches."""
    conditions = []
    if filters.mine:
        conditions.append(Case.created_by_id == (user.id if user else None))
    if filters.state is not None:
        conditions.append(Case.state == filters.state)
    if filters.department:
        unit = select(Department.id).where(Department.code == filters.department.strip().upper()).scalar_subquery()
        conditions.append(Case.department_id == unit)
    if filters.q and filters.q.strip():
        conditions.append(_search(filters.q))
    if filters.overdue:
        conditions += [Case.deadline_at.is_not(None), Case.deadline_at < now, Case.state.in_(OPEN_STATES)]
    if filters.today:
        start = datetime.combine(now.astimezone(zone).date(), time(0), tzinfo=zone)
        conditions += [Case.created_at >= start, Case.created_at < start + timedelta(days=1)]
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    page = max(1, page)
    total = session.scalar(select(func.count()).select_from(Case).where(*conditions)) or 0
    cases = session.scalars(
        select(Case).options(joinedload(Case.department), joinedload(Case.call), joinedload(Case.created_by))
        .where(*conditions).order_by(Case.created_at.desc(), Case.id.desc())
        .limit(per_page).offset((page - 1) * per_page)
    ).unique().all()
    return list(cases), int(total)


__all__ = [
    "FIELDS", "TAKEN_EXPIRES_AFTER", "CaseFilter", "CaseValidationError", "case_view",
    "check_case", "file_case", "taken_by_someone_else",
    "forum_payload", "get_case", "hotline_line", "is_overdue", "list_cases",
]
