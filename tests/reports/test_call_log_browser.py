"""The call log in Debian's Chromium, as a supervisor in zh-CN: the disposition filter goes into the
URL and shows those calls only (with their hangup cause), a screenshot is saved, and a call that
ends appears live.  SQLite only (tests/reports/test_call_log_page.py covers both databases)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bridge.db.models import Call, CallDisposition
from bridge.live import LiveEvent
from bridge.site.clock import SiteClock
from tests.reports.web import served_reports
from tests.reports.call_data import CALLS, ZONE, build, local

pytestmark = pytest.mark.browser
LOG = "/desk/reports/calls"
FAILED = [f"1764700000.{i}" for i, c in sorted(enumerate(CALLS), key=lambda p: p[1].at, reverse=True)
          if c.disposition == "failed"]


@pytest.fixture
def live(sqlite_db, monkeypatch, tmp_path):
    noon = SiteClock(ZONE, lambda: datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc))  # December 2026
    with served_reports(sqlite_db, build, monkeypatch, tmp_path, clock=noon) as server:
        yield server


def shown_calls(page) -> list[str]:
    return page.locator("#call-rows tr[data-call]").evaluate_all("rows => rows.map(r => r.dataset.call)")


def test_filter_by_disposition_and_screenshot(page, live, tmp_path):
    page.click(f'header nav a[href="{LOG}"]')  # the menu's link for supervisors
    page.wait_for_url(f"{live.url}{LOG}")
    assert page.locator("h1").inner_text() == "来电记录"
    page.select_option('select[name="disposition"]', "failed")
    page.click('#call-filters button[type="submit"]')
    page.wait_for_url("**disposition=failed**")
    assert shown_calls(page) == FAILED
    assert page.locator('select[name="disposition"] option:checked').inner_text() == "失败"
    causes = page.locator("#call-rows .cause").all_inner_texts()
    assert causes[0].startswith("挂断原因") and "38 Network out of order" in causes[0]
    assert page.locator("#headline-figures tr[data-figure='answered_within_15s_rate']").is_visible()
    shot = tmp_path / "shots" / "call-log-failed.png"
    shot.parent.mkdir()
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_call_that_ends_appears_live(page, live):
    page.goto(f"{live.url}{LOG}?disposition=failed")
    page.wait_for_function("document.body.dataset.live === 'ready'")
    with live.db.session() as session:
        session.add(Call(linkedid="1764799999.1", caller_number="13600136000", arrived_at=local(12, 3, 17),
                         disposition=CallDisposition.FAILED, hangup_cause=27, hangup_cause_text="Destination out of order"))
    live.publish(LiveEvent("call", "ended", {"linkedid": "1764799999.1"}))
    page.locator('tr[data-call="1764799999.1"]').wait_for()
    assert shown_calls(page) == ["1764799999.1", *FAILED]
