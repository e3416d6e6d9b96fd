"""The due tasks in the pool's order straight from an index: ``ix_callback_tasks_state_waiting``.

``due_tasks`` reads the tasks due now, the longest-waiting first (``ORDER BY waiting_since, id``).
With only ``ix_callback_tasks_state_due`` (state, due_at) both databases sorted every due task
to return 200 of them; with (state, waiting_since, id) the due ones come in order from the index
(SQLite, 100,000 tasks: p50 13.6 -> 2.3 ms; docs/performance.md).

Revision ID: 0009_callback_due_order
Revises: 0008_voice_callback
Create Date: 2026-12-03
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009_callback_due_order"
down_revision: str | None = "0008_voice_callback"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_callback_tasks_state_waiting", "callback_tasks", ["state", "waiting_since", "id"])


def downgrade() -> None:
    op.drop_index("ix_callback_tasks_state_waiting", table_name="callback_tasks")
