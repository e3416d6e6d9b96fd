"""The units page in Debian's Chromium, in zh-CN: a supervisor sees the overdue unit first and its
countdown ticking (the text read twice, a second apart), and a unit newly overdue arrives live on the
desk's case event.  SQLite only (the pages' logic is checked on both databases in test_units_pages.py)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from bridge.accounts.service import add_user
from bridge.config import validate
from bridge.db.models import Case, CaseEvent, CaseState, Department, Honorific, Role
from bridge.departments.service import ensure_shipped_units
from bridge.health import Health
from bridge.live import LiveEvent
from bridge.site.clock import SiteClock
from bridge.web.app import create_app
from tests.browser import new_tab
from tests.desk.server import served
from tests.transparency.data import C, D, NOW, START, build

pytestmark = pytest.mark.browser
SECRETS = {"HOTLINE_BRIDGE_SESSION_SECRET": "units-browser-secret", "HOTLINE_BRIDGE_AMI_SECRET": "a"}
PASSWORD = "correct horse battery"
DAY = timedelta(days=1)


@pytest.fixture
def live(sqlite_db, monkeypatch, tmp_path):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    with sqlite_db.session() as session:
        ensure_shipped_units(session, START)
        build(session)
        add_user(session, "supervisor", Role.SUPERVISOR, PASSWORD, now=START)
    config = validate({"web": {"secure_cookies": False}}, environ=SECRETS, base_dir=tmp_path)
    app = create_app(config, sqlite_db, Health())
    app.state.site_clock = SiteClock(config.site.zone, lambda: NOW)
    with served(app) as server:
        server.db = sqlite_db
        yield server


def test_the_overdue_unit_comes_first_and_its_countdown_ticks(browser, live, tmp_path):
    page = new_tab(browser, timeout_ms=15_000)
    page.goto(f"{live.url}/desk/login")
    page.fill('input[name="username"]', "supervisor")
    page.fill('input[name="password"]', PASSWORD)
    page.click('#login-form button[type="submit"]')
    page.wait_for_url(f"{live.url}/desk/")
    page.click('header nav a[href="/desk/reports/units"]')  # the menu's link for supervisors
    page.wait_for_url(f"{live.url}/desk/reports/units")
    assert page.locator("h1").first.inner_text() == "单位报表"
    first = page.locator("#units-owed section.unit-owes").first
    assert first.get_attribute("data-unit") == C and "overdue" in first.get_attribute("class")
    countdown = first.locator("[data-countdown]").first
    page.wait_for_function("el => el.dataset.shownAt", arg=countdown.element_handle())  # the script has ticked
    before = countdown.inner_text()
    page.wait_for_timeout(1100)
    after = countdown.inner_text()
    assert before != after and before.startswith("已超期") and after.startswith("已超期"), (before, after)
    shot = tmp_path / "units.png"  # also kept at /tmp/units-report.png for a look
    page.screenshot(path="/tmp/units-report.png", full_page=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A post newly overdue at D, longer than C's: the list reloads on the desk's case event, D first.
    page.wait_for_function("document.body.dataset.live === 'ready'")
    with live.db.session() as session:
        unit = session.query(Department).filter_by(code=D).one()
        case = Case(number="96811-2026-000099", department_id=unit.id, state=CaseState.POSTED, caller_surname="周",
                    caller_honorific=Honorific.MR, title="新的帖子", description="描述", deadline_at=NOW - 30 * DAY)
        session.add(case)
        session.flush()
        session.add(CaseEvent(case_id=case.id, at=NOW - 31 * DAY, kind="posted", actor="forum",
                              detail={"department": D}))
    live.publish(LiveEvent("case", "state_changed", {"number": "96811-2026-000099", "state": "posted"}))
    page.locator('#units-owed tr[data-number="96811-2026-000099"]').wait_for()
    assert page.locator("#units-owed section.unit-owes").first.get_attribute("data-unit") == D
    page.context.close()
