"""The callback completion log on SQLite and PostgreSQL: its rows and figures against what
tests/reports/data.py computes from its own inputs, its filters, its files read back, and who may
see it (page and API)."""
from __future__ import annotations

import csv
import io
import zipfile
from datetime import date, datetime, timedelta
from xml.etree import ElementTree

import pytest

from bridge.reports import callback_log
from bridge.reports.callback_log import FilterError, LogFilter, parse_filter
from tests.reports.data import NOW, PATHS, ZONE, assert_rates, expected
from tests.reports.web import bearer, sign_in

PERIOD = {"from": "2026-12-01", "to": "2026-12-03"}


def _summary(db, flt: LogFilter) -> dict:
    with db.session(readonly=True) as session:
        return callback_log.summary(session, flt, ZONE, NOW)


def _numbers(db, flt: LogFilter) -> list[str]:
    with db.session(readonly=True) as session:
        return [row.number for row in callback_log.rows(session, flt, ZONE, NOW)]


def _assert_figures(found: dict, wanted: dict) -> None:
    assert found["cases"] == wanted["cases"]
    assert found["with_callback"] == wanted["with_callback"]
    assert found["completion_rate"] == pytest.approx(wanted["completion_rate"])
    assert found["median_answer_to_informed_s"] == pytest.approx(wanted["median"], abs=0.01)
    assert found["p90_answer_to_informed_s"] == pytest.approx(wanted["p90"], abs=0.01)
    assert found["satisfaction"] == wanted["satisfaction"]
    assert found["outcomes"]["unreachable"] == wanted["unreachable"]
    assert found["outcomes"]["do_not_call"] == wanted["do_not_call"]
    assert_rates(found, wanted)


@pytest.mark.parametrize("period", [{}, PERIOD, {"from": "2026-12-02"}, {"to": "2026-12-02"}])
def test_figures_match_the_inputs(db, users, period):
    flt = parse_filter(period)
    wanted = expected(start=flt.start, end=flt.end)
    assert _numbers(db, flt) == wanted["numbers"]
    _assert_figures(_summary(db, flt), wanted)


def test_the_day_boundary_is_the_site_zones(db, users):
    # 15:30 UTC on 1 Dec is 23:30 in Shanghai (1 Dec); 16:30 UTC is 00:30 on 2 Dec.
    assert _numbers(db, parse_filter({"from": "2026-12-01", "to": "2026-12-02"})) == ["2026000001"]
    assert _numbers(db, parse_filter({"from": "2026-12-02", "to": "2026-12-03"}))[0] == "2026000002"
    # 16:00 UTC on 2 Dec is midnight of 3 Dec: not in [.., 3 Dec)
    assert "2026000008" not in _numbers(db, parse_filter(PERIOD))


def test_each_line_holds_the_whole_path(db, users):
    with db.session(readonly=True) as session:
        found = {row.number: row for row in callback_log.rows(session, LogFilter(), ZONE, NOW)}
    three = found["2026000001"]
    assert len(three.forwarded_to) == 3 and three.forwards == 3  # in order, the unit names
    with db.session(readonly=True) as session:
        names = [n for (n,) in session.execute(callback_log.select(callback_log.Department.name)
                                               .order_by(callback_log.Department.code).limit(4))]
    assert three.forwarded_to == names[1:4]
    assert three.call_at == PATHS[0].call and three.accepted_at == PATHS[0].accepted
    assert [(a["at"], a["result"], a["operator"]) for a in three.attempts] == [
        (t, r, "operator person") for t, r in PATHS[0].tasks[0].attempts]
    assert three.answer_to_informed_s == pytest.approx(3 * 3600, abs=0.01)
    follow_up = found["2026000002"]  # the follow-up answered was told: informed, from its own answer
    assert follow_up.outcome == "informed" and follow_up.satisfaction == 4
    assert follow_up.answer_to_informed_s == pytest.approx(2 * 3600, abs=0.01)
    assert len(follow_up.attempts) == 2
    assert found["2026000003"].outcome == "unreachable" and len(found["2026000003"].attempts) == 3
    assert found["2026000004"].outcome == "do_not_call"
    assert found["2026000005"].outcome == "pending"
    assert found["2026000007"].outcome == "none"


