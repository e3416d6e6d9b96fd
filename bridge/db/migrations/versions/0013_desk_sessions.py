"""Server-side sign-ins: ``desk_sessions``, one row per sign-in to the pages (desk or board).

The signed cookie carries the row's random ``token``; an ended row (signed out, expired, the
user disabled, replaced by a newer sign-in, ended by a supervisor) signs that cookie out at
once.  A row with an extension also says whether its operator is in the operator queue and
paused (``paused_reason``, ``paused_at``, ``paused_auto``: a pause the daemon made while a
callback is placed).  Cookies from before this revision carry no token: their holders sign in
once more.  Rows are never deleted by the application, but the table is not guarded (it is
no record of what was said or done to a caller).  Written by hand; it does not import the models.

Revision ID: 0013_desk_sessions
Revises: 0012_department_synonyms
Create Date: 2026-12-03
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_desk_sessions"
down_revision: str | None = "0012_department_synonyms"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _check(enum_name: str, column: str, values: list[str]) -> sa.CheckConstraint:
    quoted = ", ".join("'" + v + "'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({quoted})", name=op.f(f"ck_desk_sessions_{enum_name}"))


def upgrade() -> None:
    op.create_table(
        "desk_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("extension", sa.String(length=16), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.Column("ended_by_id", sa.Integer(), nullable=True),
        sa.Column("paused_reason", sa.String(length=32), nullable=True),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_auto", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_desk_sessions_user_id_users")),
        sa.ForeignKeyConstraint(["ended_by_id"], ["users.id"], name=op.f("fk_desk_sessions_ended_by_id_users")),
        _check("desksessionend", "end_reason",
               ["signed_out", "expired", "disabled", "replaced", "ended_by_supervisor"]),
        _check("pausereason", "paused_reason", ["break", "callback", "training"]),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desk_sessions")),
        sa.UniqueConstraint("token", name=op.f("uq_desk_sessions_token")),
    )
    op.create_index(op.f("ix_desk_sessions_user_id"), "desk_sessions", ["user_id"], unique=False)
    op.create_index("ix_desk_sessions_active", "desk_sessions", ["ended_at", "extension"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_desk_sessions_active", table_name="desk_sessions")
    op.drop_index(op.f("ix_desk_sessions_user_id"), table_name="desk_sessions")
    op.drop_table("desk_sessions")
