"""The shared "to call back / to file" list: take, done without a case, release (HTTP level, both DBs)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fastapi.testclient import TestClient
from sqlalchemy import select

from bridge.db.models import Call, CallDisposition, User
from tests.desk.conftest import csrf_of, sign_in, valid_form

ABANDONED = "80.1"
MESSAGE = "81.1"


def add_list_calls(db) -> None:
    now = datetime.now(timezone.utc)
    with db.session() as session:
        session.add(Call(linkedid=ABANDONED, caller_number="13800003333", arrived_at=now - timedelta(minutes=20),
                         disposition=CallDisposition.ABANDONED, queue_wait_s=40))
        session.add(Call(linkedid=MESSAGE, caller_number="13800004444", arrived_at=now - timedelta(minutes=5),
                         disposition=CallDisposition.AFTER_HOURS_MESSAGE, message_file="msg-81"))


def token(client: TestClient) -> str:
    return csrf_of(client.get("/desk/").text)


def post(client: TestClient, linkedid: str, action: str, htmx: bool = False, **data):
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(f"/desk/calls/{linkedid}/{action}", data={"csrf_token": token(client), **data},
                       headers=headers)


def call_row(db, linkedid: str) -> Call:
    with db.session(readonly=True) as session:
        call = session.scalar(select(Call).where(Call.linkedid == linkedid))
        session.expunge(call)
        return call


def user_id(db, username: str) -> int:
    with db.session(readonly=True) as session:
        return session.scalar(select(User.id).where(User.username == username))


def second_client(desk_app, username: str) -> TestClient:
    other = TestClient(desk_app, follow_redirects=False)
    other.__enter__()
    assert sign_in(other, username).status_code == 303
    return other


def test_the_list_offers_take_and_shows_who_took_it(operator, db, desk_app, monkeypatch):
    add_list_calls(db)
    fragment = operator.get("/desk/callbacks").text
    assert fragment.count("我来处理") == 2 and "建案" not in fragment  # only the taker files or closes
    received = []
    monkeypatch.setattr(desk_app.state.live, "publish", received.append)
    response = post(operator, ABANDONED, "take")
    assert response.status_code == 303 and response.headers["location"] == "/desk/"
    call = call_row(db, ABANDONED)
    assert call.taken_by_id == user_id(db, "operator") and call.taken_at is not None and call.handled_at is None
    assert [(e.topic, e.kind, e.data["linkedid"], e.data["kind"]) for e in received] == [
        ("callbacks", "changed", ABANDONED, "taken")]
    mine = operator.get("/desk/callbacks").text
    assert "由你处理" in mine and "建案" in mine and "不建案，已处理" in mine
    assert f'/desk/calls/{ABANDONED}/done' in mine and f'/desk/calls/{MESSAGE}/take' in mine
    # everyone else sees who has it, without the taker's buttons
    supervisor = second_client(desk_app, "supervisor")
    try:
        theirs = supervisor.get("/desk/callbacks").text
        assert "operator person 正在处理" in theirs and f"/desk/calls/{ABANDONED}/done" not in theirs
        assert f"/desk/calls/{ABANDONED}/release" in theirs  # supervisors may put it back
        assert f"/desk/calls/{ABANDONED}/take" not in theirs
    finally:
        supervisor.__exit__(None, None, None)


def test_a_second_take_is_refused_in_chinese(operator, db, desk_app):
    add_list_calls(db)
    supervisor = second_client(desk_app, "supervisor")
    try:
        assert post(supervisor, ABANDONED, "take").status_code == 303
        refused = post(operator, ABANDONED, "take")
        assert refused.status_code == 409
        assert "supervisor person 已先接手这条来电，无需重复处理。" in refused.text
        # the same refusal inside the list, for htmx (which swaps 2xx answers only)
        again = post(operator, ABANDONED, "take", htmx=True)
        assert again.status_code == 200 and "supervisor person 已先接手这条来电" in again.text
        assert 'class="callback-row taken"' in again.text
        assert call_row(db, ABANDONED).taken_by_id == user_id(db, "supervisor")
        # the taker taking again changes nothing
        assert post(supervisor, ABANDONED, "take").status_code == 303
        assert call_row(db, ABANDONED).taken_by_id == user_id(db, "supervisor")
    finally:
        supervisor.__exit__(None, None, None)


def test_take_needs_csrf_and_a_call_on_the_list(operator, db):
    add_list_calls(db)
    assert operator.post(f"/desk/calls/{ABANDONED}/take", data={}).status_code == 403
    assert call_row(db, ABANDONED).taken_by_id is None
    assert post(operator, "nope", "take").status_code == 404
    answered = post(operator, "1764133200.42", "take")  # the answered call of the fixtures
    assert answered.status_code == 404 and "这条来电已不在待处理列表中。" in answered.text


def test_done_requires_a_note_and_the_taker(operator, db, desk_app, monkeypatch):
    add_list_calls(db)
    assert post(operator, MESSAGE, "done", note="已回电").status_code == 409  # not taken yet
    assert post(operator, MESSAGE, "take").status_code == 303
    for note in ("", "   "):
        response = post(operator, MESSAGE, "done", note=note)
        assert response.status_code == 422 and "请填写处理情况（必填）。" in response.text
    assert call_row(db, MESSAGE).handled_at is None
    supervisor = second_client(desk_app, "supervisor")
    try:
        other = post(supervisor, MESSAGE, "done", note="已回电")
        assert other.status_code == 409 and "这条来电由 operator person 接手，只有接手人才能办结。" in other.text
    finally:
        supervisor.__exit__(None, None, None)
    received = []
    monkeypatch.setattr(desk_app.state.live, "publish", received.append)
    done = post(operator, MESSAGE, "done", htmx=True, note="  已回电，来电人问题已解决 ")
    assert done.status_code == 200 and "138 0000 4444" not in done.text and "138 0000 3333" in done.text
    call = call_row(db, MESSAGE)
    assert call.handled_note == "已回电，来电人问题已解决" and call.handled_at is not None
    assert [(e.topic, e.data["kind"]) for e in received] == [("callbacks", "done")]
    assert "138 0000 4444" not in operator.get("/desk/callbacks").text
    assert post(operator, MESSAGE, "take").status_code == 404  # done calls stay off the list


def test_release_by_a_supervisor_only(operator, db, desk_app):
    add_list_calls(db)
    assert post(operator, ABANDONED, "take").status_code == 303
    refused = post(operator, ABANDONED, "release")
    assert refused.status_code == 403 and "只有班长可以把已接手的来电放回列表。" in refused.text
    assert call_row(db, ABANDONED).taken_by_id is not None
    supervisor = second_client(desk_app, "supervisor")
    try:
        assert post(supervisor, ABANDONED, "release").status_code == 303
        call = call_row(db, ABANDONED)
        assert call.taken_by_id is None and call.taken_at is None
        assert post(supervisor, ABANDONED, "release").status_code == 404  # nothing to release now
        assert post(supervisor, ABANDONED, "take").status_code == 303  # free for anyone again
    finally:
        supervisor.__exit__(None, None, None)


def test_filing_a_case_from_a_taken_call_takes_it_off_the_list(operator, db):
    add_list_calls(db)
    assert post(operator, ABANDONED, "take").status_code == 303
    filed = operator.post("/desk/cases", data={"csrf_token": token(operator),
                                               **valid_form(call_linkedid=ABANDONED, caller_phone="13800003333")})
    assert filed.status_code == 303
    fragment = operator.get("/desk/callbacks").text
    assert "138 0000 3333" not in fragment and "138 0000 4444" in fragment
    assert call_row(db, ABANDONED).handled_at is None  # filed, not "done without a case"


def test_the_stream_tells_pages_to_reload_the_list():
    import asyncio

    from bridge.desk.sse import translate
    from bridge.live import LiveEvent

    event = LiveEvent("callbacks", "changed", {"linkedid": ABANDONED, "kind": "taken", "by": "operator person"})
    text = asyncio.run(translate(None, None, event, {}))
    assert text == f'event: callbacks\ndata: {{"linkedid": "{ABANDONED}", "kind": "taken"}}\n\n'
