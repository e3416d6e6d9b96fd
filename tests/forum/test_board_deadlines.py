"""The builtin board's deadlines (HTTP level): on the spokesperson's board each post says the step it
owes (受理 / 答复 / 追问的答复), when (site's zone, with the weekday) and its countdown; overdue posts
are marked and listed first.  The public board and a thread show the same deadline."""
from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bridge.db.models import User
from bridge.forum.adapter import NewPost
from bridge.forum.builtin import board, pages as board_pages
from bridge.forum.builtin.pages import mount_board
from tests.forum.test_builtin_pages import sign_in

ZONE = ZoneInfo("Asia/Shanghai")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZONE)


@pytest.fixture
def site(app, client, monkeypatch):
    if not any(getattr(r, "path", "") == "/board/" for r in app.routes):
        mount_board(app)
    monkeypatch.setattr(board_pages, "_now", lambda: local("2026-11-30 12:00"))  # a Monday, lunch break
    return client


@pytest.fixture
def posts(db, people) -> dict[str, int]:
    """Posts on the procuratorate's board: A accepted Thursday (answer due Sunday 11:00, overdue), B posted
    Monday 11:00 (1 office hour left), C posted Friday evening (24 h: overdue since Saturday), D answered."""
    ids = {}
    with db.session() as session:
        spokesperson = session.scalar(select(User).where(User.username == "fyr-jcy"))

        def post(name: str, when: str) -> int:
            row, _ = board.create_post(session, NewPost(f"96811-2026-00010{len(ids)}", "CITY-JCY", f"帖子{name}",
                                                        "朱女士反映的问题"), local(when))
            ids[name] = row.id
            return row.id

        board.accept(session, post("D", "2026-11-23 09:00"), spokesperson, local("2026-11-23 09:10"))
        board.answer(session, ids["D"], spokesperson, "已处理完毕。", local("2026-11-23 15:00"))
        board.accept(session, post("A", "2026-11-26 10:00"), spokesperson, local("2026-11-26 11:00"))
        post("C", "2026-11-27 20:00")
        post("B", "2026-11-30 11:00")
    return ids


def deadline_lines(html: str) -> list[tuple[str, str, str, str]]:
    """(post id, classes, step, text) of each post's deadline, in page order."""
    found = []
    for classes, post_id, body in re.findall(r'<article class="card thread ([^"]*)" id="post-(\d+)"(.*?)</article>',
                                             html, re.S):
        line = re.search(r'<p class="deadline[^"]*" data-step="([^"]*)"[^>]*>(.*?)</p>', body, re.S)
        text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", line.group(2))).strip() if line else ""
        found.append((post_id, classes, line.group(1) if line else "", text))
    return found


def test_the_spokespersons_board_shows_each_deadline_overdue_first(site, posts):
    sign_in(site, "fyr-jcy")
    html = site.get("/desk/board/").text
    assert deadline_lines(html) == [
        (str(posts["C"]), "blue overdue", "accept", "受理期限 2026-11-28 周六 20:00 · 已超期 1 天 16 小时"),
        (str(posts["A"]), "green overdue", "answer", "答复期限 2026-11-29 周日 11:00 · 已超期 1 天 1 小时"),
        (str(posts["B"]), "blue", "accept",
         "受理期限 2026-11-30 周一 15:00 · 剩余 1 小时 0 分（办公时间） · 非办公时间不计时，现在暂停"),
        (str(posts["D"]), "green", "", ""),
    ]
    assert '<time datetime="2026-11-30T15:00:00+08:00">' in html  # the site's zone
    english = site.get("/desk/board/?lang=en").text
    assert deadline_lines(english)[0][3] == "Accept by 2026-11-28 Sat 20:00 · overdue by 1 d 16 h"


def test_the_public_board_and_the_thread_show_the_deadline(site, posts):
    listing = site.get("/board/?unit=CITY-JCY").text
    row = re.search(rf'<tr class="thread green overdue"[^>]*>.*?/board/threads/{posts["A"]}.*?</tr>', listing, re.S)
    assert row and "答复期限" in row.group(0) and "2026-11-29 周日 11:00" in row.group(0) and "已超期" in row.group(0)
    assert listing.count('class="thread blue overdue"') == 1 and listing.count('class="thread blue"') == 1
    thread = site.get(f"/board/threads/{posts['B']}").text
    assert "受理期限" in thread and '<time datetime="2026-11-30T15:00:00+08:00">2026-11-30 周一 15:00</time>' in thread
    answered = site.get(f"/board/threads/{posts['D']}").text
    assert 'class="deadline' not in answered
