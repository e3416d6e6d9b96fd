"""The data set of issue 12's "Speed": two years of a busy hotline, generated inside PostgreSQL.

    .venv/bin/python -m bench.reports_data [--cases 1000000] [--rebuild] [--database bench_reports]

1,000,000 cases over 730 days (a month holds about 41,000) spread unevenly over the 108 shipped
units, with their timelines in ``case_events`` as the forum service and the callbacks write them
(``filed``, ``posted`` with ``detail.department`` and ``detail.due_at``, 0-3 ``forwarded`` with
``detail.unit`` / ``to_unit`` / ``due_at``, ``accepted`` with the answer's ``due_at``, ``answered``,
``follow_up_asked`` / ``follow_up_answered``, ``overdue`` flags for the steps that passed their
deadline, ``callback_scheduled`` / ``callback_outcome`` / ``callback_unreachable``); 1.5 calls per
case (answered, abandoned in the queue, hung up in the menu, after-hours messages, failed, the
status line); a callback task per answer the caller wanted to hear (and one per missed call),
about 1,000,000 attempts with results, outcomes and grades; 40 operators, supervisors, an admin,
spokespeople.  Events dated after "now" (the generation time) are left out, so the newest cases
are still open, as on a live site; a few old ones were never accepted or never answered (overdue
now).

The schema is the project's own (``bridge.db.migrate.upgrade``, i.e. Alembic to head); the rows are
``INSERT ... SELECT FROM generate_series`` statements (no ORM row by row), with the table's plain
indexes dropped during the load and created again after it (the same definitions), foreign keys and
the never-delete triggers not fired for this session (``session_replication_role = replica``), then
``ANALYZE``.  The database (``bench_reports`` on ``$HOTLINE_BRIDGE_TEST_PG_URL``'s server, by default
127.0.0.1:5432) is kept between runs: a second run with the same ``--cases`` reuses it;
``--rebuild`` drops and makes it again.  ``bench_meta`` in it records the size and "now".
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from datetime import datetime, timezone

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_URL_ENV = "HOTLINE_BRIDGE_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_DATABASE = "bench_reports"
DAYS = 730
ZONE = "Asia/Shanghai"
OPERATORS = 40
SLOTS = 16  # case_events ids: case_id * SLOTS + the slot of the step (one event per slot at most)
SLOT = {"filed": 0, "posted": 1, "forwarded": 2, "accepted": 5, "answered": 6, "cb_scheduled": 7, "cb_outcome": 8,
        "follow_up_asked": 9, "follow_up_answered": 10, "fu_cb_scheduled": 11, "fu_cb_outcome": 12,
        "overdue_accept": 13, "overdue_answer": 14, "overdue_follow_up": 15}
LOADED = ("calls", "cases", "case_events", "callback_tasks", "callback_attempts")
MISSED_TASKS_FROM = 10_000_000  # missed-call task ids: this + the call's id (answer tasks: case id * 2 + 0/1)


def log(message: str) -> None:
    print(message, flush=True)


def database_url(name: str) -> str:
    base = make_url(os.environ.get(PG_URL_ENV, DEFAULT_PG_URL))
    return base.set(database=name).render_as_string(hide_password=False)


def admin_engine():
    return create_engine(os.environ.get(PG_URL_ENV, DEFAULT_PG_URL), isolation_level="AUTOCOMMIT")


def exists(name: str) -> bool:
    engine = admin_engine()
    with engine.connect() as connection:
        found = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
    engine.dispose()
    return found is not None


def recreate(name: str) -> None:
    if name in ("test", "postgres", "template0", "template1"):
        raise SystemExit(f"refusing to drop the database {name!r}: choose one of your own")
    engine = admin_engine()
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()


def meta(url: str) -> dict | None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            if connection.execute(text("SELECT to_regclass('bench_meta')")).scalar() is None:
                return None
            row = connection.execute(text("SELECT cases, now, took_s FROM bench_meta")).mappings().first()
            return dict(row) if row else None
    finally:
        engine.dispose()


# ------------------------------------------------------------------ SQL


def _iso(expression: str) -> str:
    """A UTC time as the forum service writes ``detail.due_at`` (``datetime.isoformat()`` of a
    whole-second UTC time)."""
    return f"to_char(({expression}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"')"


def _acceptance_due(at: str) -> str:
    """2 hours for a post in office hours on a weekday (08:30-15:30 leaves 2 office hours the same
    day, lunch aside), else 24 hours: close to the platform's rule, and it is written, not recomputed."""
    local = f"(({at}) AT TIME ZONE '{ZONE}')"
    return (f"CASE WHEN extract(isodow FROM {local}) < 6 AND {local}::time BETWEEN '08:30' AND '15:30' "
            f"THEN ({at}) + interval '2 hours' ELSE ({at}) + interval '24 hours' END")


