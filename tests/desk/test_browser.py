"""The desk in Debian's Chromium through Playwright, against the app under uvicorn on loopback;
the last test rings the desk with a real SIPp call through the Asterisk test bed.

SQLite only (the HTTP tests cover PostgreSQL).  Screenshots go to /tmp/desk-*.png.
"""
from __future__ import annotations

import asyncio
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bridge.cases.service import file_case
from bridge.db.models import Call, CallDisposition, Case, CaseEvent, User
from bridge.forum.builtin.forum import BuiltinForum
from bridge.forum.deadlines import is_office_time
from bridge.forum.link import ForumLink
from bridge.health import Health
from bridge.live import LiveEvent
from bridge.pbx.service import PbxService
from bridge.site.calendar import ChinaWorkingCalendar
from tests.browser import new_tab
from tests.waiting import wait_until
from tests.desk.conftest import CALLER_NUMBER, LINKEDID, PASSWORD, valid_form

pytestmark = pytest.mark.browser


@pytest.fixture
def db(sqlite_db):
    """SQLite only for the browser tests (overrides the two-backend fixture)."""
    return sqlite_db


@pytest.fixture
def page(browser, live):
    tab = new_tab(browser)
    yield tab
    tab.context.close()


def sign_in(page, live, username="operator", password=PASSWORD, extension=""):
    page.goto(f"{live.url}/desk/login")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', password)
    if extension:
        page.fill('input[name="extension"]', extension)
    page.click('#login-form button[type="submit"]')


def file_in_background(db, **changes) -> str:
    with db.session() as session:
        user = session.scalar(select(User).where(User.username == "supervisor"))
        case = file_case(session, valid_form(**changes), user=user, now=datetime.now(timezone.utc),
                         zone=ZoneInfo("Asia/Shanghai"))
        return case.number


def test_sign_in_and_throttling(page, live, clock):
    for _ in range(4):
        sign_in(page, live, password="wrong password!")
        assert page.locator("#login-error").inner_text() == "用户名或密码不正确。"
    sign_in(page, live, password="wrong password!")
    message = page.locator("#login-error").inner_text()
    assert message.startswith("登录失败次数过多，请在 ") and message.endswith("之后再试（60 秒后）。")
    sign_in(page, live)
    assert "登录失败次数过多" in page.locator("#login-error").inner_text()
    clock.now += 61
    sign_in(page, live, extension="8005")
    page.wait_for_url(f"{live.url}/desk/")
    assert "分机 8005" in page.locator("header .who").inner_text()
    page.locator("form.logout button").click()
    page.wait_for_url(f"{live.url}/desk/login?bye=1")
    page.goto(f"{live.url}/desk/cases")
    assert page.url.startswith(f"{live.url}/desk/login?next=")
    page.goto(f"{live.url}/")  # the address a newcomer is told: the sign-in, which links the public board
    assert page.url == f"{live.url}/desk/login"
    assert page.locator('#public-pages a[href="/board/"]').count() == 1
    sign_in(page, live)
    page.wait_for_url(f"{live.url}/desk/")
    page.goto(f"{live.url}/")
    assert page.url == f"{live.url}/desk/"


