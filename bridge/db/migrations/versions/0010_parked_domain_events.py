"""Domain events a consumer keeps failing on are parked, not left blocking: ``parked_domain_events``.

A consumer (e.g. the callbacks' ``callback-tasks``) that fails on the same event
``bridge.domain_events.PARK_AFTER`` times moves its cursor past it, writing this row in the same
transaction; a person asks for another try once the cause is fixed.  Rows are never deleted
(guarded like the callback tables).  Written by hand in the style of 0007.

Revision ID: 0010_parked_domain_events
Revises: 0009_callback_due_order
Create Date: 2026-12-03
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bridge.db import guards

revision: str = "0010_parked_domain_events"
down_revision: str | None = "0009_callback_due_order"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "parked_domain_events"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("position", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retry_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_parked_domain_events_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parked_domain_events")),
        sa.UniqueConstraint("consumer", "position", name="uq_parked_domain_events_consumer_position"),
    )
    for statement in guards.ddl(op.get_context().dialect.name, (TABLE,), ()):
        op.execute(statement)


def downgrade() -> None:
    count = op.get_bind().execute(sa.text(f"SELECT count(*) FROM {TABLE}")).scalar()
    if count:
        raise RuntimeError(f"{TABLE} holds {count} rows (events that were parked); a downgrade would lose them")
    op.drop_table(TABLE)  # its no-delete triggers go with it
