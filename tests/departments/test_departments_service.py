from __future__ import annotations

import csv
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from bridge.db.models import Department, DepartmentKind
from bridge.departments.pinyin import initials
from bridge.departments.service import (
    SHIPPED_UNITS_FILE,
    UnitRow,
    UnitsFileError,
    ensure_shipped_units,
    import_units,
    list_units,
    load_units_file,
    parse_units,
)

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(days=30)
HEADER = "code,name,kind,keywords\n"


def write(tmp_path, text: str, name: str = "units.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def count(session) -> int:
    return session.scalar(select(func.count()).select_from(Department))


# ------------------------------------------------------------------ shipped file


def test_shipped_file_has_70_city_departments_6_governments_32_communities():
    rows = load_units_file(SHIPPED_UNITS_FILE)
    kinds = Counter(r.kind for r in rows)
    assert kinds == {DepartmentKind.CITY_DEPARTMENT: 70, DepartmentKind.COUNTY_GOVERNMENT: 6,
                     DepartmentKind.COMMUNITY: 32}
    assert len(rows) == 108
    assert len({r.code for r in rows}) == 108
    assert len({r.name for r in rows}) == 108


def test_shipped_file_is_plain_utf8_csv_with_the_documented_header():
    with SHIPPED_UNITS_FILE.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        assert next(reader) == ["code", "name", "kind", "keywords", "synonyms"]
        for row in reader:
            assert len(row) == 5
            assert row[3].strip(), f"{row[0]} has no keywords"


def test_shipped_file_has_the_units_the_article_and_the_desk_need():
    by_name = {r.name: r for r in load_units_file(SHIPPED_UNITS_FILE)}
    for name in ("市公安局", "市住房和城乡建设局", "市自然资源和规划局", "市综合行政执法局", "市人民检察院",
                 "市教育局", "衢州绿色产业集聚区管委会", "衢州智造新城", "市供电公司", "市水业集团"):
        assert by_name[name].kind is DepartmentKind.CITY_DEPARTMENT
    for county in ("柯城区", "衢江区", "江山市", "龙游县", "常山县", "开化县"):
        assert by_name[f"{county}人民政府"].kind is DepartmentKind.COUNTY_GOVERNMENT
    # The article's rooster complaint goes to the law-enforcement bureau.
    assert "鸡" in by_name["市综合行政执法局"].keywords.split()
    assert "垃圾" in by_name["市综合行政执法局"].keywords.split()


def test_ensure_shipped_units_fills_an_empty_table_once(session):
    report = ensure_shipped_units(session, T0)
    assert len(report.added) == 108
    assert ensure_shipped_units(session, T1) is None
    assert count(session) == 108
    units = {u.code: u for u in list_units(session)}
    assert units["CITY-ZJJ"].name == "市住房和城乡建设局"
    assert units["CITY-ZJJ"].pinyin_initials == "szfhcxjsj"
    assert units["CITY-GAJ"].pinyin_initials == "sgaj"
    assert all(u.pinyin_initials and u.pinyin_initials.isascii() for u in units.values())


def test_list_units_orders_by_kind_then_code(session):
    ensure_shipped_units(session, T0)
    kinds = [u.kind for u in list_units(session)]
    assert kinds == sorted(kinds, key=list(DepartmentKind).index)


# ------------------------------------------------------------------------- pinyin


@pytest.mark.parametrize("name, expected", [
    ("市住房和城乡建设局", "szfhcxjsj"),
    ("市综合行政执法局", "szhxzzfj"),  # 行 read xing
    ("中国人民银行衢州市分行", "zgrmyhqzsfh"),  # 行 read hang
    ("华数 ABC-1 分公司", "hsabc1fgs"),
])
def test_pinyin_initials(name, expected):
    assert initials(name) == expected


# ------------------------------------------------------------------- validation


def problems_of(tmp_path, text):
    with pytest.raises(UnitsFileError) as info:
        load_units_file(write(tmp_path, text))
    return info.value.problems


def test_missing_column_is_named(tmp_path):
    problems = problems_of(tmp_path, "code,name\nA1,市一局\n")
    assert problems == ["line 1: missing column(s) kind; expected the header code,name,kind,keywords,synonyms"]


def test_unknown_column_is_named(tmp_path):
    problems = problems_of(tmp_path, "code,name,kind,keywords,colour\nA1,市一局,city_department,,blue\n")
    assert len(problems) == 1 and "unknown column(s) 'colour'" in problems[0]


def test_unknown_kind_names_line_and_field(tmp_path):
    problems = problems_of(tmp_path, HEADER + "A1,市一局,city_department,\nA2,市二局,bureau,\n")
    assert problems == ["line 3: kind 'bureau' is unknown; expected one of city_department, "
                        "county_government, community"]


def test_duplicate_code_names_both_lines(tmp_path):
    problems = problems_of(tmp_path, HEADER + "A1,市一局,city_department,\nA1,市二局,city_department,\n")
    assert problems == ["line 3: code 'A1' duplicates line 2"]


def test_empty_name_names_line_and_field(tmp_path):
    problems = problems_of(tmp_path, HEADER + "A1,  ,city_department,\n")
    assert problems == ["line 2: name is empty"]


def test_duplicate_name_is_refused(tmp_path):
    problems = problems_of(tmp_path, HEADER + "A1,市一局,city_department,\nA2,市一局,community,\n")
    assert problems == ["line 3: name '市一局' duplicates line 2"]


def test_bad_code_empty_code_and_wrong_field_count(tmp_path):
    problems = problems_of(tmp_path, HEADER + "a 1,市一局,city_department,\n,市二局,city_department,\n"
                                              "A3,市三局\n")
    assert problems[0].startswith("line 2: code 'a 1' is not valid")
    assert problems[1] == "line 3: code is empty"
    assert problems[2].startswith("line 4: 2 field(s), expected 4")


def test_every_problem_is_reported_at_once(tmp_path):
    problems = problems_of(tmp_path, HEADER + "A1,,city_department,\nA2,市二局,bureau,\nA2,市三局,community,\n")
    assert [p.split(":")[0] for p in problems] == ["line 2", "line 3", "line 4"]


def test_empty_file_and_header_only_file_are_refused(tmp_path):
    assert "empty" in problems_of(tmp_path, "")[0]
    assert "lists no units" in problems_of(tmp_path, HEADER)[0]


def test_not_utf8_is_refused(tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes((HEADER + "A1,市一局,city_department,\n").encode("gbk"))
    with pytest.raises(UnitsFileError) as info:
        load_units_file(path)
    assert "line 2: the file is not UTF-8" in info.value.problems[0]


def test_missing_file(tmp_path):
    with pytest.raises(UnitsFileError) as info:
        load_units_file(tmp_path / "nope.csv")
    assert "cannot read the file" in info.value.problems[0]


def test_bom_blank_lines_quoting_and_keyword_spacing_are_accepted():
    rows = parse_units("\ufeffcode,name,kind,keywords\n\nA1,\"市一局\",city_department,\"垃圾　 占道  垃圾\"\n"
                       "A2,市二局,community,\n")
    assert rows == [UnitRow("A1", "市一局", DepartmentKind.CITY_DEPARTMENT, "垃圾 占道", line=3),
                    UnitRow("A2", "市二局", DepartmentKind.COMMUNITY, "", line=4)]


def test_keywords_column_is_optional():
    rows = parse_units("code,kind,name\nA1,community,一社区\n")
    assert rows == [UnitRow("A1", "一社区", DepartmentKind.COMMUNITY, "", line=2)]


# --------------------------------------------------------------------- importing


def rows_of(*specs):
    return [UnitRow(code, name, DepartmentKind(kind), keywords, line=i + 2)
            for i, (code, name, kind, keywords) in enumerate(specs)]


def test_import_adds_renames_retires_and_reinstates(session):
    first = import_units(session, rows_of(("A1", "市一局", "city_department", "垃圾"),
                                          ("A2", "市二局", "city_department", ""),
                                          ("B1", "一社区", "community", "")), T0)
    assert (first.added, first.updated, first.retired, first.reinstated) == (["A1", "A2", "B1"], [], [], [])
    a1_id = session.scalar(select(Department.id).where(Department.code == "A1"))

    second = import_units(session, rows_of(("A1", "市第一局", "city_department", "垃圾 噪音"),
                                           ("B1", "一社区", "community", ""),
                                           ("C1", "新社区", "community", "")), T1)
    assert second.added == ["C1"]
    assert second.updated == ["A1"]
    assert second.retired == ["A2"]
    assert second.unchanged == 1
    units = {u.code: u for u in list_units(session, include_retired=True)}
    assert units["A1"].id == a1_id  # renamed in place: old cases keep their unit
    assert (units["A1"].name, units["A1"].keywords, units["A1"].pinyin_initials) == ("市第一局", "垃圾 噪音", "sdyj")
    assert units["A2"].retired_at == T1
    assert [u.code for u in list_units(session)] == ["A1", "B1", "C1"]
    assert count(session) == 4  # retired, not deleted

    third = import_units(session, rows_of(("A1", "市第一局", "city_department", "垃圾 噪音"),
                                          ("A2", "市二局", "city_department", ""),
                                          ("B1", "一社区", "community", ""),
                                          ("C1", "新社区", "community", "")), T1 + timedelta(days=1))
    assert third.reinstated == ["A2"] and third.updated == [] and third.added == [] and third.retired == []
    assert units["A2"].retired_at is None
    assert third.unchanged == 3


def test_retired_unit_stays_retired_at_its_first_retirement(session):
    import_units(session, rows_of(("A1", "市一局", "city_department", ""), ("A2", "市二局", "city_department", "")), T0)
    import_units(session, rows_of(("A1", "市一局", "city_department", "")), T0 + timedelta(days=1))
    again = import_units(session, rows_of(("A1", "市一局", "city_department", "")), T1)
    assert again.retired == [] and not again.changed
    retired = [u for u in list_units(session, include_retired=True) if u.code == "A2"][0]
    assert retired.retired_at == T0 + timedelta(days=1)


def test_kind_change_is_an_update(session):
    import_units(session, rows_of(("A1", "一号单位", "city_department", "")), T0)
    report = import_units(session, rows_of(("A1", "一号单位", "community", "")), T1)
    assert report.updated == ["A1"]


def test_import_needs_an_aware_time(session):
    with pytest.raises(ValueError):
        import_units(session, rows_of(("A1", "市一局", "city_department", "")), datetime(2026, 1, 1))


def test_import_refuses_no_rows_and_duplicate_rows(session):
    with pytest.raises(UnitsFileError):
        import_units(session, [], T0)
    with pytest.raises(UnitsFileError):
        import_units(session, rows_of(("A1", "一", "community", ""), ("A1", "二", "community", "")), T0)
    assert count(session) == 0


def test_a_bad_file_stores_nothing(db, tmp_path):
    with db.session() as s:
        ensure_shipped_units(s, T0)
    bad = write(tmp_path, HEADER + "A1,市一局,city_department,\nA2,市二局,bureau,\n")
    with pytest.raises(UnitsFileError):
        with db.session() as s:
            import_units(s, load_units_file(bad), T1)
    with db.session(readonly=True) as s:
        assert count(s) == 108
        assert len(list_units(s)) == 108


def test_a_failure_midway_through_an_import_stores_nothing(db, monkeypatch):
    with db.session() as s:
        import_units(s, rows_of(("A1", "市一局", "city_department", ""), ("A2", "市二局", "city_department", "")), T0)

    def broken(name):
        if name == "坏单位":
            raise RuntimeError("disk on fire")
        return "x"

    monkeypatch.setattr("bridge.departments.service.initials", broken)
    with pytest.raises(RuntimeError):
        with db.session() as s:
            import_units(s, rows_of(("A1", "市一局改名", "city_department", ""), ("B1", "坏单位", "community", "")), T1)
    with db.session(readonly=True) as s:
        units = {u.code: (u.name, u.retired_at) for u in list_units(s, include_retired=True)}
    assert units == {"A1": ("市一局", None), "A2": ("市二局", None)}


# ----------------------------------------------------------------------- synonyms

SYN_HEADER = "code,name,kind,keywords,synonyms\n"


@pytest.mark.parametrize("synonym, code", [
    ("城管", "CITY-ZHZFJ"), ("综合执法", "CITY-ZHZFJ"), ("环卫", "CITY-ZHZFJ"),
    ("交警", "CITY-JJZD"), ("物业", "CITY-ZJJ"), ("住建局", "CITY-ZJJ"), ("环保局", "CITY-STHJJ"),
    ("人社局", "CITY-RSJ"), ("卫健委", "CITY-WJW"), ("残联", "CITY-CL"), ("柯城区政府", "GOV-KC"),
])
def test_shipped_synonyms_lead_to_the_unit_a_quzhou_caller_means(synonym, code):
    owners = [r.code for r in load_units_file(SHIPPED_UNITS_FILE) if synonym in (r.synonyms or "").split()]
    assert owners == [code]


def test_shipped_synonyms_are_not_already_part_of_the_name():
    """A synonym the name already contains adds nothing to a substring search."""
    for row in load_units_file(SHIPPED_UNITS_FILE):
        assert [s for s in (row.synonyms or "").split() if s in row.name] == [], row.code


def test_synonyms_are_stored_updated_and_kept_by_a_file_without_the_column(session, tmp_path):
    first = write(tmp_path, SYN_HEADER + "A1,市一局,city_department,,一局、市一 市一\nA2,市二局,community,,\n")
    report = import_units(session, load_units_file(first), T0)
    assert report.added == ["A1", "A2"]
    units = {u.code: u for u in list_units(session)}
    assert units["A1"].synonyms == "一局 市一"  # 、 or spaces; the duplicate dropped
    assert units["A2"].synonyms == ""
    changed = write(tmp_path, SYN_HEADER + "A1,市一局,city_department,,一局\nA2,市二局,community,,二局\n")
    assert import_units(session, load_units_file(changed), T1).updated == ["A1", "A2"]
    old_format = write(tmp_path, HEADER + "A1,市一局,city_department,\nA2,市二局,community,\n")
    report = import_units(session, load_units_file(old_format), T1)
    assert report.updated == [] and report.unchanged == 2
    assert {u.code: u.synonyms for u in list_units(session)} == {"A1": "一局", "A2": "二局"}


def test_a_synonym_claimed_by_two_units_or_naming_another_is_refused(tmp_path):
    problems = problems_of(tmp_path, SYN_HEADER + "A1,市一局,city_department,,城管\n"
                                                  "A2,市二局,city_department,,城管 市一局\n")
    assert problems == [
        "line 3: synonym '城管' of A2 is claimed by A1 (line 2) too; give it to one unit",
        "line 3: synonym '市一局' is the name of A1 (line 2); remove it",
    ]


def test_a_too_long_too_short_odd_or_empty_synonym_is_refused(tmp_path):
    problems = problems_of(tmp_path, SYN_HEADER + "A1,市一局,city_department,,城管、、执法\n"
                                                  f"A2,市二局,city_department,,{'很' * 17} 局 a/b\n")
    assert problems == [
        "line 2: synonyms has an empty entry (two separators in a row, or one at an end); "
        "separate the names with one space or one 、",
        "line 3: synonym '很很很很很很很很很很很很很很很很很' is 17 characters long; at most 16",
        "line 3: synonym '局' is too short; at least 2 characters (one character would find too many units)",
        "line 3: synonym 'a/b' may hold only Chinese characters, letters and digits",
    ]


def test_a_file_with_a_bad_synonym_stores_nothing(db, tmp_path):
    with db.session() as s:
        ensure_shipped_units(s, T0)
    lines = SHIPPED_UNITS_FILE.read_text(encoding="utf-8").splitlines()
    bad = [line.replace("CITY-GAJ,市公安局,city_department,", "CITY-GAJ,衢州市公安局,city_department,")
           .replace(",派出所 警察", ",派出所 警察 城管") for line in lines]
    with pytest.raises(UnitsFileError) as info:
        load_units_file(write(tmp_path, "\n".join(bad) + "\n"))
    assert any("synonym '城管' of CITY-ZHZFJ is claimed by CITY-GAJ" in p for p in info.value.problems)
    with db.session(readonly=True) as s:
        gaj = {u.code: (u.name, u.synonyms) for u in list_units(s)}["CITY-GAJ"]
    assert gaj == ("市公安局", "派出所 警察")