def test_case_form_validation_privacy_draft_and_filing(page, live, db):
    sign_in(page, live)
    page.wait_for_url(f"{live.url}/desk/")
    form_url = f"{live.url}/desk/cases/new?call={LINKEDID}"
    page.goto(form_url)
    assert page.input_value('input[name="caller_phone"]') == "139 1234 5678"
    page.fill('input[name="title"]', "路口垃圾堆积")
    page.click("#file-case")  # the page's own messages, before anything is sent
    assert page.locator("#error-caller_surname").inner_text() == "请填写姓。"
    assert page.locator("#error-description").inner_text() == "请填写问题描述。"
    assert page.locator("#error-department").inner_text() == UNIT_NOT_CHOSEN
    assert page.input_value('input[name="title"]') == "路口垃圾堆积"

    # the privacy guard
    page.fill('input[name="caller_surname"]', "朱")
    page.check('input[name="caller_honorific"][value="女士"]')
    page.fill('input[name="caller_full_name"]', "朱小红")
    page.fill('textarea[name="description"]', "东港三路的垃圾堆了三天，气味很大，请打 13912345678 找朱小红。")
    page.fill("#unit-search", "gaj")
    assert page.locator("#department").input_value() == ""  # typing only searches
    page.press("#unit-search", "Enter")
    assert page.locator("#department").input_value() == "CITY-GAJ"
    page.click("#file-case")
    assert page.locator("#privacy-alert").is_visible()
    description_error = page.locator("#error-description").inner_text()
    assert "电话号码“13912345678”" in description_error and "来电人的姓名“朱小红”" in description_error
    page.screenshot(path="/tmp/desk-case-form.png", full_page=True)

    # a half-written form survives a reload (localStorage, keyed by the call)
    page.goto(form_url)
    page.fill('textarea[name="description"]', "东港三路与百灵路交叉口的垃圾已经堆了三天，气味很大，希望尽快清理。")
    page.fill('input[name="location"]', "东港三路与百灵路交叉口")
    assert page.locator('input[name="best_time"][value="any"]').is_checked()  # preselected
    page.locator("#best-time label", has_text="晚上").click()  # the word itself is clickable
    day = (datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=5)).isoformat()
    page.fill('input[name="callback_not_before"]', day)
    page.reload()
    assert page.locator("#draft-note").is_visible()
    assert page.input_value('input[name="location"]') == "东港三路与百灵路交叉口"
    assert page.locator('input[name="best_time"][value="evening"]').is_checked()
    assert not page.locator('input[name="best_time"][value="any"]').is_checked()
    assert page.input_value('input[name="callback_not_before"]') == day
    assert page.input_value('input[name="caller_surname"]') == "朱"
    assert page.locator('input[name="caller_honorific"][value="女士"]').is_checked()
    # words of the description suggest units
    suggestion = page.locator('.from-words .suggest[data-code="CITY-LJQ"]')
    assert suggestion.count() == 1
    suggestion.click()
    assert page.locator("#department").input_value() == "CITY-LJQ"
    page.click("#file-case")
    page.wait_for_selector("#filed-message")
    assert "已登记" in page.locator("#filed-message").inner_text()
    assert page.evaluate("localStorage.getItem('hotline-desk:draft:1764133200.42')") is None
    assert page.locator("#case-state").inner_text() == "排队待发"
    assert page.locator("#case-best-time").inner_text() == f"晚上 · {day} 起"


UNIT_NOT_CHOSEN = "请选择责任单位：输入单位名称、拼音首字母或常用叫法（如 城管、交警），然后在列表中点击该单位或按回车键。"


def options(page) -> list[str]:
    return page.locator("#unit-options li").evaluate_all("items => items.map(li => li.dataset.code)")


