"""Initial schema: every table of bridge/db/models.py, and the no-delete guards.

Generated with autogenerate against PostgreSQL, then reviewed by hand:
constraint and index names follow models.NAMING_CONVENTION and are written out
(op.f marks them final); enum columns are VARCHAR(32) with a named CHECK, as
models._enum declares them; times are TIMESTAMP WITH TIME ZONE (models.UtcDateTime
keeps UTC on SQLite).  Nothing here imports the models: this revision must keep
creating the same schema whatever the models become.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-26
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bridge.db import guards

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of models.NEVER_DELETED / NEVER_UPDATED as of this revision; a later
# revision that guards another table runs guards.ddl() with its own list.
NEVER_DELETED = (
    "departments", "users", "calls", "cases", "case_events",
    "forum_outbox", "callback_tasks", "callback_attempts",
)
NEVER_UPDATED = ("case_events",)


def _check(table: str, enum_name: str, column: str, values: list[str]) -> sa.CheckConstraint:
    """The CHECK a non-native models._enum column carries (named ck_<table>_<enum name>)."""
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({quoted})", name=op.f(f"ck_{table}_{enum_name}"))


def upgrade() -> None:
    op.create_table('case_number_counters',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('year', name=op.f('pk_case_number_counters'))
    )
    op.create_table('departments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('pinyin_initials', sa.String(length=64), nullable=False),
    sa.Column('keywords', sa.Text(), nullable=False),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    _check('departments', 'departmentkind', 'kind', ['city_department', 'county_government', 'community']),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_departments')),
    sa.UniqueConstraint('code', name=op.f('uq_departments_code'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=120), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('extension', sa.String(length=16), nullable=True),
    sa.Column('department_id', sa.Integer(), nullable=True),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_users_department_id_departments')),
    _check('users', 'role', 'role', ['operator', 'supervisor', 'admin', 'spokesperson']),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    op.create_table('calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('linkedid', sa.String(length=64), nullable=False),
    sa.Column('caller_number', sa.String(length=32), nullable=False),
    sa.Column('caller_name', sa.String(length=120), nullable=False),
    sa.Column('dialled_number', sa.String(length=32), nullable=False),
    sa.Column('arrived_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('queue_wait_s', sa.Double(), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('operator_id', sa.Integer(), nullable=True),
    sa.Column('extension', sa.String(length=16), nullable=True),
    sa.Column('talk_s', sa.Double(), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('hangup_cause', sa.Integer(), nullable=True),
    sa.Column('hangup_cause_text', sa.String(length=64), nullable=True),
    sa.Column('disposition', sa.String(length=32), nullable=False),
    sa.Column('recording', sa.String(length=255), nullable=True),
    sa.Column('message_file', sa.String(length=255), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['operator_id'], ['users.id'], name=op.f('fk_calls_operator_id_users')),
    _check('calls', 'calldisposition', 'disposition', ['in_progress', 'answered', 'abandoned', 'after_hours_message', 'status_line', 'failed']),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calls')),
    sa.UniqueConstraint('linkedid', name=op.f('uq_calls_linkedid'))
    )
    op.create_index(op.f('ix_calls_arrived_at'), 'calls', ['arrived_at'], unique=False)
    op.create_index(op.f('ix_calls_caller_number'), 'calls', ['caller_number'], unique=False)
    op.create_table('cases',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('department_id', sa.Integer(), nullable=False),
    sa.Column('caller_surname', sa.String(length=16), nullable=False),
    sa.Column('caller_honorific', sa.String(length=32), nullable=False),
    sa.Column('location', sa.String(length=200), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('caller_full_name', sa.String(length=64), nullable=False),
    sa.Column('caller_phone', sa.String(length=32), nullable=False),
    sa.Column('caller_phone_alt', sa.String(length=32), nullable=False),
    sa.Column('best_time', sa.String(length=120), nullable=False),
    sa.Column('callback_wanted', sa.Boolean(), nullable=False),
    sa.Column('sms_consent', sa.Boolean(), nullable=False),
    sa.Column('operator_notes', sa.Text(), nullable=False),
    sa.Column('forum_post_id', sa.String(length=64), nullable=True),
    sa.Column('forum_url', sa.String(length=500), nullable=True),
    sa.Column('deadline_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_cases_call_id_calls')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_cases_created_by_id_users')),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_cases_department_id_departments')),
    _check('cases', 'casechannel', 'channel', ['phone', 'walk_in', 'message', 'email']),
    _check('cases', 'casestate', 'state', ['queued', 'posted', 'accepted', 'forwarded', 'answered', 'reopened', 'closed']),
    _check('cases', 'honorific', 'caller_honorific', ['女士', '先生']),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cases')),
    sa.UniqueConstraint('number', name=op.f('uq_cases_number'))
    )
    op.create_index(op.f('ix_cases_caller_phone'), 'cases', ['caller_phone'], unique=False)
    op.create_index(op.f('ix_cases_created_at'), 'cases', ['created_at'], unique=False)
    op.create_index(op.f('ix_cases_department_id'), 'cases', ['department_id'], unique=False)
    op.create_index(op.f('ix_cases_state'), 'cases', ['state'], unique=False)
    op.create_table('callback_tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('assigned_user_id', sa.Integer(), nullable=True),
    sa.Column('attempts_count', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['assigned_user_id'], ['users.id'], name=op.f('fk_callback_tasks_assigned_user_id_users')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_callback_tasks_case_id_cases')),
    _check('callback_tasks', 'callbackstate', 'state', ['pending', 'in_progress', 'done', 'gave_up', 'cancelled']),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_callback_tasks'))
    )
    op.create_index(op.f('ix_callback_tasks_case_id'), 'callback_tasks', ['case_id'], unique=False)
    op.create_index(op.f('ix_callback_tasks_state_due'), 'callback_tasks', ['state', 'due_at'], unique=False)
    op.create_table('case_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=48), nullable=False),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('source_event_id', sa.String(length=128), nullable=True),
    sa.ForeignKeyConstraint(['actor_user_id'], ['users.id'], name=op.f('fk_case_events_actor_user_id_users')),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_events_case_id_cases')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_events')),
    sa.UniqueConstraint('source_event_id', name=op.f('uq_case_events_source_event_id'))
    )
    op.create_index(op.f('ix_case_events_case_id'), 'case_events', ['case_id'], unique=False)
    op.create_table('forum_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.Integer(), nullable=False),
    sa.Column('operation', sa.String(length=32), nullable=False),
    sa.Column('idempotency_key', sa.String(length=96), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('remote_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_forum_outbox_case_id_cases')),
    _check('forum_outbox', 'outboxstate', 'state', ['pending', 'sent', 'failed']),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_forum_outbox')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_forum_outbox_idempotency_key'))
    )
    op.create_index(op.f('ix_forum_outbox_case_id'), 'forum_outbox', ['case_id'], unique=False)
    op.create_index(op.f('ix_forum_outbox_state'), 'forum_outbox', ['state'], unique=False)
    op.create_table('callback_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=96), nullable=False),
    sa.Column('dialler', sa.String(length=16), nullable=False),
    sa.Column('operator_id', sa.Integer(), nullable=True),
    sa.Column('remote_id', sa.String(length=64), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['operator_id'], ['users.id'], name=op.f('fk_callback_attempts_operator_id_users')),
    sa.ForeignKeyConstraint(['task_id'], ['callback_tasks.id'], name=op.f('fk_callback_attempts_task_id_callback_tasks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_callback_attempts')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_callback_attempts_idempotency_key'))
    )
    op.create_index(op.f('ix_callback_attempts_task_id'), 'callback_attempts', ['task_id'], unique=False)

    # History is never deleted (nor case events updated): see bridge/db/guards.py.
    for statement in guards.ddl(op.get_context().dialect.name, NEVER_DELETED, NEVER_UPDATED):
        op.execute(statement)


def downgrade() -> None:
    for statement in guards.drop_ddl(op.get_context().dialect.name, NEVER_DELETED, NEVER_UPDATED):
        op.execute(statement)
    op.drop_index(op.f('ix_callback_attempts_task_id'), table_name='callback_attempts')
    op.drop_table('callback_attempts')
    op.drop_index(op.f('ix_forum_outbox_state'), table_name='forum_outbox')
    op.drop_index(op.f('ix_forum_outbox_case_id'), table_name='forum_outbox')
    op.drop_table('forum_outbox')
    op.drop_index(op.f('ix_case_events_case_id'), table_name='case_events')
    op.drop_table('case_events')
    op.drop_index(op.f('ix_callback_tasks_state_due'), table_name='callback_tasks')
    op.drop_index(op.f('ix_callback_tasks_case_id'), table_name='callback_tasks')
    op.drop_table('callback_tasks')
    op.drop_index(op.f('ix_cases_state'), table_name='cases')
    op.drop_index(op.f('ix_cases_department_id'), table_name='cases')
    op.drop_index(op.f('ix_cases_created_at'), table_name='cases')
    op.drop_index(op.f('ix_cases_caller_phone'), table_name='cases')
    op.drop_table('cases')
    op.drop_index(op.f('ix_calls_caller_number'), table_name='calls')
    op.drop_index(op.f('ix_calls_arrived_at'), table_name='calls')
    op.drop_table('calls')
    op.drop_table('api_tokens')
    op.drop_table('users')
    op.drop_table('departments')
    op.drop_table('case_number_counters')
