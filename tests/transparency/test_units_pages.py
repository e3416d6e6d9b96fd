"""The supervisors' units pages on the desk (/desk/reports/units and a unit's page) on the hand-built
month of tests/transparency/data.py: who may see what, what each unit owes now (overdue first, with
its countdown), the figures against the month before, the trend's table and chart spec."""
from __future__ import annotations

import json
import re
from datetime import date
from html import unescape

import pytest
from fastapi.testclient import TestClient

from bridge.accounts.service import add_user
from bridge.db.models import Role
from bridge.site.clock import SiteClock
from bridge.site.periods import Period
from tests.desk.conftest import PASSWORD, clock, csrf_of, desk_app, desk_config, people, sign_in  # noqa: F401
from tests.transparency.data import A, B, C, NOW, SHANGHAI, START, build, expected, stories

UNITS = "/desk/reports/units"
# Who asks, and what they get: the units page, unit A's page, unit C's page.
EXPECTED = {
    "anonymous": (303, 303, 303),
    "operator": (403, 403, 403),
    "supervisor": (200, 200, 200),
    "admin": (200, 200, 200),
    "spokesperson_a": (303, 200, 403),
    "spokesperson_other": (303, 403, 403),
}


@pytest.fixture
def units_app(desk_app, db):  # noqa: F811
    with db.session() as session:
        build(session)
        add_user(session, "spk-a", Role.SPOKESPERSON, PASSWORD, department_code=A, now=START)
    desk_app.state.site_clock = SiteClock(desk_app.state.config.site.zone, lambda: NOW)
    return desk_app


