"""Indexes of the call figures and the supervisors' call log (bridge.reports.call_figures,
call_log): the calls of one disposition by arrival (``calls (disposition, arrived_at)``: the failures,
the log's filter on a rare disposition) and the case filed from a call (``cases (call_id)``, the
log's case column).  An operator's calls need none: calls are stored in arrival order, so the
period's rows on ``arrived_at`` are the same pages (bench/call_figures.py's plans).  Written by hand; it does not import the models.

Revision ID: 0016_call_report_indexes
Revises: 0015_unit_figure_indexes
Create Date: 2026-12-03
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0016_call_report_indexes"
down_revision: str | None = "0015_unit_figure_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_calls_disposition_arrived", "calls", ["disposition", "arrived_at"]),
    ("ix_cases_call_id", "cases", ["call_id"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