def plan_sql() -> list[str]:
    """The staging tables: calls, then each case's plan (its times), then the callback tasks."""
    return [
        "DROP TABLE IF EXISTS bench_units, bench_calls, bench_plan, bench_steps, bench_tasks",
        "CREATE UNLOGGED TABLE bench_units AS SELECT row_number() OVER (ORDER BY id) - 1 AS idx, id, code, name "
        "FROM departments WHERE retired_at IS NULL",
        # calls: 90 % between 08:00 and 20:00 local (the hotline's staffed hours), the rest at night
        f"""CREATE UNLOGGED TABLE bench_calls AS
        WITH g AS (
          SELECT g AS id, floor(random() * {DAYS})::int AS day, random() AS r_tod, random() AS r_day,
                 random() AS r_disp, random() AS r_wait, random() AS r_talk, floor(random() * {OPERATORS})::int AS op
          FROM generate_series(1, %(calls)s) g
        ), t AS (
          SELECT *, CASE WHEN r_day < 0.9 THEN 8 * 3600 + r_tod * 12 * 3600 ELSE r_tod * 86400 END AS tod FROM g
        )
        SELECT id, op, date_trunc('second', ((%(first_day)s::date + day)::timestamp AT TIME ZONE '{ZONE}')
                                 + make_interval(secs => tod)) AS arrived_at,
               CASE WHEN tod BETWEEN 8 * 3600 AND 20 * 3600 THEN
                      CASE WHEN r_disp < 0.84 THEN 'answered' WHEN r_disp < 0.91 THEN 'abandoned'
                           WHEN r_disp < 0.97 THEN 'hung_up_in_menu' WHEN r_disp < 0.99 THEN 'failed'
                           ELSE 'status_line' END
                    ELSE CASE WHEN r_disp < 0.65 THEN 'after_hours_message' WHEN r_disp < 0.95 THEN 'hung_up_in_menu'
                              ELSE 'failed' END END AS disposition,
               round((-ln(1 - r_wait * 0.999) * 7)::numeric, 1)::float AS wait_s,
               round((60 + r_talk * r_talk * 900)::numeric, 1)::float AS talk_s
        FROM t""",
        "ALTER TABLE bench_calls ADD PRIMARY KEY (id)",
        # the cases: 90 % filed from an answered call, the rest from other channels, numbered by filing time
        f"""CREATE UNLOGGED TABLE bench_plan AS
        WITH from_calls AS (
          SELECT id AS call_id, op, arrived_at + make_interval(secs => 20 + wait_s + talk_s * 0.8) AS filed_at
          FROM bench_calls WHERE disposition = 'answered' ORDER BY random() LIMIT %(from_calls)s
        ), other AS (
          SELECT NULL::int AS call_id, floor(random() * {OPERATORS})::int AS op,
                 date_trunc('second', %(first_day)s::date::timestamp AT TIME ZONE '{ZONE}'
                          + make_interval(secs => random() * {DAYS} * 86400)) AS filed_at
          FROM generate_series(1, %(other)s)
        ), all_cases AS (SELECT * FROM from_calls UNION ALL SELECT * FROM other)
        SELECT row_number() OVER (ORDER BY filed_at, call_id) AS case_id, call_id, op,
               date_trunc('second', filed_at) AS filed_at,
               floor((%(units)s * power(random(), 1.7)))::int AS u0, floor(random() * %(units)s)::int AS u1,
               floor(random() * %(units)s)::int AS u2, floor(random() * %(units)s)::int AS u3,
               random() AS r_fw, random() AS r_fw_t, random() AS r_acc, random() AS r_acc_t, random() AS r_ans,
               random() AS r_ans_t, random() AS r_fu, random() AS r_fu_t, random() AS r_cb, random() AS r_stall,
               random() AS r_chan
        FROM all_cases""",
        "ALTER TABLE bench_plan ADD PRIMARY KEY (case_id)",
        # each step's time and due time; forwards: 15 % once, 4 % twice, 1 % three times
        f"""CREATE UNLOGGED TABLE bench_steps AS
        WITH p AS (
          SELECT *, CASE WHEN r_fw < 0.01 THEN 3 WHEN r_fw < 0.05 THEN 2 WHEN r_fw < 0.20 THEN 1 ELSE 0 END AS forwards,
                 date_trunc('second', filed_at + make_interval(secs => 30 + r_fw_t * 150)) AS posted
          FROM bench_plan
        ), p1 AS MATERIALIZED (
          SELECT *, {_acceptance_due('posted')} AS posted_due FROM p
        ), f1 AS MATERIALIZED (
          SELECT *, CASE WHEN forwards >= 1 THEN date_trunc('second', posted + (posted_due - posted) * (0.1 + 0.5 * r_fw_t)) END AS fw1 FROM p1
        ), f1d AS MATERIALIZED (SELECT *, {_acceptance_due('fw1')} AS fw1_due FROM f1
        ), f2 AS MATERIALIZED (SELECT *, CASE WHEN forwards >= 2 THEN date_trunc('second', fw1 + (fw1_due - fw1) * (0.1 + 0.4 * r_acc_t)) END AS fw2 FROM f1d
        ), f2d AS MATERIALIZED (SELECT *, {_acceptance_due('fw2')} AS fw2_due FROM f2
        ), f3 AS MATERIALIZED (SELECT *, CASE WHEN forwards >= 3 THEN date_trunc('second', fw2 + (fw2_due - fw2) * (0.1 + 0.4 * r_ans_t)) END AS fw3 FROM f2d
        ), f3d AS MATERIALIZED (SELECT *, {_acceptance_due('fw3')} AS fw3_due FROM f3
        ), a AS MATERIALIZED (
          SELECT *, coalesce(fw3, fw2, fw1, posted) AS reached, coalesce(fw3_due, fw2_due, fw1_due, posted_due) AS acc_due,
                 (ARRAY[u0, u1, u2, u3])[forwards + 1] AS unit_idx
          FROM f3d
        ), acc AS MATERIALIZED (  -- 85 % accepted in time; 0.15 % never accepted
          SELECT *, CASE WHEN r_stall < 0.0015 THEN NULL
                         WHEN r_acc < 0.85 THEN date_trunc('second', reached + (acc_due - reached) * (0.02 + 0.93 * r_acc_t))
                         ELSE date_trunc('second', acc_due + make_interval(secs => 600 + r_acc_t * 30 * 3600)) END AS accepted
          FROM a
        ), ans AS MATERIALIZED (  -- 88 % answered within 3 days; 0.3 % accepted and never answered
          SELECT *, accepted + interval '72 hours' AS ans_due,
                 CASE WHEN accepted IS NULL OR r_stall < 0.0045 THEN NULL
                      WHEN r_ans < 0.88 THEN date_trunc('second', accepted + interval '72 hours' * (0.03 + 0.9 * r_ans_t))
                      ELSE date_trunc('second', accepted + interval '72 hours' + make_interval(secs => 1800 + r_ans_t * 96 * 3600)) END
                   AS answered
          FROM acc
        ), fu AS MATERIALIZED (  -- 8 % of the answers bring a follow-up question, answered (90 % within 3 days)
          SELECT *, CASE WHEN answered IS NOT NULL AND r_fu < 0.08
                         THEN date_trunc('second', answered + make_interval(secs => 86400 * (1 + 6 * r_fu_t))) END AS fu_asked
          FROM ans
        )
        SELECT case_id, call_id, op, filed_at, forwards, u0, u1, u2, u3, unit_idx, r_cb, r_chan, r_fu, r_fu_t,
               posted, posted_due, fw1, fw1_due, fw2, fw2_due, fw3, fw3_due, acc_due, accepted, ans_due, answered,
               fu_asked, fu_asked + interval '72 hours' AS fu_due,
               CASE WHEN fu_asked IS NOT NULL THEN
                 CASE WHEN r_fu < 0.072 THEN date_trunc('second', fu_asked + interval '72 hours' * (0.05 + 0.9 * r_fu_t))
                      ELSE date_trunc('second', fu_asked + interval '80 hours' + interval '48 hours' * r_fu_t) END END
                 AS fu_answered
        FROM fu""",
        "ALTER TABLE bench_steps ADD PRIMARY KEY (case_id)",
        # nothing after now: the newest cases are still open
        """UPDATE bench_steps SET
             posted = CASE WHEN posted <= %(now)s THEN posted END,
             fw1 = CASE WHEN fw1 <= %(now)s THEN fw1 END, fw2 = CASE WHEN fw2 <= %(now)s THEN fw2 END,
             fw3 = CASE WHEN fw3 <= %(now)s THEN fw3 END, accepted = CASE WHEN accepted <= %(now)s THEN accepted END,
             answered = CASE WHEN answered <= %(now)s THEN answered END,
             fu_asked = CASE WHEN fu_asked <= %(now)s THEN fu_asked END,
             fu_answered = CASE WHEN fu_answered <= %(now)s THEN fu_answered END
           WHERE fu_answered > %(now)s OR filed_at > %(now)s - interval '20 days'""",
        "UPDATE bench_steps SET fw2 = NULL WHERE fw1 IS NULL AND fw2 IS NOT NULL",
        "UPDATE bench_steps SET fw3 = NULL WHERE fw2 IS NULL AND fw3 IS NOT NULL",
        "UPDATE bench_steps SET accepted = NULL, answered = NULL, fu_asked = NULL, fu_answered = NULL "
        "WHERE forwards > 0 AND coalesce(fw3, fw2, fw1) IS NULL AND accepted IS NOT NULL",
        # the callback tasks: one per answer the caller wanted to hear (45 % of the cases)
        f"""CREATE UNLOGGED TABLE bench_tasks AS
        WITH answers AS (
          SELECT case_id * 2 AS id, case_id, case_id * {SLOTS} + {SLOT['answered']} AS answer_event_id, answered AS at,
                 op, r_cb AS r FROM bench_steps WHERE answered IS NOT NULL AND r_cb < 0.45
          UNION ALL
          SELECT case_id * 2 + 1, case_id, case_id * {SLOTS} + {SLOT['follow_up_answered']}, fu_answered, op, r_fu_t
          FROM bench_steps WHERE fu_answered IS NOT NULL AND r_cb < 0.45
        ), shaped AS MATERIALIZED (
          SELECT *, date_trunc('second', at + make_interval(secs => 600 + (r * 7919 - floor(r * 7919)) * 3 * 3600)) AS due_at,
                 (r * 104729 - floor(r * 104729)) AS r2, (r * 1299709 - floor(r * 1299709)) AS r3
          FROM answers
        ), outcome AS MATERIALIZED (
          SELECT *, CASE WHEN r2 < 0.86 THEN 'informed' WHEN r2 < 0.92 THEN 'unreachable' WHEN r2 < 0.95 THEN 'follow_up'
                         WHEN r2 < 0.97 THEN 'do_not_call' WHEN r2 < 0.98 THEN 'wrong_number' ELSE 'informed' END AS planned
          FROM shaped
        ), counted AS MATERIALIZED (
          SELECT *, CASE WHEN planned = 'unreachable' THEN 5 WHEN planned = 'informed' THEN
                           CASE WHEN r3 < 0.6 THEN 1 WHEN r3 < 0.85 THEN 2 ELSE 3 END
                         ELSE CASE WHEN r3 < 0.7 THEN 1 ELSE 2 END END AS n
          FROM outcome
        )
        SELECT *, due_at + make_interval(secs => (n - 1) * 7200 + 120) AS completed,
               CASE WHEN r3 < 0.45 THEN 5 WHEN r3 < 0.75 THEN 4 WHEN r3 < 0.90 THEN 3 WHEN r3 < 0.96 THEN 2 ELSE 1 END
                 AS grade
        FROM counted""",
        "ALTER TABLE bench_tasks ADD PRIMARY KEY (id)",
    ]


