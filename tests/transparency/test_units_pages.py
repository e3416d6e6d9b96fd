"""The supervisors' units pages on the desk (/desk/reports/units and a unit's page) on the hand-built
month of tests/transparency/data.py: who may see what, what each unit owes now (overdue first, with
its countdown), the figures against the month before, the trend's table and chart spec."""
from __future__ import annotations

import re
from html import unescape

import pytest
from fastapi.testclient import TestClient

from bridge.accounts.service import add_user
from bridge.db.models import Role
from bridge.site.clock import SiteClock
from tests.desk.conftest import PASSWORD, clock, csrf_of, desk_app, desk_config, people, sign_in  # noqa: F401
from tests.transparency.data import A, C, NOW, START, build

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
    desk_app.state.transparency_clock = SiteClock(desk_app.state.config.site.zone, lambda: NOW)
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
    assert "超期" in page.text and "待受理 1" not in page.text
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
