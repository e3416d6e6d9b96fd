"""Filing in one transaction: numbers, the first timeline entry, the outbox row; atomicity and concurrency."""
from __future__ import annotations

import threading
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from bridge.accounts.service import get_user
from bridge.cases import service
from bridge.cases.api import router as cases_router
from bridge.cases.validation import CaseValidationError
from bridge.db.models import Case, CaseEvent, CaseNumberCounter, CaseState, ForumOutbox
from bridge.health import Health
from bridge.web.app import create_app
from tests.cases.conftest import auth, valid_form

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 25, 4, 0, tzinfo=timezone.utc)  # 12:00 in Quzhou


def stored(db) -> tuple[int, int, int, list[tuple[int, int]]]:
    with db.session(readonly=True) as session:
        counts = tuple(session.scalar(select(func.count()).select_from(m)) for m in (Case, CaseEvent, ForumOutbox))
        counters = [(c.year, c.last) for c in session.scalars(select(CaseNumberCounter))]
    return (*counts, counters)


def file(db, form=None, now=NOW, username="operator"):
    with db.session() as session:
        user = get_user(session, username)
        case = service.file_case(session, form or valid_form(), user=user, now=now, zone=SHANGHAI)
        return case.number


def test_filing_writes_case_event_and_outbox_together(db, staff):
    number = file(db)
    assert number == "96811-2026-000001"
    with db.session(readonly=True) as session:
        case = service.get_case(session, number)
        assert case.state is CaseState.QUEUED
        assert case.created_by.username == "operator"
        assert case.call.linkedid
        [event] = case.events
        assert (event.kind, event.actor, event.actor_user_id, event.at) == ("filed", "operator", case.created_by_id, NOW)
        [outbox] = session.scalars(select(ForumOutbox)).all()
        assert (outbox.case_id, outbox.operation, outbox.idempotency_key) == (case.id, "create_post", number)
        view = service.case_view(case, SHANGHAI, NOW)
    assert view["timeline"][0]["at"].isoformat() == "2026-11-25T12:00:00+08:00"
    assert "+8613912345678" not in repr(view["timeline"]) and "朱小红" not in repr(view["timeline"])


@pytest.mark.parametrize("now, number", [
    (datetime(2026, 12, 31, 15, 59, tzinfo=timezone.utc), "96811-2026-000001"),  # 23:59 in Quzhou
    (datetime(2026, 12, 31, 16, 0, tzinfo=timezone.utc), "96811-2027-000001"),  # already 1 January there
])
def test_number_year_is_the_site_year(db, staff, now, number):
    assert file(db, now=now) == number


def test_invalid_form_stores_nothing(db, staff):
    with pytest.raises(CaseValidationError) as caught:
        file(db, valid_form(title=None, department="CITY-NOPE"))
    assert [(e.field, e.message_id) for e in caught.value.errors] == [("department", "department_unknown"),
                                                                      ("title", "required")]
    assert stored(db) == (0, 0, 0, [])


def test_failure_after_the_case_is_inserted_stores_nothing(db, staff, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the outbox is broken")

    monkeypatch.setattr(service, "_outbox_entry", broken)
    with pytest.raises(RuntimeError):
        file(db)
    assert stored(db) == (0, 0, 0, [])  # not even the number
    monkeypatch.undo()
    assert file(db) == "96811-2026-000001"


def test_database_failure_mid_way_stores_nothing(db, staff):
    first = file(db)
    with db.session() as session:  # take the idempotency key the next case's outbox row would use
        case_id = session.scalar(select(Case.id).where(Case.number == first))
        session.add(ForumOutbox(case_id=case_id, operation="follow_up", idempotency_key="96811-2026-000002"))
    before = stored(db)
    with pytest.raises(Exception) as caught:
        file(db)
    assert "unique" in str(caught.value).lower() or "duplicate" in str(caught.value).lower()
    assert stored(db) == before
    assert before[3] == [(2026, 1)]


def test_api_failure_mid_way_answers_500_and_stores_nothing(db, staff, site_config, monkeypatch):
    monkeypatch.setattr(service, "forum_payload", lambda *a, **k: 1 / 0)
    app = create_app(site_config, db, Health())
    app.include_router(cases_router)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/api/v1/cases", json=valid_form(), headers=auth(staff["operator"]))
    assert response.status_code == 500
    assert stored(db) == (0, 0, 0, [])


def test_concurrent_filings_get_distinct_consecutive_numbers(db, staff):
    workers = 8
    barrier = threading.Barrier(workers)
    numbers: list[str] = []
    problems: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            numbers.append(file(db, valid_form(title=f"并发测试第{i}件")))
        except BaseException as exc:  # noqa: BLE001 - reported below
            problems.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert problems == []
    assert sorted(numbers) == [f"96811-2026-{i:06d}" for i in range(1, workers + 1)]
    assert stored(db)[:3] == (workers, workers, workers)


def test_forum_payload_for_a_latin_surname(db, staff):
    number = file(db, valid_form(caller_surname="Smith", caller_honorific="先生", caller_full_name="John Smith",
                                 location="", call_linkedid=None, channel="email"))
    with db.session(readonly=True) as session:
        payload = session.scalar(select(ForumOutbox.payload))
    assert payload["caller"] == "Smith先生"
    assert "地点" not in payload["body"]
    assert payload["body"].splitlines()[-1] == "本帖由 96811 热线代来电群众发布。"
    assert number in payload["body"] and "John" not in repr(payload)
