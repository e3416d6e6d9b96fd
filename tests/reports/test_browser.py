"""The callback log in Debian's Chromium: its filters go into the URL (and a sent link opens them
again), a line opens to its timeline, a new case appears live, and the printable view prints on
A4 landscape (a PDF from Chromium); the reports dashboard's charts are drawn by ECharts in Chinese.
SQLite only (tests/reports/test_callback_log.py covers both).

``HB_SCREENSHOT_DIR=docs/screenshots``: the dashboard's and the printable view's screenshots are
also kept there (the ones the docs show)."""
from __future__ import annotations

import os
import re
import shutil
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from bridge.live import LiveEvent
from tests.browser import new_tab
from tests.reports.web import served_reports
from tests.reports.data import PATHS, build, utc

pytestmark = pytest.mark.browser
LOG = "/desk/reports/callbacks"


@pytest.fixture
def live(sqlite_db, monkeypatch, tmp_path):
    with served_reports(sqlite_db, build, monkeypatch, tmp_path) as server:
        yield server


def shown_cases(page) -> list[str]:
    return page.locator("#log-rows tr[data-case]").evaluate_all("rows => rows.map(r => r.dataset.case)")


def test_filters_live_in_the_url_and_a_line_opens_to_its_timeline(page, live):
    page.click('header nav a[href="/desk/reports/callbacks"]')  # the menu's link for supervisors
    page.wait_for_url(f"{live.url}{LOG}")
    assert page.locator("h1").inner_text() == "回访记录"
    page.fill('input[name="from"]', "2026-12-01")
    page.fill('input[name="to"]', "2026-12-03")
    page.select_option('select[name="outcome"]', "unreachable")
    page.click('#log-filters button[type="submit"]')
    page.wait_for_url(re.compile(r".*outcome=unreachable.*"))
    query = parse_qs(urlparse(page.url).query)
    assert query["from"] == ["2026-12-01"] and query["to"] == ["2026-12-03"] and query["outcome"] == ["unreachable"]
    assert shown_cases(page) == ["2026000003"]
    sent = page.url  # a link a supervisor sends: opened afresh, the same filters and lines
    other = new_tab(page.context.browser)
    other.context.add_cookies(page.context.cookies())
    other.goto(sent)
    assert other.locator('select[name="outcome"]').input_value() == "unreachable"
    assert shown_cases(other) == ["2026000003"]
    other.context.close()
    assert "outcome=unreachable" in page.locator("#export-xlsx").get_attribute("href")

    page.goto(f"{live.url}{LOG}")
    page.locator('tr[data-case="2026000001"] summary').click()
    timeline = page.locator('tr[data-case="2026000001"] .case-timeline')
    timeline.locator('li[data-kind="forwarded"]').nth(2).wait_for()
    assert timeline.locator('li[data-kind="forwarded"]').count() == 3
    page.screenshot(path="/tmp/reports-callback-log.png", full_page=True)


def test_a_new_case_appears_live(page, live):
    page.goto(f"{live.url}{LOG}?from=2026-12-01")
    page.locator("#log-rows tr[data-case]").first.wait_for()
    assert page.evaluate("document.body.dataset.live") in ("ready", "off", "reconnecting")
    page.wait_for_function("document.body.dataset.live === 'ready'")
    before = shown_cases(page)
    extra = replace(PATHS[5], number="2026000099", title="新的案件", filed=utc(2, 9))
    with live.db.session() as session:
        from tests.reports.data import _case, Department, User

        users = {u.username: u.id for u in session.query(User)}
        units = list(session.query(Department).order_by(Department.code).limit(4))
        _case(session, extra, 99, users, units)
    live.publish(LiveEvent("case", "filed", {"number": extra.number}))
    page.locator('tr[data-case="2026000099"]').wait_for()
    assert len(shown_cases(page)) == len(before) + 1


