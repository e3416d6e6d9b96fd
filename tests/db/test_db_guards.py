"""The database refuses to delete history and to rewrite case events."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from bridge.db import migrate
from bridge.db.engine import Database
from bridge.db.models import (
    BoardEvent,
    BoardPost,
    BoardReply,
    NEVER_DELETED,
    Call,
    CallbackAttempt,
    CallbackMessage,
    CallbackTask,
    Case,
    CaseEvent,
    DoNotCall,
    Department,
    DepartmentKind,
    ForumOutbox,
    Honorific,
    ParkedDomainEvent,
    Role,
    User,
)

T0 = datetime(2026, 3, 2, 1, 30, tzinfo=timezone.utc)


def seed(db) -> dict[str, int]:
    """One row in every guarded table; returns their ids by table name."""
    with db.session() as s:
        dept = Department(code="zjj", name="市住房和城乡建设局", kind=DepartmentKind.CITY_DEPARTMENT)
        user = User(username="op1", role=Role.OPERATOR, password_hash="x", extension="8001")
        call = Call(linkedid="1700000000.1", caller_number="13800000000", arrived_at=T0)
        s.add_all([dept, user, call])
        s.flush()
        case = Case(number="96811-2026-000001", call_id=call.id, department_id=dept.id, caller_surname="王",
                    caller_honorific=Honorific.MS, title="路灯不亮", description="衢江路路灯不亮", created_by_id=user.id)
        s.add(case)
        s.flush()
        event = CaseEvent(case_id=case.id, kind="created", actor="op1", actor_user_id=user.id, detail={"a": 1})
        outbox = ForumOutbox(case_id=case.id, operation="create_topic", idempotency_key=case.number)
        task = CallbackTask(case_id=case.id, reason="answer", phone="13800000000", due_at=T0, waiting_since=T0,
                            assigned_at=T0)
        s.add_all([event, outbox, task])
        s.flush()
        attempt = CallbackAttempt(task_id=task.id, idempotency_key="cb-1-1", dialler="asterisk")
        post = BoardPost(case_number=case.number, department_id=dept.id, origin_department_id=dept.id,
                         author="96811", title=case.title, body=case.description)
        s.add_all([attempt, post])
        s.flush()
        reply = BoardReply(post_id=post.id, kind="answer", author="spokesperson", department_id=dept.id, text="已处理")
        s.add(reply)
        s.flush()
        board_event = BoardEvent(post_id=post.id, reply_id=reply.id, kind="answered", case_number=case.number,
                                 unit_code=dept.code)
        s.add(board_event)
        no_calls = DoNotCall(phone="13800000000", task_id=task.id, set_by_id=user.id)
        message = CallbackMessage(task_id=task.id, body="96811-2026-000001")
        parked = ParkedDomainEvent(consumer="callback-tasks", position=event.id, case_id=case.id, failures=5)
        s.add_all([no_calls, message, parked])
        s.flush()
        return {"departments": dept.id, "users": user.id, "calls": call.id, "cases": case.id,
                "case_events": event.id, "forum_outbox": outbox.id, "callback_tasks": task.id,
                "callback_attempts": attempt.id, "board_posts": post.id, "board_replies": reply.id,
                "board_events": board_event.id, "do_not_call": no_calls.id, "callback_messages": message.id,
                "parked_domain_events": parked.id}


@pytest.mark.parametrize("table", NEVER_DELETED)
def test_delete_is_refused(db, table):
    ids = seed(db)
    with pytest.raises(DBAPIError, match=f"{table} rows are never deleted"):
        with db.engine.begin() as connection:
            connection.execute(text(f"DELETE FROM {table} WHERE id = :id"), {"id": ids[table]})
    with db.engine.connect() as connection:
        assert connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 1


@pytest.mark.parametrize("model", [Call, Case, CaseEvent])
def test_orm_delete_is_refused(db, model):
    ids = seed(db)
    table = model.__tablename__
    with pytest.raises(DBAPIError, match=f"{table} rows are never deleted"):
        with db.session() as s:
            s.delete(s.get(model, ids[table]))
    with pytest.raises(DBAPIError, match=f"{table} rows are never deleted"):
        with db.session() as s:
            s.execute(delete(model))
    with db.session() as s:
        assert s.get(model, ids[table]) is not None


def test_update_of_case_events_is_refused(db):
    ids = seed(db)
    with pytest.raises(DBAPIError, match="case_events rows are never updated"):
        with db.session() as s:
            s.execute(update(CaseEvent).where(CaseEvent.id == ids["case_events"]).values(kind="edited"))
    with pytest.raises(DBAPIError, match="case_events rows are never updated"):
        with db.session() as s:
            s.get(CaseEvent, ids["case_events"]).detail = {"a": 2}
    with db.session() as s:
        event = s.get(CaseEvent, ids["case_events"])
        assert (event.kind, event.detail) == ("created", {"a": 1})


def test_inserting_case_events_is_allowed(db):
    ids = seed(db)
    with db.session() as s:
        s.add(CaseEvent(case_id=ids["cases"], kind="posted", actor="forum", detail={}))
    with db.session() as s:
        assert len(s.scalars(select(CaseEvent)).all()) == 2


def test_update_of_calls_and_cases_is_allowed(db):
    ids = seed(db)
    with db.session() as s:
        call = s.get(Call, ids["calls"])
        call.answered_at = T0
        call.talk_s = 42.5
        s.get(Case, ids["cases"]).title = "路灯仍不亮"
    with db.session() as s:
        assert s.get(Call, ids["calls"]).talk_s == 42.5
        assert s.get(Call, ids["calls"]).answered_at == T0
        assert s.get(Case, ids["cases"]).title == "路灯仍不亮"


@pytest.mark.postgres
@pytest.mark.parametrize("table", ["calls", "cases", "case_events"])
def test_truncate_is_refused_on_postgresql(pg_schema_url, table):
    migrate.upgrade(pg_schema_url)
    db = Database(pg_schema_url)
    try:
        seed(db)
        with pytest.raises(DBAPIError, match=f"{table} rows are never deleted"):
            with db.engine.begin() as connection:
                connection.execute(text(f"TRUNCATE {table} CASCADE"))
        with db.engine.connect() as connection:
            assert connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 1
    finally:
        db.dispose()


def test_unguarded_tables_can_still_be_deleted_from(db):
    from bridge.db.models import ApiToken

    ids = seed(db)
    with db.session() as s:
        s.add(ApiToken(user_id=ids["users"], token_hash="0" * 64, prefix="hb_0000"))
    with db.session() as s:
        s.execute(delete(ApiToken))
    with db.session() as s:
        assert s.scalars(select(ApiToken)).all() == []
