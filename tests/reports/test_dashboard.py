"""The reports dashboard (/desk/reports) and the callback figures it adds, on SQLite and PostgreSQL,
against what tests/reports/data.py computes from this module's own hand-built cases: one callback
informed after three attempts and one after one, an unreachable caller, a do-not-call, grades 5, 4, 3
and none, November's cases for the period before, and a case filed at 00:30 on 1 December in
Asia/Shanghai (16:30 UTC on 30 November)."""
from __future__ import annotations

import json
import re
from datetime import date, datetime, timezone
from html import unescape

import pytest

from bridge.reports import callback_log
from bridge.reports.callback_log import LogFilter
from bridge.web.site import PageLink, add_page_link
from tests.reports.data import NOW, ZONE, Path, Task, assert_rates, build, expected, utc
from tests.reports.web import bearer, sign_in


def nov(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=timezone.utc)


CASES = [
    Path("2026000101", "路灯不亮", utc(1, 2), "operator", answers={"answered": utc(2, 2)},
         tasks=[Task("answered", "done", "informed", utc(2, 6), 5,
                     [(utc(2, 3), "no_answer"), (utc(2, 4), "busy"), (utc(2, 5, 55), "answered")])]),
    Path("2026000102", "噪音扰民", utc(2, 3), "operator", answers={"answered": utc(3, 1)},
         tasks=[Task("answered", "done", "informed", utc(3, 2), 4, [(utc(3, 1, 50), "answered")])]),
    Path("2026000103", "占道经营", utc(2, 4), "supervisor", answers={"answered": utc(2, 6)},
         tasks=[Task("answered", "unreachable", None, None, None,
                     [(utc(2, 7), "no_answer"), (utc(2, 9), "busy"), (utc(2, 11), "no_answer")])]),
    Path("2026000104", "井盖缺失", utc(2, 5), "supervisor", answers={"answered": utc(2, 7)},
         tasks=[Task("answered", "done", "do_not_call", utc(2, 8), None, [(utc(2, 7, 55), "answered")])]),
    # 00:30 on 1 December in Shanghai: December's
    Path("2026000105", "公交站牌损坏", nov(30, 16, 30), "operator", answers={"answered": utc(1, 5)},
         tasks=[Task("answered", "done", "follow_up", utc(1, 6), 3, [(utc(1, 5, 50), "answered")])]),
    Path("2026000106", "道路积水", utc(2, 6), "operator"),  # no answer yet: no callback
    # November's: the period before December; 23:30 on 30 November in Shanghai
    Path("2026000091", "树木倒伏", nov(20, 2), "supervisor", answers={"answered": nov(21, 2)},
         tasks=[Task("answered", "done", "informed", nov(21, 4), 5, [(nov(21, 3), "answered")])]),
    Path("2026000092", "垃圾清运", nov(30, 15, 30), "operator", answers={"answered": utc(1, 2)},
         tasks=[Task("answered", "unreachable", None, None, None, [(utc(1, 3), "no_answer")])]),
]
DECEMBER = {"from": "2026-12-01", "to": "2027-01-01"}
PAGE = "/desk/reports"


@pytest.fixture
def users(db) -> dict[str, int]:  # this module's cases (tests/reports/conftest.py's app is built on them)
    with db.session() as session:
        return build(session, CASES)


def _summary(db, start: date, end: date, own: int | None = None) -> dict:
    with db.session(readonly=True) as session:
        return callback_log.summary(session, LogFilter(start=start, end=end, own_cases_of=own), ZONE, NOW)


def _assert_rates(found: dict, wanted: dict) -> None:
    assert_rates(found, wanted)
    assert [found["outcomes"][name] for name in ("unreachable", "do_not_call")] == [
        wanted["unreachable"], wanted["do_not_call"]]


