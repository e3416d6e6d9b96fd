"""Migrations: upgrade from empty, idempotence, the migrated schema equals models.py."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from bridge.db import guards, migrate
from bridge.db.engine import make_engine
from bridge.db.models import NEVER_DELETED, NEVER_UPDATED, Base


def _schema_names(connection) -> dict[str, dict[str, list]]:
    """Every table's named objects (constraints, indexes), to compare two schemas."""
    ins = inspect(connection)
    result = {}
    for table in sorted(ins.get_table_names()):
        if table == "alembic_version":
            continue
        result[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in ins.get_columns(table)],
            "pk": ins.get_pk_constraint(table)["name"],
            "fks": sorted(fk["name"] for fk in ins.get_foreign_keys(table)),
            "uniques": sorted(u["name"] for u in ins.get_unique_constraints(table)),
            "checks": sorted((c["name"], c["sqltext"]) for c in ins.get_check_constraints(table)),
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                              for i in ins.get_indexes(table)),
        }
    return result


def test_upgrade_from_empty_reaches_head_and_is_idempotent(empty_db_url):
    head = migrate.head_revision()
    assert head == "0018_report_speed_indexes"
    assert migrate.current_revision(empty_db_url) is None
    assert not migrate.is_up_to_date(empty_db_url)

    assert migrate.upgrade(empty_db_url) == head
    assert migrate.current_revision(empty_db_url) == head
    assert migrate.is_up_to_date(empty_db_url)

    engine = make_engine(empty_db_url)
    try:
        with engine.connect() as connection:
            before = _schema_names(connection)
        # Again: nothing to do, nothing changes.
        assert migrate.upgrade(engine) == head
        with engine.connect() as connection:
            assert _schema_names(connection) == before
            assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    finally:
        engine.dispose()


# Expression indexes: autogenerate cannot compare their expressions (PostgreSQL rewrites the text),
# so they are checked by name, on PostgreSQL where they exist.
EXPRESSION_INDEXES = {"ix_case_events_step_unit_at"}


def _not_an_expression_index(obj, name, type_, reflected, compare_to) -> bool:
    return not (type_ == "index" and name in EXPRESSION_INDEXES)


def test_migrated_schema_matches_models(db_url, db_backend):
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                                   "include_object": _not_an_expression_index})
            assert compare_metadata(context, Base.metadata) == []
            tables = set(inspect(connection).get_table_names())
            indexes = {i["name"] for i in inspect(connection).get_indexes("case_events")}
        assert tables == set(Base.metadata.tables) | {"alembic_version"}
        if db_backend == "postgresql":
            assert EXPRESSION_INDEXES <= indexes
    finally:
        engine.dispose()


def test_migrated_schema_has_the_same_names_as_create_all(db_url, empty_db_url, db_backend, tmp_path, request):
    """Constraint and index names (naming convention), checks and types: migration == models."""
    migrated = make_engine(db_url)
    if db_backend == "sqlite":
        reference_url = f"sqlite:///{tmp_path / 'create_all.sqlite3'}"
    else:
        reference_url = request.getfixturevalue("pg_schema_factory")()
    reference = make_engine(reference_url)
    try:
        Base.metadata.create_all(reference)
        with migrated.connect() as a, reference.connect() as b:
            assert _schema_names(a) == _schema_names(b)
    finally:
        migrated.dispose()
        reference.dispose()


def test_guards_are_installed_by_the_migration(db_url, db_backend):
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            assert guards.missing(connection) == []
            installed = guards.installed(connection)
        for table in NEVER_DELETED:
            assert (table, f"{table}_no_delete") in installed
            if db_backend == "postgresql":
                assert (table, f"{table}_no_truncate") in installed
        for table in NEVER_UPDATED:
            assert (table, f"{table}_no_update") in installed
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back(db_url):
    assert migrate.downgrade(db_url, "base") is None
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
            assert guards.installed(connection) == set()
        assert migrate.upgrade(engine) == migrate.head_revision()
        with engine.connect() as connection:
            assert guards.missing(connection) == []
    finally:
        engine.dispose()


def test_upgrade_does_not_touch_logging(empty_db_url):
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    alembic_logger = logging.getLogger("alembic")
    alembic_state = (list(alembic_logger.handlers), alembic_logger.level, alembic_logger.disabled)
    migrate.upgrade(empty_db_url)
    assert root.handlers == handlers and root.level == level
    assert (list(alembic_logger.handlers), alembic_logger.level, alembic_logger.disabled) == alembic_state


