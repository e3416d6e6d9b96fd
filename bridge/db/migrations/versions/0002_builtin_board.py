"""The builtin forum board: posts, replies, events (never deleted) and the polling cursors.

Written by hand in the style of 0001 (names from models.NAMING_CONVENTION, enums as
VARCHAR(32) with a named CHECK, times with time zone); it does not import the models.

Revision ID: 0002_builtin_board
Revises: 0001_initial
Create Date: 2026-11-27
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bridge.db import guards

revision: str = "0002_builtin_board"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The guards this revision adds (frozen copies, as in 0001).
NEVER_DELETED = ("board_posts", "board_replies", "board_events")
NEVER_UPDATED = ("board_replies", "board_events")


def upgrade() -> None:
    op.create_table('board_posts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_number', sa.String(length=32), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('origin_department_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('author', sa.String(length=120), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'],
                            name=op.f('fk_board_posts_department_id_departments')),
    sa.ForeignKeyConstraint(['origin_department_id'], ['departments.id'],
                            name=op.f('fk_board_posts_origin_department_id_departments')),
    sa.CheckConstraint("state IN ('open', 'accepted', 'answered', 'follow_up')",
                       name=op.f('ck_board_posts_boardpoststate')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_board_posts')),
    sa.UniqueConstraint('case_number', name=op.f('uq_board_posts_case_number'))
    )
    op.create_index(op.f('ix_board_posts_department_id'), 'board_posts', ['department_id'], unique=False)
    op.create_index(op.f('ix_board_posts_state'), 'board_posts', ['state'], unique=False)
    op.create_index(op.f('ix_board_posts_created_at'), 'board_posts', ['created_at'], unique=False)
    op.create_table('board_replies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('author', sa.String(length=120), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=96), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['post_id'], ['board_posts.id'], name=op.f('fk_board_replies_post_id_board_posts')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'],
                            name=op.f('fk_board_replies_department_id_departments')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_board_replies_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_board_replies')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_board_replies_idempotency_key'))
    )
    op.create_index(op.f('ix_board_replies_post_id'), 'board_replies', ['post_id'], unique=False)
    op.create_table('board_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('reply_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('case_number', sa.String(length=32), nullable=False),
    sa.Column('unit_code', sa.String(length=32), nullable=False),
    sa.Column('to_unit_code', sa.String(length=32), nullable=True),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['post_id'], ['board_posts.id'], name=op.f('fk_board_events_post_id_board_posts')),
    sa.ForeignKeyConstraint(['reply_id'], ['board_replies.id'],
                            name=op.f('fk_board_events_reply_id_board_replies')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_board_events'))
    )
    op.create_index(op.f('ix_board_events_post_id'), 'board_events', ['post_id'], unique=False)
    op.create_table('forum_cursors',
    sa.Column('backend', sa.String(length=32), nullable=False),
    sa.Column('cursor', sa.String(length=200), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('backend', name=op.f('pk_forum_cursors'))
    )

    for statement in guards.ddl(op.get_context().dialect.name, NEVER_DELETED, NEVER_UPDATED):
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    for statement in guards.drop_ddl(dialect, NEVER_DELETED, NEVER_UPDATED):
        if dialect == "postgresql" and statement.startswith("DROP FUNCTION"):
            continue  # 0001's tables still use the shared trigger function
        op.execute(statement)
    op.drop_table('forum_cursors')
    op.drop_index(op.f('ix_board_events_post_id'), table_name='board_events')
    op.drop_table('board_events')
    op.drop_index(op.f('ix_board_replies_post_id'), table_name='board_replies')
    op.drop_table('board_replies')
    op.drop_index(op.f('ix_board_posts_created_at'), table_name='board_posts')
    op.drop_index(op.f('ix_board_posts_state'), table_name='board_posts')
    op.drop_index(op.f('ix_board_posts_department_id'), table_name='board_posts')
    op.drop_table('board_posts')
