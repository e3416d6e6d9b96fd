"""A hand-built callback log: each case's path written out here, in UTC, and what the log must say
of it computed from these inputs in plain Python (never with the report's SQL).

Asia/Shanghai is UTC+8: case B is filed at 16:30 UTC on 1 December, 00:30 on 2 December there;
case H at 16:00 UTC on 2 December, midnight of 3 December there (outside ``to=2026-12-03``).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bridge.accounts.service import add_user
from bridge.db.models import (CallbackAttempt, CallbackAttemptResult, CallbackOutcome, CallbackReason, CallbackState,
                              CallbackTask, Call, CallDisposition, Case, CaseEvent, CaseState, Department, Honorific,
                              Role, User)
from bridge.departments.service import ensure_shipped_units

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
PASSWORD = "correct horse battery"


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=timezone.utc)


@dataclass
class Task:
    answer: str  # the event kind it serves: "answered" or "follow_up_answered"
    state: str
    outcome: str | None = None
    completed: datetime | None = None
    grade: int | None = None
    attempts: list[tuple[datetime, str]] = field(default_factory=list)  # (start, result)


@dataclass
class Path:
    number: str
    title: str
    filed: datetime
    by: str  # username
    call: datetime | None = None
    posted: datetime | None = None
    accepted: datetime | None = None
    forwards: list[tuple[datetime, int]] = field(default_factory=list)  # (at, index of the target unit)
    answers: dict[str, datetime] = field(default_factory=dict)  # event kind -> at
    tasks: list[Task] = field(default_factory=list)
    deadline: datetime | None = None
    unit: int = 0  # index of the unit it is at now

    def outcome(self) -> str:
        if not self.tasks:
            return "none"
        last = self.tasks[-1]
        if last.state == "unreachable":
            return "unreachable"
        if last.outcome:
            return last.outcome
        return "pending"

    def to_informed_s(self) -> float | None:
        last = self.tasks[-1] if self.tasks else None
        if last is None or last.outcome != "informed":
            return None
        return (last.completed - self.answers[last.answer]).total_seconds()

    def grade(self) -> int | None:
        return self.tasks[-1].grade if self.tasks else None

    def local_day(self) -> date:
        return self.filed.astimezone(ZONE).date()


PATHS = [
    Path("2026000001", "路灯不亮，夜间出行不便", utc(1, 15, 30), "operator", call=utc(1, 15, 20), posted=utc(1, 15, 31),
         accepted=utc(1, 18), forwards=[(utc(1, 16), 1), (utc(1, 17), 2), (utc(1, 17, 30), 3)], unit=3,
         answers={"answered": utc(2, 2)},
         tasks=[Task("answered", "done", "informed", utc(2, 5), 5,
                     [(utc(2, 3), "no_answer"), (utc(2, 4, 50), "answered")])]),
    Path("2026000002", "小区噪音扰民", utc(1, 16, 30), "operator", posted=utc(1, 16, 31), accepted=utc(2, 1),
         answers={"answered": utc(2, 8), "follow_up_answered": utc(3, 1)},
         tasks=[Task("answered", "done", "follow_up", utc(2, 9), None, [(utc(2, 8, 50), "answered")]),
                Task("follow_up_answered", "done", "informed", utc(3, 3), 4, [(utc(3, 2, 55), "answered")])]),
    Path("2026000003", "占道经营", utc(2, 2), "operator", posted=utc(2, 2, 1), answers={"answered": utc(2, 6)},
         tasks=[Task("answered", "unreachable", None, None, None,
                     [(utc(2, 7), "no_answer"), (utc(2, 9), "busy"), (utc(2, 11), "no_answer")])]),
    Path("2026000004", "井盖缺失", utc(2, 3), "supervisor", posted=utc(2, 3, 1), answers={"answered": utc(2, 7)},
         tasks=[Task("answered", "done", "do_not_call", utc(2, 8), None, [(utc(2, 7, 55), "answered")])]),
    Path("2026000005", "公交站牌损坏", utc(2, 4), "operator", posted=utc(2, 4, 1), answers={"answered": utc(2, 5)},
         tasks=[Task("answered", "due")]),
    Path("2026000006", "垃圾清运不及时", utc(2, 5), "operator", posted=utc(2, 5, 1), answers={"answered": utc(2, 6)},
         tasks=[Task("answered", "done", "informed", utc(2, 6, 30), 2, [(utc(2, 6, 25), "answered")])]),
    Path("2026000007", "道路积水", utc(2, 6), "supervisor", posted=utc(2, 6, 1), deadline=utc(3, 6), unit=1),
    Path("2026000008", "树木倒伏", utc(2, 16), "operator", posted=utc(2, 16, 1), answers={"answered": utc(3, 1)},
         tasks=[Task("answered", "done", "informed", utc(3, 2), 3, [(utc(3, 1, 55), "answered")])]),
]


def expected(paths=PATHS, *, start: date | None = None, end: date | None = None, operator: str | None = None,
             outcome: str | None = None) -> dict:
    """What the log must show for these filters, computed here from the inputs."""
    chosen = [p for p in paths if (start is None or p.local_day() >= start) and (end is None or p.local_day() < end)
              and (operator is None or p.by == operator) and (outcome is None or p.outcome() == outcome)]
    with_callback = [p for p in chosen if p.tasks]
    informed = [p for p in with_callback if p.outcome() == "informed"]
    times = sorted(p.to_informed_s() for p in informed)
    grades = [p.grade() for p in chosen if p.grade() is not None]
    return {**rates(with_callback), "per_operator": {
        name: {**rates([p for p in with_callback if p.by == name]),
               "unreachable": sum(p.outcome() == "unreachable" for p in with_callback if p.by == name)}
        for name in sorted({p.by for p in with_callback})},
        "numbers": [p.number for p in sorted(chosen, key=lambda p: p.filed)],
        "cases": len(chosen), "with_callback": len(with_callback),
        "completion_rate": len(informed) / len(with_callback) if with_callback else None,
        "median": statistics.median(times) if times else None,
        # statistics' "inclusive" method is the linear interpolation percentile_cont makes
        "p90": (statistics.quantiles(times, n=10, method="inclusive")[8] if len(times) > 1 else
                (times[0] if times else None)),
        "satisfaction": {str(g): grades.count(g) for g in range(1, 6)},
        "unreachable": sum(p.outcome() == "unreachable" for p in chosen),
        "do_not_call": sum(p.outcome() == "do_not_call" for p in chosen),
    }


def rates(with_callback: list[Path]) -> dict:
    """Attempts per completed callback and 满意率 (4 and 5 among the graded) of these cases, from
    their latest tasks' inputs."""
    informed = [p for p in with_callback if p.outcome() == "informed"]
    graded = [p.grade() for p in with_callback if p.grade() is not None]
    return {"with_callback": len(with_callback), "informed": len(informed), "graded": len(graded),
            "attempted": sum(bool(p.tasks[-1].attempts) for p in with_callback),
            "attempts_per_completed": (sum(len(p.tasks[-1].attempts) for p in informed) / len(informed)
                                       if informed else None),
            "satisfaction_rate": sum(g in (4, 5) for g in graded) / len(graded) if graded else None}