def test_the_new_figures_match_the_inputs(db, users):
    for start, end in ((date(2026, 12, 1), date(2027, 1, 1)), (date(2026, 11, 1), date(2026, 12, 1))):
        wanted = expected(CASES, start=start, end=end)
        found = _summary(db, start, end)
        _assert_rates(found, wanted)
    december = expected(CASES, start=date(2026, 12, 1), end=date(2027, 1, 1))
    # what the inputs say, written out: (3 + 1) attempts / 2 informed; 5 and 4 among 5, 4, 3
    assert december["attempts_per_completed"] == 2 and december["satisfaction_rate"] == pytest.approx(2 / 3)
    assert december["with_callback"] == 5  # the case of 00:30 on 1 December is December's


def test_an_operator_is_limited_to_their_own_cases(db, users):
    found = _summary(db, date(2026, 12, 1), date(2027, 1, 1), own=users["operator"])
    wanted = expected(CASES, start=date(2026, 12, 1), end=date(2027, 1, 1), operator="operator")
    _assert_rates(found, wanted)
    assert [row["operator_id"] for row in found["per_operator"]] == [users["operator"]]


# ---------------------------------------------------------------- the page


def _cell(html: str, figure: str, column: int) -> str:
    row = re.search(rf'<tr data-figure="{figure}">(.*?)</tr>', html, re.S).group(1)
    return re.findall(r'data-value="([^"]*)"', row)[column]


def _charts(html: str) -> dict[str, dict]:
    return {name: json.loads(unescape(spec)) for name, spec in
            re.findall(r'<figure class="hb-chart-box" id="chart-([a-z]+)">\s*<div class="hb-chart" data-chart=\'([^\']*)\'',
                       html)}


def test_the_dashboard_compares_the_period_with_the_one_before(client):
    sign_in(client, "supervisor")
    page = client.get(PAGE, params=DECEMBER)
    assert page.status_code == 200, page.text
    html = page.text
    now, before = (expected(CASES, start=date(2026, 12, 1), end=date(2027, 1, 1)),
                   expected(CASES, start=date(2026, 11, 1), end=date(2026, 12, 1)))
    for figure in ("completion_rate", "attempts_per_completed", "satisfaction_rate"):
        assert float(_cell(html, figure, 0)) == pytest.approx(now[figure]), figure
        assert float(_cell(html, figure, 1)) == pytest.approx(before[figure]), figure
    assert int(_cell(html, "unreachable", 0)) == now["unreachable"] and int(_cell(html, "do_not_call", 0)) == 1
    charts = _charts(html)
    assert set(charts) == {"rates", "outcomes", "satisfaction", "operators"}
    pie = charts["satisfaction"]
    assert pie["type"] == "pie" and pie["x"][:3] == ["非常满意", "满意", "基本满意"]
    assert pie["series"][0]["data"] == [now["satisfaction"][g] for g in ("5", "4", "3", "2", "1")]
    assert charts["rates"]["unit"] == "%" and charts["rates"]["series"][0]["data"][0] == pytest.approx(40.0)
    assert '<table class="hb-chart-table" id="chart-satisfaction-table">' in html  # every chart also a table
    assert 'href="/desk/reports/callbacks?from=2026-12-01&amp;to=2027-01-01"' in html
    assert 'href="/desk/reports"' in html.split("<main>")[0]  # the menu's 报表
    assert "/static/charts.js" in html and "cdn" not in html.lower()
    assert 'href="/static/vendor/echarts/LICENSE"' in html  # the library's licence, served beside it


def test_the_dashboard_in_english(client):
    sign_in(client, "supervisor")
    page = client.get(PAGE, params={**DECEMBER, "lang": "en"})
    assert page.status_code == 200 and '<html lang="en">' in page.text
    assert "Attempts per completed callback" in page.text and "Satisfaction rate" in page.text
    assert _charts(page.text)["satisfaction"]["x"][0] == "Very satisfied"


