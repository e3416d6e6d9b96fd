"""Debian's Chromium through Playwright, for the browser tests (never a downloaded browser).

``chromium()`` opens the browser (use it in a module-scoped fixture: Playwright's sync API keeps
an event loop marked running in this thread while it is open, which other tests' asyncio.run()
would trip over); ``new_tab(browser)`` opens a page in a fresh context (its own cookies), in
zh-CN unless told otherwise.  The app itself is served by :class:`tests.desk.server.LiveServer`.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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
