"""Taking a call from the shared "to call back / to file" list: who took it, when, and how it ended.

Adds ``calls.taken_by_id`` (FK users), ``taken_at``, ``handled_at`` and ``handled_note``.
Written by hand in the style of 0001/0002 (names from models.NAMING_CONVENTION, times
with time zone); it does not import the models.  On SQLite the batch rebuild of
``calls`` drops its no-delete trigger, so the guard is installed again afterwards, and
``cases.call_id`` is set aside during the rebuild (see ``_cases_let_go_of_calls``).

Revision ID: 0003_call_takeover
Revises: 0002_builtin_board
Create Date: 2026-11-26
"""
from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

from bridge.db import guards

revision: str = "0003_call_takeover"
down_revision: str | None = "0002_builtin_board"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The guards on the table this revision rebuilds (frozen copies, as in 0001).
NEVER_DELETED = ("calls",)
NEVER_UPDATED: tuple[str, ...] = ()


@contextmanager
def _cases_let_go_of_calls():
    """SQLite: the rebuild drops ``calls``, which the foreign key check refuses while ``cases.call_id``
    points at it (and PRAGMA foreign_keys cannot change inside the migration's transaction).  The links
    are kept aside, cleared, and put back once the rebuilt ``calls`` (same ids) is in place."""
    sqlite = op.get_context().dialect.name == "sqlite"
    if sqlite:
        op.execute("CREATE TEMPORARY TABLE _case_call_links AS "
                   "SELECT id, call_id FROM cases WHERE call_id IS NOT NULL")
        op.execute("UPDATE cases SET call_id = NULL WHERE call_id IS NOT NULL")
    yield
    if sqlite:
        op.execute("UPDATE cases SET call_id = (SELECT l.call_id FROM _case_call_links l WHERE l.id = cases.id) "
                   "WHERE id IN (SELECT id FROM _case_call_links)")
        op.execute("DROP TABLE _case_call_links")


def _guard_again() -> None:
    for statement in guards.ddl(op.get_context().dialect.name, NEVER_DELETED, NEVER_UPDATED):
        op.execute(statement)


def upgrade() -> None:
    with _cases_let_go_of_calls(), op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("taken_by_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("handled_note", sa.Text(), nullable=True))
        batch.create_foreign_key(op.f("fk_calls_taken_by_id_users"), "users", ["taken_by_id"], ["id"])
    _guard_again()


def downgrade() -> None:
    with _cases_let_go_of_calls(), op.batch_alter_table("calls") as batch:
        batch.drop_constraint(op.f("fk_calls_taken_by_id_users"), type_="foreignkey")
        batch.drop_column("handled_note")
        batch.drop_column("handled_at")
        batch.drop_column("taken_at")
        batch.drop_column("taken_by_id")
    _guard_again()
