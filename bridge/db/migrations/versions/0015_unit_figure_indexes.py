"""The units' figures read the timeline by kind and period, then each case's next step: two indexes
on ``case_events``, ``(kind, at)`` (the steps begun in a period) and ``(case_id, at, id)`` (the step
that ended each one).  Written by hand; it does not import the models.

Revision ID: 0015_unit_figure_indexes
Revises: 0014_report_indexes
Create Date: 2026-12-03
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015_unit_figure_indexes"
down_revision: str | None = "0014_report_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_case_events_kind_at", "case_events", ["kind", "at"])
    op.create_index("ix_case_events_case_at", "case_events", ["case_id", "at", "id"])


def downgrade() -> None:
    op.drop_index("ix_case_events_case_at", table_name="case_events")
    op.drop_index("ix_case_events_kind_at", table_name="case_events")
