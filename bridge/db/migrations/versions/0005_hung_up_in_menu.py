"""A call disposition of its own for a caller who hangs up in the greeting or the menu.

``calls.disposition`` (a VARCHAR with the CHECK ``ck_calls_calldisposition``) accepts
``hung_up_in_menu``; ``failed`` stays for technical failures.  Written by hand in the style
of 0001-0004; it does not import the models.  On SQLite the CHECK is part of the table, so
the batch rebuild of ``calls`` drops its no-delete trigger (installed again afterwards) and
``cases.call_id`` is set aside during the rebuild, as in 0003.  Downgrading turns the new
value back into ``failed`` (what those calls were called before).

Revision ID: 0005_hung_up_in_menu
Revises: 0004_cursors
Create Date: 2026-12-03
"""
from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

from alembic import op

from bridge.db import guards

revision: str = "0005_hung_up_in_menu"
down_revision: str | None = "0004_cursors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies (as in 0001 and 0003): the dispositions and the guards of ``calls``.
BEFORE = ("in_progress", "answered", "abandoned", "after_hours_message", "status_line", "failed")
AFTER = ("in_progress", "answered", "abandoned", "after_hours_message", "status_line", "hung_up_in_menu",
         "failed")
NEVER_DELETED = ("calls",)
NEVER_UPDATED: tuple[str, ...] = ()


@contextmanager
def _cases_let_go_of_calls():
    """SQLite: the rebuild drops ``calls``, which the foreign key check refuses while ``cases.call_id``
    points at it; the links are kept aside, cleared, and put back once the rebuilt ``calls`` (same
    ids) is in place (0003's approach)."""
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


def _allow(values: Sequence[str]) -> None:
    quoted = ", ".join(f"'{v}'" for v in values)
    with _cases_let_go_of_calls(), op.batch_alter_table("calls") as batch:
        batch.drop_constraint(op.f("ck_calls_calldisposition"), type_="check")
        batch.create_check_constraint(op.f("ck_calls_calldisposition"), f"disposition IN ({quoted})")
    _guard_again()


def upgrade() -> None:
    _allow(AFTER)


def downgrade() -> None:
    op.execute("UPDATE calls SET disposition = 'failed' WHERE disposition = 'hung_up_in_menu'")
    _allow(BEFORE)