def test_the_printable_view_is_a4_landscape(page, live):
    page.goto(f"{live.url}{LOG}?outcome=informed")
    with page.context.expect_page() as opened:
        page.click("#print-view")
    printable = opened.value
    printable.wait_for_load_state()
    assert "outcome=informed" in printable.url
    assert printable.locator('tr[data-case]').count() == sum(p.outcome() == "informed" for p in PATHS)
    printable.emulate_media(media="print")
    assert not printable.locator(".no-print").is_visible()
    pdf = printable.pdf(prefer_css_page_size=True, print_background=True)
    (box,) = set(re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", pdf))
    width, height = float(box[0]), float(box[1])
    assert (round(width), round(height)) == (842, 595)  # A4 landscape in points
    with open("/tmp/reports-callback-log.pdf", "wb") as out:
        out.write(pdf)


def test_the_dashboard_draws_its_charts_in_chinese(page, live, tmp_path):
    page.goto(f"{live.url}/desk/reports?from=2026-12-01&to=2027-01-01")
    assert page.locator("h1").inner_text() == "报表"
    drawn = page.locator('.hb-chart[data-drawn="echarts"] svg')
    drawn.first.wait_for()
    assert drawn.count() == page.locator(".hb-chart").count() == 4
    texts = {name: page.locator(f"#chart-{name} svg").evaluate("svg => svg.textContent")
             for name in ("rates", "outcomes", "satisfaction")}
    assert "本期" in texts["rates"] and "上期" in texts["rates"] and "回访完成率" in texts["rates"]  # legend, axis
    assert "已告知" in texts["outcomes"] and "非常满意" in texts["satisfaction"]
    assert page.evaluate("typeof echarts.getInstanceByDom(document.querySelector('#chart-rates .hb-chart'))") \
        == "object"
    line = page.evaluate("""() => { const o = hbCharts.option({type: "line", x: ["一", "二"], unit: "s", stack: true,
                                     series: [{name: "等待", data: [90, null]}]});
                                 return [o.series[0].type, o.series[0].stack, o.yAxis.axisLabel.formatter(90),
                                         o.yAxis.axisLabel.formatter(5400), o.tooltip.valueFormatter(null)]; }""")
    assert line == ["line", "total", "1.5 分钟", "1.5 小时", "–"]
    # nothing graded yet: no slices of nothing, a word instead
    empty = page.evaluate("""() => { const o = hbCharts.option({type: "pie", x: ["满意", "不满意"], unit: "",
                                      series: [{name: "评价", data: [0, 0]}]});
                                  return [o.title && o.title.text, o.series[0].label.show, o.series[0].stillShowZeroSum]; }""")
    assert empty == ["暂无数据", False, False]
    graded = page.evaluate("""() => hbCharts.option({type: "pie", x: ["满意"], series: [{name: "评价", data: [2]}]}).title""")
    assert graded is None
    # live: a callback event reloads the figures (htmx) and charts.js draws the new charts
    page.wait_for_function("document.body.dataset.live === 'ready'")
    page.evaluate("document.querySelector('#chart-rates .hb-chart').dataset.old = '1'")
    live.publish(LiveEvent("callbacks", "settled", {}))
    page.wait_for_function("!document.querySelector('#chart-rates .hb-chart').dataset.old")
    page.locator('#chart-rates .hb-chart[data-drawn="echarts"] svg').wait_for()
    shots = {"reports-dashboard.png": tmp_path / "reports-dashboard.png",
             "reports-callback-log-print.png": tmp_path / "reports-callback-log-print.png"}
    page.screenshot(path=shots["reports-dashboard.png"], full_page=True)

    page.goto(f"{live.url}{LOG}/print?from=2026-12-01&to=2026-12-03")
    page.locator("tr[data-case]").first.wait_for()
    page.screenshot(path=shots["reports-callback-log-print.png"], full_page=True)
    page.emulate_media(media="print")
    pdf = tmp_path / "reports-callback-log.pdf"
    page.pdf(path=pdf, format="A4", landscape=True, print_background=True)
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 1000
    for shot in shots.values():
        assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 1000
    keep = os.environ.get("HB_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for name, shot in shots.items():
            shutil.copyfile(shot, Path(keep) / name)