def test_migrations_ship_inside_the_package():
    from pathlib import Path

    import bridge

    assert migrate.MIGRATIONS_DIR.is_relative_to(Path(bridge.__file__).resolve().parent)
    assert (migrate.MIGRATIONS_DIR / "env.py").is_file()
    assert (migrate.MIGRATIONS_DIR / "script.py.mako").is_file()
    assert (migrate.MIGRATIONS_DIR / "versions" / "0001_initial.py").is_file()


def _a_call_filed_as_a_case(connection, disposition: str) -> None:
    connection.execute(text(
        "INSERT INTO departments (id, code, name, kind, pinyin_initials, keywords, created_at) "
        "VALUES (1, 'CITY-GAJ', '市公安局', 'city_department', 'sgaj', '', '2026-11-25 01:00:00')"))
    connection.execute(text(
        "INSERT INTO calls (id, linkedid, caller_number, caller_name, dialled_number, arrived_at, "
        "disposition, hangup_cause, source, updated_at) VALUES (7, '1764032400.7', '13900000001', '张三', "
        "'96811', '2026-11-25 01:00:00', :disposition, 38, 'live', '2026-11-25 01:00:00')"),
        {"disposition": disposition})
    connection.execute(text(
        "INSERT INTO cases (id, number, call_id, channel, state, department_id, caller_surname, "
        "caller_honorific, location, title, description, caller_full_name, caller_phone, "
        "caller_phone_alt, best_time, callback_wanted, sms_consent, operator_notes, created_at, updated_at) "
        "VALUES (3, '96811-2026-000003', 7, 'phone', 'queued', 1, '张', '先生', '', '路灯不亮', "
        "'衢江路路灯不亮已经一周', '', '', '', '', true, false, '', '2026-11-25 01:00:00', "
        "'2026-11-25 01:00:00')"))


def test_call_takeover_migration_keeps_existing_calls_cases_and_guards(empty_db_url, db_backend):
    """0003 rebuilds `calls` on SQLite: a site's existing calls, the cases filed from them and
    the no-delete guard must all come through."""
    migrate.upgrade(empty_db_url, "0002_builtin_board")
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as connection:
            _a_call_filed_as_a_case(connection, "abandoned")
        assert migrate.upgrade(engine) == migrate.head_revision()
        with engine.connect() as connection:
            assert connection.execute(text("SELECT call_id FROM cases WHERE id = 3")).scalar_one() == 7
            assert connection.execute(text("SELECT caller_name, taken_by_id FROM calls WHERE id = 7")).one() == (
                "张三", None)
            assert guards.missing(connection) == []
    finally:
        engine.dispose()


def _insert_call(connection, call_id: int, disposition: str) -> None:
    connection.execute(text(
        "INSERT INTO calls (id, linkedid, caller_number, caller_name, dialled_number, arrived_at, "
        "disposition, source, updated_at) VALUES (:id, :linkedid, '13900000002', '', '96811', "
        "'2026-11-25 02:00:00', :disposition, 'live', '2026-11-25 02:00:00')"),
        {"id": call_id, "linkedid": f"1764036000.{call_id}", "disposition": disposition})


def test_hung_up_in_menu_migration_keeps_existing_calls_cases_and_guards(empty_db_url):
    """0005 widens the CHECK on calls.disposition (a rebuild of `calls` on SQLite): the existing
    calls, the case filed from one and the no-delete guard come through; the new value is
    accepted and an unknown one still refused; downgrading maps it back to `failed`."""
    migrate.upgrade(empty_db_url, "0004_cursors")
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as connection:
            _a_call_filed_as_a_case(connection, "failed")
            with pytest.raises(IntegrityError), connection.begin_nested():
                _insert_call(connection, 8, "hung_up_in_menu")
        assert migrate.upgrade(engine, "0005_hung_up_in_menu") == "0005_hung_up_in_menu"
        with engine.connect() as connection:
            assert connection.execute(text("SELECT call_id FROM cases WHERE id = 3")).scalar_one() == 7
            kept = connection.execute(text("SELECT caller_name, disposition, hangup_cause FROM calls WHERE id = 7"))
            assert kept.one() == ("张三", "failed", 38)
            assert guards.missing(connection) == []
        with engine.begin() as connection:
            _insert_call(connection, 8, "hung_up_in_menu")
            with pytest.raises(IntegrityError), connection.begin_nested():
                _insert_call(connection, 9, "hung_up")
        with engine.connect() as connection, pytest.raises(DBAPIError):
            connection.execute(text("DELETE FROM calls WHERE id = 8"))
        assert migrate.downgrade(engine, "0004_cursors") == "0004_cursors"
        with engine.connect() as connection:
            assert connection.execute(text("SELECT disposition FROM calls WHERE id = 8")).scalar_one() == "failed"
            assert connection.execute(text("SELECT call_id FROM cases WHERE id = 3")).scalar_one() == 7
            assert guards.missing(connection) == []
    finally:
        engine.dispose()


