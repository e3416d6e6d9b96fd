"""The case page's deadlines (HTTP level): each step owed (受理 / 答复 / 追问的答复) with its unit, its
due time in the site's zone (with the weekday) and its countdown in the deadline's own measure
(office time, working days, clock), overdue marked; the status banner follows the case's state in
the fragment the page reloads live.  Both ways of counting the answer's 3 days ([forum] answer_days)."""
from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bridge.config import validate
from bridge.desk import case_pages
from bridge.forum import service
from bridge.forum.adapter import PostRef, ThreadEvent, ThreadEventKind
from tests.desk.conftest import SECRETS, valid_form
from tests.desk.test_cases_pages import case_number, post_case

ZONE = ZoneInfo("Asia/Shanghai")
UNIT = "衢州绿色产业集聚区管委会"  # CITY-LJQ


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZONE)


@pytest.fixture(params=["calendar", "working"])
def answer_days(request) -> str:
    return request.param


@pytest.fixture
def desk_config(monkeypatch, tmp_path, answer_days):
    """The desk's test site (tests/desk/conftest.py) with the answer counted in ``answer_days``."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "recordings").mkdir()
    return validate({"pbx": {"recordings_dir": str(tmp_path / "recordings")}, "web": {"secure_cookies": False},
                     "forum": {"answer_days": answer_days}}, environ=SECRETS, base_dir=tmp_path)


@pytest.fixture
def at_site_time(monkeypatch):
    """Set the desk's "now" (a Shanghai wall-clock time)."""
    return lambda text: monkeypatch.setattr(case_pages, "_now", lambda: local(text))


def forum_life(db, config, number: str, *steps: tuple[ThreadEventKind, str]) -> None:
    """Post ``number`` at the first time, then apply each (kind, time) from the unit."""
    deadlines = service.Deadlines.from_config(config)
    (_, posted), *events = steps
    with db.session() as session:
        service.mark_posted(session, number, PostRef(number, "7", "https://hotline.example.org/board/threads/7"),
                            local(posted), deadlines)
        service.apply_events(session, [
            ThreadEvent(event_id=f"builtin:{n}", kind=kind, case_number=number, at=local(at), unit_code="CITY-LJQ",
                        sequence=n, actor="王芳", text="追问" if kind is ThreadEventKind.FOLLOW_UP_ASKED else "")
            for n, (kind, at) in enumerate(events, 1)], deadlines)


def rows(html: str) -> list[dict]:
    """The deadlines table: each row's classes, step, measure and cells as text."""
    found = []
    for attrs, body in re.findall(r'<tr (class="deadline[^"]*"[^>]*)>(.*?)</tr>', html, re.S):
        cells = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", cell)).strip()
                 for cell in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)]
        found.append({"class": re.search(r'class="([^"]*)"', attrs).group(1).split(),
                      "step": re.search(r'data-step="([^"]*)"', attrs).group(1),
                      "measure": re.search(r'data-measure="([^"]*)"', attrs).group(1),
                      "times": re.findall(r'<time datetime="([^"]+)">', body), "cells": cells})
    return found


def banner(html: str) -> str:
    return re.sub(r"\s+", " ", re.search(r'<p class="case-banner[^>]*>(.*?)</p>', html, re.S).group(1)).strip()


def test_a_queued_case_says_it_waits_to_be_posted_and_owes_nothing(operator):
    number = case_number(post_case(operator, valid_form()))
    page = operator.get(f"/desk/cases/{number}?filed=1").text
    assert f"案件 {number} 已登记。" in page and "正在等待发到论坛" not in page
    assert banner(page) == "排队等待发到论坛。" and rows(page) == []


def test_the_acceptance_counts_down_in_office_time_stopped_on_the_weekend(operator, db, desk_config, at_site_time):
    number = case_number(post_case(operator, valid_form()))
    forum_life(db, desk_config, number, ("posted", "2026-11-27 16:30"))  # a Friday, in office hours
    at_site_time("2026-11-28 12:00")  # Saturday noon: 45.5 clock hours to go, but 1 office hour
    page = operator.get(f"/desk/cases/{number}").text
    assert banner(page) == f"已发到论坛，等待 {UNIT} 受理。"
    [row] = rows(page)
    assert row["step"] == "accept" and row["measure"] == "office" and "owed" in row["class"]
    assert row["times"] == ["2026-11-30T09:30:00+08:00"]  # the site's zone, whatever the host's
    assert row["cells"] == ["受理期限", UNIT, "2026-11-30 周一 09:30",
                            "剩余 1 小时 0 分（办公时间） · 非办公时间不计时，现在暂停"]
    at_site_time("2026-11-30 09:00")  # Monday morning: counting again
    [row] = rows(operator.get(f"/desk/cases/{number}").text)
    assert row["cells"][3] == "剩余 30 分钟（办公时间）"
    english = operator.get(f"/desk/cases/{number}?lang=en").text
    assert rows(english)[0]["cells"][:3] == ["Accept by", UNIT, "2026-11-30 Mon 09:30"]
    assert rows(english)[0]["cells"][3].startswith("30 min left (office time)")


