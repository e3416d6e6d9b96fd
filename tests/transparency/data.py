"""A hand-built month of cases for the units' figures, and the figures worked out from it in Python.

The timelines are written as the forum service writes them (kinds, ``detail.unit`` /
``department`` / ``to_unit``, ``due_at``); :func:`expected` reads the same plain lists, not the
database, so the SQL is checked against an independent count."""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from bridge.db.models import (
    CallbackReason,
    CallbackState,
    CallbackTask,
    Case,
    CaseEvent,
    CaseNumberCounter,
    CaseState,
    Department,
    Honorific,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
A, B, C, D = "CITY-FGW", "CITY-JXJ", "CITY-JYJ", "CITY-KJJ"
H = timedelta(hours=1)
# The period: November 2026 in Shanghai; "now" a little after it.
START = datetime(2026, 11, 1, tzinfo=SHANGHAI).astimezone(timezone.utc)
END = datetime(2026, 12, 1, tzinfo=SHANGHAI).astimezone(timezone.utc)
NOW = datetime(2026, 12, 3, 2, 0, tzinfo=timezone.utc)
# Callers' private data: must never reach the public figures.
CALLERS = [("朱小红", "+8613912345678"), ("欧阳明", "+8613800138001"), ("王建国", "+8613700137002"),
           ("李秀英", "+8613600136003"), ("张伟", "+8613500135004"), ("陈静", "+8613400134005"),
           ("刘洋", "+8613300133006"), ("赵敏", "+8613200132007")]


@dataclass
class Step:
    kind: str
    at: datetime
    unit: str
    to_unit: str | None = None
    due: datetime | None = None


@dataclass
class Story:
    unit_now: str
    state: CaseState
    steps: list[Step]
    deadline_at: datetime | None = None
    grades: list[int] = field(default_factory=list)  # satisfaction of the callbacks on its answers


def _local(*args) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI).astimezone(timezone.utc)


def stories() -> list[Story]:
    t0 = _local(2026, 11, 10, 9, 0)
    t1 = _local(2026, 11, 12, 10, 0)
    t2 = _local(2026, 11, 16, 9, 0)
    t3 = _local(2026, 11, 20, 9, 30)
    boundary_in = _local(2026, 11, 30, 23, 59, 59)
    boundary_out = _local(2026, 12, 1, 0, 0, 0)
    before = _local(2026, 10, 31, 23, 59, 59)
    first = _local(2026, 11, 1, 0, 0, 0)
    return [
        # Accepted in time, answered in time, graded 5.
        Story(A, CaseState.ANSWERED, [
            Step("posted", t0, A, due=t0 + 2 * H), Step("accepted", t0 + H, A, due=t0 + 73 * H),
            Step("answered", t0 + 24 * H, A)], grades=[5]),
        # Forwarded three times (A -> B -> C -> D); C forwards after its deadline; D answers in time.
        Story(D, CaseState.ANSWERED, [
            Step("posted", t1, A, due=t1 + 2 * H),
            Step("forwarded", t1 + 0.5 * H, A, to_unit=B, due=t1 + 2.5 * H),
            Step("forwarded", t1 + H, B, to_unit=C, due=t1 + 3 * H),
            Step("forwarded", t1 + 4 * H, C, to_unit=D, due=t1 + 6 * H),
            Step("accepted", t1 + 5 * H, D, due=t1 + 77 * H),
            Step("answered", t1 + 48 * H, D)], grades=[2]),
        # Accepted late, answered late; a follow-up answered in time, graded 4 then 3.
        Story(B, CaseState.ANSWERED, [
            Step("posted", t2, B, due=t2 + 2 * H), Step("accepted", t2 + 5 * H, B, due=t2 + 77 * H),
            Step("answered", t2 + 80 * H, B),
            Step("follow_up_asked", t2 + 100 * H, B, due=t2 + 172 * H),
            Step("follow_up_answered", t2 + 120 * H, B)], grades=[4, 3]),
        # Not accepted and overdue now at C.
        Story(C, CaseState.POSTED, [Step("posted", t3, C, due=t3 + 2 * H)], deadline_at=t3 + 2 * H),
        # Posted a second before the period's end (Shanghai midnight): in; accepted, answer still
        # due after "now" (not decided).
        Story(A, CaseState.ACCEPTED, [
            Step("posted", boundary_in, A, due=boundary_in + 2 * H),
            Step("accepted", boundary_in + 0.5 * H, A, due=NOW + 10 * H)], deadline_at=NOW + 10 * H),
        # Posted at the period's end: out (next month), though still November in UTC.
        Story(A, CaseState.ACCEPTED, [
            Step("posted", boundary_out, A, due=boundary_out + 2 * H),
            Step("accepted", boundary_out + H, A, due=NOW + 20 * H)], deadline_at=NOW + 20 * H),
        # A second before the period: out; at its first instant: in (accepted exactly at the due time).
        Story(B, CaseState.ANSWERED, [
            Step("posted", before, B, due=before + 24 * H), Step("accepted", before + H, B, due=before + 73 * H),
            Step("answered", before + 2 * H, B)]),
        Story(B, CaseState.ANSWERED, [
            Step("posted", first, B, due=first + 24 * H), Step("accepted", first + 24 * H, B, due=first + 96 * H),
            Step("answered", first + 30 * H, B)], grades=[5]),
    ]


