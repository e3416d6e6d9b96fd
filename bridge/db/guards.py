"""The database refuses to delete history: the no-delete / no-update triggers.

Rows of the tables in ``models.NEVER_DELETED`` (calls, cases, case events, ...)
are never deleted and rows of ``models.NEVER_UPDATED`` (case events) are never
updated.  The application has no code path for either; these triggers make the
database refuse it too, whoever connects:

* SQLite: ``BEFORE DELETE`` / ``BEFORE UPDATE`` triggers that
  ``RAISE(ABORT, 'calls rows are never deleted')``.
* PostgreSQL: one trigger function raising ``calls rows are never deleted``
  (SQLSTATE 23001, restrict_violation), attached as ``BEFORE DELETE`` and
  ``BEFORE UPDATE`` row triggers and a ``BEFORE TRUNCATE`` statement trigger.

The DDL lives only here; migrations call :func:`install` / :func:`uninstall`.
Both are idempotent.  Note for future SQLite migrations: ``batch_alter_table``
rebuilds a table (copy, drop, rename), which drops its triggers; a migration
that batch-alters a guarded table must call :func:`install` afterwards
(:func:`missing` finds guards that are gone; the tests check it after upgrade).
"""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from bridge.db.models import NEVER_DELETED, NEVER_UPDATED

PG_FUNCTION = "bridge_refuse_change"


def delete_message(table: str) -> str:
    return f"{table} rows are never deleted"


def update_message(table: str) -> str:
    return f"{table} rows are never updated"


def _trigger_name(table: str, op: str) -> str:
    return f"{table}_no_{op}"


def expected_triggers(never_deleted: Iterable[str] = NEVER_DELETED,
                      never_updated: Iterable[str] = NEVER_UPDATED, *, dialect: str) -> set[tuple[str, str]]:
    """The (table, trigger name) pairs :func:`install` creates on ``dialect``."""
    ops = ["delete", "truncate"] if dialect == "postgresql" else ["delete"]
    triggers = {(t, _trigger_name(t, op)) for t in never_deleted for op in ops}
    triggers |= {(t, _trigger_name(t, "update")) for t in never_updated}
    return triggers


# ------------------------------------------------------------------------ SQLite


def sqlite_ddl(never_deleted: Iterable[str] = NEVER_DELETED,
               never_updated: Iterable[str] = NEVER_UPDATED) -> list[str]:
    statements = []
    for table in never_deleted:
        statements.append(
            f'CREATE TRIGGER IF NOT EXISTS "{_trigger_name(table, "delete")}" BEFORE DELETE ON "{table}" '
            f"BEGIN SELECT RAISE(ABORT, '{delete_message(table)}'); END")
    for table in never_updated:
        statements.append(
            f'CREATE TRIGGER IF NOT EXISTS "{_trigger_name(table, "update")}" BEFORE UPDATE ON "{table}" '
            f"BEGIN SELECT RAISE(ABORT, '{update_message(table)}'); END")
    return statements


def sqlite_drop_ddl(never_deleted: Iterable[str] = NEVER_DELETED,
                    never_updated: Iterable[str] = NEVER_UPDATED) -> list[str]:
    names = [_trigger_name(t, "delete") for t in never_deleted]
    names += [_trigger_name(t, "update") for t in never_updated]
    return [f'DROP TRIGGER IF EXISTS "{name}"' for name in names]


# -------------------------------------------------------------------- PostgreSQL

# TG_OP is DELETE, UPDATE or TRUNCATE; one function serves every table.
_PG_FUNCTION_DDL = f"""
CREATE OR REPLACE FUNCTION {PG_FUNCTION}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION '% rows are never updated', TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION '% rows are never deleted (TRUNCATE refused)', TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation';
    END IF;
    RAISE EXCEPTION '% rows are never deleted', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END
$$
"""