def test_unit_picker_chooses_only_when_told_and_says_when_nothing_matches(page, live):
    sign_in(page, live)
    page.wait_for_url(f"{live.url}/desk/")
    page.goto(f"{live.url}/desk/cases/new")
    assert page.locator("#unit-chosen-none").is_visible() and not page.locator("#unit-change").is_visible()
    page.fill("#unit-search", "zhzf")
    assert options(page)[0] == "CITY-ZHZFJ"
    assert page.locator("#department").input_value() == ""  # typing never selects
    page.press("#unit-search", "Enter")
    assert page.locator("#department").input_value() == "CITY-ZHZFJ"
    assert page.locator("#unit-chosen-name").inner_text() == "市综合行政执法局"
    assert page.input_value("#unit-search") == ""

    # the bug of issue 11: the search finds nothing, and the chosen unit is still in view
    page.fill("#unit-search", "综合执法局xyz")
    none = page.locator("#unit-none")
    assert none.is_visible() and not page.locator("#unit-options").is_visible()
    assert none.inner_text() == ("没有匹配“综合执法局xyz”的单位：请试试单位名称、拼音首字母或常用叫法"
                                 "（城管、交警、环卫、物业）。")
    assert page.locator("#unit-chosen-name").is_visible()
    page.click("#file-case")
    assert page.locator("#error-department").inner_text() == (
        "已选单位是“市综合行政执法局”，但搜索框中的“综合执法局xyz”找不到它：请重新选择单位，或清空搜索框。")
    assert page.url.endswith("/desk/cases/new")  # not sent
    page.locator("#unit-picker").screenshot(path="/tmp/desk-unit-picker.png")

    # everyday names, and the synonym that found the unit beside its name
    for query, code in (("城管", "CITY-ZHZFJ"), ("综合执法", "CITY-ZHZFJ"), ("交警", "CITY-JJZD"),
                        ("环卫", "CITY-ZHZFJ"), ("物业", "CITY-ZJJ"), ("cg", "CITY-ZHZFJ")):
        page.fill("#unit-search", query)
        assert options(page)[0] == code, query
    page.fill("#unit-search", "城管")
    assert page.locator("#unit-options li").first.inner_text() == "市综合行政执法局 城管"
    page.locator('#unit-options li[data-code="CITY-ZHZFJ"]').click()
    assert page.locator("#department").input_value() == "CITY-ZHZFJ"
    assert page.locator("#error-department").count() == 0

    # the keyboard: arrows move, Enter chooses the one shown active
    page.fill("#unit-search", "市公安")
    assert options(page)[:2] == ["CITY-GAJ", "CITY-JJZD"]
    page.press("#unit-search", "ArrowDown")
    assert page.locator("#unit-options li.active").get_attribute("data-code") == "CITY-JJZD"
    page.press("#unit-search", "Enter")
    assert page.locator("#department").input_value() == "CITY-JJZD"
    assert page.locator("#unit-chosen-name").inner_text() == "市公安局交通警察支队"
    page.click("#unit-change")
    assert page.locator("#department").input_value() == ""
    assert page.locator("#unit-chosen-none").is_visible() and not page.locator("#unit-change").is_visible()


def test_the_file_button_stays_in_view_and_ctrl_enter_files(page, live):
    sign_in(page, live)
    page.wait_for_url(f"{live.url}/desk/")
    page.goto(f"{live.url}/desk/cases/new?call={LINKEDID}")
    button_bottom = "document.getElementById('file-case').getBoundingClientRect().bottom"
    assert page.evaluate("document.documentElement.scrollHeight") > 1500  # a long form
    assert 0 < page.evaluate(button_bottom) <= page.evaluate("innerHeight")
    page.evaluate("scrollTo(0, 700)")
    assert 0 < page.evaluate(button_bottom) <= page.evaluate("innerHeight")
    assert page.evaluate("document.getElementById('case-form').noValidate")

    page.press('input[name="title"]', "Control+Enter")  # no browser tooltip: the page's words
    assert page.locator("#error-caller_surname").inner_text() == "请填写姓。"
    assert page.locator("#error-caller_honorific").inner_text() == "请填写称呼。"
    assert page.locator("#form-errors").inner_text() == "案件尚未登记：请修改下面标出的内容。"
    page.fill('input[name="caller_surname"]', "朱")
    page.check('input[name="caller_honorific"][value="先生"]')
    page.fill('input[name="title"]', "路灯不亮")
    page.fill('textarea[name="description"]', "太短")
    page.press('textarea[name="description"]', "Control+Enter")
    assert page.locator("#error-description").inner_text() == "问题描述至少要 10 个字（现在 2 个字）。"
    assert page.locator("#error-caller_surname").count() == 0  # corrected, the message is gone
    page.fill('textarea[name="description"]', "府山街道水亭街的路灯坏了一个星期，晚上很黑，请尽快修好。")
    page.fill("#unit-search", "城管")
    page.press("#unit-search", "Enter")
    page.press('textarea[name="description"]', "Control+Enter")
    page.wait_for_selector("#filed-message")
    assert "已登记" in page.locator("#filed-message").inner_text()


