"""Missed calls on the callback queue (HTTP level, both DBs), as the old shared list had them: the
call's time, number and message, "file a case from this call" (the case keeps the call, and the
sweep links the task to it) and "done without a case" with a required note."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from bridge.db.models import Call, CallbackOutcome, CallbackState, CallbackTask, CallDisposition, Case
from callbacks.missed_calls import sweep_missed_calls
from tests.callbacks.desk_support import NOW, FixedClock, act, missed_call_task, on_the_clock, section, task_html, task_ids
from tests.desk.conftest import client, clock, desk_app, desk_config, operator, people, valid_form  # noqa: F401
from tests.desk.conftest import csrf_of
from tests.wav_files import EMPTY_WAV, wav_bytes

pytestmark = pytest.mark.postgres
LINKEDID = "81.1"
NUMBER = "13800004444"


@pytest.fixture
def missed(desk_app, db, desk_config):  # noqa: F811
    on_the_clock(desk_app, FixedClock())
    folder = desk_config.path(desk_config.pbx.recordings_dir)
    (folder / "msg-81.wav").write_bytes(wav_bytes())
    return missed_call_task(db, desk_app.state.callback_policy, LINKEDID, NUMBER, NOW - timedelta(minutes=30),
                            disposition=CallDisposition.AFTER_HOURS_MESSAGE, message_file="/var/recordings/msg-81")


def test_the_call_its_message_and_what_can_be_done(operator, missed):  # noqa: F811
    page = operator.get("/desk/callbacks").text
    assert task_ids(section(page, "pool")) == [missed]
    card = task_html(page, missed)
    assert "未接来电" in card and "138 0000 4444" in card and "非工作时间留言" in card
    assert re.search(r"来电时间 2026-12-03 09:30", card)  # in the site's zone
    assert f'<audio controls preload="none" src="/desk/recordings/{LINKEDID}">' in card
    assert f'href="/desk/cases/new?call={LINKEDID}"' in card and "为这通来电建案" in card
    assert "不建案，已处理" in card
    audio = operator.get(f"/desk/recordings/{LINKEDID}")
    assert audio.status_code == 200 and audio.content.startswith(b"RIFF")


def test_done_without_a_case_needs_a_note(operator, db, missed):  # noqa: F811
    for note in ("", "   "):
        refused = act(operator, missed, "close", note=note)
        assert refused.status_code == 422 and "请填写处理情况（必填）。" in refused.text
    with db.session(readonly=True) as session:
        assert session.get(CallbackTask, missed).state is CallbackState.DUE
    assert act(operator, missed, "close", note="已回电，来电人问题已解决").status_code == 303
    with db.session(readonly=True) as session:
        task = session.get(CallbackTask, missed)
        assert (task.state, task.outcome, task.note) == (CallbackState.DONE, CallbackOutcome.HANDLED,
                                                         "已回电，来电人问题已解决")
        assert session.scalar(select(Call.handled_note).where(Call.linkedid == LINKEDID)) == "已回电，来电人问题已解决"
    assert missed not in task_ids(operator.get("/desk/callbacks").text)


def test_a_case_filed_from_the_call_keeps_it_and_links_the_task(operator, db, desk_app, missed):  # noqa: F811
    form = operator.get(f"/desk/cases/new?call={LINKEDID}").text
    assert 'value="138 0000 4444"' in form
    filed = operator.post("/desk/cases", data={"csrf_token": csrf_of(form),
                                               **valid_form(call_linkedid=LINKEDID, caller_phone=NUMBER)})
    assert filed.status_code == 303
    with db.session(readonly=True) as session:
        case = session.scalar(select(Case))
        task = session.get(CallbackTask, missed)
        assert case.call_id == task.call_id  # the case keeps the call of the task
        number, case_id = case.number, case.id
    card = task_html(operator.get("/desk/callbacks").text, missed)  # until the sweep links it
    assert f'<a href="/desk/cases/{number}">{number}</a>' in card and "为这通来电建案" not in card
    with db.session() as session:  # the daemon's missed-calls link sweeps
        sweep_missed_calls(session, desk_app.state.callback_policy, NOW)
    with db.session(readonly=True) as session:
        task = session.get(CallbackTask, missed)
        assert (task.case_id, task.state, task.outcome) == (case_id, CallbackState.DONE, CallbackOutcome.HANDLED)
    assert missed not in task_ids(operator.get("/desk/callbacks").text)


def test_a_call_taken_on_the_queue_is_filed_by_its_taker_only(operator, db, desk_app, missed):  # noqa: F811
    from datetime import datetime, timezone

    from fastapi.testclient import TestClient

    from bridge.accounts.service import add_user
    from bridge.db.models import Role
    from tests.desk.conftest import PASSWORD, sign_in

    with db.session() as session:
        add_user(session, "colleague", Role.OPERATOR, PASSWORD, extension="8003", display_name="colleague person",
                 now=NOW)
    desk_app.state.callback_clock.now = datetime.now(timezone.utc)  # the filing rule reads the real clock
    assert act(operator, missed, "take").status_code == 303
    with TestClient(desk_app, follow_redirects=False) as colleague, \
            TestClient(desk_app, follow_redirects=False) as supervisor:
        assert sign_in(colleague, "colleague").status_code == 303
        assert sign_in(supervisor, "supervisor").status_code == 303
        form = colleague.get(f"/desk/cases/new?call={LINKEDID}").text
        assert 'id="call-taken"' in form and "operator person" in form
        refused = colleague.post("/desk/cases", data={"csrf_token": csrf_of(form),
                                                      **valid_form(call_linkedid=LINKEDID, caller_phone=NUMBER)})
        assert refused.status_code == 422
        assert act(supervisor, missed, "release").status_code == 303
        assert 'id="call-taken"' not in colleague.get(f"/desk/cases/new?call={LINKEDID}").text


def test_the_row_says_menu_and_queue_times_and_no_recording_for_a_header_only_file(  # noqa: F811
        operator, db, desk_app, desk_config):  # noqa: F811
    on_the_clock(desk_app, FixedClock())
    folder = desk_config.path(desk_config.pbx.recordings_dir)
    (folder / "msg-82.wav").write_bytes(EMPTY_WAV)  # Asterisk's file of a caller who said nothing
    task = missed_call_task(db, desk_app.state.callback_policy, "82.1", "13800005555", NOW - timedelta(minutes=20),
                            message_file="/var/recordings/msg-82")  # 60 s call, 40 s of them in the queue
    card = task_html(operator.get("/desk/callbacks").text, task)
    assert '<span class="call-waits">菜单 20 秒 · 排队 40 秒</span>' in card and "分钟" not in card.split("call-waits")[1][:40]
    assert "<audio" not in card and '<span class="no-recording">暂无录音</span>' in card
    assert operator.get("/desk/recordings/82.1").status_code == 404
