"""The operator's current call and "my calls today" (HTTP level, SQLite and PostgreSQL): the pop
comes back from the calls table after a reload and on every desk page until a case is filed from the
call, it is marked done without a case or dismissed; the list of today's calls says what came of each;
the case form is prefilled from the caller ID; menu and queue times apart; no player for a silent file."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bridge.db.models import Call, CallDisposition, Case
from bridge.desk.queries import day_start
from bridge.live import LiveEvent
from tests.desk.conftest import csrf_of, sign_in, valid_form
from tests.wav_files import EMPTY_WAV, wav_bytes

ZONE = ZoneInfo("Asia/Shanghai")


def add_call(db, linkedid: str, *, arrived_s_ago: float = 120, ended: bool = True, extension: str | None = "8001",
             name: str = "张三丰", number: str = "13900001111", queue_wait_s: float | None = 14.0,
             menu_s: float = 12.0, talk_s: float = 60.0, recording: str | None = None,
             arrived_at: datetime | None = None) -> None:
    arrived = arrived_at or datetime.now(timezone.utc) - timedelta(seconds=arrived_s_ago)
    answered = arrived + timedelta(seconds=menu_s + (queue_wait_s or 0))
    with db.session() as session:
        session.add(Call(linkedid=linkedid, caller_number=number, caller_name=name, arrived_at=arrived,
                         answered_at=answered, queue_wait_s=queue_wait_s, extension=extension,
                         talk_s=talk_s if ended else None, recording=recording,
                         ended_at=answered + timedelta(seconds=talk_s) if ended else None,
                         disposition=CallDisposition.ANSWERED if ended else CallDisposition.IN_PROGRESS))


def pops(html: str) -> list[str]:
    return re.findall(r'<article class="call-pop[^"]*" data-linkedid="([^"]+)"', html)


def token(client) -> str:
    return csrf_of(client.get("/desk/cases/new").text)


def post(client, path: str, **data):
    return client.post(path, data={"csrf_token": token(client), **data})


def test_the_current_call_pops_again_after_it_ended_and_on_every_page(operator, db):
    add_call(db, "90.1")
    desk = operator.get("/desk/").text
    assert pops(desk) == ["90.1"]
    assert 'class="call-pop ended" data-linkedid="90.1" data-kind="ended"' in desk and "通话已结束" in desk
    assert ">菜单 12 秒 · 排队 14 秒</span>" in desk
    assert pops(operator.get("/desk/").text) == ["90.1"]  # a reload
    # the other desk pages (the case form too) load the same pops into their own box
    for path in ("/desk/cases", "/desk/cases/new?call=90.1", "/desk/calls/mine", "/desk/callbacks"):
        page = operator.get(path).text
        assert '<section id="call-pops" class="pops-bar" aria-live="assertive" hx-get="/desk/pops"' in page, path
        assert page.count('id="call-pops"') == 1, path
    fragment = operator.get("/desk/pops").text
    assert pops(fragment) == ["90.1"] and "<html" not in fragment


def test_only_the_newest_ended_call_and_every_call_in_progress_pop(operator, db):
    add_call(db, "91.1", arrived_s_ago=900)
    add_call(db, "91.2", arrived_s_ago=600)
    add_call(db, "91.3", arrived_s_ago=30, ended=False)
    add_call(db, "91.4", arrived_s_ago=20, extension="8002")  # another operator's
    add_call(db, "91.5", arrived_s_ago=14 * 3600)  # yesterday's shift: long gone
    assert pops(operator.get("/desk/").text) == ["91.3", "91.2"]


def test_filing_a_case_from_the_pop_ends_it_and_the_list_says_filed_as(operator, db):
    add_call(db, "92.1")
    form = operator.get("/desk/cases/new?call=92.1").text
    filed = operator.post("/desk/cases", data={"csrf_token": csrf_of(form), **valid_form(call_linkedid="92.1")})
    assert filed.status_code == 303
    with db.session(readonly=True) as session:
        number = session.scalar(select(Case.number))
    assert pops(operator.get("/desk/").text) == []
    rows = operator.get("/desk/calls/mine").text
    assert f'已建案 <a href="/desk/cases/{number}">{number}</a>' in rows
    assert 'href="/desk/cases/new?call=92.1"' not in rows


def test_done_without_a_case_ends_the_pop_and_is_said_on_the_list(operator, db, desk_app, monkeypatch):
    add_call(db, "93.1")
    add_call(db, "93.2", extension="8002")
    live, published = desk_app.state.live, []
    monkeypatch.setattr(live, "publish", lambda event, original=live.publish: (published.append(event),
                                                                                original(event)))
    done = post(operator, "/desk/calls/93.1/done", note="咨询，已答复")
    assert done.status_code == 200 and done.headers["HX-Trigger"] == "hb:calls"
    assert [(e.topic, e.kind, e.data) for e in published] == [("call", "done", {"linkedid": "93.1"})]
    assert pops(operator.get("/desk/").text) == []
    row = operator.get("/desk/calls/mine/rows").text
    assert "不建案，已处理: 咨询，已答复" in row and "<html" not in row
    with db.session(readonly=True) as session:
        call = session.scalar(select(Call).where(Call.linkedid == "93.1"))
        assert call.handled_at is not None and call.handled_note == "咨询，已答复" and call.taken_by_id is not None
    refused = post(operator, "/desk/calls/93.2/done")  # not this operator's call
    assert refused.status_code == 404 and refused.text == "你没有接听过这个来电。"
    assert post(operator, "/desk/calls/93.1/done", note="x" * 501).status_code == 422
    assert operator.post("/desk/calls/93.1/done", data={"csrf_token": "wrong"}).status_code == 403


def test_done_is_refused_once_a_case_was_filed(operator, db):
    add_call(db, "94.1")
    form = operator.get("/desk/cases/new?call=94.1").text
    operator.post("/desk/cases", data={"csrf_token": csrf_of(form), **valid_form(call_linkedid="94.1")})
    refused = post(operator, "/desk/calls/94.1/done")
    assert refused.status_code == 409 and refused.text == "此来电已建案。"


def test_a_dismissed_pop_stays_closed_and_the_call_stays_on_the_list(operator, db):
    add_call(db, "95.1")
    assert post(operator, "/desk/calls/95.1/dismiss").status_code == 200
    assert pops(operator.get("/desk/").text) == []
    rows = operator.get("/desk/calls/mine").text
    assert 'data-linkedid="95.1"' in rows and 'href="/desk/cases/new?call=95.1"' in rows


def test_my_calls_today_newest_first_in_the_site_day(operator, db):
    start = day_start(datetime.now(timezone.utc), ZONE)
    add_call(db, "96.1", arrived_at=start + timedelta(seconds=1))
    add_call(db, "96.2", arrived_at=start - timedelta(minutes=1))  # yesterday, in the site's zone
    add_call(db, "96.3", arrived_s_ago=60, ended=False, queue_wait_s=75.0)
    add_call(db, "96.4", arrived_s_ago=30, extension="8002")
    page = operator.get("/desk/calls/mine").text
    assert re.findall(r'<tr class="my-call" data-linkedid="([^"]+)"', page) == ["96.3", "96.1"]
    assert "菜单 12 秒 · 排队 1:15" in page and "通话中" in page
    assert '<a href="/desk/calls/mine" aria-current="page">我今天的来电</a>' in page  # in the menu
    assert "我今天的来电" in operator.get("/desk/").text


def test_a_supervisor_sees_their_own_calls(client, db):
    assert sign_in(client, "supervisor").status_code == 303  # extension 8002 from the account
    add_call(db, "97.1", extension="8002")
    add_call(db, "97.2", extension="8001")
    page = client.get("/desk/calls/mine").text
    assert re.findall(r'<tr class="my-call" data-linkedid="([^"]+)"', page) == ["97.1"]
    assert pops(client.get("/desk/").text) == ["97.1"]


def test_no_calls_today_says_so(operator):
    assert "你今天还没有接听来电。" in operator.get("/desk/calls/mine").text


@pytest.mark.parametrize(("caller_id", "full_name", "surname", "honorific"), [
    ("张三丰", "张三丰", "张", None),
    ("欧阳娜娜", "欧阳娜娜", "欧阳", None),
    ("朱女士", "", "朱", "女士"),
    ("Wang Fang", "Wang Fang", "", None),
    ("sipp", "", "", None), ("unknown", "", "", None), ("13900001111", "", "", None), ("", "", "", None),
])
def test_the_case_form_takes_the_callers_name_from_the_caller_id(operator, db, caller_id, full_name, surname,
                                                                 honorific):
    add_call(db, "98.1", name=caller_id, number="13900001111")
    form = operator.get("/desk/cases/new?call=98.1").text
    assert 'name="caller_phone" value="139 0000 1111"' in form
    assert f'name="caller_full_name" value="{full_name}"' in form
    assert f'name="caller_surname" value="{surname}"' in form
    checked = re.findall(r'name="caller_honorific" value="([^"]+)" checked', form)
    assert checked == ([honorific] if honorific else [])


def test_waits_in_the_calls_api(client, db):
    from bridge.accounts.service import add_user
    from bridge.accounts.tokens import create_token
    from bridge.db.models import Role

    with db.session() as session:
        api_token = create_token(session, add_user(session, "lead", Role.SUPERVISOR, "a long enough password"))
    add_call(db, "99.1", menu_s=12.0, queue_wait_s=14.0)
    add_call(db, "99.2", arrived_s_ago=60, menu_s=8.0, queue_wait_s=None)  # answered without the queue
    calls = {c["linkedid"]: c for c in client.get("/api/v1/calls", headers={
        "Authorization": f"Bearer {api_token}"}).json()["calls"]}
    assert (calls["99.1"]["menu_s"], calls["99.1"]["queue_wait_s"]) == (12.0, 14.0)
    assert (calls["99.2"]["menu_s"], calls["99.2"]["queue_wait_s"]) == (8.0, None)


def test_a_header_only_recording_is_no_recording(operator, db, desk_config):
    folder = desk_config.path(desk_config.pbx.recordings_dir)
    (folder / "silent.wav").write_bytes(EMPTY_WAV)
    (folder / "spoken.wav").write_bytes(wav_bytes())
    add_call(db, "100.1", recording="/var/spool/asterisk/recordings/silent.wav")
    add_call(db, "100.2", arrived_s_ago=60, recording="/var/spool/asterisk/recordings/spoken.wav")
    rows = operator.get("/desk/calls/mine").text
    row = {lid: html for lid, html in re.findall(r'data-linkedid="([^"]+)">(.*?)</tr>', rows, re.S)}
    assert '<span class="no-recording">暂无录音</span>' in row["100.1"] and "<audio" not in row["100.1"]
    assert '<audio controls preload="none" src="/desk/recordings/100.2?kind=recording">' in row["100.2"]
    assert operator.get("/desk/recordings/100.1?kind=recording").status_code == 404
    assert operator.get("/desk/recordings/100.2?kind=recording").status_code == 200


def test_a_connected_call_tells_the_calls_list_at_once(desk_app):
    import asyncio

    from bridge.desk import sse
    from bridge.desk.queries import DeskUser
    from bridge.db.models import Role

    class Request:  # what translate needs of a request: the app, to render the pop
        app = desk_app

    user = DeskUser(id=1, username="operator", display_name="operator", role=Role.OPERATOR, extension="8001")
    arrived = datetime(2026, 12, 3, 2, 0, tzinfo=timezone.utc)
    data = {"linkedid": "101.1", "extension": "8001", "caller_number": "13900001111", "caller_name": "",
            "arrived_at": arrived.isoformat(), "queue_joined_at": (arrived + timedelta(seconds=12)).isoformat(),
            "answered_at": (arrived + timedelta(seconds=26)).isoformat(), "queue_wait_s": 14.0}
    assert sse.live_waits(data) == {"menu_s": 12.0, "queue_s": 14.0}
    assert sse.live_waits({**data, "answered_at": None, "queue_joined_at": None, "queue_wait_s": None}) == {
        "menu_s": None, "queue_s": None}
    done = asyncio.run(sse.translate(Request(), user, LiveEvent("call", "done", {"linkedid": "101.1"}), {}))
    assert done == sse.sse("call", {"linkedid": "101.1", "kind": "done"}) + sse.sse("calls", {"linkedid": "101.1"})
