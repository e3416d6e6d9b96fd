"""The shared "to call back / to file" list, continued (HTTP level, both DBs):

- a case cannot be filed from a call another operator took (desk form and cases API), except by a
  supervisor or an admin, and nothing is stored when it is refused;
- a take not done within TAKEN_EXPIRES_AFTER counts as free again (read when the list is read);
- the note of a call done without a case is shown, with who and when: to supervisors under the
  list, and to everyone in the caller's earlier calls (the call pop).
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from bridge.accounts.service import add_user
from bridge.accounts.tokens import create_token
from bridge.db.models import Call, CallDisposition, Case, CaseEvent, ForumOutbox, Role, User
from bridge.desk import queries
from tests.desk.conftest import PASSWORD, csrf_of, sign_in, valid_form
from tests.desk.test_callbacks import ABANDONED, MESSAGE, add_list_calls, call_row, post, user_id

TAKEN_ZH = "这条来电已由 operator person 从待处理列表接手，只有接手人或班长才能为它登记案件。"
TAKEN_EN = ("operator person took this call from the list to call back: only they or a supervisor can file a "
            "case from it.")


@pytest.fixture
def colleague(db, desk_app):
    """A second operator ("colleague", display name "colleague person"), signed in on a client of its own."""
    with db.session() as session:
        add_user(session, "colleague", Role.OPERATOR, PASSWORD, extension="8003", display_name="colleague person",
                 now=datetime.now(timezone.utc))
    with TestClient(desk_app, follow_redirects=False) as other:
        assert sign_in(other, "colleague").status_code == 303
        yield other


@pytest.fixture
def as_supervisor(desk_app):
    with TestClient(desk_app, follow_redirects=False) as other:
        assert sign_in(other, "supervisor").status_code == 303
        yield other


def count(db, model) -> int:
    with db.session(readonly=True) as session:
        return session.scalar(select(func.count()).select_from(model))


def stored(db) -> tuple[int, int, int]:
    return count(db, Case), count(db, CaseEvent), count(db, ForumOutbox)


def file_from(client: TestClient, linkedid: str, **changes):
    form = valid_form(**{"call_linkedid": linkedid, "caller_phone": "13800003333", **changes})
    token = csrf_of(client.get(f"/desk/cases/new?call={linkedid}").text)
    return client.post("/desk/cases", data={"csrf_token": token, **form})


def age_the_take(db, linkedid: str, age: timedelta) -> None:
    with db.session() as session:
        session.execute(update(Call).where(Call.linkedid == linkedid)
                        .values(taken_at=datetime.now(timezone.utc) - age))


def api_token(db, username: str) -> str:
    with db.session() as session:
        user = session.scalar(select(User).where(User.username == username))
        return create_token(session, user, datetime.now(timezone.utc))


# ------------------------------------------------------------ (a) filing a taken call


def test_a_call_another_operator_took_cannot_be_filed_from_the_desk(operator, colleague, as_supervisor, db):
    add_list_calls(db)
    assert post(operator, ABANDONED, "take").status_code == 303

    # the form says so before anything is typed
    form = colleague.get(f"/desk/cases/new?call={ABANDONED}").text
    assert re.search(r'<p class="alert" role="alert" id="call-taken">([^<]*)</p>', form).group(1) == TAKEN_ZH
    # and filing is refused, beside the call, with what was typed kept and nothing stored
    refused = file_from(colleague, ABANDONED, title="路口垃圾堆积无人清理（再报）")
    assert refused.status_code == 422
    assert f'<span class="error" id="error-call_linkedid" data-field="call_linkedid" role="alert">{TAKEN_ZH}</span>' \
        in refused.text
    assert 'id="form-errors"' in refused.text and "路口垃圾堆积无人清理（再报）" in refused.text
    assert 'id="call-taken"' not in refused.text  # said once, beside the field
    assert stored(db) == (0, 0, 0)
    assert call_row(db, ABANDONED).taken_by_id == user_id(db, "operator")  # still the taker's
    # in English too
    colleague.get("/desk/?lang=en")
    english = file_from(colleague, ABANDONED)
    assert english.status_code == 422 and TAKEN_EN in english.text

    # the taker's own form has no warning; a supervisor may file it
    assert 'id="call-taken"' not in operator.get(f"/desk/cases/new?call={ABANDONED}").text
    assert 'id="call-taken"' not in as_supervisor.get(f"/desk/cases/new?call={ABANDONED}").text
    filed = file_from(as_supervisor, ABANDONED)
    assert filed.status_code == 303 and stored(db) == (1, 1, 1)
    assert ABANDONED not in operator.get("/desk/callbacks").text  # the case takes it off the list


def test_the_taker_and_everyone_after_the_take_expired_may_file(operator, colleague, db):
    add_list_calls(db)
    assert post(operator, ABANDONED, "take").status_code == 303
    assert post(operator, MESSAGE, "take").status_code == 303
    age_the_take(db, ABANDONED, queries.TAKEN_EXPIRES_AFTER + timedelta(minutes=1))
    assert 'id="call-taken"' not in colleague.get(f"/desk/cases/new?call={ABANDONED}").text
    assert file_from(colleague, ABANDONED).status_code == 303
    assert file_from(operator, MESSAGE, caller_phone="13800004444").status_code == 303
    assert count(db, Case) == 2


def test_the_cases_api_refuses_a_call_another_operator_took(operator, colleague, client, db):
    add_list_calls(db)
    assert post(operator, ABANDONED, "take").status_code == 303
    body = {**valid_form(call_linkedid=ABANDONED, caller_phone="13800003333"), "callback_wanted": True}
    headers = {"Authorization": f"Bearer {api_token(db, 'colleague')}"}
    refused = client.post("/api/v1/cases", json=body, headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.json() == {"detail": [{"field": "call_linkedid", "code": "call_taken", "message": TAKEN_ZH}]}
    refused = client.post("/api/v1/cases", json=body, headers={**headers, "Accept-Language": "en"})
    assert refused.json()["detail"][0]["message"] == TAKEN_EN
    assert stored(db) == (0, 0, 0)
    # every other problem is listed with it
    both = client.post("/api/v1/cases", json={**body, "title": ""}, headers=headers).json()["detail"]
    assert {(e["field"], e["code"]) for e in both} == {("call_linkedid", "call_taken"), ("title", "required")}
    # the taker may, and so may a supervisor (on the other, still free call)
    taker = {"Authorization": f"Bearer {api_token(db, 'operator')}"}
    assert client.post("/api/v1/cases", json=body, headers=taker).status_code == 201
    assert post(operator, MESSAGE, "take").status_code == 303
    supervisor = {"Authorization": f"Bearer {api_token(db, 'supervisor')}"}
    response = client.post("/api/v1/cases", json={**body, "call_linkedid": MESSAGE}, headers=supervisor)
    assert response.status_code == 201, response.text


# ------------------------------------------------------------ (b) a take expires


def test_a_take_older_than_the_limit_goes_back_on_the_list(operator, colleague, db):
    add_list_calls(db)
    assert post(operator, ABANDONED, "take").status_code == 303
    age_the_take(db, ABANDONED, queries.TAKEN_EXPIRES_AFTER - timedelta(minutes=1))
    row = re.compile(rf'<tr data-linkedid="{re.escape(ABANDONED)}" class="([^"]*)">(.*?)</tr>', re.S)
    still = row.search(colleague.get("/desk/callbacks").text)
    assert still.group(1) == "callback-row taken" and "operator person 正在处理" in still.group(2)
    assert post(colleague, ABANDONED, "take").status_code == 409

    age_the_take(db, ABANDONED, queries.TAKEN_EXPIRES_AFTER + timedelta(minutes=1))
    free = row.search(colleague.get("/desk/callbacks").text)
    assert free.group(1) == "callback-row" and "我来处理" in free.group(2) and "正在处理" not in free.group(2)
    mine = row.search(operator.get("/desk/callbacks").text)  # the old taker sees it free as well
    assert mine.group(1) == "callback-row" and "由你处理" not in mine.group(2)
    # the old taker can no longer mark it done without taking it again
    late = post(operator, ABANDONED, "done", note="已回电")
    assert late.status_code == 409 and "请先点“我来处理”接手这条来电。" in late.text
    assert call_row(db, ABANDONED).handled_at is None

    # taking it again overwrites the old take
    assert post(colleague, ABANDONED, "take").status_code == 303
    call = call_row(db, ABANDONED)
    assert call.taken_by_id == user_id(db, "colleague")
    assert datetime.now(timezone.utc) - call.taken_at < timedelta(minutes=1)
    refused = post(operator, ABANDONED, "done", note="已回电")
    assert refused.status_code == 409 and "这条来电由 colleague person 接手" in refused.text
    assert post(colleague, ABANDONED, "done", note="已回电，已解决").status_code == 303


def test_the_old_taker_may_take_an_expired_call_again(operator, db):
    add_list_calls(db)
    assert post(operator, MESSAGE, "take").status_code == 303
    age_the_take(db, MESSAGE, queries.TAKEN_EXPIRES_AFTER + timedelta(hours=1))
    assert post(operator, MESSAGE, "take").status_code == 303
    assert datetime.now(timezone.utc) - call_row(db, MESSAGE).taken_at < timedelta(minutes=1)
    assert post(operator, MESSAGE, "done", note="已回电").status_code == 303


# ------------------------------------------------------------ (c) the done note is shown


def test_supervisors_see_the_calls_done_without_a_case_with_the_note(operator, as_supervisor, db):
    add_list_calls(db)
    assert "不建案已处理" not in as_supervisor.get("/desk/callbacks").text.split("</table>")[0]
    assert "最近没有不建案已处理的来电。" in as_supervisor.get("/desk/callbacks").text
    assert post(operator, MESSAGE, "take").status_code == 303
    assert post(operator, MESSAGE, "done", note="已回电，来电人问题已解决").status_code == 303

    for page in (as_supervisor.get("/desk/callbacks").text, as_supervisor.get("/desk/").text):
        assert "最近 14 天不建案已处理的来电" in page
        done = re.search(rf'<tr data-linkedid="{re.escape(MESSAGE)}" class="done-row">(.*?)</tr>', page, re.S)
        assert done, page
        assert "138 0000 4444" in done.group(1) and "非工作时间留言" in done.group(1)
        by = re.search(r'<span class="handled-by">([^<]*)</span><span class="handled-note">([^<]*)</span>',
                       done.group(1))
        assert re.fullmatch(r"operator person 于 \d\d-\d\d \d\d:\d\d 处理：", by.group(1)), by.group(1)
        assert by.group(2) == "已回电，来电人问题已解决"
    english = as_supervisor.get("/desk/callbacks?lang=en").text
    assert "Done without a case, last 14 days" in english
    assert re.search(r"Done by operator person at \d\d-\d\d \d\d:\d\d:</span>", english)
    # operators get the shared list only
    assert "done-row" not in operator.get("/desk/callbacks").text
    assert "不建案已处理的来电" not in operator.get("/desk/").text


def test_the_note_shows_in_the_callers_earlier_calls(operator, db):
    add_list_calls(db)
    assert post(operator, ABANDONED, "take").status_code == 303
    assert post(operator, ABANDONED, "done", note="已回电，约好明天上门").status_code == 303
    with db.session() as session:  # the same caller phones again and is connected to the operator
        session.add(Call(linkedid="90.1", caller_number="13800003333", arrived_at=datetime.now(timezone.utc),
                         answered_at=datetime.now(timezone.utc), extension="8001",
                         disposition=CallDisposition.IN_PROGRESS))
    desk = operator.get("/desk/").text
    pop = re.search(r'<article class="call-pop" data-linkedid="90.1".*?</article>', desk, re.S).group(0)
    earlier = re.search(rf'<li data-linkedid="{re.escape(ABANDONED)}">(.*?)</li>', pop, re.S).group(1)
    assert "未接挂断" in earlier
    assert re.search(r'<span class="handled-by">operator person 于 \d\d-\d\d \d\d:\d\d 处理：</span>'
                     r'<span class="handled-note">已回电，约好明天上门</span>', earlier), earlier


def test_done_list_is_last_done_first_and_within_the_days(db, operator):
    add_list_calls(db)
    now = datetime.now(timezone.utc)
    with db.session() as session:
        for linkedid, done_ago in ((ABANDONED, timedelta(hours=1)), (MESSAGE, timedelta(minutes=5))):
            session.execute(update(Call).where(Call.linkedid == linkedid).values(
                taken_by_id=session.scalar(select(User.id).where(User.username == "operator")),
                taken_at=now - done_ago - timedelta(minutes=1), handled_at=now - done_ago, handled_note="已处理"))
        session.add(Call(linkedid="70.1", caller_number="13800006666", arrived_at=now - timedelta(days=20),
                         disposition=CallDisposition.ABANDONED, handled_at=now - timedelta(days=15),
                         handled_note="早已处理"))
    with db.session(readonly=True) as session:
        rows = queries.done_list(session, now)
    assert [r["linkedid"] for r in rows] == [MESSAGE, ABANDONED]
    assert rows[0]["handled_by"] == "operator person" and rows[0]["handled_note"] == "已处理"


def test_the_take_rule_has_one_definition():
    """The list's queries and filing judge a take by one condition (bridge.cases.takes), not by copies."""
    from pathlib import Path

    from bridge.cases import service, takes

    assert queries.TAKEN_EXPIRES_AFTER is takes.TAKEN_EXPIRES_AFTER is service.TAKEN_EXPIRES_AFTER
    root = Path(__file__).resolve().parents[2] / "bridge"
    copies = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                    if "- TAKEN_EXPIRES_AFTER" in p.read_text(encoding="utf-8"))
    assert copies == ["cases/takes.py"]