def build(session) -> list[Story]:
    """Store the stories: cases (numbered from the counter), their timelines, the graded callbacks."""
    units = dict(session.query(Department.code, Department.id).all())
    told = stories()
    for serial, (story, (full_name, phone)) in enumerate(zip(told, CALLERS, strict=True), start=1):
        case = Case(number=f"96811-2026-{serial:06d}", department_id=units[story.unit_now], state=story.state,
                    caller_surname=full_name[0], caller_honorific=Honorific.MS, caller_full_name=full_name,
                    caller_phone=phone, title=f"问题 {serial}", description="描述", created_at=story.steps[0].at,
                    deadline_at=story.deadline_at)
        session.add(case)
        session.flush()
        answers = []
        for step in story.steps:
            detail = {"department": step.unit} if step.kind == "posted" else {"unit": step.unit, "actor": "spk"}
            if step.to_unit:
                detail["to_unit"] = step.to_unit
            if step.due:
                detail["due_at"] = step.due.isoformat()
            event = CaseEvent(case_id=case.id, at=step.at, kind=step.kind, actor="forum", detail=detail)
            session.add(event)
            session.flush()
            if step.kind in ("answered", "follow_up_answered"):
                answers.append(event)
        for answer, grade in zip(answers, story.grades):
            session.add(CallbackTask(reason=CallbackReason.ANSWER, case_id=case.id, answer_event_id=answer.id,
                                     phone=case.caller_phone, state=CallbackState.DONE, due_at=answer.at,
                                     waiting_since=answer.at, assigned_at=answer.at, satisfaction=grade))
    session.add(CaseNumberCounter(year=2026, last=len(told)))
    session.flush()
    return told


# ------------------------------------------------------------------ the figures, in Python

ENDS = {"accept": ("accepted", "forwarded", "answered", "follow_up_answered"),
        "answer": ("answered", "follow_up_answered", "forwarded", "follow_up_asked")}


def expected(told: list[Story], start: datetime, end: datetime, now: datetime) -> dict[str, dict]:
    figures: dict[str, dict] = {}
    durations: dict[tuple[str, str], list[float]] = {}

    def of(unit: str) -> dict:
        return figures.setdefault(unit, dict.fromkeys(
            ("posts_received", "forwards_received", "forwards_made", "follow_ups", "follow_ups_answered", "answered",
             "answer_base", "accepted_in_time", "acceptances_decided", "answered_in_time", "answers_decided",
             "overdue_now", "graded", "satisfied"), 0))

    for story in told:
        steps = story.steps
        if story.deadline_at and story.deadline_at < now and story.state.value in ("posted", "forwarded", "accepted",
                                                                                     "reopened"):
            of(story.unit_now)["overdue_now"] += 1
        answer_grades = iter(story.grades)
        for i, step in enumerate(steps):
            later = steps[i + 1:]
            if step.kind in ("answered", "follow_up_answered"):
                grade = next(answer_grades, None)
                if grade is not None and start <= step.at < end:
                    of(step.unit)["graded"] += 1
                    of(step.unit)["satisfied"] += grade >= 4
            if not start <= step.at < end:
                continue
            if step.kind == "forwarded":
                of(step.unit)["forwards_made"] += 1
            if step.kind == "follow_up_asked":
                of(step.unit)["follow_ups"] += 1
            if step.kind == "follow_up_answered":
                of(step.unit)["follow_ups_answered"] += 1
            if step.kind in ("posted", "forwarded"):
                unit = step.to_unit if step.kind == "forwarded" else step.unit
                kind = "accept"
            elif step.kind in ("accepted", "follow_up_asked"):
                unit, kind = step.unit, "answer"
            else:
                continue
            f = of(unit)
            ended = next((s for s in later if s.kind in ENDS[kind]), None)
            if kind == "accept":
                f["posts_received"] += 1
                f["forwards_received"] += step.kind == "forwarded"
                outcome = next((s.kind for s in later if s.kind in ("answered", "forwarded")), None)
                f["answered"] += outcome == "answered"
                f["answer_base"] += outcome in (None, "answered")
                if ended is not None:
                    f["acceptances_decided"] += 1
                    f["accepted_in_time"] += ended.at <= step.due
                    durations.setdefault((unit, kind), []).append((ended.at - step.at).total_seconds())
                elif step.due < now:
                    f["acceptances_decided"] += 1
            else:
                answered = ended is not None and ended.kind in ("answered", "follow_up_answered")
                if answered:
                    durations.setdefault((unit, kind), []).append((ended.at - step.at).total_seconds())
                if answered or (ended is not None and ended.at > step.due) or (ended is None and step.due < now):
                    f["answers_decided"] += 1
                    f["answered_in_time"] += answered and ended.at <= step.due
    for (unit, kind), values in durations.items():
        of(unit)["median_acceptance_s" if kind == "accept" else "median_answer_s"] = statistics.median(values)
    return figures