def list_deadline(html: str, number: str) -> str:
    """The case list's deadline cell of ``number``, as text."""
    row = re.search(rf'<tr class="case-row[^"]*" data-number="{number}".*?</tr>', html, re.S).group(0)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[-1])).strip()


def test_the_case_list_counts_the_acceptance_in_office_time_too(operator, db, desk_config, at_site_time):
    """Saturday noon, 45.5 clock hours before the deadline: the list says 1 office hour, stopped,
    as the case page does; an overdue case says by how long."""
    number = case_number(post_case(operator, valid_form()))
    forum_life(db, desk_config, number, ("posted", "2026-11-27 16:30"))
    at_site_time("2026-11-28 12:00")
    assert list_deadline(operator.get("/desk/cases").text, number) == \
        "剩余 1 小时 0 分（办公时间） · 非办公时间不计时，现在暂停"
    at_site_time("2026-11-30 10:00")  # half an hour past 09:30
    listed = operator.get("/desk/cases/rows").text
    assert list_deadline(listed, number) == "已超期 30 分钟" and "overdue" in listed


def test_the_answer_after_a_late_acceptance_in_calendar_or_working_days(operator, db, desk_config, at_site_time,
                                                                        answer_days):
    number = case_number(post_case(operator, valid_form()))
    forum_life(db, desk_config, number, ("posted", "2026-11-26 16:00"),   # Thursday: due Friday 09:00
               (ThreadEventKind.ACCEPTED, "2026-11-27 10:00"))            # accepted an hour late
    at_site_time("2026-11-30 12:00")  # Monday noon
    page = operator.get(f"/desk/cases/{number}").text
    accept, answer = rows(page)
    assert accept["cells"] == ["受理期限", UNIT, "2026-11-27 周五 09:00", "2026-11-27 周五 10:00 完成，超期 1 小时 0 分"]
    assert "late" in accept["class"] and "owed" not in accept["class"]
    assert answer["step"] == "answer" and "owed" in answer["class"]
    if answer_days == "calendar":  # 72 clock hours: due Monday 10:00, two hours ago
        assert answer["measure"] == "clock" and "overdue" in answer["class"]
        assert answer["cells"][2:] == ["2026-11-30 周一 10:00", "已超期 2 小时 0 分"]
        assert banner(page) == f"{UNIT} 已受理，等待答复。 {UNIT} 已超期。"
        assert 'class="case-banner state-accepted overdue"' in page
    else:  # 72 hours of working days: the weekend does not count, due Wednesday 10:00
        assert answer["measure"] == "working_days" and "overdue" not in answer["class"]
        assert answer["cells"][2:] == ["2026-12-02 周三 10:00", "剩余 1 天 22 小时（工作日）"]
        assert banner(page) == f"{UNIT} 已受理，等待答复。"


def test_a_follow_up_owes_its_own_answer(operator, db, desk_config, at_site_time, answer_days):
    number = case_number(post_case(operator, valid_form()))
    forum_life(db, desk_config, number, ("posted", "2026-11-30 09:00"),
               (ThreadEventKind.ACCEPTED, "2026-11-30 09:30"), (ThreadEventKind.ANSWERED, "2026-12-01 15:00"),
               (ThreadEventKind.FOLLOW_UP_ASKED, "2026-12-05 10:00"))  # a Saturday
    at_site_time("2026-12-06 10:00")  # Sunday
    page = operator.get(f"/desk/cases/{number}").text
    assert banner(page) == f"追问等待 {UNIT} 答复。"
    accept, answer, follow_up = rows(page)
    assert accept["cells"][3] == "2026-11-30 周一 09:30 按时完成"
    assert answer["cells"][2:] == ["2026-12-03 周四 09:30", "2026-12-01 周二 15:00 按时完成"]
    assert follow_up["step"] == "follow_up" and follow_up["cells"][0] == "追问答复期限"
    if answer_days == "calendar":
        assert follow_up["cells"][2:] == ["2026-12-08 周二 10:00", "剩余 2 天 0 小时（自然时间）"]
    else:  # from the Saturday: Monday, Tuesday, Wednesday count
        assert follow_up["cells"][2:] == ["2026-12-10 周四 00:00", "剩余 3 天 0 小时（工作日） · 休息日不计时，今天暂停"]
    # the fragment the page reloads on a live "case" event carries the banner and the deadlines
    fragment = operator.get(f"/desk/cases/{number}", headers={"HX-Request": "true"}).text
    assert "<html" not in fragment and banner(fragment) == banner(page) and rows(fragment) == rows(page)
