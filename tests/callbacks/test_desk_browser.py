"""The operator's callback queue in Debian's Chromium (Playwright), against the app under uvicorn:
call (a Dialler that records the order), the attempt settled answered as Asterisk's events settle
it (the page follows live), the outcome ``informed`` with a grade, and a follow-up whose text goes
to the forum outbox and whose board event reopens the case.  SQLite only (the HTTP tests cover
PostgreSQL).  Screenshots go to /tmp/callbacks-*.png."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bridge.db.models import (
    CallbackAttemptResult,
    CallbackOutcome,
    CallbackState,
    CallbackTask,
    Case,
    CaseState,
    ForumOutbox,
    OutboxOperation,
)
from bridge.forum import service
from bridge.forum.adapter import ThreadEventKind
from bridge.live import LiveEvent
from callbacks import tasks
from tests.browser import new_tab
from tests.callbacks.desk_support import (
    ANSWER,
    NOW,
    FixedClock,
    RecordingDialler,
    board_event,
    forum_answered_task,
    on_the_clock,
)
from tests.desk.conftest import PASSWORD, clock, desk_app, desk_config, live, people  # noqa: F401

pytestmark = pytest.mark.browser


@pytest.fixture
def db(sqlite_db):
    """SQLite only for the browser tests (overrides the two-backend fixture)."""
    return sqlite_db


@pytest.fixture
def dialler(desk_app):  # noqa: F811
    recording = RecordingDialler()
    on_the_clock(desk_app, FixedClock(), recording)
    desk_app.state.desk_case_check_s = 0.5  # the stream looks at the callback tables this often
    return recording


@pytest.fixture
def page(browser, live, dialler):  # noqa: F811
    tab = new_tab(browser)
    yield tab
    tab.context.close()


def open_queue(page, live):  # noqa: F811
    page.goto(f"{live.url}/desk/login")
    page.fill('input[name="username"]', "operator")
    page.fill('input[name="password"]', PASSWORD)
    page.click('#login-form button[type="submit"]')
    page.wait_for_url(f"{live.url}/desk/")
    page.click('header nav a[href="/desk/callbacks"]')  # the desk's menu links the queue
    page.wait_for_url(f"{live.url}/desk/callbacks")
    page.wait_for_selector('body[data-live="ready"]')
    live.wait_subscribers()


def call_and_answer(page, db, desk_app, dialler, task_id: int, placed: int) -> None:  # noqa: F811
    """Press call; the order reaches the dialler; the caller answers (settled as the PBX's events do)."""
    card = page.locator(f"#task-{task_id}")
    card.locator("button.call").click()
    page.locator(".queue-message").wait_for()
    assert page.locator(".queue-message").inner_text() == "正在呼叫：你的话机会先响，接起后再拨打来电人。"
    assert [o.task_id for o in dialler.orders][placed:] == [task_id]
    assert card.locator(".calling").is_visible() and card.locator("button.call").count() == 0
    with db.session() as session:
        tasks.settle_attempt(session, dialler.orders[placed].key, CallbackAttemptResult.ANSWERED,
                             NOW + timedelta(seconds=20), desk_app.state.callback_policy, settled_by="events",
                             answered_at=NOW + timedelta(seconds=20))
    # nobody announced it: the stream's look at the callback tables brings the outcome form
    card.locator("form.outcome").wait_for(timeout=8000)


def test_call_then_informed_with_a_grade(page, live, db, desk_app, desk_config, dialler):  # noqa: F811
    task_id, number = forum_answered_task(db, desk_config, desk_app.state.callback_policy)
    open_queue(page, live)
    card = page.locator(f"#queue-mine #task-{task_id}")
    assert "朱女士" in card.locator("header").inner_text()
    assert card.locator(".answer-text").inner_text() == ANSWER
    assert card.locator("a.thread-link").get_attribute("href").endswith(f"/board/threads/{number}")
    card.locator(".task-timeline summary").click()
    assert "已受理" in card.locator(".task-timeline").inner_text()
    page.screenshot(path="/tmp/callbacks-queue.png", full_page=True)

    call_and_answer(page, db, desk_app, dialler, task_id, 0)
    form = card.locator("form.outcome")
    form.locator('input[name="outcome"][value="informed"]').check()
    form.locator('textarea[name="text"]').fill("")
    form.locator("button.record").click()  # no grade: told beside the grades, nothing stored
    error = page.locator(f'#task-{task_id} .error[data-field="satisfaction"]')
    error.wait_for()
    assert error.inner_text() == "请选择来电人对答复的满意程度。"
    with db.session(readonly=True) as session:
        assert session.get(CallbackTask, task_id).state is CallbackState.IN_PROGRESS
    form = page.locator(f"#task-{task_id} form.outcome")
    assert form.locator('input[name="outcome"][value="informed"]').is_checked()  # kept
    form.locator('input[name="satisfaction"][value="5"]').check()
    form.locator('input[name="note"]').fill("来电人表示感谢")
    form.locator("button.record").click()
    page.locator(f"#task-{task_id}").wait_for(state="detached")
    assert "目前没有你的回电任务。" in page.locator("#queue-mine").inner_text()
    with db.session(readonly=True) as session:
        task = session.get(CallbackTask, task_id)
        assert (task.state, task.outcome, task.satisfaction, task.note) == (
            CallbackState.DONE, CallbackOutcome.INFORMED, 5, "来电人表示感谢")
    page.screenshot(path="/tmp/callbacks-informed.png", full_page=True)


def test_a_follow_up_goes_to_the_thread_and_reopens(page, live, db, desk_app, desk_config, dialler):  # noqa: F811
    task_id, number = forum_answered_task(db, desk_config, desk_app.state.callback_policy)
    open_queue(page, live)
    call_and_answer(page, db, desk_app, dialler, task_id, 0)
    form = page.locator(f"#task-{task_id} form.outcome")
    form.locator('input[name="outcome"][value="follow_up"]').check()
    form.locator('textarea[name="text"]').fill("夜间是否也会清理？")
    # a change elsewhere while the operator types does not wipe the form
    live.publish(LiveEvent("callbacks", "changed", {"task_id": 999, "kind": "taken"}))
    page.wait_for_timeout(700)
    assert page.locator(f'#task-{task_id} textarea[name="text"]').input_value() == "夜间是否也会清理？"
    page.locator(f"#task-{task_id} button.record").click()
    page.locator(f"#task-{task_id}").wait_for(state="detached")
    with db.session(readonly=True) as session:
        post = session.scalar(select(ForumOutbox).where(ForumOutbox.operation == OutboxOperation.POST_FOLLOW_UP.value))
        assert post.payload == {"text": "朱女士: 夜间是否也会清理？"}
        asked = post.payload["text"]
        assert session.get(CallbackTask, task_id).outcome is CallbackOutcome.FOLLOW_UP
    # the board shows the question in the thread and reports it: the case reopens
    with db.session() as session:
        service.apply_events(session, [board_event(number, 3, ThreadEventKind.FOLLOW_UP_ASKED, NOW + timedelta(minutes=2),
                                                   text=asked, actor="hotline")],
                             service.Deadlines.from_config(desk_config))
    with db.session(readonly=True) as session:
        assert session.scalar(select(Case.state).where(Case.number == number)) is CaseState.REOPENED
    page.goto(f"{live.url}/desk/cases/{number}")
    timeline = page.locator("ol.timeline").inner_text()
    assert "已回电" in timeline and "有追问" in timeline and "夜间是否也会清理？" in timeline
    page.screenshot(path="/tmp/callbacks-follow-up.png", full_page=True)


def test_a_task_given_to_the_operator_moves_live(page, browser, live, db, desk_app, desk_config):  # noqa: F811
    """A supervisor gives a pool task to the operator, whose page follows without a reload."""
    task_id, _ = forum_answered_task(db, desk_config, desk_app.state.callback_policy, filed_by="supervisor")
    with db.session() as session:  # the supervisor's turn is over: the task is in the pool
        session.get(CallbackTask, task_id).owner_id = None
    open_queue(page, live)
    page.locator(f"#queue-pool #task-{task_id}").wait_for()
    other = new_tab(browser)
    try:
        other.goto(f"{live.url}/desk/login")
        other.fill('input[name="username"]', "supervisor")
        other.fill('input[name="password"]', PASSWORD)
        other.click('#login-form button[type="submit"]')
        other.wait_for_url(f"{live.url}/desk/")
        other.goto(f"{live.url}/desk/callbacks")
        card = other.locator(f"#task-{task_id}")
        card.locator('select[name="user_id"]').select_option(label="operator person")
        card.locator("button.reassign").click()
        # the operator's page follows live: the task is theirs now
        page.locator(f"#queue-mine #task-{task_id}").wait_for(timeout=8000)
        assert "负责人：operator person" in page.locator(f"#task-{task_id} header").inner_text()
        other.locator(f"#queue-others #task-{task_id}").wait_for()
        other.screenshot(path="/tmp/callbacks-supervisor.png", full_page=True)
    finally:
        other.context.close()
