"""A unit's trend: its figures per month (one grouped query for all the months) against the figures
worked out in Python month by month from the stories (tests/transparency/data.py), on SQLite and
PostgreSQL; and GET /api/v1/reports/units/{code}/trend for each role."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import event

from bridge.db.models import Role
from bridge.departments.service import ensure_shipped_units
from bridge.transparency.trend import last_months, trend_chart, unit_trend
from tests.transparency.data import A, B, C, D, NOW, SHANGHAI, START, build, expected
from tests.transparency.test_figures import COUNTS
from tests.transparency.test_pages import app, client, token_of  # noqa: F401

MONTHS = last_months(date(2026, 12, 3), 12)


def test_the_last_twelve_months_end_with_this_one():
    assert [(m.start, m.end) for m in MONTHS[:1] + MONTHS[-2:]] == [
        (date(2026, 1, 1), date(2026, 2, 1)), (date(2026, 11, 1), date(2026, 12, 1)),
        (date(2026, 12, 1), date(2027, 1, 1))]
    assert len(MONTHS) == 12 and all(a.end == b.start for a, b in zip(MONTHS, MONTHS[1:]))


@pytest.fixture
def month(db):
    with db.session() as session:
        ensure_shipped_units(session, START)
        return build(session)


@pytest.mark.parametrize("code", [A, B, C, D])
def test_each_month_matches_the_figures_counted_month_by_month(db, month, code):
    statements = []
    event.listen(db.engine, "before_cursor_execute", lambda *_: statements.append(1))
    with db.session(readonly=True) as session:
        trend = unit_trend(session, code, MONTHS, SHANGHAI, NOW)
    assert len(statements) <= 5  # a grouped query per figure, not one per month
    for period, got in trend:
        want = expected(month, *period.instants(SHANGHAI), NOW).get(code, {})
        for name in COUNTS:
            if name != "overdue_now":
                assert getattr(got, name) == want.get(name, 0), (period, code, name)
        for name in ("median_acceptance_s", "median_answer_s"):
            value = want.get(name)
            assert getattr(got, name) == (None if value is None else pytest.approx(value, abs=0.1)), (period, name)


def test_the_month_boundary_is_shanghais(db, month):
    with db.session(readonly=True) as session:
        by_month = {p.start.month: f for p, f in unit_trend(session, B, MONTHS, SHANGHAI, NOW)}
        a_months = {p.start.month: f for p, f in unit_trend(session, A, MONTHS, SHANGHAI, NOW)}
    # B's post at 23:59:59 on 31 October (Shanghai) is October's, though the 1 November one is 8 h later in UTC.
    assert (by_month[10].posts_received, by_month[11].posts_received) == (1, 3)
    # A's post at 00:00 on 1 December is December's; the one a second before is November's.
    assert (a_months[11].posts_received, a_months[12].posts_received) == (3, 1)


def test_the_chart_spec_follows_the_contract(db, month):
    with db.session(readonly=True) as session:
        trend = unit_trend(session, C, MONTHS, SHANGHAI, NOW)

    class Plain:
        gettext = staticmethod(lambda text: text)

    spec = trend_chart(trend, Plain())
    assert spec["type"] == "line" and spec["unit"] == "%" and len(spec["x"]) == 12 and spec["x"][-2] == "2026-11"
    assert [s["data"][-2] for s in spec["series"]] == [0.0, None]  # C: nothing accepted in time, no answer owed
    assert all(v is None for s in spec["series"] for v in s["data"][:9])


TREND = f"/api/v1/reports/units/{C}/trend?months=12"


@pytest.mark.parametrize(("role", "unit", "status"), [
    (Role.OPERATOR, A, 403), (Role.SUPERVISOR, A, 200), (Role.ADMIN, A, 200),
    (Role.SPOKESPERSON, C, 200), (Role.SPOKESPERSON, A, 403)])
def test_the_trend_api_for_each_role(client, db, role, unit, status):  # noqa: F811
    assert client.get(TREND).status_code == 401
    answer = client.get(TREND, headers={"Authorization": f"Bearer {token_of(db, role, unit)}"})
    assert answer.status_code == status, answer.text
    if status == 200:
        months = answer.json()["months"]
        assert len(months) == 12 and months[-2]["from"] == "2026-11-01" and months[-2]["to"] == "2026-12-01"
        november = months[-2]["figures"]
        assert (november["posts_received"], november["forwards_received"], november["forwards_made"]) == (2, 1, 1)


def test_the_trend_api_refuses_a_bad_month_count(client, db):  # noqa: F811
    headers = {"Authorization": f"Bearer {token_of(db, Role.SUPERVISOR)}"}
    assert client.get(f"/api/v1/reports/units/{C}/trend?months=0", headers=headers).status_code == 422
    assert client.get(f"/api/v1/reports/units/{C}/trend?months=37", headers=headers).status_code == 422