def test_suggestions_name_the_community_typed_in_the_location(page, live):
    sign_in(page, live)
    page.wait_for_url(f"{live.url}/desk/")
    page.goto(f"{live.url}/desk/cases/new")
    page.fill('input[name="location"]', "荷花街道荷五社区")
    page.fill('textarea[name="description"]', "荷花街道这边垃圾乱扔，还有人占道经营，希望处理。")
    first = page.locator(".from-words .suggest").first
    first.wait_for()
    codes = page.locator(".from-words .suggest").evaluate_all("items => items.map(b => b.dataset.code)")
    # 荷五社区 first; the street's other communities are no better guess than the one named
    assert codes == ["COM-HH-5", "CITY-ZHZFJ"]
    first.click()
    assert page.locator("#unit-chosen-name").inner_text() == "荷花街道荷五社区"


def test_a_draft_saved_when_the_best_time_was_free_text_keeps_any_time(page, live):
    sign_in(page, live)
    page.wait_for_url(f"{live.url}/desk/")
    page.goto(f"{live.url}/desk/cases/new?call={LINKEDID}")
    page.evaluate("""localStorage.setItem('hotline-desk:draft:1764133200.42',
        JSON.stringify({best_time: '周三下午三点', location: '东港三路', _saved: Date.now()}))""")
    page.reload()
    assert page.locator("#draft-note").is_visible()
    assert page.input_value('input[name="location"]') == "东港三路"
    assert page.locator('input[name="best_time"][value="any"]').is_checked()


def test_case_list_updates_without_reload(page, live, db):
    live.app.state.desk_case_check_s = 1.0
    sign_in(page, live)
    page.wait_for_url(f"{live.url}/desk/")
    page.goto(f"{live.url}/desk/cases")
    page.wait_for_selector('body[data-live="ready"]')
    live.wait_subscribers()
    assert page.locator("tr.case-row").count() == 0
    marker = page.evaluate("window.__marker = Math.random()")
    # filed elsewhere, announced on the live events (as the desk and the forum bridge do)
    number = file_in_background(db)
    live.publish(LiveEvent("case", "filed", {"number": number, "state": "queued"}))
    row = page.locator(f'tr.case-row[data-number="{number}"]')
    row.wait_for(timeout=5000)
    assert "blue" in row.get_attribute("class")
    # filed by a writer that announces nothing (e.g. the JSON API): the stream's check finds it
    second = file_in_background(db, call_linkedid="", title="噪音扰民")
    page.locator(f'tr.case-row[data-number="{second}"]').wait_for(timeout=8000)
    assert page.evaluate("window.__marker") == marker  # no reload happened
    page.screenshot(path="/tmp/desk-case-list.png", full_page=True)
    # filters and search reload the rows in place (htmx)
    page.fill("#q", number)
    page.locator(f'tr.case-row[data-number="{second}"]').wait_for(state="detached")
    assert page.locator("tr.case-row").count() == 1
    page.fill("#q", "")
    page.select_option('select[name="state"]', "accepted")
    page.locator("tr.case-row").first.wait_for(state="detached")
    assert "没有符合条件的案件" in page.locator("#case-rows").inner_text()
    assert page.evaluate("window.__marker") == marker


def test_call_pop(page, live, db):
    earlier = file_in_background(db)
    with db.session() as session:
        session.add(Call(linkedid="1764140000.7", caller_number=CALLER_NUMBER, arrived_at=datetime.now(timezone.utc),
                         disposition=CallDisposition.IN_PROGRESS))
    sign_in(page, live)  # operator, extension 8001 from the account
    page.wait_for_url(f"{live.url}/desk/")
    page.wait_for_selector('body[data-live="ready"]')
    live.wait_subscribers()
    arrived = datetime.now(timezone.utc).isoformat()
    data = {"linkedid": "1764140000.7", "extension": "8002", "caller_number": CALLER_NUMBER, "caller_name": "",
            "arrived_at": arrived}
    live.publish(LiveEvent("call", "ringing", data))  # another operator's phone: no pop here
    live.publish(LiveEvent("call", "ringing", {**data, "extension": "8001"}))
    pop = page.locator('#call-pops .call-pop[data-linkedid="1764140000.7"]')
    pop.wait_for(timeout=5000)
    assert page.locator("#call-pops .call-pop").count() == 1
    assert pop.locator(".pop-number").inner_text() == "139 1234 5678"
    assert pop.locator(".pop-state").inner_text() == "振铃中"
    assert earlier in pop.locator(".pop-history").inner_text()
    live.publish(LiveEvent("call", "connected", {**data, "extension": "8001"}))
    page.wait_for_selector('#call-pops .call-pop[data-linkedid="1764140000.7"][data-kind="connected"]')
    assert pop.locator(".pop-state").inner_text() == "通话中"
    page.wait_for_timeout(1100)
    page.screenshot(path="/tmp/desk-call-pop.png", full_page=True)
    pop.locator(".pop-file").click()
    page.wait_for_url("**/desk/cases/new?call=1764140000.7*")
    assert page.input_value('input[name="call_linkedid"]') == "1764140000.7"
    assert page.input_value('input[name="caller_phone"]') == "139 1234 5678"
    assert page.locator('.from-history .suggest[data-code="CITY-LJQ"]').count() == 1