def _event(slot: str, kind: str, at: str, actor: str, detail: str, where: str, source: str | None = "NULL") -> str:
    return (f"INSERT INTO case_events (id, case_id, at, kind, actor_user_id, actor, detail, source_event_id) "
            f"SELECT s.case_id * {SLOTS} + {SLOT[slot]}, s.case_id, {at}, '{kind}', NULL, {actor}, {detail}, {source} "
            f"FROM bench_steps s JOIN cases c ON c.id = s.case_id "
            f"JOIN bench_units u0 ON u0.idx = s.u0 JOIN bench_units uf ON uf.idx = s.unit_idx WHERE {where}")


def _forum(kind: str, unit: str, sequence: int, extra: str = "") -> str:
    return (f"json_build_object('unit', {unit}, 'actor', '王芳', 'forum_event', '{kind}'{extra}, "
            f"'sequence', {sequence})")


def load_sql() -> list[str]:
    """The rows, from the staging tables."""
    unit_of = {k: f"(SELECT code FROM bench_units WHERE idx = s.u{k})" for k in range(4)}
    answer_text = "'您好，您反映的问题已交由相关部门办理，处理结果如下：已安排工作人员现场核实并整改。'"
    statements = [
        f"""INSERT INTO users (id, username, display_name, role, extension, department_id, password_hash, created_at)
        SELECT 101 + k, 'op' || lpad((k + 1)::text, 2, '0'), '话务员' || lpad((k + 1)::text, 2, '0'), 'operator',
               (8001 + k)::text, NULL::int, '!', %(first)s FROM generate_series(0, {OPERATORS - 1}) k
        UNION ALL SELECT 201 + k, 'sup' || (k + 1), '班长' || (k + 1), 'supervisor', NULL, NULL, '!', %(first)s
        FROM generate_series(0, 2) k
        UNION ALL SELECT 301, 'admin1', '管理员', 'admin', NULL, NULL, '!', %(first)s
        UNION ALL SELECT 401 + idx, 'spk' || (idx + 1), '发言人' || (idx + 1), 'spokesperson', NULL, id, '!', %(first)s
        FROM bench_units WHERE idx < 5""",
        """INSERT INTO calls (id, linkedid, caller_number, caller_name, dialled_number, arrived_at, queue_wait_s,
             answered_at, operator_id, extension, talk_s, ended_at, hangup_cause, hangup_cause_text, disposition,
             recording, message_file, source, updated_at)
        SELECT b.id, extract(epoch FROM b.arrived_at)::bigint || '.' || b.id, '+86139' || lpad(b.id::text, 8, '0'), '',
               '12345', b.arrived_at,
               CASE WHEN b.disposition IN ('answered', 'abandoned') THEN
                    CASE WHEN b.disposition = 'abandoned' THEN b.wait_s * 4 + 10 ELSE b.wait_s END END,
               CASE WHEN b.disposition = 'answered' THEN b.arrived_at + make_interval(secs => 20 + b.wait_s) END,
               CASE WHEN b.disposition = 'answered' THEN 101 + b.op END,
               CASE WHEN b.disposition = 'answered' THEN (8001 + b.op)::text END,
               CASE WHEN b.disposition = 'answered' THEN b.talk_s END,
               b.arrived_at + make_interval(secs => CASE b.disposition WHEN 'answered' THEN 20 + b.wait_s + b.talk_s
                   WHEN 'abandoned' THEN 30 + b.wait_s * 4 WHEN 'after_hours_message' THEN 75 WHEN 'failed' THEN 3
                   ELSE 12 END),
               CASE WHEN b.disposition = 'failed' THEN (ARRAY[34, 38, 41])[1 + b.id % 3] ELSE 16 END,
               CASE WHEN b.disposition = 'failed' THEN (ARRAY['Circuit/channel congestion', 'Network out of order',
                                                             'Temporary failure'])[1 + b.id % 3]
                    ELSE 'Normal Clearing' END,
               b.disposition,
               CASE WHEN b.disposition = 'answered' THEN 'calls/' || to_char(b.arrived_at, 'YYYY/MM/DD') || '/' || b.id || '.wav' END,
               CASE WHEN b.disposition = 'after_hours_message' THEN 'messages/' || b.id || '.wav' END,
               'live', b.arrived_at + interval '5 minutes'
        FROM bench_calls b""",
        f"""INSERT INTO cases (id, number, call_id, channel, state, department_id, caller_surname, caller_honorific,
             location, title, description, caller_full_name, caller_phone, caller_phone_alt, best_time, callback_wanted,
             sms_consent, operator_notes, forum_post_id, forum_url, deadline_at, created_by_id, created_at, updated_at,
             best_time_choice, callback_not_before, voice_callback)
        SELECT s.case_id,
               '96811-' || extract(year FROM s.filed_at AT TIME ZONE '{ZONE}') || '-' ||
                 lpad((row_number() OVER (PARTITION BY extract(year FROM s.filed_at AT TIME ZONE '{ZONE}')
                                         ORDER BY s.case_id))::text, 6, '0'),
               s.call_id,
               CASE WHEN s.call_id IS NOT NULL THEN 'phone' WHEN s.r_chan < 0.6 THEN 'message' WHEN s.r_chan < 0.85
                    THEN 'walk_in' ELSE 'email' END,
               CASE WHEN s.fu_answered IS NOT NULL THEN 'answered' WHEN s.fu_asked IS NOT NULL THEN 'reopened'
                    WHEN s.answered IS NOT NULL THEN 'answered' WHEN s.accepted IS NOT NULL THEN 'accepted'
                    WHEN s.fw1 IS NOT NULL THEN 'forwarded' WHEN s.posted IS NOT NULL THEN 'posted' ELSE 'queued' END,
               uf.id,
               (ARRAY['朱', '王', '李', '张', '刘', '陈', '杨', '赵'])[1 + s.case_id % 8],
               CASE WHEN s.case_id % 2 = 0 THEN '女士' ELSE '先生' END,
               '柯城区府山街道', (ARRAY['路灯不亮，夜间出行不便', '小区噪音扰民', '房屋产权登记问题', '道路积水',
                                 '公交线路调整建议', '学校入学咨询'])[1 + s.case_id % 6],
               '来电人反映的问题，请相关单位核实处理。',
               (ARRAY['朱丽', '王建国', '李秀英', '张伟', '刘洋', '陈静', '杨帆', '赵敏'])[1 + s.case_id % 8],
               '+86138' || lpad(s.case_id::text, 8, '0'), '', '', s.r_cb < 0.45, s.case_id % 3 = 0, '',
               CASE WHEN s.posted IS NOT NULL THEN s.case_id::text END,
               CASE WHEN s.posted IS NOT NULL THEN 'http://127.0.0.1:8680/board/t/' || s.case_id END,
               CASE WHEN s.fu_answered IS NOT NULL THEN NULL WHEN s.fu_asked IS NOT NULL THEN s.fu_due
                    WHEN s.answered IS NOT NULL THEN NULL WHEN s.accepted IS NOT NULL THEN s.ans_due
                    WHEN s.posted IS NOT NULL THEN s.acc_due END,
               101 + s.op, s.filed_at,
               greatest(s.filed_at, coalesce(s.fu_answered, s.fu_asked, s.answered, s.accepted, s.fw3, s.fw2, s.fw1,
                                             s.posted, s.filed_at)),
               (ARRAY['morning', 'afternoon', 'evening', 'any'])[1 + s.case_id % 4], NULL, false
        FROM bench_steps s JOIN bench_units uf ON uf.idx = s.unit_idx""",
        "INSERT INTO case_number_counters (year, last) SELECT split_part(number, '-', 2)::int, count(*) FROM cases "
        "GROUP BY 1",
        _event("filed", "filed", "s.filed_at", "(SELECT username FROM users WHERE id = 101 + s.op)",
               "json_build_object('department', u0.code, 'channel', c.channel, 'call_linkedid', "
               "(SELECT linkedid FROM calls WHERE id = s.call_id))", "true"),
        _event("posted", "posted", "s.posted", "'forum'",
               "json_build_object('url', c.forum_url, 'remote_id', c.forum_post_id, 'attempts', 1, "
               f"'department', u0.code, 'due_at', {_iso('s.posted_due')})", "s.posted IS NOT NULL",
               "'posted:' || c.number"),
    ]
    for k in (1, 2, 3):
        statements.append(
            _event("forwarded", "forwarded", f"s.fw{k}", "'forum'",
                   _forum("forwarded", unit_of[k - 1], k, f", 'to_unit', {unit_of[k]}, 'due_at', {_iso(f's.fw{k}_due')}"),
                   f"s.fw{k} IS NOT NULL", f"'builtin:fw{k}:' || s.case_id")
            .replace(f"+ {SLOT['forwarded']},", f"+ {SLOT['forwarded'] + k - 1},"))
    statements += [
        _event("accepted", "accepted", "s.accepted", "'forum'",
               _forum("accepted", "uf.code", 4, f", 'due_at', {_iso('s.ans_due')}"), "s.accepted IS NOT NULL",
               "'builtin:acc:' || s.case_id"),
        _event("answered", "answered", "s.answered", "'forum'",
               _forum("answered", "uf.code", 5, f", 'text', {answer_text}"), "s.answered IS NOT NULL",
               "'builtin:ans:' || s.case_id"),
        _event("follow_up_asked", "follow_up_asked", "s.fu_asked", "'forum'",
               _forum("follow_up_asked", "uf.code", 6, f", 'text', '请问具体什么时候处理完毕？', 'due_at', {_iso('s.fu_due')}"),
               "s.fu_asked IS NOT NULL", "'builtin:fua:' || s.case_id"),
        _event("follow_up_answered", "follow_up_answered", "s.fu_answered", "'forum'",
               _forum("follow_up_answered", "uf.code", 7, f", 'text', {answer_text}"), "s.fu_answered IS NOT NULL",
               "'builtin:fuans:' || s.case_id"),
    ]
    # the overdue flags (bridge.forum.service.flag_overdue, checked each minute) of the steps that passed their due time
    for slot, due, ended, state, step in (
            ("overdue_accept", "s.acc_due", "coalesce(s.accepted, s.answered)", "CASE WHEN s.fw1 IS NULL THEN 'posted' ELSE 'forwarded' END", "accept"),
            ("overdue_answer", "s.ans_due", "s.answered", "'accepted'", "answer"),
            ("overdue_follow_up", "s.fu_due", "s.fu_answered", "'reopened'", "answer")):
        flagged = f"{due} + interval '1 minute'"
        statements.append(_event(
            slot, "overdue", flagged, "'scheduler'",
            f"json_build_object('number', c.number, 'state', {state}, 'unit', uf.code, 'unit_name', uf.name, "
            f"'step', '{step}', 'deadline_at', {_iso(due)})",
            f"{due} IS NOT NULL AND {flagged} <= %(now)s AND ({ended} IS NULL OR {ended} > {flagged})"
            + (" AND s.accepted IS NOT NULL" if step == "answer" and slot == "overdue_answer" else "")
            + (" AND s.fu_asked IS NOT NULL" if slot == "overdue_follow_up" else ""),
            f"'overdue:' || c.number || ':' || {_iso(due)}"))
    # the callback tasks of the answers, their attempts, and their timeline entries
    state = ("CASE WHEN t.completed <= %(now)s THEN CASE WHEN t.planned = 'unreachable' THEN 'unreachable' ELSE 'done' END "
             "WHEN t.due_at <= %(now)s THEN 'due' ELSE 'scheduled' END")
    statements += [
        f"""INSERT INTO callback_tasks (id, reason, case_id, answer_event_id, call_id, phone, state, due_at, waiting_since,
             owner_id, assigned_at, held_by_id, held_at, needs_check, outcome, satisfaction, note, created_at, updated_at,
             completed_at)
        SELECT t.id, 'answer', t.case_id, t.answer_event_id, NULL, '+86138' || lpad(t.case_id::text, 8, '0'), {state},
               t.due_at, t.at, 101 + t.op, t.at, NULL, NULL, NULL,
               CASE WHEN t.completed <= %(now)s AND t.planned <> 'unreachable' THEN t.planned END,
               CASE WHEN t.completed <= %(now)s AND t.planned = 'informed' THEN t.grade END, '', t.at,
               least(t.completed, %(now)s), CASE WHEN t.completed <= %(now)s THEN t.completed END
        FROM bench_tasks t""",
        """INSERT INTO callback_attempts (id, task_id, idempotency_key, dialler, operator_id, extension, answer_event_id,
             linkedid, remote_id, started_at, answered_at, ended_at, result, hangup_cause, settled_by, recording, outcome,
             satisfaction, note)
        SELECT t.id * 8 + k, t.id, 'cb-' || t.id || '-' || k, 'asterisk', 101 + t.op, (8001 + t.op)::text, t.answer_event_id,
               'cb.' || t.id || '.' || k, NULL, t.due_at + make_interval(secs => k * 7200), answered.at,
               t.due_at + make_interval(secs => k * 7200 + 120), answered.result, 16, 'events',
               CASE WHEN answered.at IS NOT NULL THEN 'callbacks/' || t.id || '-' || k || '.wav' END,
               CASE WHEN answered.at IS NOT NULL THEN t.planned END,
               CASE WHEN answered.at IS NOT NULL AND t.planned = 'informed' THEN t.grade END, ''
        FROM bench_tasks t
        CROSS JOIN LATERAL generate_series(0, t.n - 1) k
        CROSS JOIN LATERAL (SELECT CASE WHEN k = t.n - 1 AND t.planned <> 'unreachable'
                                        THEN t.due_at + make_interval(secs => k * 7200 + 15) END AS at,
                                   CASE WHEN k = t.n - 1 AND t.planned <> 'unreachable' THEN 'answered'
                                        WHEN (t.id + k) % 3 = 0 THEN 'busy' ELSE 'no_answer' END AS result) answered
        WHERE t.due_at + make_interval(secs => k * 7200 + 120) <= %(now)s""",
    ]
    for answer_slot, scheduled_slot, outcome_slot in ((0, "cb_scheduled", "cb_outcome"), (1, "fu_cb_scheduled", "fu_cb_outcome")):
        statements += [
            f"""INSERT INTO case_events (id, case_id, at, kind, actor, detail)
            SELECT t.case_id * {SLOTS} + {SLOT[scheduled_slot]}, t.case_id, t.at, 'callback_scheduled', 'callbacks',
                   json_build_object('task', t.id, 'due_at', {_iso('t.due_at')})
            FROM bench_tasks t WHERE t.id % 2 = {answer_slot}""",
            f"""INSERT INTO case_events (id, case_id, at, kind, actor, detail)
            SELECT t.case_id * {SLOTS} + {SLOT[outcome_slot]}, t.case_id, t.completed,
                   CASE WHEN t.planned = 'unreachable' THEN 'callback_unreachable' ELSE 'callback_outcome' END,
                   CASE WHEN t.planned = 'unreachable' THEN 'callbacks' ELSE 'op' || lpad((t.op + 1)::text, 2, '0') END,
                   CASE WHEN t.planned = 'unreachable' THEN json_build_object('task', t.id, 'why', 'attempts')
                        ELSE json_build_object('task', t.id, 'outcome', t.planned, 'via', 'desk') END
            FROM bench_tasks t WHERE t.id % 2 = {answer_slot} AND t.completed <= %(now)s""",
        ]
    # the missed calls' tasks (abandoned in the queue, after-hours messages), each called back once
    statements.append(
        f"""INSERT INTO callback_tasks (id, reason, case_id, answer_event_id, call_id, phone, state, due_at, waiting_since,
             owner_id, assigned_at, outcome, note, created_at, updated_at, completed_at)
        SELECT {MISSED_TASKS_FROM} + c.id, 'missed_call', NULL, NULL, c.id, c.caller_number,
               CASE WHEN c.ended_at + interval '3 hours' <= %(now)s THEN 'done' ELSE 'due' END,
               c.ended_at + interval '10 minutes', c.ended_at, NULL, c.ended_at,
               CASE WHEN c.ended_at + interval '3 hours' <= %(now)s THEN 'handled' END, '', c.ended_at, c.ended_at,
               CASE WHEN c.ended_at + interval '3 hours' <= %(now)s THEN c.ended_at + interval '3 hours' END
        FROM calls c WHERE c.disposition IN ('abandoned', 'after_hours_message')""")
    statements.append(
        f"""INSERT INTO callback_attempts (id, task_id, idempotency_key, dialler, operator_id, extension, linkedid,
             started_at, answered_at, ended_at, result, hangup_cause, settled_by, outcome, note)
        SELECT t.id * 8, t.id, 'cb-' || t.id || '-0', 'asterisk', 101 + t.call_id % {OPERATORS},
               (8001 + t.call_id % {OPERATORS})::text, 'cb.' || t.id || '.0', t.completed_at - interval '2 minutes',
               t.completed_at - interval '110 seconds', t.completed_at, 'answered', 16, 'events', 'handled', ''
        FROM callback_tasks t WHERE t.reason = 'missed_call' AND t.completed_at IS NOT NULL""")
    return statements


