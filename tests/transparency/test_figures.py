"""The units' figures (bridge/transparency/figures.py) on a hand-built month, on SQLite and PostgreSQL,
against the same figures worked out in Python from the stories themselves (tests/transparency/data.py)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bridge.db.models import Case, CaseNumberCounter, CaseState, Department
from bridge.departments.service import ensure_shipped_units
from bridge.forum.adapter import PostRef, ThreadEvent, ThreadEventKind
from bridge.forum.service import Deadlines, apply_event, mark_posted
from bridge.transparency.figures import deletions, overdue_now, unit_figures
from tests.transparency.data import A, B, C, D, END, NOW, SHANGHAI, START, build, expected

COUNTS = ("posts_received", "forwards_received", "forwards_made", "follow_ups", "follow_ups_answered", "answered",
          "answer_base", "accepted_in_time", "acceptances_decided", "answered_in_time", "answers_decided",
          "overdue_now", "graded", "satisfied")


@pytest.fixture
def month(db):
    with db.session() as session:
        ensure_shipped_units(session, START)
        return build(session)


def test_the_figures_match_the_ones_counted_from_the_stories(db, month):
    want = expected(month, START, END, NOW)
    with db.session(readonly=True) as session:
        got = {f.code: f for f in unit_figures(session, START, END, NOW)}
    assert len(got) >= 100  # every unit is listed, with or without posts
    for code in (A, B, C, D):
        for name in COUNTS:
            assert getattr(got[code], name) == want[code][name], (code, name)
        for name in ("median_acceptance_s", "median_answer_s"):
            value = want[code].get(name)
            assert getattr(got[code], name) == (None if value is None else pytest.approx(value, abs=0.1)), (code, name)
    quiet = next(f for code, f in got.items() if code not in (A, B, C, D))
    assert (quiet.posts_received, quiet.response_rate, quiet.median_answer_s) == (0, None, None)


def test_the_edge_cases_read_as_the_platform_means_them(db, month):
    with db.session(readonly=True) as session:
        got = {f.code: f for f in unit_figures(session, START, END, NOW)}
    a, b, c, d = got[A], got[B], got[C], got[D]
    # Forwarded three times: each unit received it once, A B C forwarded it, D answered it.
    assert (b.forwards_received, c.forwards_received, d.forwards_received) == (1, 1, 1)
    assert (a.forwards_made, b.forwards_made, c.forwards_made, d.forwards_made) == (1, 1, 1, 0)
    assert (d.answered, d.answer_base, d.answer_rate) == (1, 1, 1.0)
    assert c.accepted_in_time == 0 and c.acceptances_decided == 2  # forwarded late, and one overdue now
    assert c.overdue_now == 1 and c.response_rate == 0.0
    # The late acceptance and the answered follow-up at B; the month's first instant is in, accepted at its due time.
    assert (b.follow_ups, b.follow_ups_answered) == (1, 1)
    assert b.posts_received == 3 and b.accepted_in_time == 2 and b.acceptances_decided == 3  # forwarded on in time
    # Shanghai's midnight: 23:59:59 on the 30th is in, 00:00 on the 1st is not; A's last answer is not due yet.
    assert a.posts_received == 3 and a.answers_decided == 1 and a.response_rate == 1.0
    # 满意率: 4 and 5 among the graded; B's 4 and 5 (the 3 is not satisfied).
    assert (b.graded, b.satisfied, b.satisfaction_rate) == (3, 2, round(2 / 3, 4))
    assert (d.graded, d.satisfied, d.satisfaction_rate) == (1, 0, 0.0)
    # Ranked by 响应率: A's 100 % before C's 0 %.
    order = [f.code for f in got.values()]
    assert order.index(A) < order.index(C)


def test_overdue_now_and_deletions_come_from_the_data(db, month):
    with db.session() as session:
        overdue = overdue_now(session, NOW)
        assert [(o.unit, o.step) for o in overdue] == [(C, "accept")]
        assert deletions(session).total == 0 and deletions(session).numbers_issued == deletions(session).cases_present
        # A number issued whose case is not there (what a deletion would leave): counted.
        session.get(CaseNumberCounter, 2026).last += 1
        session.flush()
        assert deletions(session).numbers_missing == 1 and deletions(session).total == 1


def test_the_forum_service_keeps_each_steps_deadline_on_the_timeline(db):
    """The figures read ``detail.due_at``: posting, forwarding and accepting write the deadline they set."""
    policy = Deadlines(office_periods=("08:30-12:00", "14:00-17:30"), zone=SHANGHAI)
    now = datetime(2026, 11, 10, 1, 0, tzinfo=timezone.utc)  # 09:00 on a Tuesday in Shanghai
    with db.session() as session:
        ensure_shipped_units(session, now)
        unit = session.query(Department).filter_by(code=A).one()
        session.add(Case(number="96811-2026-000001", department_id=unit.id, state=CaseState.QUEUED,
                         caller_surname="朱", caller_honorific="女士", title="t", description="d"))
        session.flush()
        mark_posted(session, "96811-2026-000001", PostRef("96811-2026-000001", "1", "http://board/1"), now, policy)
        apply_event(session, ThreadEvent(event_id="e1", case_number="96811-2026-000001", kind=ThreadEventKind.FORWARDED,
                                         at=now.replace(hour=2), unit_code=A, to_unit_code=B, actor="spk"), policy)
        apply_event(session, ThreadEvent(event_id="e2", case_number="96811-2026-000001", kind=ThreadEventKind.ACCEPTED,
                                         at=now.replace(hour=3), unit_code=B, actor="spk"), policy)
        case = session.query(Case).one()
        dues = [(e.kind, e.detail.get("due_at")) for e in case.events]
    assert dues == [("posted", "2026-11-10T03:00:00+00:00"), ("forwarded", "2026-11-10T04:00:00+00:00"),
                    ("accepted", "2026-11-13T03:00:00+00:00")]
