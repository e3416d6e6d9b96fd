"""The caller's best time to call back becomes a choice, with an optional "not before" date.

Adds ``cases.best_time_choice`` (a VARCHAR with the CHECK ``ck_cases_callbackbesttime``: morning,
afternoon, evening or any) and ``cases.callback_not_before`` (a DATE), both nullable: a case filed
before keeps NULL there and its free text in ``cases.best_time``.  Written by hand in the style of
0001-0005; it does not import the models.

Both columns are added with ``ALTER TABLE ... ADD COLUMN`` (the CHECK as a column constraint), on
SQLite too: no batch rebuild of ``cases``, so its no-delete trigger and the rows that point at it
(case events, outbox rows, callback tasks) are left as they are.  SQLite (3.35+) drops the columns
the same way on a downgrade.

Revision ID: 0006_best_time_choice
Revises: 0005_hung_up_in_menu
Create Date: 2026-12-03
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006_best_time_choice"
down_revision: str | None = "0005_hung_up_in_menu"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy (as in 0001 and 0005): the codes of models.CallbackBestTime.
BEST_TIMES = ("morning", "afternoon", "evening", "any")


def upgrade() -> None:
    quoted = ", ".join(f"'{v}'" for v in BEST_TIMES)
    op.execute("ALTER TABLE cases ADD COLUMN best_time_choice VARCHAR(32) "
               f"CONSTRAINT ck_cases_callbackbesttime CHECK (best_time_choice IN ({quoted}))")
    op.execute("ALTER TABLE cases ADD COLUMN callback_not_before DATE")


def downgrade() -> None:
    op.execute("ALTER TABLE cases DROP COLUMN callback_not_before")
    op.execute("ALTER TABLE cases DROP COLUMN best_time_choice")
