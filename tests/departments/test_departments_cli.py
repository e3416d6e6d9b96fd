from __future__ import annotations

import json

from click.testing import CliRunner

from bridge.cli_options import display_width, render_table
from bridge.departments.cli import departments
from bridge.departments.service import SHIPPED_UNITS_FILE, list_units


def run(config_path, *args):
    return CliRunner().invoke(departments, [*args, "-c", str(config_path)])


def test_import_then_list(config_path, cli_db):
    result = run(config_path, "import", str(SHIPPED_UNITS_FILE))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "imported: 108 added, 0 updated, 0 reinstated, 0 retired, 0 unchanged"

    listed = run(config_path, "list")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["code", "kind", "name", "retired", "synonyms"]
    assert any(line.split()[:3] == ["CITY-ZHZFJ", "city_department", "市综合行政执法局"] for line in lines)
    assert lines[-1] == "108 unit(s), 0 retired"


def test_import_edited_file_retires_and_list_shows_it(config_path, cli_db, tmp_path):
    run(config_path, "import", str(SHIPPED_UNITS_FILE))
    lines = SHIPPED_UNITS_FILE.read_text(encoding="utf-8").splitlines()
    edited = [line for line in lines if not line.startswith("CITY-DAG,")]
    edited = [line.replace("CITY-GAJ,市公安局,", "CITY-GAJ,衢州市公安局,") for line in edited]
    path = tmp_path / "edited.csv"
    path.write_text("\n".join(edited + ["CITY-NEW,市新设局,city_department,新,新局"]) + "\n", encoding="utf-8")

    dry = run(config_path, "import", str(path), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.splitlines()[-1].startswith("dry run, nothing stored: 1 added, 1 updated")
    with cli_db.session(readonly=True) as s:
        assert len(list_units(s)) == 108 and not any(u.code == "CITY-NEW" for u in list_units(s))

    result = run(config_path, "import", str(path))
    assert result.exit_code == 0, result.output
    assert "added: CITY-NEW" in result.stdout
    assert "updated: CITY-GAJ" in result.stdout
    assert "retired: CITY-DAG" in result.stdout

    listed = run(config_path, "list").stdout.splitlines()
    dag = [line for line in listed if line.startswith("CITY-DAG ")][0]
    assert dag.split()[3].count("-") == 2  # the retirement date
    assert listed[-1] == "109 unit(s), 1 retired"
    active = run(config_path, "list", "--active").stdout.splitlines()
    assert active[-1] == "108 unit(s), 0 retired"


def test_bad_file_exits_1_with_the_problem_and_stores_nothing(config_path, cli_db, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("code,name,kind,keywords\nA1,市一局,bureau,\n", encoding="utf-8")
    result = run(config_path, "import", str(path))
    assert result.exit_code == 1
    assert "line 2: kind 'bureau' is unknown" in result.stderr
    assert "nothing was imported" in result.stderr
    with cli_db.session(readonly=True) as s:
        assert list_units(s, include_retired=True) == []


def test_bad_config_exits_2(tmp_path):
    bad = tmp_path / "config.toml"
    bad.write_text("[database]\nurl = 5\n", encoding="utf-8")
    result = CliRunner().invoke(departments, ["list", "-c", str(bad)])
    assert result.exit_code == 2


def test_table_aligns_chinese_names():
    table = render_table(["code", "name", "x"], [["A1", "市一局", "y"], ["LONGER", "ab", "z"]])
    lines = table.splitlines()
    assert display_width(lines[2]) == display_width(lines[3])
    assert lines[2].index("y") > lines[2].index("局")


def test_synonyms_are_listed_and_a_shared_one_is_refused_with_nothing_stored(config_path, cli_db, tmp_path):
    run(config_path, "import", str(SHIPPED_UNITS_FILE))
    listed = run(config_path, "list").stdout.splitlines()
    zhzf = [line for line in listed if line.startswith("CITY-ZHZFJ ")][0]
    assert "城管" in zhzf.split() and "综合执法" in zhzf.split()

    lines = SHIPPED_UNITS_FILE.read_text(encoding="utf-8").splitlines()
    shared = [line.replace(",派出所 警察", ",派出所 警察 交警") for line in lines]
    path = tmp_path / "shared.csv"
    path.write_text("\n".join(shared) + "\n", encoding="utf-8")
    result = run(config_path, "import", str(path))
    assert result.exit_code == 1
    assert "synonym '交警' of CITY-JJZD is claimed by CITY-GAJ (line 6) too; give it to one unit" in result.stderr
    assert "nothing was imported" in result.stderr
    with cli_db.session(readonly=True) as s:
        assert {u.code: u.synonyms for u in list_units(s)}["CITY-GAJ"] == "派出所 警察"


def test_synonyms_import_on_both_backends(db_url, db, tmp_path, monkeypatch):
    """`departments import` on SQLite and PostgreSQL: a file whose synonym is too long stores nothing,
    the shipped file stores every unit's synonyms, an edited one changes them."""
    monkeypatch.setenv("HOTLINE_BRIDGE_SESSION_SECRET", "s" * 32)
    monkeypatch.setenv("HOTLINE_BRIDGE_AMI_SECRET", "a" * 16)
    config = tmp_path / "config.toml"
    config.write_text(f"[database]\nurl = {json.dumps(db_url)}\n", encoding="utf-8")
    lines = SHIPPED_UNITS_FILE.read_text(encoding="utf-8").splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(line.replace(",派出所 警察", ",派出所 " + "警" * 17) for line in lines) + "\n",
                   encoding="utf-8")
    result = run(config, "import", str(bad))
    assert result.exit_code == 1 and "is 17 characters long; at most 16" in result.stderr
    with db.session(readonly=True) as s:
        assert list_units(s, include_retired=True) == []

    assert run(config, "import", str(SHIPPED_UNITS_FILE)).exit_code == 0
    edited = tmp_path / "edited.csv"
    edited.write_text("\n".join(line.replace(",派出所 警察", ",派出所 警察 110") for line in lines) + "\n",
                      encoding="utf-8")
    result = run(config, "import", str(edited))
    assert result.exit_code == 0, result.output
    assert "updated: CITY-GAJ" in result.stdout
    with db.session(readonly=True) as s:
        synonyms = {u.code: u.synonyms for u in list_units(s)}
    assert synonyms["CITY-GAJ"] == "派出所 警察 110" and synonyms["CITY-ZJJ"].split()[:2] == ["住建局", "住建"]