def signed_in(app, who: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    if who.startswith("spokesperson"):
        page = client.get("/desk/board/login")
        username = "spk-a" if who == "spokesperson_a" else "spokesperson"  # the fixture's is CITY-LJQ's
        signed = client.post("/desk/board/login", data={"csrf_token": csrf_of(page.text), "username": username,
                                                        "password": PASSWORD})
        assert signed.status_code == 303
    elif who != "anonymous":
        assert sign_in(client, who).status_code == 303
    return client


@pytest.mark.parametrize("who", EXPECTED)
def test_who_may_see_the_units_pages(units_app, who):
    with signed_in(units_app, who) as client:
        got = tuple(client.get(url).status_code for url in (UNITS, f"{UNITS}/{A}", f"{UNITS}/{C}"))
        assert got == EXPECTED[who]
        if who == "spokesperson_a":
            redirect = client.get(f"{UNITS}?from=2026-11-01&to=2026-12-01")
            assert redirect.headers["location"] == f"{UNITS}/{A}?from=2026-11-01&to=2026-12-01"
        if who == "anonymous":
            assert "/desk/login" in client.get(UNITS).headers["location"]


def test_an_unknown_unit_is_not_found(units_app):
    with signed_in(units_app, "supervisor") as client:
        assert client.get(f"{UNITS}/NO-SUCH").status_code == 404


def owed_rows(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<section class="unit-owes[^"]*" data-unit="([^"]+)">|data-number="([^"]+)"', html)


def test_what_each_unit_owes_overdue_first_with_countdowns(units_app):
    with signed_in(units_app, "supervisor") as client:
        page = client.get(UNITS, headers={"Accept-Language": "zh-CN"})
    assert page.status_code == 200
    sections = re.findall(r'<section class="unit-owes([^"]*)" data-unit="([^"]+)">(.*?)</section>', page.text, re.S)
    # C holds the one overdue post (not accepted, due 2026-11-20 11:30); A's two answers are due later.
    assert [(code, css.strip()) for css, code, _ in sections] == [(C, "overdue"), (A, "")]
    c_rows = re.findall(r'data-number="([^"]+)" data-step="([^"]+)"', sections[0][2])
    assert c_rows == [("96811-2026-000004", "accept")]
    a_rows = re.findall(r'data-number="([^"]+)" data-step="([^"]+)"', sections[1][2])
    assert a_rows == [("96811-2026-000005", "answer"), ("96811-2026-000006", "answer")]  # nearest first
    assert 'href="/desk/cases/96811-2026-000004"' in page.text
    over = re.search(r'data-number="96811-2026-000004".*?data-left-s="(-?\d+)" data-counting="1"', page.text, re.S)
    assert int(over.group(1)) < -12 * 86400  # overdue by 12 days and more at NOW
    # The counts per unit, from the stories: C one post not accepted (overdue), A two answers due.
    assert "待受理 1 · 待答复 0 · 追问待答复 0 · <strong class=\"overdue\">超期 1</strong>" in sections[0][2]
    assert "待受理 0 · 待答复 2 · 追问待答复 0</small>" in sections[1][2]
    assert "已超期 12 天" in unescape(sections[0][2])
    soon = re.search(r'data-number="96811-2026-000005".*?data-left-s="(\d+)"', page.text, re.S)
    assert int(soon.group(1)) == 10 * 3600  # the answer is due 10 clock hours after NOW
    assert "剩余 10:00:00" in unescape(page.text)


def test_the_owed_list_reloads_as_a_fragment(units_app):
    with signed_in(units_app, "supervisor") as client:
        page = client.get(UNITS)
        assert 'hx-trigger="hb:case from:body, every 60s"' in page.text
        fragment = client.get(UNITS, headers={"HX-Request": "true", "HX-Target": "units-owed"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert 'data-unit="CITY-JYJ"' in fragment.text and "units-figures" not in fragment.text


def percent_of(part: int, whole: int) -> str:
    return f"{part / whole * 100:.1f}%"


def test_the_figures_ranked_against_the_month_before(units_app, db):
    with signed_in(units_app, "supervisor") as client:
        page = client.get(f"{UNITS}?from=2026-11-01&to=2026-12-01", headers={"Accept-Language": "zh-CN"}).text
    told = stories()
    november = expected(told, *Period(date(2026, 11, 1), date(2026, 12, 1)).instants(SHANGHAI), NOW)
    october = expected(told, *Period(date(2026, 10, 1), date(2026, 11, 1)).instants(SHANGHAI), NOW)
    row = re.search(rf'<tr data-unit="{B}">(.*?)</tr>', page, re.S).group(1)
    now_rate = percent_of(november[B]["accepted_in_time"], november[B]["acceptances_decided"])
    was_rate = percent_of(october[B]["accepted_in_time"], october[B]["acceptances_decided"])
    assert f"{now_rate} <small" in row and "▼" in row and f"上期：{was_rate}" in unescape(row)
    ranked = re.findall(r'<tr data-unit="([^"]+)">\s*<td class="num" data-figure="rank">(\d+)<', page)
    order = [code for code, _ in ranked]
    assert order.index(A) < order.index(B) < order.index(C)  # 100 %, 66.7 %, 0 % accepted in time
    assert "响应率" in page and 'id="def-response_rate"' in page and 'class="chosen" aria-current="page">上月<' in page


def test_a_units_page_has_its_trend_as_a_chart_and_a_table(units_app):
    with signed_in(units_app, "spokesperson_a") as client:
        page = client.get(f"{UNITS}/{A}", headers={"Accept-Language": "zh-CN"}).text
    spec = json.loads(unescape(re.search(r"data-chart='([^']+)'", page).group(1)))
    assert spec["type"] == "line" and len(spec["x"]) == 12 and spec["unit"] == "%"
    assert [s["name"] for s in spec["series"]] == ["响应率（按时受理）", "3 天内答复率"]
    months = re.findall(r'<tr data-month="([^"]+)"><td>[^<]+</td><td class="num">(\d+)</td>', page)
    assert len(months) == 12 and months[-2][1] == "3" and months[-1][1] == "1"  # November 3 posts, December 1
    assert [s["data"][-2] for s in spec["series"]] == [100.0, 100.0]
    assert 'data-number="96811-2026-000005"' in page and "data-countdown" in page
    assert "All units" not in page and "全部单位" not in page  # a spokesperson has no other unit to go to
