"""The builtin board in Debian's Chromium through Playwright, against the app under uvicorn on loopback.

One case's whole life on the board, as the spokespeople and the public see it: filed through
the cases API and posted by the forum link; the procuratorate's spokesperson signs in (zh-CN),
accepts the post and forwards it to housing & construction (the unit must be chosen, the
note to the poster is required); housing & construction accepts and answers, then answers the caller's follow-up;
the public view shows the thread, its replies and its states.  No page ever shows the caller's
phone number or full name, and no page offers to delete anything.

Screenshots go to /tmp/board-*.png.
"""
from __future__ import annotations

import asyncio
import re
from urllib.parse import urlsplit

import httpx
import pytest

from bridge.forum.link import ForumLink
from bridge.health import Health
from tests.browser import new_tab
from tests.desk.server import LiveServer, served
from tests.forum.test_builtin_support import PASSWORD, auth, file_case, read_case

pytestmark = pytest.mark.browser

PRIVATE = ("朱小红", "13912345678", "139 1234 5678", "1391234", "7654321", "8613912345678")
NOTE = "产权登记中的房屋问题由市住房和城乡建设局负责，已转该局办理。"
ANSWER = "经核实，您的产权登记材料已齐全，本周内办结。"
FOLLOW_UP = "朱女士追问：办结后证书到哪里领取？"
FOLLOW_UP_ANSWER = "证书可在市民中心不动产登记窗口领取。"
# Anything a page could offer to remove a post or a reply with.
DELETE_CONTROLS = """() => [...document.querySelectorAll('a, button, input, select option, form, [role=button]')]
    .filter(e => /删除|撤回|撤销|delete|remove/i.test(
        [e.textContent, e.value, e.title, e.getAttribute('href'), e.getAttribute('action'), e.getAttribute('formaction'),
         e.getAttribute('method'), e.getAttribute('aria-label')].join(' ')))
    .map(e => e.outerHTML.slice(0, 200))"""


@pytest.fixture
def site(app):
    """``app`` (tests/forum/conftest.py) served on http://127.0.0.1:PORT."""
    with served(app) as server:
        yield server


@pytest.fixture
def api(site):
    """An HTTP client on the served app (the cases API, with ``auth(token)``)."""
    with httpx.Client(base_url=site.url, timeout=10) as client:
        yield client


@pytest.fixture
def link(app, db, forum):
    """The daemon's forum link on the builtin board (run a pass with ``in_server(site, link.cycle())``)."""
    return ForumLink(app.state.config, db, Health(), app.state.live, forum=forum)


def in_server(site: LiveServer, coro, timeout: float = 30):
    """Run ``coro`` in the server's event loop (this thread's is Playwright's) and wait for it."""
    return asyncio.run_coroutine_threadsafe(coro, site.loop).result(timeout)


class Pages:
    """Every page the test looked at: each is checked for private data and delete controls."""

    def __init__(self):
        self.seen: list[str] = []

    def check(self, page) -> str:
        html = page.content()
        self.seen.append(page.url)
        for private in PRIVATE:
            assert private not in html, f"{private!r} shown on {page.url}"
        assert page.evaluate(DELETE_CONTROLS) == [], f"a delete control on {page.url}"
        return html


def sign_in(page, site, pages: Pages, username: str) -> None:
    page.goto(f"{site.url}/desk/board/login")
    pages.check(page)
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == "网络发言人登录"
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', PASSWORD)
    page.click('form[action="/desk/board/login"] button[type="submit"]')
    page.wait_for_url(f"{site.url}/desk/board/")


def sign_out(page, site) -> None:
    page.locator("form.logout button").click()
    page.wait_for_url(f"{site.url}/desk/board/login")


def answer_on_board(page, site, pages: Pages, post, post_id, text: str) -> None:
    """Answer ``post`` with ``text``; the board shows it answered (green, 已答复)."""
    answer = post.locator('form[action$="/answer"]')
    answer.locator('textarea[name="text"]').fill(text)
    answer.locator("button").click()
    page.wait_for_url(f"{site.url}/desk/board/?done=answer#post-{post_id}")
    pages.check(page)
    assert page.locator("p.success").inner_text().startswith("已答复：“房屋产权登记问题”")
    assert post.get_attribute("data-state") == "answered"
    assert post.locator(".thread-status").inner_text() == "已答复"


