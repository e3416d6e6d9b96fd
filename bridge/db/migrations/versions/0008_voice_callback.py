"""The caller may choose an automated voice callback: the unit's answer, spoken, phoned to them.

Adds ``cases.voice_callback`` (a BOOLEAN, NOT NULL, default false): a case filed before keeps
false (an operator phones its caller, as before).  Written by hand in the style of 0006; it does
not import the models.  ``ALTER TABLE ... ADD COLUMN`` on SQLite too (no batch rebuild of
``cases``: its no-delete trigger and the rows pointing at it stay as they are); SQLite (3.35+)
drops the column the same way on a downgrade.

Revision ID: 0008_voice_callback
Revises: 0007_callback_tasks
Create Date: 2026-12-03
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008_voice_callback"
down_revision: str | None = "0007_callback_tasks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE cases ADD COLUMN voice_callback BOOLEAN DEFAULT false NOT NULL")


def downgrade() -> None:
    op.execute("ALTER TABLE cases DROP COLUMN voice_callback")