def assert_rates(found: dict, wanted: dict) -> None:
    """The report's summary ``found`` holds :func:`rates` of ``wanted`` (an :func:`expected`), in
    total and per operator (named by username: the display names are "<username> person")."""
    for name in ("with_callback", "attempted", "informed", "graded", "completion_rate", "attempts_per_completed",
                 "satisfaction_rate"):
        assert found[name] == pytest.approx(wanted[name]), name
    rows = {row["operator"].removesuffix(" person"): row for row in found["per_operator"]}
    assert sorted(rows) == sorted(wanted["per_operator"])
    for name, figures in wanted["per_operator"].items():
        assert {key: rows[name][key] for key in figures} == pytest.approx(figures), name


def build(session, paths=PATHS) -> dict[str, int]:
    """The units, a user per role and the cases of ``paths``; {username: user id}."""
    ensure_shipped_units(session, utc(1, 0))
    users = {}
    for role in Role:
        user = add_user(session, role.value, role, PASSWORD, extension={"operator": "8001", "supervisor": "8002"}
                        .get(role.value), department_code="CITY-LJQ" if role is Role.SPOKESPERSON else None,
                        display_name=f"{role.value} person", now=utc(1, 0))
        users[role.value] = user.id
    units = list(session.query(Department).order_by(Department.code).limit(4))
    for index, path in enumerate(paths):
        _case(session, path, index, users, units)
    session.flush()
    return users


def _case(session, path: Path, index: int, users: dict[str, int], units: list) -> None:
    call = None
    if path.call is not None:
        call = Call(linkedid=f"1764600000.{index}", caller_number="13912345678", arrived_at=path.call,
                    disposition=CallDisposition.ANSWERED, operator_id=users[path.by])
        session.add(call)
        session.flush()
    case = Case(number=path.number, call_id=call.id if call else None, department_id=units[path.unit].id,
                caller_surname="王", caller_honorific=Honorific.MR, title=path.title, description=path.title,
                caller_phone="13912345678", created_by_id=users[path.by], created_at=path.filed, updated_at=path.filed,
                deadline_at=path.deadline, state=CaseState.ANSWERED if path.answers else CaseState.POSTED)
    session.add(case)
    session.flush()

    def event(kind: str, at: datetime, **detail) -> CaseEvent:
        found = CaseEvent(case_id=case.id, at=at, kind=kind, actor="forum", detail=detail)
        session.add(found)
        session.flush()
        return found

    event("filed", path.filed)
    if path.posted:
        event("posted", path.posted)
    before = units[0].code
    for at, target in path.forwards:
        event("forwarded", at, unit=before, to_unit=units[target].code)
        before = units[target].code
    if path.accepted:
        event("accepted", path.accepted, unit=units[path.unit].code)
    answers = {kind: event(kind, at, unit=units[path.unit].code, text="已处理") for kind, at in path.answers.items()}
    for number, task in enumerate(path.tasks):
        answer = answers[task.answer]
        row = CallbackTask(reason=CallbackReason.ANSWER, case_id=case.id, answer_event_id=answer.id,
                           phone="13912345678", state=CallbackState(task.state), due_at=answer.at,
                           waiting_since=answer.at, assigned_at=answer.at, owner_id=users[path.by],
                           outcome=CallbackOutcome(task.outcome) if task.outcome else None,
                           satisfaction=task.grade, completed_at=task.completed, created_at=answer.at)
        session.add(row)
        session.flush()
        for attempt, (at, result) in enumerate(task.attempts):
            session.add(CallbackAttempt(task_id=row.id, idempotency_key=f"{path.number}-{number}-{attempt}",
                                        dialler="asterisk", operator_id=users[path.by], started_at=at,
                                        ended_at=at + timedelta(minutes=3),
                                        result=CallbackAttemptResult(result)))


def user_id(session, username: str) -> int:
    return session.query(User.id).filter(User.username == username).scalar()
