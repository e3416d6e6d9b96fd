"""Migration 0013: the callback log's indexes come and go (on SQLite and PostgreSQL)."""
from __future__ import annotations

from sqlalchemy import inspect

from bridge.db import migrate
from bridge.db.engine import make_engine

INDEXES = {"callback_tasks": "ix_callback_tasks_case_reason", "case_events": "ix_case_events_kind_case",
           "cases": "ix_cases_created_by_created"}


def _present(engine) -> dict[str, bool]:
    with engine.connect() as connection:
        found = inspect(connection)
        return {table: name in {i["name"] for i in found.get_indexes(table)} for table, name in INDEXES.items()}


def test_the_report_indexes_come_and_go(empty_db_url):
    engine = make_engine(empty_db_url)
    try:
        assert migrate.upgrade(engine, "0014_report_indexes") == "0014_report_indexes"
        assert _present(engine) == dict.fromkeys(INDEXES, True)
        assert migrate.downgrade(engine, "0013_desk_sessions") == "0013_desk_sessions"
        assert _present(engine) == dict.fromkeys(INDEXES, False)
    finally:
        engine.dispose()
