"""What supervisors do on the callback queue (HTTP level, both DBs): see every task (other
operators' turns, tasks to check, tasks not reached), reassign one to an operator, release one to
the pool, lift a do-not-call entry; operators may not."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from bridge.db.models import CallbackCheck, CallbackState, CallbackTask, DoNotCall, User
from callbacks import tasks
from tests.callbacks.desk_support import NOW, FixedClock, act, answered_task, on_the_clock, section, task_html, task_ids
from tests.desk.conftest import client, clock, desk_app, desk_config, operator, people, sign_in  # noqa: F401
from tests.desk.conftest import csrf_of

pytestmark = pytest.mark.postgres


@pytest.fixture
def supervisor(desk_app):  # noqa: F811
    on_the_clock(desk_app, FixedClock())
    with TestClient(desk_app, follow_redirects=False) as other:
        assert sign_in(other, "supervisor").status_code == 303
        yield other


@pytest.fixture
def policy(desk_app):  # noqa: F811
    return desk_app.state.callback_policy


def test_supervisors_see_every_task(operator, supervisor, db, policy):  # noqa: F811
    theirs, _ = answered_task(db, policy, filed_by="operator")  # the operator's turn
    check, _ = answered_task(db, policy, filed_by=None)
    lost, _ = answered_task(db, policy, filed_by=None)
    with db.session() as session:
        session.get(CallbackTask, check).needs_check = CallbackCheck.ATTEMPT
        tasks.give_up(session, session.get(CallbackTask, lost), NOW, why="max_attempts")
    page = supervisor.get("/desk/callbacks").text
    assert task_ids(section(page, "others")) == [theirs, check]
    assert "上一次呼叫的结果丢失了" in task_html(page, check)
    assert task_ids(section(page, "closed")) == [lost] and "未联系上" in task_html(page, lost)
    # the operator sees their own, not the one to check nor the one not reached
    mine = operator.get("/desk/callbacks").text
    assert task_ids(mine) == [theirs] and 'id="queue-others"' not in mine


def test_reassign_to_an_operator_and_release_to_the_pool(operator, supervisor, db, policy):  # noqa: F811
    task, _ = answered_task(db, policy, filed_by="supervisor")
    assert task not in task_ids(operator.get("/desk/callbacks").text)
    with db.session(readonly=True) as session:
        operator_id = session.scalar(select(User.id).where(User.username == "operator"))
    assert act(supervisor, task, "reassign", user_id=str(operator_id)).status_code == 303
    assert task_ids(section(operator.get("/desk/callbacks").text, "mine")) == [task]
    refused = act(supervisor, task, "reassign", user_id="999")
    assert refused.status_code == 422 and "请选择一位可以使用坐席台的话务员。" in refused.text
    # operators may not release or reassign
    denied = act(operator, task, "release")
    assert denied.status_code == 403 and "只有班长可以这样操作。" in denied.text
    assert act(operator, task, "reassign", user_id=str(operator_id)).status_code == 403
    assert act(supervisor, task, "release").status_code == 303
    with db.session(readonly=True) as session:
        row = session.get(CallbackTask, task)
        assert row.owner_id is None and row.held_by_id is None and row.state is CallbackState.DUE
    assert task_ids(section(operator.get("/desk/callbacks").text, "pool")) == [task]
    assert act(supervisor, 999, "release").status_code == 404


def test_lift_a_do_not_call_entry(operator, supervisor, db):  # noqa: F811
    with db.session() as session:
        entry = tasks.forbid_number(session, "13912345678", task_id=None, by=None, note="来电人要求", now=NOW).id
    page = supervisor.get("/desk/callbacks").text
    assert "免打扰名单" in page and "139 1234 5678" in page and "来电人要求" in page
    path = f"/desk/callbacks/do-not-call/{entry}/lift"
    assert operator.post(path, data={"csrf_token": csrf_of(operator.get("/desk/callbacks").text)}).status_code == 403
    assert supervisor.post(path, data={}).status_code == 403  # CSRF
    assert supervisor.post(path, data={"csrf_token": csrf_of(page)}).status_code == 303
    with db.session(readonly=True) as session:
        assert session.get(DoNotCall, entry).lifted_at is not None
        assert tasks.do_not_call(session, "13912345678") is None
    again = supervisor.post(path, data={"csrf_token": csrf_of(page)})
    assert again.status_code == 404 and "这个号码已不在免打扰名单上。" in again.text


def test_a_wrong_number_is_checked_and_called_again(operator, supervisor, db, policy):  # noqa: F811
    task, _ = answered_task(db, policy, filed_by="operator")
    with db.session() as session:  # Asterisk said the number does not exist (hangup cause 1)
        row = session.get(CallbackTask, task)
        row.state, row.needs_check, row.completed_at = CallbackState.UNREACHABLE, CallbackCheck.NUMBER, NOW
    page = supervisor.get("/desk/callbacks").text
    card = task_html(section(page, "closed"), task)
    assert "号码可能有误" in card and f"/desk/callbacks/{task}/number" in card
    refused = act(supervisor, task, "number", phone="12")
    assert refused.status_code == 422 and "这不是电话号码" in refused.text
    assert act(operator, task, "number", phone="13912345679").status_code == 403
    assert act(supervisor, task, "number", phone="139 1234 5679").status_code == 303
    with db.session(readonly=True) as session:
        row = session.get(CallbackTask, task)
        assert (row.phone, row.needs_check, row.state) == ("+8613912345679", None, CallbackState.DUE)
    assert task_ids(section(operator.get("/desk/callbacks").text, "mine")) == [task]
