"""A unit's trend reads only that unit's steps over twelve months: an index on ``case_events`` by the
unit a step belongs to (``detail.department`` of a post, ``detail.to_unit`` of a forward, else
``detail.unit``; the same expression as bridge/transparency/figures.py writes) and the time, for the
step kinds only, on PostgreSQL (the performance goals are PostgreSQL's; SQLite reflects no
expression index, so the models declare it for PostgreSQL only).  Written by hand; it does not
import the models.

Revision ID: 0017_unit_trend_indexes
Revises: 0016_call_report_indexes
Create Date: 2026-12-03
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017_unit_trend_indexes"
down_revision: str | None = "0016_call_report_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_case_events_step_unit_at"
STEP_KINDS = "('posted', 'forwarded', 'accepted', 'follow_up_asked')"


UNIT = ("CASE kind WHEN 'posted' THEN (detail ->> 'department') WHEN 'forwarded' THEN (detail ->> 'to_unit') "
        "ELSE (detail ->> 'unit') END")


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if _postgresql():
        op.execute(f"CREATE INDEX {NAME} ON case_events (({UNIT}), at) WHERE kind IN {STEP_KINDS}")


def downgrade() -> None:
    if _postgresql():
        op.execute(f"DROP INDEX {NAME}")
