"""Debian's Chromium through Playwright, for the browser tests (never a downloaded browser).

``chromium()`` opens the browser (use it in a module-scoped fixture: Playwright's sync API keeps
an event loop marked running in this thread while it is open, which other tests' asyncio.run()
would trip over); ``new_tab(browser)`` opens a page in a fresh context (its own cookies), in
zh-CN unless told otherwise.  The app itself is served by :class:`tests.desk.server.LiveServer`.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@contextmanager
def chromium() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def new_tab(browser, locale: str = "zh-CN", timeout_ms: int = 10_000):
    """A page in a new context (close it with ``page.context.close()``)."""
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(timeout_ms)
    return context.new_page()


# Fixtures the browser test modules import (``from tests.browser import browser, sqlite_db``).

@pytest.fixture(scope="module")
def browser():
    with chromium() as opened:  # module scope: see above
        yield opened


@pytest.fixture
def sqlite_db(tmp_path):
    """The database of a browser test: SQLite only (the pages' logic runs on both elsewhere; the
    browser adds what a person sees, the same on either)."""
    from bridge.db import migrate
    from bridge.db.engine import Database

    url = f"sqlite:///{tmp_path / 'browser.sqlite3'}"
    migrate.upgrade(url)
    database = Database(url)
    yield database
    database.dispose()
