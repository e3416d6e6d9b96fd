"""Thread events applied to cases (bridge.forum.service), on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bridge.cases.service import file_case, get_case
from bridge.db.models import CaseEvent, CaseState
from bridge.departments.service import ensure_shipped_units
from bridge.forum import service
from bridge.forum.adapter import PostRef, ThreadEvent, ThreadEventKind
from bridge.site.calendar import CalendarNotCovered
from tests.forum.test_builtin_support import case_form

ZONE = ZoneInfo("Asia/Shanghai")


def local(*args) -> datetime:
    return datetime(*args, tzinfo=ZONE)


@pytest.fixture
def deadlines(site_config):
    return service.Deadlines.from_config(site_config)


@pytest.fixture
def number(db) -> str:
    with db.session() as session:
        ensure_shipped_units(session)
        case = file_case(session, {**case_form(), "department": "CITY-LJQ"}, user=None,
                         now=local(2026, 11, 25, 9, 50), zone=ZONE)
        return case.number


def event(number, event_id, kind, at, unit="CITY-LJQ", **more) -> ThreadEvent:
    return ThreadEvent(event_id=event_id, kind=kind, case_number=number, at=at, unit_code=unit, **more)


def apply(db, ev, deadlines):
    with db.session() as session:
        return service.apply_event(session, ev, deadlines)


def case_of(db, number):
    with db.session(readonly=True) as session:
        case = get_case(session, number)
        session.expunge_all()
        return case


def test_the_same_event_twice_is_applied_once(db, number, deadlines):
    ev = event(number, "builtin:7", ThreadEventKind.ACCEPTED, local(2026, 11, 25, 10, 30), actor="王芳")
    change = apply(db, ev, deadlines)
    assert change is not None and change.state == "accepted"
    assert apply(db, ev, deadlines) is None
    # Even when both deliveries come in one batch.
    with db.session() as session:
        assert service.apply_events(session, [ev, ev], deadlines) == []
    with db.session(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(CaseEvent)
                              .where(CaseEvent.source_event_id == "builtin:7")) == 1


def test_deadlines_on_posting_accept_forward_and_follow_up(db, number, deadlines):
    # Posted Wednesday 10:00 (office hours): acceptance within 2 office hours, by 12:00.
    with db.session() as session:
        change = service.mark_posted(session, number, PostRef(number, "1", "https://x/board/threads/1"),
                                     local(2026, 11, 25, 10, 0), deadlines)
        assert service.mark_posted(session, number, PostRef(number, "1", "https://x/board/threads/1"),
                                   local(2026, 11, 25, 10, 5), deadlines) is None  # once
    assert change.state == "posted"
    case = case_of(db, number)
    assert case.deadline_at == local(2026, 11, 25, 12, 0) and case.forum_url == "https://x/board/threads/1"

    # Accepted 10:30: an answer within 3 days (72 hours).
    apply(db, event(number, "e1", ThreadEventKind.ACCEPTED, local(2026, 11, 25, 10, 30)), deadlines)
    assert case_of(db, number).deadline_at == local(2026, 11, 28, 10, 30)

    # Forwarded Friday 16:30: the acceptance clock restarts at the new unit (1 h Friday + 1 h Monday).
    apply(db, event(number, "e2", ThreadEventKind.FORWARDED, local(2026, 11, 27, 16, 30),
                    to_unit_code="CITY-ZJJ", text="转住建局"), deadlines)
    case = case_of(db, number)
    assert case.state is CaseState.FORWARDED and case.department.code == "CITY-ZJJ"
    assert case.deadline_at == local(2026, 11, 30, 9, 30)

    apply(db, event(number, "e3", ThreadEventKind.ACCEPTED, local(2026, 11, 30, 9, 0), unit="CITY-ZJJ"), deadlines)
    apply(db, event(number, "e4", ThreadEventKind.ANSWERED, local(2026, 11, 30, 15, 0), unit="CITY-ZJJ",
                    text="已办结"), deadlines)
    assert case_of(db, number).deadline_at is None

    # A follow-up restarts the answer clock.
    apply(db, event(number, "e5", ThreadEventKind.FOLLOW_UP_ASKED, local(2026, 12, 1, 8, 0), unit="CITY-ZJJ"),
          deadlines)
    case = case_of(db, number)
    assert case.state is CaseState.REOPENED and case.deadline_at == local(2026, 12, 4, 8, 0)
    apply(db, event(number, "e6", ThreadEventKind.FOLLOW_UP_ANSWERED, local(2026, 12, 1, 9, 0), unit="CITY-ZJJ"),
          deadlines)
    case = case_of(db, number)
    assert case.state is CaseState.ANSWERED and case.deadline_at is None
    assert [e.kind for e in case.events] == ["filed", "posted", "accepted", "forwarded", "accepted", "answered",
                                            "follow_up_asked", "follow_up_answered"]


def test_an_event_before_the_outbox_saw_its_success_is_not_undone(db, number, deadlines):
    apply(db, event(number, "e1", ThreadEventKind.ACCEPTED, local(2026, 11, 25, 10, 30)), deadlines)
    with db.session() as session:
        service.mark_posted(session, number, PostRef(number, "1", "u"), local(2026, 11, 25, 10, 31), deadlines)
    case = case_of(db, number)
    assert case.state is CaseState.ACCEPTED and case.forum_url == "u"
    assert case.deadline_at == local(2026, 11, 28, 10, 30)


def test_an_event_for_an_unknown_case_is_ignored(db, number, deadlines):
    assert apply(db, event("96811-2026-999999", "x1", ThreadEventKind.ACCEPTED, local(2026, 11, 25, 10)),
                 deadlines) is None


def test_overdue_cases_are_flagged_once_with_the_unit_that_owes(db, number, deadlines):
    with db.session() as session:
        service.mark_posted(session, number, PostRef(number, "1", "u"), local(2026, 11, 25, 10, 0), deadlines)
    with db.session() as session:
        assert service.flag_overdue(session, local(2026, 11, 25, 11, 59)) == []
        [flag] = service.flag_overdue(session, local(2026, 11, 25, 12, 1))
        assert flag["number"] == number and flag["unit"] == "CITY-LJQ" and flag["step"] == "accept"
        assert service.flag_overdue(session, local(2026, 11, 25, 12, 2)) == []


def test_a_calendar_gap_leaves_the_deadline_unknown(db, number, site_config):
    class Uncovered:
        def is_working_day(self, day):
            raise CalendarNotCovered(day.year, "0.0")

        def covers(self, year):
            return False

    policy = service.Deadlines(office_periods=site_config.office_hours.periods, zone=ZONE, calendar=Uncovered())
    with db.session() as session:
        service.mark_posted(session, number, PostRef(number, "1", "u"), local(2026, 11, 25, 10, 0), policy)
    assert case_of(db, number).deadline_at is None and case_of(db, number).state is CaseState.POSTED
    assert "2026" in policy.problem
    # Answers need no calendar.
    apply(db, event(number, "e1", ThreadEventKind.ACCEPTED, local(2026, 11, 25, 10, 30)), policy)
    assert case_of(db, number).deadline_at == local(2026, 11, 25, 10, 30) + timedelta(hours=72)
    assert local(2026, 11, 25, 10, 30).astimezone(timezone.utc).tzinfo is timezone.utc