def test_the_period_defaults_to_this_month_and_a_bad_day_is_named(client):
    sign_in(client, "admin")
    page = client.get(PAGE)
    assert page.status_code == 200
    assert re.search(r'name="from" value="\d{4}-\d{2}-01"', page.text)
    bad = client.get(PAGE, params={"from": "yesterday"})
    assert bad.status_code == 422 and "<code>from</code>" in bad.text
    assert client.get(PAGE, params={"from": "2026-12-05", "to": "2026-12-01"}).status_code == 422


def test_the_report_pages_are_linked_with_the_period_for_whom_they_serve(client, app):
    sign_in(client, "supervisor")
    page = client.get(PAGE, params=DECEMBER).text
    for path in ("/desk/reports/calls", "/desk/reports/units"):
        assert f'href="{path}?from=2026-12-01&amp;to=2027-01-01"' in page
    add_page_link(app, PageLink(area="desk", page="admin-figures", path="/desk/reports/admins-only", label="Admins",
                                roles=("admin",)))
    assert "/desk/reports/admins-only" not in client.get(PAGE, params=DECEMBER).text


def test_the_live_fragment_is_the_figures_alone(client):
    sign_in(client, "supervisor")
    fragment = client.get(PAGE, params=DECEMBER, headers={"HX-Request": "true", "HX-Target": "dashboard-figures"})
    assert fragment.status_code == 200 and "<html" not in fragment.text and 'id="headline-figures"' in fragment.text


@pytest.mark.parametrize("role, status", [(None, 303), ("operator", 200), ("supervisor", 200), ("admin", 200),
                                          ("spokesperson", 403)])
def test_page_roles(client, users, role, status):
    if role is not None:
        sign_in(client, role)
    answer = client.get(PAGE, params=DECEMBER)
    assert answer.status_code == status
    if role is None:
        assert answer.headers["location"].startswith("/desk/login")
    if status != 200:
        return
    operators = re.findall(r'<tr data-operator="(\d+)">', answer.text)
    if role == "operator":  # their own row and their own cases' figures
        assert operators == [str(users["operator"])]
        own = expected(CASES, start=date(2026, 12, 1), end=date(2027, 1, 1), operator="operator")
        assert float(_cell(answer.text, "completion_rate", 0)) == pytest.approx(own["completion_rate"])
        assert 'href="/desk/reports"' in answer.text.split("<main>")[0]
    else:
        assert sorted(operators) == sorted(str(users[name]) for name in ("operator", "supervisor"))


@pytest.mark.parametrize("role, status", [("supervisor", 200), ("admin", 200), ("operator", 403),
                                          ("spokesperson", 403), (None, 401)])
def test_the_api_carries_the_new_figures(client, tokens, users, role, status):
    answer = client.get("/api/v1/reports/callbacks", params=DECEMBER,
                        headers=bearer(tokens[role]) if role else {})
    assert answer.status_code == status
    if status != 200:
        return
    summary = answer.json()["summary"]
    wanted = expected(CASES, start=date(2026, 12, 1), end=date(2027, 1, 1))
    assert summary["attempts_per_completed"] == pytest.approx(wanted["attempts_per_completed"])
    assert summary["satisfaction_rate"] == pytest.approx(wanted["satisfaction_rate"])
    assert summary["completion_rate"] == pytest.approx(wanted["completion_rate"])  # the fields kept
    rows = {row["operator_id"]: row for row in summary["per_operator"]}
    assert rows[users["operator"]]["informed"] == wanted["per_operator"]["operator"]["informed"]
    assert rows[users["supervisor"]]["unreachable"] == wanted["per_operator"]["supervisor"]["unreachable"]


def test_the_callback_log_shows_the_new_figures(client):
    sign_in(client, "supervisor")
    wanted = expected(CASES, start=date(2026, 12, 1), end=date(2027, 1, 1))
    for path in ("/desk/reports/callbacks", "/desk/reports/callbacks/print"):
        page = client.get(path, params=DECEMBER).text
        assert f'data-figure="attempts_per_completed">{wanted["attempts_per_completed"]:.2f}<' in page
        assert f'data-figure="satisfaction_rate">{wanted["satisfaction_rate"] * 100:.1f}%<' in page
