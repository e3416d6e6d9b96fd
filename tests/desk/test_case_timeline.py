"""The case page's timeline (HTTP level): every entry in the page's language, the unit's answer,
the forward note (from -> to) and the follow-up shown, times in the site's zone; the same texts
in the cases API's read-back."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from bridge.accounts.tokens import create_token
from bridge.accounts.service import get_user
from bridge.db.models import Department
from bridge.forum import service
from bridge.forum.adapter import PostRef, ThreadEvent, ThreadEventKind
from tests.desk.test_cases_pages import post_case
from tests.desk.conftest import valid_form

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
NOTE = "经查，此事由市住房和城乡建设局负责，已转交办理。"
ANSWER = "答复：垃圾已于当日清运完毕，今后每日清理两次。"
FOLLOW_UP = "朱女士追问：夜间是否也会清理？"
FOLLOW_UP_ANSWER = "答复：夜间 22 点前再清理一次。"


def thread_events(number: str) -> list[ThreadEvent]:
    def event(n, kind, minutes, unit, **more):
        return ThreadEvent(event_id=f"builtin:{n}", kind=kind, case_number=number, at=T0 + timedelta(minutes=minutes),
                           unit_code=unit, sequence=n, **more)

    return [
        event(1, ThreadEventKind.ACCEPTED, 30, "CITY-LJQ", actor="王芳"),
        event(2, ThreadEventKind.FORWARDED, 40, "CITY-LJQ", to_unit_code="CITY-ZJJ", text=NOTE, actor="王芳"),
        event(4, ThreadEventKind.ANSWERED, 60, "CITY-ZJJ", text=ANSWER, actor="李明"),
        event(3, ThreadEventKind.ACCEPTED, 50, "CITY-ZJJ", actor="李明"),  # arrives late
        event(5, ThreadEventKind.FOLLOW_UP_ASKED, 70, "CITY-ZJJ", text=FOLLOW_UP, actor="hotline"),
        event(6, ThreadEventKind.FOLLOW_UP_ANSWERED, 80, "CITY-ZJJ", text=FOLLOW_UP_ANSWER, actor="李明"),
    ]


@pytest.fixture
def lived_case(operator, db, desk_config) -> str:
    """A case filed on the desk, posted, and through its whole forum life (one event late)."""
    location = post_case(operator, valid_form()).headers["location"]
    number = location.split("?")[0].rsplit("/", 1)[1]
    deadlines = service.Deadlines.from_config(desk_config)
    with db.session() as session:
        service.mark_posted(session, number, PostRef(number, "7", "https://hotline.example.org/board/threads/7"),
                            T0 + timedelta(minutes=5), deadlines)
        service.apply_events(session, thread_events(number), deadlines)
    return number


def timeline_items(html: str) -> list[str]:
    block = re.search(r'<ol class="timeline">(.*?)</ol>', html, re.S).group(1)
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", item)).strip()
            for item in re.findall(r"<li[^>]*>(.*?)</li>", block, re.S)]


def unit_name(db, code: str) -> str:
    with db.session(readonly=True) as session:
        return session.scalar(select(Department.name).where(Department.code == code))


def test_the_chinese_page_reads_the_timeline_in_chinese_with_the_texts(operator, db, lived_case):
    page = operator.get(f"/desk/cases/{lived_case}")
    assert page.status_code == 200
    items = timeline_items(page.text)
    ljq, zjj = unit_name(db, "CITY-LJQ"), unit_name(db, "CITY-ZJJ")
    assert [item.split(" · ")[1] for item in items] == [
        "已登记", "已发到论坛", "已受理", "已转办", "单位已答复", "已受理（迟到的消息，未改变案件）",
        "热线追问", "追问已答复"]
    assert items[0].startswith(datetime.now(timezone(timedelta(hours=8))).strftime("%Y-%m-%d"))
    assert items[0].endswith("· operator")  # a person's actor is their user name
    assert items[2] == f"2026-11-25 10:30:00 · 已受理 · {ljq} · 王芳 · 论坛"  # the site's zone
    assert items[3] == f"2026-11-25 10:40:00 · 已转办 · {ljq} → {zjj} · 王芳 · 论坛 {NOTE}"
    assert items[4] == f"2026-11-25 11:00:00 · 单位已答复 · {zjj} · 李明 · 论坛 {ANSWER}"
    assert items[6].endswith(FOLLOW_UP) and items[7].endswith(FOLLOW_UP_ANSWER)
    for english in ("filed", "posted", "accepted", "answered", "forum", "late_event"):
        assert not re.search(rf"\b{english}\b", " ".join(items)), english


def test_the_english_page_reads_it_in_english(operator, lived_case):
    items = timeline_items(operator.get(f"/desk/cases/{lived_case}?lang=en").text)
    assert [item.split(" · ")[1] for item in items] == [
        "filed", "posted to the forum", "accepted", "forwarded", "answered",
        "accepted (arrived late, changed nothing)", "follow-up asked", "follow-up answered"]
    assert items[4].endswith(f"· forum {ANSWER}")
    # The live refresh's fragment is the same timeline.
    fragment = operator.get(f"/desk/cases/{lived_case}", headers={"HX-Request": "true"})
    assert timeline_items(fragment.text) == items


def test_the_api_read_back_carries_the_texts_and_labels(client, db, lived_case):
    with db.session() as session:
        token = create_token(session, get_user(session, "operator"), T0)
    body = client.get(f"/api/v1/cases/{lived_case}", headers={"Authorization": f"Bearer {token}",
                                                               "Accept-Language": "en"}).json()
    timeline = body["timeline"]
    assert [e["kind"] for e in timeline] == ["filed", "posted", "accepted", "forwarded", "answered", "late_event",
                                             "follow_up_asked", "follow_up_answered"]
    assert {e["actor"] for e in timeline[1:]} == {"forum"}  # the stored fields, as they were
    assert [e["text"] for e in timeline[3:5]] == [NOTE, ANSWER] and timeline[0]["text"] is None
    assert timeline[3]["detail"]["to_unit"] == "CITY-ZJJ"
    assert timeline[2]["at"] == "2026-11-25T10:30:00+08:00"
    assert timeline[4]["label"] == "answered"
    chinese = client.get(f"/api/v1/cases/{lived_case}", headers={"Authorization": f"Bearer {token}"}).json()
    assert chinese["timeline"][4]["label"] == "单位已答复" and chinese["timeline"][4]["text"] == ANSWER
