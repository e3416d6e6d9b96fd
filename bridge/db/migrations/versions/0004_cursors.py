"""Stored reading positions: where a reader of a durable stream stopped.

One row per reader, e.g. ``cel-recovery`` (the last Asterisk CEL row the call log's
recovery handled) or ``events:callbacks`` (the last case event a capability consumed).
A reader moves its row forward in the same transaction as the work it did, so a restart
resumes exactly where it stopped.  Written by hand in the style of 0001-0003.

Revision ID: 0004_cursors
Revises: 0003_call_takeover
Create Date: 2026-12-03
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_cursors"
down_revision: str | None = "0003_call_takeover"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('cursors',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('position', sa.String(length=200), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_cursors'))
    )


def downgrade() -> None:
    op.drop_table('cursors')