def _case_row(connection, case_id: int, **columns) -> tuple:
    names = ", ".join(columns)
    return connection.execute(text(f"SELECT {names} FROM cases WHERE id = :id"), {"id": case_id}).one()


def test_best_time_choice_migration_keeps_old_cases_their_text_and_guards(empty_db_url):
    """0006 adds the clicked best time and the "not before" date to `cases`: an old case keeps its free
    text (and no choice), the rows pointing at it and the no-delete guards come through; the CHECK
    refuses a code that is not one of the four; downgrading removes the columns and keeps the rest."""
    migrate.upgrade(empty_db_url, "0005_hung_up_in_menu")
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as connection:
            _a_call_filed_as_a_case(connection, "answered")
            connection.execute(text("UPDATE cases SET best_time = '周三下午三点' WHERE id = 3"))
            connection.execute(text(
                "INSERT INTO case_events (id, case_id, at, kind, actor, detail) "
                "VALUES (1, 3, '2026-11-25 01:00:00', 'filed', 'operator', '{}')"))
        assert migrate.upgrade(engine, "0006_best_time_choice") == "0006_best_time_choice"
        with engine.connect() as connection:
            assert _case_row(connection, 3, best_time=1, best_time_choice=1, callback_not_before=1, call_id=1) == (
                "周三下午三点", None, None, 7)
            assert connection.execute(text("SELECT kind FROM case_events WHERE case_id = 3")).scalar_one() == "filed"
            assert guards.missing(connection) == []
        with engine.begin() as connection:
            connection.execute(text("UPDATE cases SET best_time_choice = 'evening', "
                                    "callback_not_before = '2026-12-05' WHERE id = 3"))
            with pytest.raises(IntegrityError), connection.begin_nested():
                connection.execute(text("UPDATE cases SET best_time_choice = 'night' WHERE id = 3"))
        with engine.connect() as connection:
            assert _case_row(connection, 3, best_time_choice=1) == ("evening",)
            with pytest.raises(DBAPIError):
                connection.execute(text("DELETE FROM cases WHERE id = 3"))
        assert migrate.downgrade(engine, "0005_hung_up_in_menu") == "0005_hung_up_in_menu"
        with engine.connect() as connection:
            columns = {c["name"] for c in inspect(connection).get_columns("cases")}
            assert not columns & {"best_time_choice", "callback_not_before"}
            assert _case_row(connection, 3, best_time=1, call_id=1) == ("周三下午三点", 7)
            assert guards.missing(connection) == []
        assert migrate.upgrade(engine, "0006_best_time_choice") == "0006_best_time_choice"
    finally:
        engine.dispose()