def test_a_case_through_the_board_in_the_browser(browser, site, api, link, people):
    pages = Pages()
    number = file_case(api, people)["number"]
    assert in_server(site, link.cycle())["sent"] == 1  # the forum link posts it under the hotline's account
    case = read_case(api, people, number)
    assert case["state"] == "posted"
    post_id = int(case["forum_url"].rsplit("/", 1)[1])
    page = new_tab(browser)
    try:
        # ---- the procuratorate's spokesperson: sees the post, accepts it, forwards it
        sign_in(page, site, pages, "fyr-jcy")
        pages.check(page)
        assert page.locator("h1").inner_text() == "市人民检察院版块"
        assert "CITY-JCY发言人" in page.locator("header .who").inner_text()
        post = page.locator(f"article#post-{post_id}")
        assert post.get_attribute("class") == "card thread blue" and post.get_attribute("data-state") == "open"
        assert post.locator(".thread-status").inner_text() == "未受理"
        assert "房屋产权登记问题" in post.locator("h2").inner_text()
        body = post.locator(".pre").first.inner_text()
        assert "朱女士" in body and "96811" in body and number in body
        page.screenshot(path="/tmp/board-unit.png", full_page=True)

        post.locator('form[action$="/accept"] button').click()
        page.wait_for_url(f"{site.url}/desk/board/?done=accept#post-{post_id}")
        pages.check(page)
        # What was done, said in words (not only "done"), and the work page is not called the public board.
        assert page.locator("p.success").inner_text() == f"已受理：“房屋产权登记问题”（{number}）。"
        assert "公开版块" not in page.locator("header a.brand").inner_text()
        assert post.get_attribute("data-state") == "accepted"
        assert post.locator(".thread-status").inner_text() == "已受理"
        assert post.locator('.reply[data-kind="accepted"] .meta').inner_text().count("已受理") == 1
        assert post.locator('form[action$="/accept"]').count() == 0
        assert read_case(api, people, number)["state"] == "accepted"

        # no unit is chosen at first: forwarding with only a note is refused, the note stays
        forward = post.locator('form[action$="/forward"]')
        unit = forward.locator('select[name="to_department"]')
        assert unit.input_value() == ""
        assert unit.locator("option").first.inner_text() == "请选择转办单位"
        assert unit.locator("option:checked").inner_text() == "请选择转办单位"
        forward.locator('textarea[name="note"]').fill(NOTE)
        forward.screenshot(path="/tmp/forward-form.png")
        forward.locator("button").click()
        page.wait_for_url(f"{site.url}/desk/board/posts/{post_id}/forward")
        pages.check(page)
        alert = page.locator(f"article#post-{post_id} p.alert")
        assert alert.inner_text() == "请选择转办单位。"
        assert unit.get_attribute("aria-invalid") == "true" and unit.input_value() == ""
        assert forward.locator('textarea[name="note"]').input_value() == NOTE
        assert forward.locator('textarea[name="note"]').get_attribute("aria-invalid") is None
        page.locator(f"article#post-{post_id}").screenshot(path="/tmp/forward-form-refused.png")
        assert read_case(api, people, number)["state"] == "accepted"

        # the note to the poster is required: the page says so in Chinese and keeps the choice
        unit.select_option("CITY-ZJJ")
        forward.locator('textarea[name="note"]').fill("")
        forward.locator("button").click()
        page.wait_for_url(f"{site.url}/desk/board/posts/{post_id}/forward")
        pages.check(page)
        assert alert.inner_text() == "请填写给发帖人的转办说明。"
        assert page.locator(f'article#post-{post_id} textarea[name="note"]').get_attribute("aria-invalid") == "true"
        assert page.locator(f'article#post-{post_id} select[name="to_department"]').input_value() == "CITY-ZJJ"
        forward = page.locator(f'article#post-{post_id} form[action$="/forward"]')
        forward.locator('textarea[name="note"]').fill("转")  # too short: what was typed stays
        forward.locator("button").click()
        page.wait_for_url(f"{site.url}/desk/board/posts/{post_id}/forward")
        pages.check(page)
        assert alert.inner_text() == "给发帖人的转办说明至少需要 2 个字。"
        assert forward.locator('textarea[name="note"]').input_value() == "转"
        assert forward.locator('select[name="to_department"]').input_value() == "CITY-ZJJ"
        assert read_case(api, people, number)["department"] == "CITY-JCY"

        forward.locator('textarea[name="note"]').fill(NOTE)
        forward.locator("button").click()
        page.wait_for_url(f"{site.url}/desk/board/?done=forward#post-{post_id}")
        pages.check(page)
        assert page.locator("p.success").inner_text() == f"已转交给市住房和城乡建设局：“房屋产权登记问题”（{number}）。"
        assert page.locator(f"article#post-{post_id}").count() == 0  # now on the other unit's board
        assert "本版块暂无帖子。" in page.locator("main").inner_text()
        case = read_case(api, people, number)
        assert case["state"] == "forwarded" and case["department"] == "CITY-ZJJ"
        sign_out(page, site)
        pages.check(page)

        # ---- housing & construction: accepts, answers, then answers the follow-up
        sign_in(page, site, pages, "fyr-zjj")
        pages.check(page)
        post = page.locator(f"article#post-{post_id}")
        assert post.get_attribute("data-state") == "open" and post.locator(".thread-status").inner_text() == "未受理"
        forwarded = post.locator('.reply[data-kind="forwarded"]')
        assert "已转办" in forwarded.locator(".meta").inner_text() and forwarded.locator(".pre").inner_text() == NOTE
        post.locator('form[action$="/accept"] button').click()
        page.wait_for_url(f"{site.url}/desk/board/?done=accept#post-{post_id}")
        pages.check(page)
        assert "答复内容" in post.locator('form[action$="/answer"]').inner_text()
        answer_on_board(page, site, pages, post, post_id, ANSWER)
        assert post.locator('.reply[data-kind="answer"] .pre').inner_text() == ANSWER
        assert post.locator(".actions form").count() == 0  # nothing more to do on an answered post
        assert read_case(api, people, number)["state"] == "answered"

        # the caller phones again: the hotline asks in the thread, the link applies it to the case
        ref = in_server(site, link.forum.find_post(number))
        in_server(site, link.forum.post_follow_up(ref, FOLLOW_UP, idempotency_key=f"{number}:f1"))
        assert in_server(site, link.cycle())["applied"] >= 1
        assert read_case(api, people, number)["state"] == "reopened"
        page.reload()
        pages.check(page)
        assert post.get_attribute("data-state") == "follow_up"
        assert post.locator(".thread-status").inner_text() == "已受理（追问待答复）"
        assert post.locator('.reply[data-kind="follow_up"] .pre').inner_text() == FOLLOW_UP
        answer_on_board(page, site, pages, post, post_id, FOLLOW_UP_ANSWER)
        sign_out(page, site)
    finally:
        page.context.close()

    # ---- the public view, signed in as nobody
    public = new_tab(browser)
    try:
        public.goto(f"{site.url}/board/")
        pages.check(public)
        assert public.locator("html").get_attribute("lang") == "zh-CN"
        assert public.locator("h1").inner_text() == "网络问政公开版块"
        assert public.locator("form.logout").count() == 0 and public.locator("main form[method=post]").count() == 0
        row = public.locator(f'tr.thread:has(a[href="/board/threads/{post_id}"])')
        assert row.get_attribute("class") == "thread green" and row.get_attribute("data-state") == "answered"
        assert row.locator(".thread-status").inner_text() == "已答复"
        assert row.locator("td").nth(2).inner_text() == "市住房和城乡建设局"
        public.screenshot(path="/tmp/board-public-list.png", full_page=True)

        row.locator("a").click()
        public.wait_for_url(f"{site.url}/board/threads/{post_id}")
        pages.check(public)
        thread = public.locator("article.thread")
        assert thread.get_attribute("data-state") == "answered" and "green" in thread.get_attribute("class")
        assert thread.locator("h1 .thread-status").inner_text() == "已答复"
        assert "发帖人 96811热线" in thread.locator("p.note").inner_text()
        assert f"热线编号 {number}" in thread.locator("p.note").inner_text()
        replies = thread.locator(".reply")
        assert [replies.nth(i).get_attribute("data-kind") for i in range(replies.count())] == [
            "accepted", "forwarded", "accepted", "answer", "follow_up", "follow_up_answer"]
        labels = [re.split(r" · ", replies.nth(i).locator(".meta").inner_text())[1] for i in range(replies.count())]
        assert labels == ["已受理", "已转办", "已受理", "答复", "追问", "追问答复"]
        texts = thread.locator(".reply .pre").all_inner_texts()
        assert texts == [NOTE, ANSWER, FOLLOW_UP, FOLLOW_UP_ANSWER]
        assert "所有帖子永久保留，不删除。" in public.locator("main").inner_text()
        public.screenshot(path="/tmp/board-public.png", full_page=True)
    finally:
        public.context.close()

    # nothing can be deleted through the API either
    assert api.delete(f"/api/v1/board/posts/{post_id}", headers=auth(people["zjj"])).status_code == 405
    assert api.delete(f"/api/v1/cases/{number}", headers=auth(people["operator"])).status_code == 405
    case = read_case(api, people, number)
    assert case["state"] == "answered" and case["deadline_at"] is None
    assert [e["kind"] for e in case["timeline"]] == [
        "filed", "posted", "accepted", "forwarded", "accepted", "answered", "follow_up_asked", "follow_up_answered"]
    assert {urlsplit(url).path for url in pages.seen} == {
        "/desk/board/login", "/desk/board/", f"/desk/board/posts/{post_id}/forward", "/board/",
        f"/board/threads/{post_id}"}