# ------------------------------------------------------------------ the run


def bind(statement: str, params: dict) -> str:
    """``statement`` with its ``%(name)s`` replaced by literals of the generator's own values (bound
    parameters are not allowed in CREATE TABLE AS)."""
    def literal(match: re.Match) -> str:
        value = params[match.group(1)]
        if isinstance(value, datetime):
            return f"'{value.isoformat()}'::timestamptz"
        if isinstance(value, int):
            return str(value)
        return "'" + str(value).replace("'", "''") + "'"

    # the driver reads % as a placeholder even with no parameters: the comments' % signs doubled
    return re.sub(r"%\((\w+)\)s", literal, statement).replace("%", "%%")


def plain_indexes(connection, table: str) -> list[tuple[str, str]]:
    """The table's indexes that back no constraint (dropped for the load, made again after)."""
    return [tuple(row) for row in connection.exec_driver_sql(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_class t ON t.oid = x.indrelid WHERE t.relname = %(t)s "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)", {"t": table}).all()]


def generate(url: str, cases: int, now: datetime) -> dict[str, int]:
    from bridge.db import migrate
    from bridge.db.engine import Database
    from bridge.departments.service import ensure_shipped_units

    started = time.perf_counter()
    migrate.upgrade(url)
    db = Database(url)
    with db.session() as session:
        ensure_shipped_units(session, now)
    with db.session(readonly=True) as session:
        units = session.execute(text("SELECT count(*) FROM departments WHERE retired_at IS NULL")).scalar()
    db.dispose()
    log(f"  schema migrated to head and the shipped units loaded in {time.perf_counter() - started:.1f} s")
    first_day = (now.astimezone(timezone.utc).date().toordinal() - DAYS)
    params = {"calls": int(cases * 1.5), "from_calls": int(cases * 0.9), "other": cases - int(cases * 0.9),
              "first_day": datetime.fromordinal(first_day).date().isoformat(), "now": now, "first": now,
              "units": units}
    engine = create_engine(url)
    with engine.connect() as connection:
        connection.exec_driver_sql("SET session_replication_role = replica")  # no FK checks, no guard triggers
        connection.exec_driver_sql("SET maintenance_work_mem = '512MB'")
        connection.exec_driver_sql("SET work_mem = '256MB'")
        connection.exec_driver_sql("SET jit = off")  # compiling these long expressions would cost more than running them
        connection.exec_driver_sql("SELECT setseed(0.12)")
        dropped = []
        for table in LOADED:
            for name, definition in plain_indexes(connection, table):
                connection.exec_driver_sql(f'DROP INDEX "{name}"')
                dropped.append((name, definition))
        connection.commit()
        for statement in plan_sql() + load_sql():
            step = time.perf_counter()
            result = connection.exec_driver_sql(bind(statement, params))
            connection.commit()
            first_line = " ".join(statement.split())[:90]
            log(f"  {time.perf_counter() - step:6.1f} s  {result.rowcount if result.rowcount >= 0 else '':>9}  {first_line}")
        step = time.perf_counter()
        for name, definition in dropped:
            connection.exec_driver_sql(definition)
            connection.commit()
        log(f"  {time.perf_counter() - step:6.1f} s  the {len(dropped)} indexes made again")
        for table in ("users", "calls", "cases", "case_events", "callback_tasks", "callback_attempts"):
            connection.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                       f"(SELECT max(id) FROM {table}))")
        connection.exec_driver_sql("DROP TABLE bench_units, bench_calls, bench_plan, bench_steps, bench_tasks")
        connection.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        step = time.perf_counter()
        connection.exec_driver_sql("VACUUM ANALYZE")
        log(f"  {time.perf_counter() - step:6.1f} s  VACUUM ANALYZE")
    with engine.connect() as connection:
        counts = {table: connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() for table in
                  ("departments", "users", "calls", "cases", "case_events", "callback_tasks", "callback_attempts")}
        took = time.perf_counter() - started
        connection.exec_driver_sql("CREATE TABLE bench_meta (cases integer, now timestamptz, took_s float)")
        connection.exec_driver_sql("INSERT INTO bench_meta VALUES (%(c)s, %(n)s, %(t)s)", {"c": cases, "n": now, "t": took})
        connection.commit()
    engine.dispose()
    counts["took_s"] = round(took, 1)
    return counts


