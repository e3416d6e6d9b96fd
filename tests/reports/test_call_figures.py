"""The call figures on SQLite and PostgreSQL against what tests/reports/call_data.py works out from
its own list of calls: the headline figures (this month and the one before), the volume by hour
and by day across Shanghai's midnight, the failures by cause and the per-operator figures."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from bridge.reports.call_figures import Scope, call_report, headline
from bridge.reports.site_clock_sql import _offsets
from tests.reports.call_data import DECEMBER, NOVEMBER, ZONE, build, by_day, by_hour, expected, per_operator


@pytest.fixture
def users(db) -> dict[str, int]:
    with db.session() as session:
        return build(session)


def report(db, period=DECEMBER, operator=None) -> dict:
    with db.session(readonly=True) as session:
        return call_report(session, period, ZONE, operator)


def assert_headline(found: dict, wanted: dict) -> None:
    for key, value in wanted.items():
        assert found[key] == pytest.approx(value, abs=1e-6), key


def test_headline_figures_and_the_month_before(db, users):
    found = report(db)
    assert_headline(found["headline"], expected(DECEMBER))
    assert_headline(found["before"], expected(NOVEMBER))
    # the definitions at their edges: 15.0 s is in time, 15.5 s is not; 2 of 7 reached the queue in time
    assert found["headline"]["answered_within_15s"] == 3 and found["headline"]["reached_queue"] == 7
    assert found["headline"]["by_disposition"]["failed"] == 3


def test_volume_by_hour_and_day_across_midnight_in_shanghai(db, users):
    found = report(db)
    hours = [sum(row.values()) for row in found["by_hour"]]
    assert hours == by_hour(DECEMBER)
    assert hours[23] == 1 and hours[0] == 1  # 23:59:30 on the 1st, 00:00:10 on the 2nd
    days = [sum(row.values()) for row in found["by_day"]]
    assert days == list(by_day(DECEMBER).values()) and len(days) == 31
    assert days[:3] == [1, 7, 5]
    assert found["by_day"][0]["answered"] == 1 and found["by_day"][1]["failed"] == 1


def test_failures_by_cause(db, users):
    assert report(db)["failures"] == [{"cause": 34, "text": "Circuit/channel congestion", "calls": 2},
                                      {"cause": 38, "text": "Network out of order", "calls": 1}]


def test_per_operator(db, users):
    rows = {row["operator"]: row for row in report(db)["operators"]}
    assert set(rows) == {"operator person", "operator2 person"}
    for name in ("operator", "operator2"):
        wanted = per_operator(DECEMBER, name)
        for key, value in wanted.items():
            assert rows[f"{name} person"][key] == pytest.approx(value, abs=1e-6), (name, key)


def test_an_operators_own_figures(db, users):
    found = report(db, operator=users["operator"])
    assert_headline(found["headline"], expected(DECEMBER, "operator"))
    assert [row["operator"] for row in found["operators"]] == ["operator person"]
    assert found["by_hour"] == found["by_day"] == found["failures"] == []


def test_an_empty_period_has_no_rates(db, users):
    begin, end = (datetime(2025, 1, 1, tzinfo=timezone.utc), datetime(2025, 2, 1, tzinfo=timezone.utc))
    with db.session(readonly=True) as session:
        found = headline(session, Scope(begin, end))
    assert found["calls"] == 0 and found["answered_within_15s_rate"] is None and found["p90_queue_wait_s"] is None


def test_a_zone_that_changes_its_clock_is_read_in_stretches():
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    begin = datetime(2026, 3, 1, tzinfo=berlin).astimezone(timezone.utc)
    end = datetime(2026, 4, 1, tzinfo=berlin).astimezone(timezone.utc)
    assert [offset for _at, offset in _offsets(begin, end, berlin)] == [3600, 7200]
    assert [offset for _at, offset in _offsets(*DECEMBER.instants(ZONE), ZONE)] == [8 * 3600]
    assert date(2026, 12, 1) in DECEMBER.days()
