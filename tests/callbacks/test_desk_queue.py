"""The operators' callback queue on the desk (HTTP level, both DBs): mine then the pool, the pool
longest-waiting first, what to say on each task, take and call (through the Placer) with every
refusal told in plain words, and the desk's main page linking to the queue."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bridge.db.models import CallbackAttempt, CallbackTask, CaseEvent
from callbacks.tasks import Refusal
from tests.callbacks.desk_support import (
    ANSWER,
    NOW,
    FixedClock,
    act,
    answered_task,
    missed_call_task,
    on_the_clock,
    section,
    task_html,
    task_ids,
)
from tests.callbacks.desk_support import dialler  # noqa: F401 (fixture)
from tests.desk.conftest import client, clock, desk_app, desk_config, operator, people, sign_in  # noqa: F401
from tests.sign_ins import sign_in_at_desk

pytestmark = pytest.mark.postgres


@pytest.fixture
def policy(desk_app):  # noqa: F811
    return desk_app.state.callback_policy


@pytest.fixture
def colleague(desk_app):  # noqa: F811
    """The supervisor, signed in on a client of their own."""
    with TestClient(desk_app, follow_redirects=False) as other:
        assert sign_in(other, "supervisor").status_code == 303
        yield other


def test_the_desk_links_to_the_queue_instead_of_the_old_list(operator):  # noqa: F811
    desk = operator.get("/desk/").text
    assert 'href="/desk/callbacks"' in desk and "待回电 / 待建案" not in desk
    assert "回电" in desk  # the menu entry, in Chinese
    assert operator.post("/desk/calls/80.1/take", data={}).status_code in (403, 404, 405)


def test_mine_first_then_the_pool_longest_waiting_first(operator, db, policy, dialler):  # noqa: F811
    mine, number = answered_task(db, policy, filed_by="operator")
    late, _ = answered_task(db, policy, filed_by=None, answered_at=NOW - timedelta(hours=1))
    early, _ = answered_task(db, policy, filed_by=None, answered_at=NOW - timedelta(hours=3))
    missed = missed_call_task(db, policy, "80.1", "13800003333", NOW - timedelta(hours=2))
    sign_in_at_desk(db, "supervisor", NOW - timedelta(hours=1))
    theirs, _ = answered_task(db, policy, filed_by="supervisor")  # the supervisor's turn: not the operator's
    page = operator.get("/desk/callbacks")
    assert page.status_code == 200
    assert task_ids(section(page.text, "mine")) == [mine]
    assert task_ids(section(page.text, "pool")) == [early, missed, late]
    assert theirs not in task_ids(page.text) and 'id="queue-others"' not in page.text
    # what to say: the caller, the answer and its unit, the thread, the timeline
    card = task_html(page.text, mine)
    assert "朱女士" in card and ANSWER in card and number in card and "139 1234 5678" in card
    assert "垃圾" in card and '<li data-kind="callback_scheduled">' in card
    assert "已安排回电" in card and '<li data-kind="answered">' in card
    assert "拨打" in card and "/desk/callbacks/%d/call" % mine in card
    assert "/desk/callbacks/%d/take" % early in task_html(page.text, early)
    # a missed call: its time, number, audio link and "file a case from this call"
    call = task_html(page.text, missed)
    assert "138 0000 3333" in call and "未接挂断" in call and "/desk/cases/new?call=80.1" in call
    # in English too
    english = operator.get("/desk/callbacks?lang=en").text
    assert "Shared pool" in english and "Tell the answer" in english and "Missed call" in english


def test_take_from_the_pool_then_a_second_operator_is_refused(operator, colleague, db, policy, dialler):  # noqa: F811
    task, _ = answered_task(db, policy, filed_by=None)
    assert act(operator, task, "take").status_code == 303
    with db.session(readonly=True) as session:
        assert session.get(CallbackTask, task).held_by.username == "operator"
    page = operator.get("/desk/callbacks").text
    assert task in task_ids(section(page, "mine")) and "由你接手" in task_html(page, task)
    # the supervisor sees who holds it; an operator taking it now is refused in plain words
    assert "operator person 已接手" in task_html(colleague.get("/desk/callbacks").text, task)


def test_a_second_take_is_refused_with_the_holders_name(operator, db, policy, dialler, desk_app):  # noqa: F811
    from bridge.accounts.service import add_user
    from bridge.db.models import Role
    from tests.desk.conftest import PASSWORD

    with db.session() as session:
        add_user(session, "colleague", Role.OPERATOR, PASSWORD, extension="8003", display_name="colleague person",
                 now=NOW)
    task, _ = answered_task(db, policy, filed_by=None)
    with TestClient(desk_app, follow_redirects=False) as other:
        assert sign_in(other, "colleague").status_code == 303
        assert act(other, task, "take").status_code == 303
        refused = act(operator, task, "take")
        assert refused.status_code == 409 and "colleague person 正在处理这个回电。" in refused.text
        again = act(operator, task, "call", htmx=True)
        assert again.status_code == 200 and "colleague person 正在处理这个回电。" in again.text
    assert dialler.orders == []


def test_call_places_one_order_and_tells_what_moved_since(operator, db, policy, dialler, desk_app):  # noqa: F811
    task, number = answered_task(db, policy, filed_by="operator")
    with db.session() as session:  # the case was forwarded after this answer
        case_id = session.get(CallbackTask, task).case_id
        session.add(CaseEvent(case_id=case_id, at=NOW, kind="forwarded", actor="forum",
                              detail={"unit": "CITY-LJQ", "to_unit": "CITY-ZJJ", "text": "转交"}))
    before = operator.get("/desk/callbacks").text
    assert "自这条答复以来，案件已转交其他单位。" in task_html(before, task)  # seen before pressing call
    received = []
    desk_app.state.live.publish = received.append
    placed = act(operator, task, "call")
    assert placed.status_code == 200
    assert "正在呼叫：你的话机会先响，接起后再拨打来电人。" in placed.text
    assert '<p class="alert briefing-warning" role="alert">自这条答复以来，案件已转交其他单位。</p>' in placed.text
    assert [(o.task_id, o.phone, o.extension, o.case_number) for o in dialler.orders] == [
        (task, "+8613912345678", "8001", number)]
    assert [(e.topic, e.kind) for e in received] == [("callbacks", "attempt_started")]
    with db.session(readonly=True) as session:
        attempt = session.scalar(select(CallbackAttempt))
        assert attempt.idempotency_key == dialler.orders[0].key and attempt.ended_at is None
    # a second press finds the live attempt: refused, no second order
    again = act(operator, task, "call")
    assert again.status_code == 409 and "这个任务的呼叫正在进行中。" in again.text
    assert len(dialler.orders) == 1


@pytest.mark.parametrize("refusal, words", [
    (Refusal.PBX_DOWN, "交换机不可用：现在无法外呼。"),
    (Refusal.DEVICE_BUSY, "你的话机正在通话：请先结束那通电话。"),
    (Refusal.DEVICE_UNREGISTERED, "你的话机没有在交换机上注册"),
])
def test_the_dialler_refusals_in_plain_words(operator, db, policy, dialler, refusal, words):  # noqa: F811
    task, _ = answered_task(db, policy, filed_by="operator")
    dialler.refusal = refusal
    refused = act(operator, task, "call")
    assert refused.status_code == 409 and words in refused.text
    with db.session(readonly=True) as session:
        assert session.scalar(select(CallbackAttempt)) is None  # nothing was begun


def test_without_a_placer_the_page_says_the_pbx_is_down(operator, db, policy, desk_app):  # noqa: F811
    on_the_clock(desk_app, FixedClock())
    task, _ = answered_task(db, policy, filed_by="operator")
    refused = act(operator, task, "call")
    assert refused.status_code == 503 and "交换机不可用：现在无法外呼。" in refused.text
    operator.get("/desk/callbacks?lang=en")  # the session remembers the language
    english = act(operator, task, "call", htmx=True)
    assert english.status_code == 200 and "The PBX is down: no call can be placed now." in english.text


def test_outside_the_windows_and_not_due_are_refused_with_the_time(operator, db, policy, dialler, desk_app):  # noqa: F811
    task, _ = answered_task(db, policy, filed_by="operator")
    desk_app.state.callback_clock.now = dialler_clock = NOW.replace(hour=23)  # at night
    desk_app.state.callback_placer.clock = lambda: dialler_clock
    refused = act(operator, task, "call")
    assert refused.status_code == 409 and "已超出这位来电人的可回电时间：下次可回电时间为 2026-12-04 09:00。" in refused.text
    assert dialler.orders == []


def test_a_do_not_call_number_is_refused(operator, db, policy, dialler):  # noqa: F811
    from callbacks import tasks

    task, _ = answered_task(db, policy, filed_by="operator")
    with db.session() as session:
        tasks.forbid_number(session, "+8613912345678", task_id=None, by=None, note="", now=NOW)
    refused = act(operator, task, "call")
    assert refused.status_code == 409 and "这个号码在免打扰名单上：只有班长可以解除。" in refused.text


def test_a_newer_answer_and_the_earlier_attempts_are_shown(operator, db, policy, dialler, desk_app):  # noqa: F811
    from bridge.db.models import CallbackAttemptResult
    from callbacks import tasks

    task, _ = answered_task(db, policy, filed_by="operator")
    assert act(operator, task, "call").status_code == 200
    with db.session() as session:  # the caller's line was busy
        tasks.settle_attempt(session, dialler.orders[0].key, CallbackAttemptResult.BUSY, NOW, policy,
                             settled_by="events", hangup_cause=17)
        row = session.get(CallbackTask, task)
        session.add(CaseEvent(case_id=row.case_id, at=NOW, kind="follow_up_answered", actor="forum",
                              detail={"text": "答复：夜间 22 点前再清理一次。", "unit": "CITY-LJQ"}))
        row.due_at = NOW  # the retry is due (the ladder's interval has passed)
    card = task_html(operator.get("/desk/callbacks").text, task)
    assert "此后单位又作了答复：请告诉来电人这里显示的最新答复。" in card
    assert '<blockquote class="pre answer-text">答复：夜间 22 点前再清理一次。</blockquote>' in card
    attempts = re.search(r'<ol class="attempts">(.*?)</ol>', card, re.S).group(1)
    assert re.search(r'<li data-result="busy">2026-12-03 10:00 · 忙线 · operator person</li>', attempts), attempts
    placed = act(operator, task, "call")
    assert "此后单位又作了答复" in re.search(r'<div id="queue-notice".*?</div>', placed.text, re.S).group(0)


def test_mine_are_shown_however_many_wait_longer_in_the_pool(operator, db, policy, dialler, monkeypatch):  # noqa: F811
    from callbacks.desk import queue

    monkeypatch.setattr(queue, "LIMIT", 2)
    older = [answered_task(db, policy, filed_by=None, answered_at=NOW - timedelta(hours=h))[0] for h in (3, 2, 1)]
    mine, _ = answered_task(db, policy, filed_by="operator")
    page = operator.get("/desk/callbacks").text
    assert task_ids(section(page, "mine")) == [mine]
    assert task_ids(section(page, "pool")) == older[:2]  # the two longest waiting


def test_every_refusal_has_plain_words_in_both_languages():
    from bridge.i18n import translations
    from callbacks.desk.labels import refusal_text

    zh, en = translations("zh_CN").gettext, translations("en").gettext
    for refusal in Refusal:
        detail = {"not_due": NOW.isoformat(), "outside_windows": NOW.isoformat(), "owners_turn": f"until {NOW.isoformat()}",
                  "needs_check": "check_number"}.get(refusal.value, "")
        chinese = refusal_text(refusal, detail, "王芳", zh, lambda t: "10:00")
        english = refusal_text(refusal, detail, "王芳", en, lambda t: "10:00")
        assert re.search("[\u4e00-\u9fff]{4}", chinese) and chinese != english, refusal
        assert refusal.value not in chinese and "%(" not in chinese + english, refusal