def test_pop_closes_when_the_ringing_stops_and_marks_the_end(page, live):
    sign_in(page, live, extension="8009")
    page.wait_for_url(f"{live.url}/desk/")
    page.wait_for_selector('body[data-live="ready"]')
    live.wait_subscribers()
    data = {"linkedid": "9.1", "extension": "8009", "caller_number": "", "caller_name": "", "arrived_at": None}
    live.publish(LiveEvent("call", "ringing", data))
    page.locator('.call-pop[data-linkedid="9.1"]').wait_for()
    assert "未知号码" in page.locator('.call-pop[data-linkedid="9.1"] .pop-number').inner_text()
    live.publish(LiveEvent("call", "ring_stopped", data))
    page.locator('.call-pop[data-linkedid="9.1"]').wait_for(state="detached")
    live.publish(LiveEvent("call", "connected", {**data, "linkedid": "9.2"}))
    page.locator('.call-pop[data-linkedid="9.2"]').wait_for()
    live.publish(LiveEvent("call", "ended", {**data, "linkedid": "9.2", "extension": None}))
    page.wait_for_selector('.call-pop.ended[data-linkedid="9.2"]')
    assert page.locator('.call-pop[data-linkedid="9.2"] .pop-state').inner_text() == "通话已结束"


# ------------------------------------------- the case page's deadlines and banner, live

SHANGHAI = ZoneInfo("Asia/Shanghai")
UNIT_LJQ = "衢州绿色产业集聚区管委会"


def site_time(moment: datetime) -> str:
    """``2026-12-03 周四 22:40``: how the page writes a time (the site's zone, with the weekday)."""
    local = moment.astimezone(SHANGHAI)
    return f"{local:%Y-%m-%d} 周{'一二三四五六日'[local.weekday()]} {local:%H:%M}"


def stored_case(db, number: str):
    with db.session(readonly=True) as session:
        case = session.scalar(select(Case).where(Case.number == number))
        posted = session.scalar(select(CaseEvent.at).where(CaseEvent.case_id == case.id, CaseEvent.kind == "posted"))
        return case.state.value, case.deadline_at, posted


