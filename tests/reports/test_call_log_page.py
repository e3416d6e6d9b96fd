"""The call log page (/desk/reports/calls) and the calls report API (/api/v1/reports/calls): the
figures they show against tests/reports/call_data.py's own count, the filters, the CSV of what is
filtered, the recordings' links, and who may see what (signed out, each role)."""
from __future__ import annotations

import csv
import html
import io
import json
import re
from datetime import datetime, timezone

import pytest

from bridge.site.clock import SiteClock
from tests.reports.call_data import CALLS, DECEMBER, NOVEMBER, ZONE, build, by_day, by_hour, expected, per_operator
from tests.reports.web import bearer, sign_in
from tests.wav_files import wav_bytes

PAGE = "/desk/reports/calls"
API = "/api/v1/reports/calls"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
ROLES = ("operator", "supervisor", "admin", "spokesperson")


@pytest.fixture
def users(db) -> dict[str, int]:
    with db.session() as session:
        return build(session)


@pytest.fixture
def app(app, tmp_path):
    """The reports' app (tests/reports/conftest.py) with the calls' recordings, in December 2026."""
    for name in ("rec-1764.wav", "msg-1764.wav"):
        (tmp_path / "recordings" / name).write_bytes(wav_bytes(0.3))
    app.state.site_clock = SiteClock(ZONE, lambda: NOW)  # "this month" is December 2026
    return app


def shown_calls(page: str) -> list[str]:
    return re.findall(r'data-call="([^"]+)"', page)


def linkedid(index: int) -> str:
    return f"1764700000.{index}"


# ---------------------------------------------------------------- the API


def test_api_every_figure_for_a_supervisor(client, tokens):
    body = client.get(API, headers=bearer(tokens["supervisor"])).json()  # default: this month
    assert (body["from"], body["to"], body["before_from"], body["before_to"]) == (
        "2026-12-01", "2027-01-01", "2026-11-01", "2026-12-01")
    for key, value in expected(DECEMBER).items():
        assert body["headline"][key] == pytest.approx(value, abs=1e-6), key
    for key, value in expected(NOVEMBER).items():
        assert body["before"][key] == pytest.approx(value, abs=1e-6), key
    assert [h["calls"] for h in body["by_hour"]] == by_hour(DECEMBER)
    assert [d["calls"] for d in body["by_day"]] == list(by_day(DECEMBER).values())
    assert body["by_day"][1]["day"] == "2026-12-02" and body["scope"] == "all"
    assert [f["calls"] for f in body["failures"]] == [2, 1]
    assert len(body["operators"]) == 2


def test_api_an_operator_gets_their_own_figures_only(client, tokens):
    body = client.get(API, params={"from": "2026-12-01", "to": "2027-01-01"}, headers=bearer(tokens["operator"])).json()
    assert body["scope"] == "own" and body["by_hour"] == body["by_day"] == body["failures"] == []
    for key, value in expected(DECEMBER, "operator").items():
        assert body["headline"][key] == pytest.approx(value, abs=1e-6), key
    (row,) = body["operators"]
    assert row["operator"] == "operator person"
    for key, value in per_operator(DECEMBER, "operator").items():
        assert row[key] == pytest.approx(value, abs=1e-6), key


@pytest.mark.parametrize("role, status", [("operator", 200), ("supervisor", 200), ("admin", 200),
                                          ("spokesperson", 403)])
def test_api_roles(client, tokens, role, status):
    assert client.get(API).status_code == 401
    assert client.get(API, headers=bearer(tokens[role])).status_code == status


@pytest.mark.parametrize("params, field", [({"from": "2026/12/01"}, "from"), ({"to": "tomorrow"}, "to"),
                                           ({"from": "2026-12-05", "to": "2026-12-01"}, "to")])
def test_api_a_bad_day_is_422_naming_it(client, tokens, params, field):
    answer = client.get(API, params=params, headers=bearer(tokens["admin"]))
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["field"] == field and answer.json()["detail"][0]["code"] == "invalid_filter"


def test_api_documents_its_definitions(app):
    schema = app.openapi()["components"]["schemas"]["HeadlineOut"]["properties"]
    assert "15.0 s" in schema["answered_within_15s"]["description"]
    assert "answered + abandoned" in schema["reached_queue"]["description"]


# ---------------------------------------------------------------- the page


@pytest.mark.parametrize("role, status", [("operator", 200), ("supervisor", 200), ("admin", 200),
                                          ("spokesperson", 403)])
def test_page_roles(client, role, status):
    assert client.get(PAGE).status_code in (302, 303)  # signed out: to the sign-in page
    assert client.get(f"{PAGE}/export").status_code in (302, 303)
    sign_in(client, role)
    for path in (PAGE, f"{PAGE}/export"):
        assert client.get(path).status_code == status, path


def test_a_supervisor_sees_every_call_of_the_month_newest_first(client):
    sign_in(client, "supervisor")
    page = client.get(PAGE).text
    december = sorted((c for c in CALLS if DECEMBER.start <= c.at.astimezone(ZONE).date() < DECEMBER.end),
                      key=lambda c: c.at, reverse=True)
    assert shown_calls(page) == [linkedid(CALLS.index(c)) for c in december]
    assert 'href="/desk/reports/calls"' in page.split("<main>")[0]  # in the desk's menu
    assert 'hx-trigger="hb:calls from:body' in page
    first = page[page.index(f'data-call="{linkedid(0)}"'):]
    first = first[:first.index("</tr>")]
    assert "2026-12-01 23:59:30" in first and "王先生" in first and "96811" in first
    assert ">15.0<" in first and ">6.0<" in first and 'href="/desk/cases/2026000101"' in first