def test_callback_tasks_migration_replaces_the_empty_placeholders_and_refuses_rows(empty_db_url):
    """0007 replaces 0001's unused callback tables (refusing when they hold rows: nothing is lost),
    adds do_not_call and callback_messages, guards all four, and one live attempt per task holds."""
    migrate.upgrade(empty_db_url, "0006_best_time_choice")
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as connection:
            _a_call_filed_as_a_case(connection, "answered")
            connection.execute(text(
                "INSERT INTO callback_tasks (id, case_id, reason, state, due_at, attempts_count, created_at) "
                "VALUES (1, 3, 'answered', 'pending', '2026-11-25 01:00:00', 0, '2026-11-25 01:00:00')"))
        with pytest.raises(RuntimeError, match="callback_tasks holds 1 rows"):
            migrate.upgrade(engine)
        assert migrate.current_revision(engine) == "0006_best_time_choice"
        with engine.begin() as connection:  # (the guards of 0001 refuse a DELETE: drop them for the test)
            for statement in guards.drop_ddl(engine.dialect.name, ("callback_tasks",), ()):
                if "FUNCTION" not in statement:
                    connection.execute(text(statement))
            connection.execute(text("DELETE FROM callback_tasks"))
        assert migrate.upgrade(engine, "0007_callback_tasks") == "0007_callback_tasks"
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO callback_tasks (id, reason, case_id, phone, state, due_at, waiting_since, assigned_at, "
                "note, created_at, updated_at) VALUES (1, 'answer', 3, '+8613912345678', 'due', '2026-11-25 01:00:00', "
                "'2026-11-25 01:00:00', '2026-11-25 01:00:00', '', '2026-11-25 01:00:00', '2026-11-25 01:00:00')"))
            insert = ("INSERT INTO callback_attempts (task_id, idempotency_key, dialler, started_at, note) "
                      "VALUES (1, :key, 'asterisk', '2026-11-25 01:00:00', '')")
            connection.execute(text(insert), {"key": "cb-1-a"})
            with pytest.raises(IntegrityError), connection.begin_nested():
                connection.execute(text(insert), {"key": "cb-1-b"})  # a second live attempt
            assert guards.missing(connection) == []
            for table in ("callback_tasks", "callback_attempts"):
                with pytest.raises(DBAPIError), connection.begin_nested():
                    connection.execute(text(f"DELETE FROM {table}"))
    finally:
        engine.dispose()


def test_voice_callback_migration_keeps_old_cases_without_it_and_guards(empty_db_url):
    """0008 adds `cases.voice_callback`: an old case reads false (an operator phones its caller), a
    new one may say true; downgrading removes the column and keeps the rest."""
    migrate.upgrade(empty_db_url, "0007_callback_tasks")
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as connection:
            _a_call_filed_as_a_case(connection, "answered")
        assert migrate.upgrade(engine, "0008_voice_callback") == "0008_voice_callback"
        with engine.begin() as connection:
            assert _case_row(connection, 3, voice_callback=1, call_id=1) == (False, 7)
            connection.execute(text("UPDATE cases SET voice_callback = true WHERE id = 3"))
            assert _case_row(connection, 3, voice_callback=1) == (True,)
            with pytest.raises(IntegrityError), connection.begin_nested():
                connection.execute(text("UPDATE cases SET voice_callback = NULL WHERE id = 3"))
            assert guards.missing(connection) == []
        assert migrate.downgrade(engine, "0007_callback_tasks") == "0007_callback_tasks"
        with engine.connect() as connection:
            assert "voice_callback" not in {c["name"] for c in inspect(connection).get_columns("cases")}
            assert _case_row(connection, 3, call_id=1) == (7,)
            assert guards.missing(connection) == []
        assert migrate.upgrade(engine) == migrate.head_revision()
    finally:
        engine.dispose()


def test_due_order_index_serves_the_pools_order(empty_db_url):
    """0009 indexes (state, waiting_since, id): the due tasks come in the pool's order from it;
    a downgrade drops only that index."""
    migrate.upgrade(empty_db_url, "0009_callback_due_order")
    engine = make_engine(empty_db_url)
    try:
        with engine.connect() as connection:
            columns = {i["name"]: i["column_names"] for i in inspect(connection).get_indexes("callback_tasks")}
        assert columns["ix_callback_tasks_state_waiting"] == ["state", "waiting_since", "id"]
        assert migrate.downgrade(engine, "0008_voice_callback") == "0008_voice_callback"
        with engine.connect() as connection:
            names = {i["name"] for i in inspect(connection).get_indexes("callback_tasks")}
        assert "ix_callback_tasks_state_waiting" not in names and "ix_callback_tasks_state_due" in names
    finally:
        engine.dispose()


