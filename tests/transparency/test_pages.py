"""/transparency and /transparency.json (public, cached, no personal data) and GET /api/v1/reports/units
(supervisors and admins), on the hand-built month of tests/transparency/data.py."""
from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from bridge.accounts.service import add_user
from bridge.accounts.tokens import create_token
from bridge.config import validate
from bridge.db.models import Role
from bridge.departments.service import ensure_shipped_units
from bridge.capability import Runtime
from bridge.health import Health
from bridge.live import LiveEvents
from bridge.transparency.capability import TransparencyCapability
from bridge.site.clock import SiteClock
from bridge.web.app import create_app
from tests.desk.test_locale import english_words
from tests.transparency.data import A, C, CALLERS, NOW, START, build

SECRETS = {"HOTLINE_BRIDGE_SESSION_SECRET": "s", "HOTLINE_BRIDGE_AMI_SECRET": "a"}
OPERATOR_NAMES = ("Operator One", "op1")


@pytest.fixture
def app(db, monkeypatch, tmp_path):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    config = validate({"web": {"secure_cookies": False}}, environ=SECRETS, base_dir=tmp_path)
    with db.session() as session:
        ensure_shipped_units(session, START)
        build(session)
        add_user(session, "op1", Role.OPERATOR, "correct horse battery", display_name=OPERATOR_NAMES[0], now=START)
    # Only this capability: what it serves is what is checked (and other capabilities need not load).
    runtime = Runtime(config, db, Health(), LiveEvents(), capabilities=(TransparencyCapability(),))
    application = create_app(config, db, runtime.health, runtime=runtime)
    application.state.site_clock = SiteClock(config.site.zone, lambda: NOW)
    return application


@pytest.fixture
def client(app):
    with TestClient(app) as test_client:
        yield test_client


def token_of(db, role: Role, unit: str = A) -> str:
    with db.session() as session:
        user = add_user(session, f"{role.value}-{unit.lower()}-api", role, "correct horse battery", now=START,
                        department_code=unit if role is Role.SPOKESPERSON else None)
        return create_token(session, user, START)


def test_the_page_shows_each_units_figures_with_their_definitions_in_chinese(client):
    page = client.get("/transparency?period=last_month", headers={"Accept-Language": "zh-CN"})
    assert page.status_code == 200 and '<html lang="zh-CN">' in page.text
    assert "响应率" in page.text and "满意率" in page.text and "删帖数" in page.text
    row = re.search(rf'<tr data-unit="{C}">(.*?)</tr>', page.text, re.S).group(1)
    assert "0.0%" in row and 'class="num overdue">1<' in row  # forwarded late, one overdue now
    assert 'class="chosen" aria-current="page">上月<' in page.text
    assert "2026-12-03 10:00:00" in page.text  # computed at, in Shanghai
    assert english_words(page.text) == []


def test_the_page_in_english_and_the_period_in_the_url(client):
    page = client.get("/transparency?period=last_month&lang=en")
    assert '<html lang="en">' in page.text and "Response rate (accepted in time)" in page.text
    assert 'href="/transparency?period=this_year&amp;lang=en"' in page.text
    assert "From 2026-11-01 to before 2026-12-01" in page.text
    bad = client.get("/transparency?period=forever&lang=en")
    assert bad.status_code == 422 and "There is no period “forever”" in bad.text


def test_the_json_holds_the_same_figures_and_no_personal_data(client, app):
    data = client.get("/transparency.json?period=last_month&lang=en").json()
    units = {u["code"]: u for u in data["units"]}
    assert units[C]["overdue_now"] == 1 and units[C]["response_rate"] == 0.0
    assert data["deletions"]["total"] == 0 and data["period"] == {
        "name": "last_month", "from": "2026-11-01", "to": "2026-12-01", "zone": "Asia/Shanghai"}
    assert data["definitions"]["response_rate"]["label"] == "Response rate (accepted in time)"
    assert client.get("/transparency.json?period=x").status_code == 422
    for url in ("/transparency?period=last_month", "/transparency.json?period=last_month",
                "/transparency?period=this_year&lang=en", "/transparency.json?period=this_year"):
        text = client.get(url).text
        digits = re.sub(r"\D", "", text)
        for full_name, phone in CALLERS:
            assert full_name not in text, (url, full_name)
            assert phone not in text and phone[3:] not in text and phone[3:] not in digits, (url, phone)
        for name in OPERATOR_NAMES:
            assert name not in text, (url, name)