def test_filters(db, users):
    assert _numbers(db, parse_filter({"outcome": "unreachable"})) == ["2026000003"]
    assert _numbers(db, parse_filter({"operator": str(users["supervisor"])})) == ["2026000004", "2026000007"]
    assert _numbers(db, parse_filter({"satisfaction": "5"})) == ["2026000001"]
    assert "2026000001" not in _numbers(db, parse_filter({"satisfaction": "none"}))
    assert _numbers(db, parse_filter({"overdue": "1"})) == ["2026000007"]
    # case 5's answer came at 05:00 on 2 Dec, 31 hours before NOW; no other answer waits
    assert _numbers(db, parse_filter({"waiting_hours": "30"})) == ["2026000005"]
    assert _numbers(db, parse_filter({"waiting_hours": "32"})) == []
    with db.session(readonly=True) as session:
        code = session.execute(callback_log.select(callback_log.Department.code)
                               .order_by(callback_log.Department.code).limit(1).offset(1)).scalar()
    assert _numbers(db, parse_filter({"unit": code})) == ["2026000007"]
    own = LogFilter(own_cases_of=users["supervisor"], outcome="do_not_call")
    assert _numbers(db, own) == ["2026000004"]
    wanted = expected(operator="operator", outcome="informed")
    _assert_figures(_summary(db, parse_filter({"operator": str(users["operator"]), "outcome": "informed"})), wanted)


@pytest.mark.parametrize("params, param", [
    ({"from": "1.12.2026"}, "from"), ({"to": "2026-13-01"}, "to"), ({"from": "2026-12-02", "to": "2026-12-02"}, "to"),
    ({"operator": "bob"}, "operator"), ({"outcome": "happy"}, "outcome"), ({"satisfaction": "6"}, "satisfaction"),
    ({"overdue": "yes"}, "overdue"), ({"waiting_hours": "-1"}, "waiting_hours"), ({"waiting_hours": "x"}, "waiting_hours"),
])
def test_a_bad_filter_names_its_parameter(params, param):
    with pytest.raises(FilterError) as refused:
        parse_filter(params)
    assert refused.value.param == param and refused.value.message


def test_the_filter_round_trips_through_the_url():
    flt = parse_filter({"from": "2026-12-01", "to": "2026-12-03", "outcome": "informed", "satisfaction": "none",
                        "overdue": "1", "waiting_hours": "24", "unit": "CITY-LJQ", "operator": "3"})
    assert parse_filter(flt.query()) == flt


# ---------------------------------------------------------------- the web


def test_api_json_rows_and_figures(client, tokens):
    answer = client.get("/api/v1/reports/callbacks", params=PERIOD, headers=bearer(tokens["supervisor"]))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    wanted = expected(start=date(2026, 12, 1), end=date(2026, 12, 3))
    assert [row["number"] for row in body["rows"]] == wanted["numbers"]
    _assert_figures(body["summary"], wanted)
    first = body["rows"][0]
    assert len(first["forwarded_to"]) == 3 and first["attempts"][0]["result"] == "no_answer"
    assert datetime.fromisoformat(first["filed_at"]) == PATHS[0].filed


@pytest.mark.parametrize("role, status", [("supervisor", 200), ("admin", 200), ("operator", 403),
                                          ("spokesperson", 403)])
def test_api_roles(client, tokens, role, status):
    assert client.get("/api/v1/reports/callbacks", headers=bearer(tokens[role])).status_code == status
    assert client.get("/api/v1/reports/callbacks").status_code == 401


def test_api_bad_filter_is_422_naming_it(client, tokens):
    answer = client.get("/api/v1/reports/callbacks", params={"from": "2026/12/01"},
                        headers=bearer(tokens["admin"]))
    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]
    assert problem["field"] == "from" and "年-月-日" in problem["message"]  # the site's language, zh-CN
    in_english = client.get("/api/v1/reports/callbacks", params={"from": "2026/12/01"},
                            headers={**bearer(tokens["admin"]), "Accept-Language": "en"}).json()["detail"][0]
    assert "YYYY-MM-DD" in in_english["message"]
    assert client.get("/api/v1/reports/callbacks", params={"format": "pdf"},
                      headers=bearer(tokens["admin"])).json()["detail"][0]["field"] == "format"