def test_the_case_pages_deadlines_and_banner_follow_the_case_live(browser, page, live, db):
    """Posted by the forum link, accepted on the board by the unit's spokesperson in another browser:
    the operator's case page changes its banner and deadlines at once, without a reload."""
    number = file_in_background(db)
    sign_in(page, live)
    page.wait_for_url(f"{live.url}/desk/")
    page.goto(f"{live.url}/desk/cases/{number}")
    page.wait_for_selector('body[data-live="ready"]')
    live.wait_subscribers()
    marker = page.evaluate("window.__marker = Math.random()")
    banner = page.locator("#case-banner")
    assert banner.inner_text() == "排队等待发到论坛。" and page.locator("#case-deadlines").count() == 0

    # the forum link posts it (the outbox, in the server's loop): the banner follows, the acceptance is owed
    link = ForumLink(live.app.state.config, db, Health(), live.app.state.live, forum=BuiltinForum(db, live.url))
    assert asyncio.run_coroutine_threadsafe(link.cycle(), live.loop).result(30)["sent"] == 1
    page.wait_for_selector('#case-banner[data-state="posted"]', timeout=15_000)
    assert banner.inner_text() == f"已发到论坛，等待 {UNIT_LJQ} 受理。"
    state, due, posted = stored_case(db, number)
    in_office = is_office_time(posted, calendar=ChinaWorkingCalendar(), office_periods=["08:30-12:00", "14:00-17:30"],
                               zone=SHANGHAI)
    row = page.locator('#case-deadlines tr[data-step="accept"]')
    assert row.locator(".deadline-step").inner_text() == "受理期限"
    assert row.locator("time").inner_text() == site_time(due)
    assert row.locator("time").get_attribute("datetime") == due.astimezone(SHANGHAI).isoformat()
    status = row.locator(".deadline-status").inner_text()
    assert status.startswith("剩余 ") and ("（办公时间）" if in_office else "（自然时间）") in status
    page.screenshot(path="/tmp/desk-case-deadlines-posted.png", full_page=True)

    # the unit's spokesperson accepts on the board, in a browser of their own
    board = new_tab(browser)
    try:
        board.goto(f"{live.url}/desk/board/login")
        board.fill('input[name="username"]', "spokesperson")
        board.fill('input[name="password"]', PASSWORD)
        board.click('form[action="/desk/board/login"] button[type="submit"]')
        board.wait_for_url(f"{live.url}/desk/board/")
        post = board.locator("article.thread", has_text=number)
        assert post.locator(".deadline .deadline-step").inner_text() == "受理期限"
        assert post.locator(".deadline time").inner_text() == site_time(due)
        post.locator('form[action$="/accept"] button').click()
        board.wait_for_url("**/desk/board/?done=accept*", timeout=15_000)
    finally:
        board.context.close()

    page.wait_for_selector('#case-banner[data-state="accepted"]', timeout=15_000)
    assert banner.inner_text() == f"{UNIT_LJQ} 已受理，等待答复。"
    state, answer_due_at, _ = stored_case(db, number)
    assert state == "accepted"
    accept_row = page.locator('#case-deadlines tr[data-step="accept"]')
    assert accept_row.locator(".deadline-status").inner_text().endswith("按时完成")
    answer_row = page.locator('#case-deadlines tr[data-step="answer"]')
    assert answer_row.locator(".deadline-step").inner_text() == "答复期限"
    assert answer_row.locator("time").inner_text() == site_time(answer_due_at)
    assert answer_row.locator(".deadline-status").inner_text().startswith("剩余 2 天 23 小时")  # 72 clock hours
    assert page.evaluate("window.__marker") == marker  # no reload happened
    page.screenshot(path="/tmp/desk-case-deadlines-accepted.png", full_page=True)


# ------------------------------------------- a real call through the Asterisk test bed
# SIP -> Asterisk dialplan and queue -> AMI -> PbxService -> live events -> SSE -> page.

REAL_CALLER = "13905701234"


@pytest.fixture
def pbx(asterisk, live, db, sipp_cleanup):
    """The daemon's PBX link running in the desk server's loop, publishing into its live events."""
    service = PbxService(asterisk.config, db, Health(), live.app.state.live)
    asyncio.run_coroutine_threadsafe(service.start(), live.loop).result(20)
    assert asyncio.run_coroutine_threadsafe(service.ami.wait_up(20), live.loop).result(25)
    yield service
    asyncio.run_coroutine_threadsafe(service.stop(), live.loop).result(20)