def test_a_second_reader_within_the_minute_costs_no_query(client, app, db):
    statements = []

    def count(*_args):
        statements.append(1)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        client.get("/transparency?period=this_year")
        first = len(statements)
        client.get("/transparency?period=this_year&lang=en")
        client.get("/transparency.json?period=this_year")
        assert first > 0 and len(statements) == first  # the cached figures, in either language
        clock = app.state.transparency_cache.clock
        app.state.transparency_cache.clock = lambda: clock() + 61
        client.get("/transparency.json?period=this_year")
        assert len(statements) > first  # a minute later: computed again
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


@pytest.mark.parametrize("role", [Role.SUPERVISOR, Role.ADMIN])
def test_the_units_report_for_supervisors_and_admins(client, db, role):
    headers = {"Authorization": f"Bearer {token_of(db, role)}"}
    report = client.get("/api/v1/reports/units?from=2026-11-01&to=2026-12-01", headers=headers)
    assert report.status_code == 200, report.text
    body = report.json()
    assert (body["from"], body["to"], body["zone"]) == ("2026-11-01", "2026-12-01", "Asia/Shanghai")
    units = {u["code"]: u for u in body["units"]}
    assert units[C]["overdue_now"] == 1 and units["CITY-JXJ"]["satisfaction"] == {
        "graded": 3, "satisfied": 2, "rate": 0.6667}
    assert [(o["unit"], o["step"], o["number"]) for o in body["overdue"]] == [(C, "accept", "96811-2026-000004")]
    assert body["overdue"][0]["deadline_at"].endswith("+08:00") and body["overdue"][0]["overdue_s"] > 0
    assert "caller" not in report.text and CALLERS[3][1] not in report.text


def test_the_units_report_refuses_operators_and_no_token(client, db):
    assert client.get("/api/v1/reports/units").status_code == 401
    refused = client.get("/api/v1/reports/units", headers={"Authorization": f"Bearer {token_of(db, Role.OPERATOR)}"})
    assert refused.status_code == 403


@pytest.mark.parametrize(("unit", "overdue"), [(C, ["96811-2026-000004"]), (A, [])])
def test_a_spokesperson_gets_their_own_unit_only(client, db, unit, overdue):
    headers = {"Authorization": f"Bearer {token_of(db, Role.SPOKESPERSON, unit)}"}
    body = client.get("/api/v1/reports/units?from=2026-11-01&to=2026-12-01", headers=headers).json()
    assert [u["code"] for u in body["units"]] == [unit]
    assert [o["number"] for o in body["overdue"]] == overdue


def test_bad_days_answer_422_naming_the_parameter(client, db):
    headers = {"Authorization": f"Bearer {token_of(db, Role.SUPERVISOR)}", "Accept-Language": "en"}
    both = client.get("/api/v1/reports/units?from=2026-13-01&to=tomorrow", headers=headers)
    assert both.status_code == 422
    assert [(e["field"], e["code"]) for e in both.json()["detail"]] == [("from", "invalid_filter")]
    assert "YYYY-MM-DD" in both.json()["detail"][0]["message"]
    in_chinese = client.get("/api/v1/reports/units?to=tomorrow", headers={**headers, "Accept-Language": "zh-CN"})
    assert in_chinese.json()["detail"][0]["field"] == "to" and "年-月-日" in in_chinese.json()["detail"][0]["message"]
    assert "must be" not in in_chinese.json()["detail"][0]["message"]
    backwards = client.get("/api/v1/reports/units?from=2026-12-01&to=2026-11-01", headers=headers)
    assert backwards.status_code == 422 and backwards.json()["detail"][0]["field"] == "to"
    default = client.get("/api/v1/reports/units", headers=headers).json()
    assert (default["from"], default["to"]) == ("2026-12-01", "2027-01-01")  # this month in Shanghai


def test_the_units_report_is_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    operation = paths["/api/v1/reports/units"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"from", "to"}
    assert "422" in operation["responses"] and operation["tags"] == ["reports"]
