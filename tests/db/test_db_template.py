"""``db_url`` is a copy of a template migrated once per test run (tests/conftest_db.py): the
copy must be exactly what a full Alembic upgrade of an empty database gives."""
from __future__ import annotations

from sqlalchemy import inspect, text

from bridge.db import migrate
from bridge.db.engine import make_engine
from tests.db.test_db_migrations import _schema_names

SQLITE_OBJECTS = "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
PG_TRIGGERS = ("SELECT c.relname, t.tgname, t.tgtype, p.proname FROM pg_trigger t "
               "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid "
               "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace ORDER BY 1, 2")
PG_FUNCTIONS = ("SELECT proname, prosrc FROM pg_proc WHERE pronamespace = current_schema()::regnamespace "
                "ORDER BY proname")
PG_SEQUENCES = ("SELECT sequencename, start_value, last_value FROM pg_sequences "
                "WHERE schemaname = current_schema() ORDER BY sequencename")


def _lines(sql: str | None) -> list[str]:
    # Alembic's batch mode (0003 rebuilds `calls`) writes the constraints in no fixed order:
    # two full upgrades differ there too.
    return sorted(line.strip().rstrip(",") for line in (sql or "").splitlines())


def _everything(url: str) -> dict:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            found = {
                "names": _schema_names(connection),
                "revision": connection.execute(text("SELECT version_num FROM alembic_version")).all(),
                "rows": {table: connection.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one()
                         for table in inspect(connection).get_table_names()},
            }
            if connection.dialect.name == "sqlite":
                found["objects"] = [(kind, name, table, _lines(sql))
                                    for kind, name, table, sql in connection.execute(text(SQLITE_OBJECTS))]
                found["journal"] = connection.execute(text("PRAGMA journal_mode")).scalar_one()
            else:
                for name, query in (("triggers", PG_TRIGGERS), ("functions", PG_FUNCTIONS),
                                    ("sequences", PG_SEQUENCES)):
                    found[name] = connection.execute(text(query)).all()
            return found
    finally:
        engine.dispose()


def test_the_copied_template_is_what_a_full_upgrade_gives(db_url, db_backend, tmp_path, request):
    if db_backend == "sqlite":
        upgraded = f"sqlite:///{tmp_path / 'upgraded.sqlite3'}"
    else:
        upgraded = request.getfixturevalue("pg_schema_factory")()
    migrate.upgrade(upgraded)
    copy, reference = _everything(db_url), _everything(upgraded)
    assert copy == reference
    assert copy["revision"] == [(migrate.head_revision(),)]
    assert copy["names"]  # not two empty databases


def test_each_test_gets_its_own_copy(db, db_url, migrated_template, tmp_path, request):
    """What one test writes is not in the next copy."""
    with db.engine.begin() as connection:
        connection.execute(text("INSERT INTO cursors (name, position, updated_at) "
                                "VALUES ('probe', '1', CURRENT_TIMESTAMP)"))
    if db.backend == "sqlite":
        other = tmp_path / "other.sqlite3"
        migrated_template.copy_to_sqlite(other)
        other_url = f"sqlite:///{other}"
    else:
        other_url = request.getfixturevalue("pg_schema_factory")()
        migrated_template.copy_to_pg(other_url, request.getfixturevalue("pg_admin_engine"))
    engine = make_engine(other_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM cursors")).scalar_one() == 0
    finally:
        engine.dispose()