def test_api_csv_reads_back(client, tokens):
    answer = client.get("/api/v1/reports/callbacks", params={**PERIOD, "format": "csv"},
                        headers=bearer(tokens["admin"]))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith(b"\xef\xbb\xbf")  # the BOM, for Excel
    lines = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    header, rows = lines[0], lines[1:]
    assert header[:4] == ["案件编号", "标题", "登记人", "来电时间"]
    assert [r[0] for r in rows] == expected(start=date(2026, 12, 1), end=date(2026, 12, 3))["numbers"]
    first = dict(zip(header, rows[0], strict=True))
    assert first["标题"] == "路灯不亮，夜间出行不便" and first["回访结果"] == "已告知"
    assert first["登记时间"] == "2026-12-01 23:30:00"  # the site's zone
    assert first["转办次数"] == "3" and first["转办单位"].count("→") == 2


def _xlsx_cells(content: bytes) -> tuple[list[list[tuple[str | None, str | None]]], dict]:
    """Each row's cells as (type, value) (shared strings resolved), and the number formats' styles."""
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    book = zipfile.ZipFile(io.BytesIO(content))
    # constant-memory workbooks write their strings inline; others share them
    shared = ElementTree.fromstring(book.read("xl/sharedStrings.xml")).findall("m:si", ns) \
        if "xl/sharedStrings.xml" in book.namelist() else []
    strings = ["".join(t.text or "" for t in si.iter(f"{{{ns['m']}}}t")) for si in shared]
    sheet = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml"))
    rows = []
    for row in sheet.iter(f"{{{ns['m']}}}row"):
        cells = []
        for cell in row.findall("m:c", ns):
            value = cell.findtext("m:v", namespaces=ns)
            kind = cell.get("t")
            if kind == "inlineStr":
                cells.append(("s", "".join(t.text or "" for t in cell.iter(f"{{{ns['m']}}}t"))))
            else:
                cells.append(("s", strings[int(value)]) if kind == "s" else (cell.get("s"), value))
        rows.append(cells)
    styles = ElementTree.fromstring(book.read("xl/styles.xml"))
    formats = {f.get("numFmtId"): f.get("formatCode") for f in styles.iter(f"{{{ns['m']}}}numFmt")}
    xfs = [xf.get("numFmtId") for xf in styles.find("m:cellXfs", ns).findall("m:xf", ns)]
    widths = [c.get("width") for c in sheet.iter(f"{{{ns['m']}}}col")]
    return rows, {"formats": formats, "xfs": xfs, "widths": widths}


def test_api_xlsx_reads_back(client, tokens):
    answer = client.get("/api/v1/reports/callbacks", params={**PERIOD, "format": "xlsx"},
                        headers=bearer(tokens["admin"]))
    assert answer.status_code == 200, answer.text
    assert "xl/sharedStrings.xml" not in zipfile.ZipFile(io.BytesIO(answer.content)).namelist()  # constant memory
    rows, styles = _xlsx_cells(answer.content)
    assert [v for _, v in rows[0][:4]] == ["案件编号", "标题", "登记人", "来电时间"]
    assert [r[0][1] for r in rows[1:]] == expected(start=date(2026, 12, 1), end=date(2026, 12, 3))["numbers"]
    assert rows[1][1] == ("s", "路灯不亮，夜间出行不便")
    style, serial = rows[1][3]  # the call's time: a real Excel date (a serial number with a date format)
    assert styles["formats"][styles["xfs"][int(style)]] == "yyyy-mm-dd hh:mm"
    called = datetime(1899, 12, 30) + timedelta(days=float(serial))
    assert abs(called - PATHS[0].call.astimezone(ZONE).replace(tzinfo=None)) < timedelta(seconds=1)
    assert len(styles["widths"]) >= 10 and len(set(styles["widths"])) > 1


PAGE = "/desk/reports/callbacks"


