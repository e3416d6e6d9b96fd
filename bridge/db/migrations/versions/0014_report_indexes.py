"""Indexes of the callback completion log (bridge.reports.callback_log): a case's latest answer
task (``callback_tasks (case_id, reason, id)``), its forwards and first steps by kind
(``case_events (kind, case_id)``) and an operator's own cases by filing time
(``cases (created_by_id, created_at)``).  Written by hand; it does not import the models.

Revision ID: 0014_report_indexes
Revises: 0013_desk_sessions
Create Date: 2026-12-03
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014_report_indexes"
down_revision: str | None = "0013_desk_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_callback_tasks_case_reason", "callback_tasks", ["case_id", "reason", "id"]),
    ("ix_case_events_kind_case", "case_events", ["kind", "case_id"]),
    ("ix_cases_created_by_created", "cases", ["created_by_id", "created_at"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
