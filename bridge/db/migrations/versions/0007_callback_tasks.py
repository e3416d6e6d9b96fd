"""Callback tasks and attempts as the issue "Callbacks" needs them, the do-not-call list and the SMS.

``callback_tasks`` and ``callback_attempts`` (0001) were placeholders that no code ever wrote;
they are replaced by the tables ``models.CallbackTask`` / ``CallbackAttempt`` describe now:

* a task has a reason (``answer``: one per answer, the unique ``answer_event_id``;
  ``missed_call``: one per call, the unique ``call_id``), the number to phone, its state
  (scheduled, due, in_progress, done, unreachable), its owner and holder, and its outcome;
* an attempt is one call placed, with the partial unique index ``uq_callback_attempts_live_task``
  (at most one attempt per task with ``ended_at`` NULL);
* ``do_not_call``: a number no task phones again until lifted (one active row per number);
* ``callback_messages``: the SMS of a given-up task (one per task);
* the index ``ix_calls_updated_at`` (the missed-call sweep reads calls changed since its cursor).

The upgrade refuses to run when the old tables hold rows (nothing may be lost; no release
ever wrote them).  All four are guarded like the rest of the history (never deleted).
Written by hand in the style of 0001; it does not import the models.

Revision ID: 0007_callback_tasks
Revises: 0006_best_time_choice
Create Date: 2026-12-03
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bridge.db import guards

revision: str = "0007_callback_tasks"
down_revision: str | None = "0006_best_time_choice"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEVER_DELETED = ("callback_tasks", "callback_attempts", "do_not_call", "callback_messages")
NEVER_UPDATED: tuple[str, ...] = ()
EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _check(table: str, enum_name: str, column: str, values: list[str]) -> sa.CheckConstraint:
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({quoted})", name=op.f(f"ck_{table}_{enum_name}"))


def _refuse_if_rows(*tables: str) -> None:
    connection = op.get_bind()
    for table in tables:
        rows = connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
        if rows:
            raise RuntimeError(f"{table} holds {rows} rows that migration 0007 would drop; no release wrote "
                               "this table, so export them and ask the maintainers before upgrading")


def _drop_guarded(table: str) -> None:
    op.drop_table(table)  # its no-delete triggers go with it (both backends); the shared function stays


def upgrade() -> None:
    _refuse_if_rows("callback_attempts", "callback_tasks")
    op.drop_index(op.f("ix_callback_attempts_task_id"), table_name="callback_attempts")
    _drop_guarded("callback_attempts")
    op.drop_index(op.f("ix_callback_tasks_state_due"), table_name="callback_tasks")
    op.drop_index(op.f("ix_callback_tasks_case_id"), table_name="callback_tasks")
    _drop_guarded("callback_tasks")

    outcomes = ["informed", "follow_up", "wrong_number", "do_not_call", "voicemail", "superseded", "handled"]
    op.create_table(
        "callback_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("answer_event_id", EVENT_ID, nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("held_by_id", sa.Integer(), nullable=True),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("needs_check", sa.String(length=32), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("satisfaction", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["answer_event_id"], ["case_events.id"],
                                name=op.f("fk_callback_tasks_answer_event_id_case_events")),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name=op.f("fk_callback_tasks_call_id_calls")),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_callback_tasks_case_id_cases")),
        sa.ForeignKeyConstraint(["held_by_id"], ["users.id"], name=op.f("fk_callback_tasks_held_by_id_users")),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_callback_tasks_owner_id_users")),
        _check("callback_tasks", "callbackreason", "reason", ["answer", "missed_call"]),
        _check("callback_tasks", "callbackstate", "state", ["scheduled", "due", "in_progress", "done", "unreachable"]),
        _check("callback_tasks", "callbackcheck", "needs_check", ["check_number", "check_attempt"]),
        _check("callback_tasks", "callbackoutcome", "outcome", outcomes),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_tasks")),
        sa.UniqueConstraint("answer_event_id", name=op.f("uq_callback_tasks_answer_event_id")),
        sa.UniqueConstraint("call_id", name=op.f("uq_callback_tasks_call_id")),
    )
    op.create_index(op.f("ix_callback_tasks_case_id"), "callback_tasks", ["case_id"], unique=False)
    op.create_index(op.f("ix_callback_tasks_owner_id"), "callback_tasks", ["owner_id"], unique=False)
    op.create_index(op.f("ix_callback_tasks_phone"), "callback_tasks", ["phone"], unique=False)
    op.create_index("ix_callback_tasks_state_due", "callback_tasks", ["state", "due_at"], unique=False)

    op.create_table(
        "callback_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=96), nullable=False),
        sa.Column("dialler", sa.String(length=16), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=True),
        sa.Column("extension", sa.String(length=16), nullable=True),
        sa.Column("answer_event_id", EVENT_ID, nullable=True),
        sa.Column("linkedid", sa.String(length=64), nullable=True),
        sa.Column("remote_id", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.String(length=32), nullable=True),
        sa.Column("hangup_cause", sa.Integer(), nullable=True),
        sa.Column("settled_by", sa.String(length=16), nullable=True),
        sa.Column("recording", sa.String(length=255), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("satisfaction", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["operator_id"], ["users.id"], name=op.f("fk_callback_attempts_operator_id_users")),
        sa.ForeignKeyConstraint(["task_id"], ["callback_tasks.id"],
                                name=op.f("fk_callback_attempts_task_id_callback_tasks")),
        _check("callback_attempts", "callbackattemptresult", "result",
               ["answered", "busy", "no_answer", "failed", "operator_no_answer", "unknown"]),
        _check("callback_attempts", "callbackoutcome", "outcome", outcomes),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_attempts")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_callback_attempts_idempotency_key")),
    )
    op.create_index(op.f("ix_callback_attempts_task_id"), "callback_attempts", ["task_id"], unique=False)
    op.create_index(op.f("ix_callback_attempts_linkedid"), "callback_attempts", ["linkedid"], unique=False)
    op.create_index("uq_callback_attempts_live_task", "callback_attempts", ["task_id"], unique=True,
                    sqlite_where=sa.text("ended_at IS NULL"), postgresql_where=sa.text("ended_at IS NULL"))

    op.create_table(
        "do_not_call",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("set_by_id", sa.Integer(), nullable=True),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("lifted_by_id", sa.Integer(), nullable=True),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["lifted_by_id"], ["users.id"], name=op.f("fk_do_not_call_lifted_by_id_users")),
        sa.ForeignKeyConstraint(["set_by_id"], ["users.id"], name=op.f("fk_do_not_call_set_by_id_users")),
        sa.ForeignKeyConstraint(["task_id"], ["callback_tasks.id"], name=op.f("fk_do_not_call_task_id_callback_tasks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_do_not_call")),
    )
    op.create_index(op.f("ix_do_not_call_phone"), "do_not_call", ["phone"], unique=False)
    op.create_index("uq_do_not_call_active_phone", "do_not_call", ["phone"], unique=True,
                    sqlite_where=sa.text("lifted_at IS NULL"), postgresql_where=sa.text("lifted_at IS NULL"))

    op.create_table(
        "callback_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("remote_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["task_id"], ["callback_tasks.id"],
                                name=op.f("fk_callback_messages_task_id_callback_tasks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_messages")),
        sa.UniqueConstraint("task_id", name=op.f("uq_callback_messages_task_id")),
    )

    # The missed-call sweep reads the calls changed since its cursor.
    op.create_index(op.f("ix_calls_updated_at"), "calls", ["updated_at"], unique=False)

    for statement in guards.ddl(op.get_context().dialect.name, NEVER_DELETED, NEVER_UPDATED):
        op.execute(statement)


def downgrade() -> None:
    op.drop_index(op.f("ix_calls_updated_at"), table_name="calls")
    _refuse_if_rows("callback_messages", "do_not_call", "callback_attempts", "callback_tasks")
    for table in ("callback_messages", "do_not_call", "callback_attempts", "callback_tasks"):
        _drop_guarded(table)  # (its indexes go with it)
    op.create_table(
        "callback_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_user_id", sa.Integer(), nullable=True),
        sa.Column("attempts_count", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["assigned_user_id"], ["users.id"],
                                name=op.f("fk_callback_tasks_assigned_user_id_users")),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_callback_tasks_case_id_cases")),
        _check("callback_tasks", "callbackstate", "state", ["pending", "in_progress", "done", "gave_up", "cancelled"]),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_tasks")),
    )
    op.create_index(op.f("ix_callback_tasks_case_id"), "callback_tasks", ["case_id"], unique=False)
    op.create_index(op.f("ix_callback_tasks_state_due"), "callback_tasks", ["state", "due_at"], unique=False)
    op.create_table(
        "callback_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=96), nullable=False),
        sa.Column("dialler", sa.String(length=16), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=True),
        sa.Column("remote_id", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["operator_id"], ["users.id"], name=op.f("fk_callback_attempts_operator_id_users")),
        sa.ForeignKeyConstraint(["task_id"], ["callback_tasks.id"],
                                name=op.f("fk_callback_attempts_task_id_callback_tasks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_attempts")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_callback_attempts_idempotency_key")),
    )
    op.create_index(op.f("ix_callback_attempts_task_id"), "callback_attempts", ["task_id"], unique=False)
    for statement in guards.ddl(op.get_context().dialect.name, ("callback_tasks", "callback_attempts"), ()):
        op.execute(statement)
