"""Calls taken and done on the shared "to call back / to file" list of earlier releases (the list
itself is replaced by the callbacks' queue, tests/callbacks/test_desk_*.py); what such rows still
mean (HTTP level, both DBs):

- a case cannot be filed from a call another operator took (desk form and cases API), except by a
  supervisor or an admin, and nothing is stored when it is refused; a take older than
  TAKEN_EXPIRES_AFTER holds no more;
- the note of a call done without a case is shown, with who and when, in the caller's earlier
  calls (the call pop).
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
from bridge.cases.takes import TAKEN_EXPIRES_AFTER
from tests.desk.conftest import PASSWORD, csrf_of, sign_in, valid_form

ABANDONED = "80.1"
MESSAGE = "81.1"

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


def add_list_calls(db) -> None:
    now = datetime.now(timezone.utc)
    with db.session() as session:
        session.add(Call(linkedid=ABANDONED, caller_number="13800003333", arrived_at=now - timedelta(minutes=20),
                         disposition=CallDisposition.ABANDONED, queue_wait_s=40))
        session.add(Call(linkedid=MESSAGE, caller_number="13800004444", arrived_at=now - timedelta(minutes=5),
                         disposition=CallDisposition.AFTER_HOURS_MESSAGE, message_file="msg-81"))


def user_id(db, username: str) -> int:
    with db.session(readonly=True) as session:
        return session.scalar(select(User.id).where(User.username == username))


def call_row(db, linkedid: str) -> Call:
    with db.session(readonly=True) as session:
        call = session.scalar(select(Call).where(Call.linkedid == linkedid))
        session.expunge(call)
        return call


def take(db, linkedid: str, username: str, note: str | None = None) -> None:
    """The call taken by ``username`` now, as the old list did (and done, with ``note``)."""
    now = datetime.now(timezone.utc)
    with db.session() as session:
        session.execute(update(Call).where(Call.linkedid == linkedid).values(
            taken_by_id=session.scalar(select(User.id).where(User.username == username)), taken_at=now,
            handled_at=now if note else None, handled_note=note))


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
    take(db, ABANDONED, "operator")

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


def test_the_taker_and_everyone_after_the_take_expired_may_file(operator, colleague, db):
    add_list_calls(db)
    take(db, ABANDONED, "operator")
    take(db, MESSAGE, "operator")
    age_the_take(db, ABANDONED, TAKEN_EXPIRES_AFTER + timedelta(minutes=1))
    assert 'id="call-taken"' not in colleague.get(f"/desk/cases/new?call={ABANDONED}").text
    assert file_from(colleague, ABANDONED).status_code == 303
    assert file_from(operator, MESSAGE, caller_phone="13800004444").status_code == 303
    assert count(db, Case) == 2


def test_the_cases_api_refuses_a_call_another_operator_took(operator, colleague, client, db):
    add_list_calls(db)
    take(db, ABANDONED, "operator")
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
    take(db, MESSAGE, "operator")
    supervisor = {"Authorization": f"Bearer {api_token(db, 'supervisor')}"}
    response = client.post("/api/v1/cases", json={**body, "call_linkedid": MESSAGE}, headers=supervisor)
    assert response.status_code == 201, response.text


# ------------------------------------------------------------ (b) the done note is shown


def test_the_note_shows_in_the_callers_earlier_calls(operator, db):
    add_list_calls(db)
    take(db, ABANDONED, "operator", note="已回电，约好明天上门")
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


def test_the_take_rule_has_one_definition():
    """Filing judges a take by one condition (bridge.cases.takes), not by copies."""
    from pathlib import Path

    from bridge.cases import service, takes

    assert takes.TAKEN_EXPIRES_AFTER is service.TAKEN_EXPIRES_AFTER
    root = Path(__file__).resolve().parents[2] / "bridge"
    copies = sorted(str(p.relative_to(root)) for p in root.rglob("*.py")
                    if "- TAKEN_EXPIRES_AFTER" in p.read_text(encoding="utf-8"))
    assert copies == ["cases/takes.py"]