def postgresql_ddl(never_deleted: Iterable[str] = NEVER_DELETED,
                   never_updated: Iterable[str] = NEVER_UPDATED) -> list[str]:
    statements = [_PG_FUNCTION_DDL.strip()]

    def trigger(table: str, op: str, when: str, level: str) -> None:
        name = _trigger_name(table, op)
        statements.append(f'DROP TRIGGER IF EXISTS "{name}" ON "{table}"')
        statements.append(f'CREATE TRIGGER "{name}" {when} ON "{table}" '
                          f"FOR EACH {level} EXECUTE FUNCTION {PG_FUNCTION}()")

    for table in never_deleted:
        trigger(table, "delete", "BEFORE DELETE", "ROW")
        trigger(table, "truncate", "BEFORE TRUNCATE", "STATEMENT")
    for table in never_updated:
        trigger(table, "update", "BEFORE UPDATE", "ROW")
    return statements


def postgresql_drop_ddl(never_deleted: Iterable[str] = NEVER_DELETED,
                        never_updated: Iterable[str] = NEVER_UPDATED) -> list[str]:
    statements = []
    for table in never_deleted:
        for op in ("delete", "truncate"):
            statements.append(f'DROP TRIGGER IF EXISTS "{_trigger_name(table, op)}" ON "{table}"')
    for table in never_updated:
        statements.append(f'DROP TRIGGER IF EXISTS "{_trigger_name(table, "update")}" ON "{table}"')
    statements.append(f"DROP FUNCTION IF EXISTS {PG_FUNCTION}()")
    return statements


# --------------------------------------------------------------------------- API


def ddl(dialect: str, never_deleted: Iterable[str] = NEVER_DELETED,
        never_updated: Iterable[str] = NEVER_UPDATED) -> list[str]:
    """The statements that create the guards on ``dialect`` ("sqlite" or "postgresql")."""
    if dialect == "sqlite":
        return sqlite_ddl(never_deleted, never_updated)
    if dialect == "postgresql":
        return postgresql_ddl(never_deleted, never_updated)
    raise ValueError(f"no guards for database dialect {dialect!r}")


def drop_ddl(dialect: str, never_deleted: Iterable[str] = NEVER_DELETED,
             never_updated: Iterable[str] = NEVER_UPDATED) -> list[str]:
    if dialect == "sqlite":
        return sqlite_drop_ddl(never_deleted, never_updated)
    if dialect == "postgresql":
        return postgresql_drop_ddl(never_deleted, never_updated)
    raise ValueError(f"no guards for database dialect {dialect!r}")


def install(connection: Connection, never_deleted: Iterable[str] = NEVER_DELETED,
            never_updated: Iterable[str] = NEVER_UPDATED) -> None:
    """Create (or re-create) the guards; used by the migrations (``op.get_bind()``)."""
    for statement in ddl(connection.dialect.name, list(never_deleted), list(never_updated)):
        connection.execute(text(statement))


def uninstall(connection: Connection, never_deleted: Iterable[str] = NEVER_DELETED,
              never_updated: Iterable[str] = NEVER_UPDATED) -> None:
    """Drop the guards (a downgrade, before the tables are dropped)."""
    for statement in drop_ddl(connection.dialect.name, list(never_deleted), list(never_updated)):
        connection.execute(text(statement))


def installed(connection: Connection) -> set[tuple[str, str]]:
    """The (table, trigger name) pairs present in the current database/schema."""
    if connection.dialect.name == "sqlite":
        rows = connection.execute(text("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'"))
    else:
        rows = connection.execute(text(
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"))
    return {(table, name) for table, name in rows}


def missing(connection: Connection) -> list[tuple[str, str]]:
    """Guards that should exist but do not (empty when the database is protected); a table a
    later revision creates is not looked for in a database at an earlier one."""
    tables = set(inspect(connection).get_table_names())
    expected = {(table, name) for table, name in expected_triggers(dialect=connection.dialect.name) if table in tables}
    return sorted(expected - installed(connection))