@pytest.mark.asterisk
@pytest.mark.timeout(180)
def test_a_real_call_pops_at_the_operators_desk(asterisk, pbx, page, live, db):
    sign_in(page, live)  # the operator account works at extension 8001
    page.wait_for_url(f"{live.url}/desk/")
    page.wait_for_selector('body[data-live="ready"]')
    live.wait_subscribers()
    with asterisk.desk_phone("8001"):
        run = asterisk.place_calls(1, caller_number=REAL_CALLER, caller_name="朱女士", digits="1", hold_ms=6000)
        pop = page.locator("#call-pops .call-pop").first
        pop.wait_for(timeout=30_000)
        page.wait_for_selector('#call-pops .call-pop[data-kind="connected"]', timeout=30_000)
        assert pop.locator(".pop-number").inner_text().replace(" ", "") == REAL_CALLER
        assert "朱女士" in pop.inner_text()
        page.screenshot(path="/tmp/desk-real-call-pop.png", full_page=True)
        assert run.wait(60) == 0, run.report()
    linkedid = pop.get_attribute("data-linkedid")
    page.wait_for_selector(f'#call-pops .call-pop.ended[data-linkedid="{linkedid}"]', timeout=20_000)
    with db.session(readonly=True) as session:
        call = session.scalar(select(Call).where(Call.linkedid == linkedid))
        assert call is not None and call.caller_number == REAL_CALLER and call.extension == "8001"
    # the call's menu and queue times as the call log stored them, on the pop that a reload brings back

    def stored_end():
        with db.session(readonly=True) as session:
            return session.scalar(select(Call.ended_at).where(Call.linkedid == linkedid))

    wait_until(stored_end, timeout=10)  # the call log writes in batches
    page.reload()
    pop = page.locator(f'#call-pops .call-pop.ended[data-linkedid="{linkedid}"]')
    pop.wait_for(timeout=5000)
    assert re.fullmatch(r"菜单 \d+ 秒 · 排队 \d+ 秒", pop.locator(".pop-waits").inner_text())
    pop.locator(".pop-file").click()
    page.wait_for_url(f"**/desk/cases/new?call={linkedid}*")
    assert page.input_value('input[name="call_linkedid"]') == linkedid
    # "朱女士" in the SIP From header: the surname and the form of address, no full name
    assert page.input_value('input[name="caller_surname"]') == "朱"
    assert page.locator('input[name="caller_honorific"][value="女士"]').is_checked()
    assert page.input_value('input[name="caller_full_name"]') == ""


# ------------------------------------------------- the current call, and my calls today


def answered_call(db, linkedid: str, name: str = "张三丰", number: str = "13905709876") -> dict:
    """A call answered at 8001 (12 s in the menu, 14 s in the queue), as the call log stores it."""
    now = datetime.now(timezone.utc)
    arrived = now - timedelta(seconds=40)
    with db.session() as session:
        session.add(Call(linkedid=linkedid, caller_number=number, caller_name=name, arrived_at=arrived,
                         answered_at=arrived + timedelta(seconds=26), queue_wait_s=14.0, extension="8001",
                         disposition=CallDisposition.IN_PROGRESS))
    return {"linkedid": linkedid, "extension": "8001", "caller_number": number, "caller_name": name,
            "arrived_at": arrived.isoformat(), "queue_joined_at": (arrived + timedelta(seconds=12)).isoformat(),
            "answered_at": (arrived + timedelta(seconds=26)).isoformat(), "queue_wait_s": 14.0}


def end_call(db, linkedid: str) -> None:
    with db.session() as session:
        call = session.scalar(select(Call).where(Call.linkedid == linkedid))
        call.ended_at, call.talk_s, call.disposition = datetime.now(timezone.utc), 14.0, CallDisposition.ANSWERED


