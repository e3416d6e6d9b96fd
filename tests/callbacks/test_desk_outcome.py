"""Recording a callback's outcome on the desk (HTTP level, both DBs): every problem told beside its
field with nothing stored, informed with a grade, a follow-up into the forum outbox, a poor grade
flagged for supervisors, voicemail retried, do-not-call; and the callback entries of the case's
timeline in the page's language."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from bridge.db.models import (
    CallbackAttemptResult,
    CallbackOutcome,
    CallbackState,
    CallbackTask,
    CaseEvent,
    DoNotCall,
    ForumOutbox,
    OutboxOperation,
)
from callbacks import tasks
from tests.callbacks.desk_support import (
    NOW,
    act,
    answered_task,
    section,
    task_html,
    task_ids,
)
from tests.callbacks.desk_support import dialler  # noqa: F401 (fixture)
from tests.desk.conftest import client, clock, desk_app, desk_config, operator, people, sign_in  # noqa: F401

pytestmark = pytest.mark.postgres


@pytest.fixture
def answered_call(operator, db, desk_app, dialler):  # noqa: F811
    """The operator's task, called from the desk and answered by the caller (as Asterisk's events settle it)."""
    policy = desk_app.state.callback_policy
    task, number = answered_task(db, policy, filed_by="operator")
    assert act(operator, task, "call").status_code == 200
    with db.session() as session:
        tasks.settle_attempt(session, dialler.orders[0].key, CallbackAttemptResult.ANSWERED, NOW, policy,
                             settled_by="events", answered_at=NOW)
    return task, number


def stored(db) -> tuple:
    with db.session(readonly=True) as session:
        task = session.scalar(select(CallbackTask))
        outbox = session.scalar(select(func.count()).select_from(ForumOutbox)
                                .where(ForumOutbox.operation == OutboxOperation.POST_FOLLOW_UP.value))
        return task.state, task.outcome, task.satisfaction, outbox


def error_of(html: str, field: str) -> str:
    match = re.search(rf'<span class="error" data-field="{field}" role="alert">([^<]*)</span>', html)
    assert match, f"no error beside {field}"
    return match.group(1)


def test_the_form_appears_once_the_caller_answered(operator, answered_call):  # noqa: F811
    task, _ = answered_call
    card = task_html(operator.get("/desk/callbacks").text, task)
    assert 'class="outcome keeps-edits"' in card and card.count('name="satisfaction"') == 5
    grades = re.findall(r'name="satisfaction" value="(\d)"> ([^ ]+) \d', card)
    assert grades == [("5", "非常满意"), ("4", "满意"), ("3", "基本满意"), ("2", "不满意"), ("1", "非常不满意")]
    assert f"/desk/callbacks/{task}/call" not in card  # no second call before the outcome


@pytest.mark.parametrize("form, field, words", [
    ({}, "outcome", "请选择这通电话的结果。"),
    ({"outcome": "informed"}, "satisfaction", "请选择来电人对答复的满意程度。"),
    ({"outcome": "voicemail", "satisfaction": "4"}, "satisfaction", "只有选择“已告知”时才填写满意度。"),
    ({"outcome": "follow_up"}, "text", "请写下来电人的追问。"),
    ({"outcome": "informed", "satisfaction": "5", "text": "还有问题"}, "text", "只有选择“有追问”时才填写追问"),
    ({"outcome": "follow_up", "text": "请回电 13912345678"}, "text", "请不要写入来电人的电话号码和全名"),
    ({"outcome": "informed", "satisfaction": "9"}, "satisfaction", "请选择来电人对答复的满意程度。"),
])
def test_every_problem_beside_its_field_and_nothing_stored(operator, db, answered_call, form, field,  # noqa: F811
                                                           words):
    task, _ = answered_call
    refused = act(operator, task, "outcome", note="来电人很客气", **form)
    assert refused.status_code == 422
    assert words in error_of(refused.text, field)
    assert 'value="来电人很客气"' in refused.text  # what was typed is kept
    assert stored(db) == (CallbackState.IN_PROGRESS, None, None, 0)
    htmx = act(operator, task, "outcome", htmx=True, **form)
    assert htmx.status_code == 200 and words in error_of(htmx.text, field)


def test_informed_with_a_grade_closes_the_task(operator, db, desk_app, answered_call):  # noqa: F811
    task, number = answered_call
    received = []
    desk_app.state.live.publish = received.append
    assert act(operator, task, "outcome", outcome="informed", satisfaction="4", note="已告知").status_code == 303
    assert stored(db) == (CallbackState.DONE, CallbackOutcome.INFORMED, 4, 0)
    assert [(e.topic, e.kind) for e in received] == [("callbacks", "outcome")]
    assert task not in task_ids(operator.get("/desk/callbacks").text)
    # the case's timeline says so in Chinese, and in English
    page = operator.get(f"/desk/cases/{number}").text
    items = re.findall(r'<li class="timeline-(callback_\w+)"[^>]*>(.*?)</li>', page, re.S)
    text = {kind: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)) for kind, body in items}
    assert "已安排回电" in text["callback_scheduled"] and "回电" in text["callback_scheduled"]
    assert "已回电" in text["callback_outcome"] and "已告知 · 满意度 4/5" in text["callback_outcome"]
    english = operator.get(f"/desk/cases/{number}?lang=en").text
    assert "called back" in english and "informed · satisfaction 4 of 5" in english


def test_a_follow_up_goes_to_the_forum_outbox_under_the_callers_public_name(operator, db, answered_call):  # noqa: F811
    task, number = answered_call
    assert act(operator, task, "outcome", outcome="follow_up", text="夜间是否也会清理？").status_code == 303
    assert stored(db) == (CallbackState.DONE, CallbackOutcome.FOLLOW_UP, None, 1)
    with db.session(readonly=True) as session:
        post = session.scalar(select(ForumOutbox).where(ForumOutbox.operation == OutboxOperation.POST_FOLLOW_UP.value))
        assert post.payload == {"text": "朱女士: 夜间是否也会清理？"} and post.idempotency_key.startswith(number)


def test_a_poor_grade_is_flagged_for_supervisors(operator, db, desk_app, answered_call):  # noqa: F811
    from fastapi.testclient import TestClient

    task, _ = answered_call
    assert act(operator, task, "outcome", outcome="informed", satisfaction="2").status_code == 303
    with TestClient(desk_app, follow_redirects=False) as supervisor:
        assert sign_in(supervisor, "supervisor").status_code == 303
        closed = section(supervisor.get("/desk/callbacks").text, "closed")
        assert task_ids(closed) == [task]
        card = task_html(closed, task)
        assert "poor-grade" in card and "差评：请复核案件" in card and "不满意" in card
    assert 'id="queue-closed"' not in operator.get("/desk/callbacks").text


def test_voicemail_is_retried_and_do_not_call_lists_the_number(operator, db, desk_app, dialler,  # noqa: F811
                                                             answered_call):
    task, _ = answered_call
    assert act(operator, task, "outcome", outcome="voicemail").status_code == 303
    with db.session(readonly=True) as session:
        row = session.get(CallbackTask, task)
        assert row.state in (CallbackState.SCHEDULED, CallbackState.DUE) and row.due_at > NOW
        later = row.due_at
    # the retry falls due: called again, answered, and the caller asks not to be called again
    desk_app.state.callback_clock.now = later
    desk_app.state.callback_placer.clock = lambda: later
    assert act(operator, task, "call").status_code == 200
    policy = desk_app.state.callback_policy
    with db.session() as session:
        tasks.settle_attempt(session, dialler.orders[1].key, CallbackAttemptResult.ANSWERED, later, policy,
                             settled_by="events", answered_at=later)
    assert act(operator, task, "outcome", outcome="do_not_call", note="来电人要求不要再打").status_code == 303
    with db.session(readonly=True) as session:
        assert session.scalar(select(DoNotCall.phone).where(DoNotCall.lifted_at.is_(None))) == "+8613912345678"
        kinds = session.scalars(select(CaseEvent.kind).where(CaseEvent.kind == "callback_outcome")).all()
        assert len(kinds) == 2