@pytest.mark.parametrize("role, status", [("supervisor", 200), ("admin", 200), ("operator", 200),
                                          ("spokesperson", 403)])
def test_page_roles(client, role, status):
    assert client.get(PAGE).status_code in (302, 303)  # signed out: to the sign-in page
    sign_in(client, role)
    for path in (PAGE, f"{PAGE}/print", f"{PAGE}/export?format=csv", f"{PAGE}/cases/2026000001/timeline"):
        assert client.get(path).status_code == status, path


def test_an_operator_sees_only_their_own_cases(client):
    sign_in(client, "operator")
    page = client.get(PAGE).text
    assert "2026000001" in page and "2026000004" not in page  # 4 was filed by the supervisor
    assert client.get(f"{PAGE}/cases/2026000004/timeline").status_code == 404
    exported = client.get(f"{PAGE}/export?format=csv").content.decode("utf-8-sig")
    assert "2026000001" in exported and "2026000004" not in exported
    assert 'href="/desk/reports/callbacks"' not in page.split("<main>")[0]  # no menu link for operators


def test_page_filters_timeline_and_menu(client):
    sign_in(client, "supervisor")
    page = client.get(PAGE, params={"outcome": "unreachable"})
    assert page.status_code == 200 and "2026000003" in page.text and "2026000001" not in page.text
    assert 'href="/desk/reports/callbacks"' in page.text.split("<main>")[0]  # in the menu
    assert "export?outcome=unreachable&amp;format=csv" in page.text
    bad = client.get(PAGE, params={"from": "yesterday"})
    assert bad.status_code == 422 and "<code>from</code>" in bad.text
    timeline = client.get(f"{PAGE}/cases/2026000001/timeline").text
    assert timeline.count('data-kind="forwarded"') == 3
    assert 'href="/desk/recordings/' not in timeline  # its call has no recording: said so
    fragment = client.get(PAGE, headers={"HX-Request": "true", "HX-Target": "log-rows"})
    assert "<html" not in fragment.text and "2026000001" in fragment.text


def test_the_csv_streams_in_chunks_of_rows(db, users):
    """450 cases: the file comes in several chunks (rows are read and written a few hundred at a
    time), every case once, after the header."""
    from bridge.reports import exports
    from tests.reports.data import Path as CasePath, _case, utc

    with db.session() as session:
        from bridge.db.models import Department

        units = list(session.query(Department).order_by(Department.code).limit(4))
        for index in range(450):
            _case(session, CasePath(f"2026{100000 + index}", "批量案件", utc(2, 10) + timedelta(seconds=index),
                                    "operator"), 100 + index, users, units)
    chunks = list(exports.csv_chunks(db, parse_filter({"from": "2026-12-02", "to": "2026-12-03"}), ZONE, NOW))
    assert len(chunks) >= 3
    lines = b"".join(chunks).decode("utf-8-sig").splitlines()
    numbers = [line.split(",")[0] for line in lines[1:]]
    assert len(numbers) == len(set(numbers)) == 450 + len(expected(start=date(2026, 12, 2), end=date(2026, 12, 3))["numbers"])


def test_the_timeline_links_the_calls_recording_when_it_has_sound(client, app, db):
    from bridge.db.models import Call

    from tests.wav_files import EMPTY_WAV, wav_bytes

    folder = app.state.config.path(app.state.config.pbx.recordings_dir)
    with db.session() as session:
        call = session.query(Call).filter(Call.linkedid == "1764600000.0").one()
        call.recording = "case-one.wav"
    sign_in(client, "supervisor")
    (folder / "case-one.wav").write_bytes(EMPTY_WAV)  # the header alone: no recording
    assert 'href="/desk/recordings/' not in client.get(f"{PAGE}/cases/2026000001/timeline").text
    (folder / "case-one.wav").write_bytes(wav_bytes(0.5))
    timeline = client.get(f"{PAGE}/cases/2026000001/timeline").text
    assert 'href="/desk/recordings/1764600000.0?kind=recording"' in timeline
    assert client.get("/desk/recordings/1764600000.0?kind=recording").status_code == 200
