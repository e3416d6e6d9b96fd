"""The reports at 1,000,000 cases (issue 12, "Speed"): the units' figures probe each step's next
timeline entry and read its kind, so ``case_events (case_id, at, id)`` becomes
``(case_id, at, id, kind)`` (the probe answers from the index alone); the cases overdue now are found
through a partial index of the deadlines that are set (open cases only hold one).  Written by hand;
it does not import the models.

Revision ID: 0018_report_speed_indexes
Revises: 0017_unit_trend_indexes
Create Date: 2026-12-03
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_report_speed_indexes"
down_revision: str | None = "0017_unit_trend_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEADLINE_SET = sa.text("deadline_at IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_case_events_case_at_kind", "case_events", ["case_id", "at", "id", "kind"])
    op.drop_index("ix_case_events_case_at", table_name="case_events")
    op.create_index("ix_cases_deadline_set", "cases", ["deadline_at"], sqlite_where=DEADLINE_SET,
                    postgresql_where=DEADLINE_SET)


def downgrade() -> None:
    op.drop_index("ix_cases_deadline_set", table_name="cases")
    op.create_index("ix_case_events_case_at", "case_events", ["case_id", "at", "id"])
    op.drop_index("ix_case_events_case_at_kind", table_name="case_events")