def test_active_extension_index_names_shared_extensions_first_then_refuses_a_second_holder(empty_db_url):
    """0011: an upgrade over two active users on one extension stops and names them (nothing
    stored); once one is fixed it indexes, and the database refuses a second active holder but
    not a disabled one."""
    migrate.upgrade(empty_db_url, "0010_parked_domain_events")
    engine = make_engine(empty_db_url)
    add = text("INSERT INTO users (username, display_name, role, extension, password_hash, disabled_at, created_at) "
               "VALUES (:name, '', 'operator', :ext, 'x', :disabled, CURRENT_TIMESTAMP)")
    try:
        with engine.begin() as connection:
            for name, ext, disabled in (("wang", "8001", None), ("li", "8001", None), ("old", "8002", "2026-01-01")):
                connection.execute(add, {"name": name, "ext": ext, "disabled": disabled})
        with pytest.raises(RuntimeError, match=r"share a desk extension \(8001: li, wang\)"):
            migrate.upgrade(engine, "0011_users_active_extension")
        assert migrate.current_revision(engine) == "0010_parked_domain_events"
        with engine.begin() as connection:
            connection.execute(text("UPDATE users SET extension = '8003' WHERE username = 'li'"))
        assert migrate.upgrade(engine, "0011_users_active_extension") == "0011_users_active_extension"
        with engine.begin() as connection:
            connection.execute(add, {"name": "zhao", "ext": "8002", "disabled": None})  # 8002's holder is disabled
            with pytest.raises(IntegrityError), connection.begin_nested():
                connection.execute(add, {"name": "sun", "ext": "8001", "disabled": None})
    finally:
        engine.dispose()


def test_synonyms_migration_gives_the_shipped_units_their_everyday_names(empty_db_url):
    """0012 adds `departments.synonyms`: a shipped unit already imported gets the shipped ones, a
    site's own unit starts with none; downgrading removes the column and keeps the units."""
    migrate.upgrade(empty_db_url, "0011_users_active_extension")
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as connection:
            for code, name in (("CITY-ZHZFJ", "市综合行政执法局"), ("SITE-OWN", "本地单位")):
                connection.execute(text(
                    "INSERT INTO departments (code, name, kind, pinyin_initials, keywords, created_at) "
                    "VALUES (:code, :name, 'city_department', '', '', CURRENT_TIMESTAMP)"),
                    {"code": code, "name": name})
        assert migrate.upgrade(engine, "0012_department_synonyms") == "0012_department_synonyms"
        with engine.connect() as connection:
            rows = dict(connection.execute(text("SELECT code, synonyms FROM departments")).all())
        assert "城管" in rows["CITY-ZHZFJ"].split() and "综合执法" in rows["CITY-ZHZFJ"].split()
        assert rows["SITE-OWN"] == ""
        assert migrate.downgrade(engine, "0011_users_active_extension") == "0011_users_active_extension"
        with engine.connect() as connection:
            assert "synonyms" not in {c["name"] for c in inspect(connection).get_columns("departments")}
            assert connection.execute(text("SELECT count(*) FROM departments")).scalar() == 2
    finally:
        engine.dispose()


def test_desk_sessions_migration_adds_the_table_and_removes_it_again(empty_db_url):
    """0013 adds `desk_sessions` (server-side sign-ins); downgrading drops it and keeps the users."""
    migrate.upgrade(empty_db_url, "0012_department_synonyms")
    engine = make_engine(empty_db_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO users (id, username, display_name, role, password_hash, created_at) "
                                    "VALUES (5, 'op1', '', 'operator', 'x', CURRENT_TIMESTAMP)"))
        assert migrate.upgrade(engine, "0013_desk_sessions") == "0013_desk_sessions"
        with engine.begin() as connection:
            user_id = 5
            connection.execute(text("INSERT INTO desk_sessions (token, user_id, extension, started_at, last_seen_at) "
                                    "VALUES ('t1', :u, '8001', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), {"u": user_id})
            assert connection.execute(text("SELECT paused_auto FROM desk_sessions")).scalar_one() in (False, 0)
            with pytest.raises(IntegrityError), connection.begin_nested():
                connection.execute(text("UPDATE desk_sessions SET paused_reason = 'nap'"))
        assert migrate.downgrade(engine, "0012_department_synonyms") == "0012_department_synonyms"
        with engine.connect() as connection:
            assert "desk_sessions" not in inspect(connection).get_table_names()
            assert connection.execute(text("SELECT username FROM users")).scalar_one() == "op1"
            assert guards.missing(connection) == []
        assert migrate.upgrade(engine) == migrate.head_revision()
    finally:
        engine.dispose()