def test_figures_tables_and_charts(client):
    sign_in(client, "supervisor")
    page = client.get(PAGE).text
    wanted = expected(DECEMBER)
    row = re.search(r'data-figure="answered_within_15s_rate">(.*?)</tr>', page, re.S).group(1)
    assert f"{wanted['answered_within_15s_rate'] * 100:.1f}%" in row and "(3/7)" in row
    assert "15.0" in row  # the definition, on the page
    hours = re.search(r'id="volume-by-hour">(.*?)</table>', page, re.S).group(1)
    assert re.search(r'data-hour="23">.*?<td class="num">1</td></tr>', hours)
    specs = [json.loads(html.unescape(s)) for s in re.findall(r"data-chart='([^']+)'", page)]
    by_hour_spec, by_day_spec = specs
    assert by_hour_spec["type"] == "bar" and len(by_hour_spec["x"]) == 24 and by_hour_spec["unit"] == ""
    assert [sum(values) for values in zip(*(s["data"] for s in by_hour_spec["series"]), strict=True)] == by_hour(DECEMBER)
    assert len(by_day_spec["x"]) == 31 and by_day_spec["x"][0] == "12-01"
    assert "已接听" in [s["name"] for s in by_day_spec["series"]]  # labels translated (zh-CN)


@pytest.mark.parametrize("params, indexes", [
    ({"disposition": "failed"}, [9, 8, 6]),
    ({"disposition": "hung_up_in_menu"}, [4]),
    ({"disposition": "abandoned"}, [12, 3]),
    ({"caller": "138001"}, [1]),  # a part of the number
    ({"caller": "13800138000", "exact": "1"}, [1]),
    ({"caller": "138001", "exact": "1"}, []),  # not the whole number
    ({"from": "2026-12-02", "to": "2026-12-03"}, [7, 6, 5, 4, 3, 2, 1]),  # 00:00:10 on the 2nd is in, 23:59:30 not
    ({"from": "2026-11-01", "to": "2026-12-01"}, [13, 14]),
])
def test_page_filters(client, params, indexes):
    sign_in(client, "supervisor")
    assert shown_calls(client.get(PAGE, params=params).text) == [linkedid(i) for i in indexes]


def test_filter_by_operator_and_failures_show_their_cause(client, users):
    sign_in(client, "supervisor")
    page = client.get(PAGE, params={"operator": users["operator2"]}).text
    assert shown_calls(page) == [linkedid(10), linkedid(2)]
    failed = client.get(PAGE, params={"disposition": "failed"}).text
    assert failed.count("34 Circuit/channel congestion") >= 2 and "38 Network out of order" in failed
    bad = client.get(PAGE, params={"disposition": "lost"})
    assert bad.status_code == 422 and "<code>disposition</code>" in bad.text


def test_an_operator_sees_only_the_calls_they_answered(client, users):
    sign_in(client, "operator")
    page = client.get(PAGE, params={"operator": users["operator2"]}).text  # no way round the limit
    assert shown_calls(page) == []
    page = client.get(PAGE).text
    assert shown_calls(page) == [linkedid(11), linkedid(1), linkedid(0)]
    assert 'id="volume-by-hour"' not in page and "operator2 person" not in page
    assert 'href="/desk/reports/calls"' not in page.split("<main>")[0]  # no menu link for operators
    exported = client.get(f"{PAGE}/export").content.decode("utf-8-sig")
    assert len(exported.strip().splitlines()) == 1 + 3


def test_recordings_use_the_desks_route(client):
    sign_in(client, "supervisor")
    page = client.get(PAGE).text
    assert f'href="/desk/recordings/{linkedid(10)}?kind=recording"' in page
    assert f'href="/desk/recordings/{linkedid(7)}?kind=message"' in page
    assert client.get(f"/desk/recordings/{linkedid(10)}?kind=recording").status_code == 200
    assert page.count("/desk/recordings/") == 2  # the others have none


def test_the_csv_is_exactly_what_is_filtered(client):
    sign_in(client, "admin")
    answer = client.get(f"{PAGE}/export", params={"disposition": "failed"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    header, rows = lines[0], lines[1:]
    assert header[0] == "来电时间" and "挂断原因" in header
    assert len(rows) == 3
    first = dict(zip(header, rows[0], strict=True))
    assert first["处置结果"] == "失败" and first["挂断原因"] == "38 Network out of order"
    assert first["来电时间"] == "2026-12-03 14:00:00"


def test_many_calls_are_limited_with_a_note(client, monkeypatch):
    from bridge.reports import call_pages

    monkeypatch.setattr(call_pages, "PAGE_ROWS", 2)
    sign_in(client, "supervisor")
    page = client.get(PAGE).text
    assert len(shown_calls(page)) == 2 and 'id="rows-limited"' in page
    fragment = client.get(PAGE, headers={"HX-Request": "true", "HX-Target": "call-rows"})
    assert "<html" not in fragment.text and len(shown_calls(fragment.text)) == 2
