"""What each unit owes now: its posts not accepted, its answers due and its follow-ups open, each
with the case's deadline (``cases.deadline_at``, the one the overdue watch uses), overdue first,
then the nearest deadline.  The counts per unit are one grouped query; the list is bounded."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bridge.db.models import Case, CaseEvent, CaseState, Department
from bridge.forum.deadline_labels import CLOCK_STARTS

# The open states in which a unit owes a step, by what it owes.
OWING = {"not_accepted": (CaseState.POSTED, CaseState.FORWARDED), "answers_due": (CaseState.ACCEPTED,),
         "follow_ups_open": (CaseState.REOPENED,)}
OWING_STATES = tuple(state for states in OWING.values() for state in states)
LIST_LIMIT = 500


@dataclass(frozen=True)
class OwedCase:
    number: str
    title: str
    unit_code: str
    unit_name: str
    state: str
    deadline_at: datetime | None
    since: datetime | None  # when the step's clock started (the post, forward, acceptance or follow-up)


@dataclass
class UnitOwes:
    code: str
    name: str
    not_accepted: int = 0
    answers_due: int = 0
    follow_ups_open: int = 0
    overdue: int = 0
    nearest_at: datetime | None = None


def _scope(query, unit_code: str | None):
    query = query.join(Department, Department.id == Case.department_id).where(Case.state.in_(OWING_STATES))
    return query if unit_code is None else query.where(Department.code == unit_code)


def unit_counts(session: Session, now: datetime, unit_code: str | None = None) -> list[UnitOwes]:
    """Per unit owing anything: how many of each, how many overdue; the units with the most overdue
    first, then the nearest deadline."""
    columns = [func.count(Case.id).filter(Case.state.in_(states)).label(name) for name, states in OWING.items()]
    rows = session.execute(_scope(select(
        Department.code, Department.name, *columns,
        func.count(Case.id).filter(Case.deadline_at < now).label("overdue"),
        func.min(Case.deadline_at).label("nearest_at")), unit_code)
        .group_by(Department.code, Department.name))
    owes = [UnitOwes(**row._asdict()) for row in rows]
    return sorted(owes, key=lambda u: (-u.overdue, u.nearest_at is None, u.nearest_at or now, u.code))


def owed_cases(session: Session, unit_code: str | None = None, limit: int = LIST_LIMIT) -> list[OwedCase]:
    """The cases owed, overdue first then the nearest deadline (an unknown deadline last)."""
    since = (select(func.max(CaseEvent.at)).where(CaseEvent.case_id == Case.id,
                                                    CaseEvent.kind.in_(tuple(set(CLOCK_STARTS.values()))))
             .correlate(Case).scalar_subquery())
    rows = session.execute(_scope(select(Case.number, Case.title, Department.code, Department.name, Case.state,
                                         Case.deadline_at, since), unit_code)
                           .order_by(Case.deadline_at.is_(None), Case.deadline_at, Case.id).limit(limit))
    return [OwedCase(number, title, code, name, state.value, deadline, started)
            for number, title, code, name, state, deadline, started in rows]


__all__ = ["LIST_LIMIT", "OWING", "OwedCase", "UnitOwes", "owed_cases", "unit_counts"]
