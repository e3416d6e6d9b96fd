"""Pause and resume on the desk, and the supervisors' live queue page, in Chromium (SQLite only)."""
from __future__ import annotations

import re

import pytest

from tests.browser import chromium, new_tab
from tests.desk.conftest import live  # noqa: F401 - the desk's app served
from tests.desk.test_browser import db, sign_in  # noqa: F401 - SQLite only

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    with chromium() as opened:
        yield opened


def test_pause_resume_and_the_supervisors_queue_page(browser, live):  # noqa: F811
    operator, supervisor = new_tab(browser), new_tab(browser)
    try:
        sign_in(operator, live, "operator", extension="8001")
        operator.wait_for_url(f"{live.url}/desk/")
        operator.wait_for_selector('body[data-live="ready"]')
        panel = operator.locator("#presence-panel")
        panel.wait_for()
        assert "8001" in panel.inner_text()

        sign_in(supervisor, live, "supervisor", extension="8002")
        supervisor.wait_for_url(f"{live.url}/desk/")
        supervisor.click('nav a[href="/desk/queue"]')
        supervisor.wait_for_url(f"{live.url}/desk/queue")
        supervisor.wait_for_selector('body[data-live="ready"]')
        row = supervisor.locator('tr[data-user="operator"]')
        row.wait_for()
        assert row.locator(".badge.paused").count() == 0

        operator.click("#presence-panel button.pause-break")
        operator.wait_for_selector('#presence-panel[data-paused="break"]')
        assert operator.locator("#presence-panel button.resume").is_visible()
        row.locator(".badge.paused").wait_for(timeout=5000)   # live, without a reload
        assert "休息" in row.inner_text()
        supervisor.screenshot(path="/tmp/desk-queue-paused.png", full_page=True)

        operator.click("#presence-panel button.resume")
        operator.wait_for_selector("#presence-panel:not([data-paused])")
        row.locator(".badge.paused").wait_for(state="detached", timeout=5000)

        # A supervisor signs the operator out: the operator's page goes to the sign-in page.
        supervisor.once("dialog", lambda dialog: dialog.accept())
        row.locator("button.end-session").click()
        row.wait_for(state="detached", timeout=5000)
        operator.wait_for_url(re.compile(r".*/desk/login.*"), timeout=30000)   # its stream (or htmx) saw the end
        operator.goto(f"{live.url}/desk/")   # the cookie is still there, but its session is over
        assert "/desk/login" in operator.url
    finally:
        operator.context.close()
        supervisor.context.close()