def describe(url: str) -> str:
    engine = create_engine(url)
    with engine.connect() as connection:
        lines = [f"  {table:<18} {connection.exec_driver_sql(f'SELECT count(*) FROM {table}').scalar():>10,}"
                 for table in ("departments", "users", "calls", "cases", "case_events", "callback_tasks",
                               "callback_attempts")]
        for query in ("SELECT disposition, count(*) FROM calls GROUP BY 1 ORDER BY 2 DESC",
                      "SELECT state, count(*) FROM cases GROUP BY 1 ORDER BY 2 DESC",
                      "SELECT kind, count(*) FROM case_events GROUP BY 1 ORDER BY 2 DESC",
                      "SELECT reason || ' ' || state || coalesce(' ' || outcome, ''), count(*) FROM callback_tasks "
                      "GROUP BY 1 ORDER BY 2 DESC"):
            lines.append("  " + ", ".join(f"{k} {v:,}" for k, v in connection.exec_driver_sql(query).all()))
    engine.dispose()
    return "\n".join(lines)


def ensure(name: str, cases: int, rebuild: bool) -> tuple[str, dict]:
    """The data set's URL and its bench_meta, generated when missing or of another size."""
    url = database_url(name)
    found = meta(url) if exists(name) else None
    if found is not None and found["cases"] == cases and not rebuild:
        log(f"# reusing {name}: {cases:,} cases generated at {found['now']:%Y-%m-%d %H:%M} UTC")
        return url, found
    log(f"# generating {cases:,} cases into the database {name} (dropped and made again)")
    recreate(name)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    counts = generate(url, cases, now)
    log(f"# generated in {counts['took_s']:.1f} s")
    return url, meta(url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--rebuild", action="store_true", help="drop the database and generate it again")
    args = parser.parse_args(argv)
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    log(f"# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()[0]:.2f}")
    url, _found = ensure(args.database, args.cases, args.rebuild)
    log(describe(url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
