"""The reports' browser tests share their tab: a supervisor signed in to the module's ``live`` server."""
from __future__ import annotations

import pytest

from tests.browser import new_tab
from tests.reports.data import PASSWORD


@pytest.fixture
def page(browser, live):
    tab = new_tab(browser, timeout_ms=15_000)  # a loaded machine: live waits get 15 s
    tab.goto(f"{live.url}/desk/login")
    tab.fill('input[name="username"]', "supervisor")
    tab.fill('input[name="password"]', PASSWORD)
    tab.click('#login-form button[type="submit"]')
    tab.wait_for_url(f"{live.url}/desk/")
    yield tab
    tab.context.close()