def test_the_current_call_survives_a_reload_and_the_case_form_and_ends_filed(page, live, db):
    sign_in(page, live)
    page.wait_for_url(f"{live.url}/desk/")
    page.wait_for_selector('body[data-live="ready"]')
    live.wait_subscribers()
    data = answered_call(db, "1764150000.1")
    live.publish(LiveEvent("call", "connected", data))
    pop = page.locator('#call-pops .call-pop[data-linkedid="1764150000.1"]')
    pop.wait_for(timeout=5000)
    assert pop.locator(".pop-waits").inner_text() == "菜单 12 秒 · 排队 14 秒"
    end_call(db, "1764150000.1")
    live.publish(LiveEvent("call", "ended", {**data, "extension": None}))
    page.wait_for_selector('.call-pop.ended[data-linkedid="1764150000.1"]')
    page.reload()  # the pop comes back from the database, ended
    pop.wait_for(timeout=5000)
    assert pop.locator(".pop-state").inner_text() == "通话已结束"
    assert pop.locator(".pop-waits").inner_text() == "菜单 12 秒 · 排队 14 秒"
    pop.locator(".pop-file").click()
    page.wait_for_url("**/desk/cases/new?call=1764150000.1*")
    pop.wait_for(timeout=5000)  # on the case form too, above it
    assert page.locator("#call-pops .call-pop").count() == 1
    # what the call knows is filled in, and editable
    assert page.input_value('input[name="caller_phone"]') == "139 0570 9876"
    assert page.input_value('input[name="caller_full_name"]') == "张三丰"
    assert page.input_value('input[name="caller_surname"]') == "张"
    page.screenshot(path="/tmp/desk-case-form-from-call.png", full_page=True)
    page.check('input[name="caller_honorific"][value="先生"]')
    page.fill('input[name="location"]', "东港三路与百灵路交叉口")
    page.fill('input[name="title"]', "路口垃圾堆积无人清理")
    page.fill('textarea[name="description"]', "东港三路与百灵路交叉口的垃圾已经堆了三天，气味很大，希望尽快清理。")
    page.fill("#unit-search", "gaj")
    page.press("#unit-search", "Enter")  # typing only searches: Enter chooses
    assert page.locator("#department").input_value() == "CITY-GAJ"
    with page.expect_response("**/desk/pops") as pops:  # the case page loads its pops: none now
        page.click("#file-case")
    page.wait_for_selector("#filed-message")
    number = page.url.split("/desk/cases/")[1].split("?")[0]
    assert pops.value.ok and "call-pop" not in pops.value.text()
    assert page.locator("#call-pops .call-pop").count() == 0
    page.goto(f"{live.url}/desk/")
    assert page.locator("#call-pops .call-pop").count() == 0
    page.locator('header nav a[href="/desk/calls/mine"]').click()
    row = page.locator('tr.my-call[data-linkedid="1764150000.1"]')
    row.wait_for()
    assert row.locator(".outcome").inner_text() == f"已建案 {number}"
    assert row.locator(".outcome a").get_attribute("href") == f"/desk/cases/{number}"
    assert row.locator(".waits").inner_text() == "菜单 12 秒 · 排队 14 秒"


def test_my_calls_today_is_live_and_done_without_a_case(page, live, db):
    sign_in(page, live)
    page.wait_for_url(f"{live.url}/desk/")
    page.goto(f"{live.url}/desk/calls/mine")
    page.wait_for_selector('body[data-live="ready"]')
    live.wait_subscribers()
    assert page.locator("#no-calls").is_visible()
    marker = page.evaluate("window.__marker = Math.random()")
    data = answered_call(db, "1764150000.2", name="欧阳娜娜")
    live.publish(LiveEvent("call", "connected", data))
    row = page.locator('tr.my-call[data-linkedid="1764150000.2"]')
    row.wait_for(timeout=5000)  # answered: on the list at once, and popped on this page too
    page.locator('#call-pops .call-pop[data-linkedid="1764150000.2"]').wait_for()
    assert "通话中" in row.inner_text()
    end_call(db, "1764150000.2")
    live.publish(LiveEvent("call", "ended", {**data, "extension": None}))
    row.locator("text=14 秒").wait_for(timeout=5000)  # the talk time, once ended
    row.locator("button.mark-done").click()
    row.locator(".handled").wait_for(timeout=5000)
    assert row.locator(".outcome").inner_text() == "不建案，已处理"
    page.locator('#call-pops .call-pop[data-linkedid="1764150000.2"]').wait_for(state="detached", timeout=5000)
    assert page.evaluate("window.__marker") == marker  # no reload happened
    page.goto(f"{live.url}/desk/")
    assert page.locator("#call-pops .call-pop").count() == 0


def test_a_closed_pop_stays_closed_after_a_reload(page, live, db):
    sign_in(page, live)
    page.wait_for_url(f"{live.url}/desk/")
    answered_call(db, "1764150000.3")
    end_call(db, "1764150000.3")
    page.reload()
    pop = page.locator('#call-pops .call-pop[data-linkedid="1764150000.3"]')
    pop.wait_for()
    pop.locator(".pop-close").click()
    pop.wait_for(state="detached", timeout=5000)
    page.reload()
    page.wait_for_selector('body[data-live="ready"]')
    assert page.locator("#call-pops .call-pop").count() == 0
