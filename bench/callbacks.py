"""Benchmark of the callback tasks (issue 10, "Benchmark").

    .venv/bin/python -m bench.callbacks [--tasks 100000] [--answers 1000] [--runs 200]
                                        [--backend sqlite|postgresql|both] [--keep]

The goals, with 100,000 callback tasks in the database: the daemon starts within 5 s, the due
tasks are found within 20 ms, and 1,000 answers arriving at once all have their task within 2 s.

What it runs, per backend (SQLite: a file in a temporary folder; PostgreSQL: a fresh schema
``bench_cb_<hex>`` of the ``test`` database, ``$HOTLINE_BRIDGE_TEST_PG_URL`` to use another
server, dropped afterwards):

1. **The rows**, migrated to head and bulk-inserted with Core ``INSERT`` (executemany): the
   shipped units, 20 operators, ``--tasks`` answered cases, each with its timeline (filed,
   posted, accepted, answered, callback_scheduled) and its callback task, in these states:
   85 % scheduled over the next three days, 2 % due, 1 % scheduled whose time came a few
   minutes ago (not yet promoted), 0.5 % in progress (answered, outcome to record), 9 % done,
   2.5 % unreachable; about 40 % of them with 1-5 attempts (busy, no answer, answered).
   The consumer's cursor ``events:callback-tasks`` stands at the newest answer (a daemon in
   steady state).  Also ``3 x --answers`` accepted cases waiting for their answer, for (c).
   PostgreSQL is ANALYZEd after the load (autovacuum would do it within a minute); SQLite is
   not (the daemon never runs ANALYZE).
2. **(b) Finding the due tasks** (before the daemon's first start, whose engine promotes the
   1 % fallen due): ``due_tasks`` (the 200 longest-waiting), ``next_wake``, the engine's
   ``plan_from_rows`` (the scheduler's rebuild from the rows: next_wake and the owners' turn
   ends) and ``promote_due`` (rolled back each time, so each run promotes the same rows),
   ``--runs`` times each, each in its own session as the daemon runs them: p50 / p95 /
   max.  And the query plans (PostgreSQL ``EXPLAIN ANALYZE``, SQLite ``EXPLAIN QUERY PLAN``)
   of the exact statements sent, with whether each uses an index of ``callback_tasks`` (``INDEXES``).
   PostgreSQL then vacuums ``callback_tasks`` (the rolled-back promotions leave dead row
   versions; autovacuum would clear them within a minute or two).
3. **(a) Daemon start**: the real daemon (``python -m bridge run``, builtin forum, an AMI port
   nothing listens on, as tests/daemon does: the PBX link keeps reconnecting) in its own
   process, until ``/healthz`` answers: wall time from the process start, and its memory
   (VmRSS, VmHWM) then.  First on the same database before the rows were
   loaded (the baseline), then twice with the rows.  In-process, the callbacks capability's
   start work timed apart: its engine's start (``callbacks.engine.CallbacksEngine``: a wake,
   then the plan from the rows, on an AsyncIOScheduler) and the publisher's catch-up
   (``DomainEvents.start`` with the shipped consumer).
4. **(c) Answers arriving at once**: the daemon's publisher (``bridge.domain_events.DomainEvents``)
   with the shipped consumer (``callbacks.capability.answer_consumer``) in this process, on
   the loaded database.  ``--answers`` answers are applied with the forum service
   (``bridge.forum.service.apply_event``, which announces them): first all in one
   transaction (one poll cycle's page), then each in its own (webhooks, back to back, from
   a worker thread).  Timed: the answers' writing (the forum service's work), and from their
   commit (the last one's, for webhooks) to every task existing (the consumer's cursor, which
   moves in the tasks' own transaction, past the newest answer; polled every 10 ms; the tasks
   counted afterwards).  The goal
   is judged on the second: the answers have arrived when they are committed.  For comparison,
   once more in one transaction with the consumer delivered one event per transaction (its
   ``handle`` only, as before its ``handle_batch`` existed).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
PG_URL_ENV = "HOTLINE_BRIDGE_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SECRETS = {"HOTLINE_BRIDGE_SESSION_SECRET": "bench-session-secret-0123456789",
           "HOTLINE_BRIDGE_AMI_SECRET": "bench-ami"}
GOAL_START_S = 5.0
GOAL_DUE_MS = 20.0
GOAL_ANSWERS_S = 2.0
# The indexes of callback_tasks every statement timed in (b) must use (migrations 0007 and 0009).
INDEXES = ("ix_callback_tasks_state_due", "ix_callback_tasks_state_waiting")
UNITS = ("CITY-LJQ", "CITY-JCY", "CITY-ZRGHJ", "CITY-ZJJ")
OPERATORS = 20
CHUNK = 5000
# Share of the tasks in each state (the rest, 85 %, is scheduled over the coming days).
MIX = (("due", 0.02), ("overdue", 0.01), ("in_progress", 0.005), ("done", 0.09), ("unreachable", 0.025))


def log(message: str) -> None:
    print(message, flush=True)


def machine() -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, Python {platform.python_version()}, "
            f"load average {os.getloadavg()[0]:.2f}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")


def quantiles(values: list[float]) -> tuple[float, float, float]:
    """p50, p95, max in ms (nearest rank)."""
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return pick(0.5), pick(0.95), ordered[-1] * 1000


# ------------------------------------------------------------------ the database


@dataclass
class Site:
    backend: str
    url: str
    folder: Path
    schema: str | None = None


def fresh_site(backend: str, folder: Path) -> Site:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from bridge.db import migrate

    folder.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        site = Site(backend, f"sqlite:///{folder / 'state' / 'bridge.sqlite3'}", folder)
    else:
        base = os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)
        schema = f"bench_cb_{uuid.uuid4().hex[:10]}"
        admin = create_engine(base)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}", "application_name": schema})
        site = Site(backend, url.render_as_string(hide_password=False), folder, schema)
    migrate.upgrade(site.url)
    return site


def drop_site(site: Site) -> None:
    if site.schema is None:
        return
    from sqlalchemy import create_engine, text

    admin = create_engine(os.environ.get(PG_URL_ENV, DEFAULT_PG_URL))
    with admin.begin() as connection:
        connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE application_name = :name AND pid <> pg_backend_pid()"), {"name": site.schema})
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{site.schema}" CASCADE'))
    admin.dispose()


@dataclass
class Loaded:
    tasks: int
    states: dict[str, int]
    attempts: int
    events: int
    waiting_cases: list[str]          # accepted cases that wait for their answer, for (c)
    now: datetime
    load_s: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


def _task_shape(i: int, n: int) -> str:
    """The state of the i-th task: the MIX shares, spread evenly over the ids."""
    edge = 0.0
    position = (i * 7919 % n) / n  # a stride, so no state lives in one id range
    for state, share in MIX:
        edge += share
        if position < edge:
            return state
    return "scheduled"


def load_rows(db, n: int, waiting: int, now: datetime, rng: random.Random) -> Loaded:
    """The rows of a site with ``n`` callback tasks (Core inserts, ``CHUNK`` rows a statement)."""
    from sqlalchemy import func, insert, select, text

    from bridge.db.models import (
        CallbackAttempt,
        CallbackBestTime,
        CallbackTask,
        Case,
        CaseEvent,
        CaseState,
        Cursor,
        Department,
        Honorific,
        Role,
        User,
    )
    from bridge.departments.service import ensure_shipped_units

    started = time.perf_counter()
    with db.session() as session:
        ensure_shipped_units(session, now)
        session.flush()
        units = dict(session.execute(select(Department.code, Department.id).where(Department.code.in_(UNITS))).all())
        session.execute(insert(User), [
            {"id": 1000 + k, "username": f"op{k:02d}", "display_name": f"话务员{k:02d}", "role": Role.OPERATOR,
             "extension": f"{201 + k}", "password_hash": "!", "created_at": now} for k in range(OPERATORS)])
    operators = [1000 + k for k in range(OPERATORS)]
    year = now.year
    states: dict[str, int] = {}
    cases, events, tasks, attempts = [], [], [], []
    event_id = attempt_id = 0
    answer_ids: list[int] = []

    def flush_rows() -> None:
        with db.session() as session:
            for table, rows in ((Case, cases), (CaseEvent, events), (CallbackTask, tasks),
                                (CallbackAttempt, attempts)):
                if rows:
                    session.execute(insert(table), rows)
                    rows.clear()

    def case_row(case_id: int, state: CaseState, filed: datetime, unit: str) -> dict:
        return {"id": case_id, "number": f"96811-{year}-{case_id:06d}", "state": state,
                "department_id": units[unit], "caller_surname": "朱", "caller_honorific": Honorific.MS,
                "location": "柯城区府山街道", "title": "房屋产权登记问题", "description": "老房子产权登记，问需要哪些材料。",
                "caller_full_name": "朱丽", "caller_phone": f"+86139{case_id:08d}", "callback_wanted": True,
                "sms_consent": case_id % 3 == 0, "forum_post_id": str(case_id),
                "forum_url": f"http://127.0.0.1:8680/board/t/{case_id}",
                "best_time_choice": list(CallbackBestTime)[case_id % 4],
                "created_by_id": operators[case_id % OPERATORS], "created_at": filed, "updated_at": filed}

    def event_row(case_id: int, at: datetime, kind: str, actor: str, detail: dict) -> int:
        nonlocal event_id
        event_id += 1
        events.append({"id": event_id, "case_id": case_id, "at": at, "kind": kind, "actor": actor, "detail": detail,
                       "source_event_id": f"bench:{kind}:{case_id}" if actor == "forum" else None})
        return event_id

    def timeline(case_id: int, filed: datetime, unit: str) -> None:
        event_row(case_id, filed, "filed", "op", {"unit": unit})
        event_row(case_id, filed + timedelta(minutes=1), "posted", "forum", {"unit": unit})
        event_row(case_id, filed + timedelta(hours=1), "accepted", "forum",
                  {"unit": unit, "actor": "王芳", "forum_event": "accepted", "sequence": 1})

    for i in range(n):
        case_id = i + 1
        shape = _task_shape(i, n)
        states[shape] = states.get(shape, 0) + 1
        answered = now - timedelta(minutes=rng.uniform(5, 3 * 24 * 60))
        filed = answered - timedelta(hours=rng.uniform(2, 72))
        unit = UNITS[i % len(UNITS)]
        cases.append(case_row(case_id, CaseState.ANSWERED, filed, unit))
        timeline(case_id, filed, unit)
        answer = event_row(case_id, answered, "answered", "forum",
                           {"unit": unit, "actor": "王芳", "forum_event": "answered", "sequence": 2,
                            "text": "您好，办理不动产登记需携带身份证、户口簿和原产权证，到市民中心二楼窗口办理。"})
        answer_ids.append(answer)
        state, due_at, tries, last = {
            "scheduled": ("scheduled", now + timedelta(minutes=rng.uniform(10, 3 * 24 * 60)), rng.choice((0, 0, 1, 2)),
                          "no_answer"),
            "due": ("due", now - timedelta(minutes=rng.uniform(1, 6 * 60)), rng.choice((0, 1, 2)), "busy"),
            "overdue": ("scheduled", now - timedelta(minutes=rng.uniform(0.5, 30)), rng.choice((0, 1)), "no_answer"),
            "in_progress": ("in_progress", answered + timedelta(minutes=5), 1, "answered"),
            "done": ("done", answered + timedelta(minutes=5), rng.choice((1, 1, 2)), "answered"),
            "unreachable": ("unreachable", answered + timedelta(hours=30), 5, "no_answer"),
        }[shape]
        task_id = case_id
        event_row(case_id, answered, "callback_scheduled", "callbacks", {"task": task_id, "due_at": due_at.isoformat()})
        closed = state in ("done", "unreachable")
        tasks.append({"id": task_id, "reason": "answer", "case_id": case_id, "answer_event_id": answer,
                      "phone": f"+86139{case_id:08d}", "state": state, "due_at": due_at, "waiting_since": answered,
                      "owner_id": operators[case_id % OPERATORS] if case_id % 5 else None, "assigned_at": answered,
                      "outcome": "informed" if state == "done" else None,
                      "satisfaction": rng.choice((5, 5, 4, 4, 3, 2)) if state == "done" else None,
                      "note": "", "created_at": answered, "updated_at": answered,
                      "completed_at": due_at if closed else None})
        for k in range(tries):
            attempt_id += 1
            result = last if k == tries - 1 else rng.choice(("busy", "no_answer"))
            begun = answered + timedelta(minutes=5 + 60 * k)
            attempts.append({"id": attempt_id, "task_id": task_id, "idempotency_key": f"cb-{task_id}-bench{k}",
                             "dialler": "asterisk", "operator_id": operators[case_id % OPERATORS],
                             "extension": "201", "answer_event_id": answer, "linkedid": f"{int(begun.timestamp())}.{attempt_id}",
                             "started_at": begun, "answered_at": begun + timedelta(seconds=20) if result == "answered" else None,
                             "ended_at": begun + timedelta(seconds=40), "result": result, "settled_by": "events",
                             "outcome": "informed" if state == "done" and result == "answered" else None,
                             "note": ""})
        if len(cases) >= CHUNK:
            flush_rows()
    waiting_cases = []
    for k in range(waiting):
        case_id = n + k + 1
        filed = now - timedelta(hours=rng.uniform(2, 48))
        unit = UNITS[k % len(UNITS)]
        row = case_row(case_id, CaseState.ACCEPTED, filed, unit)
        cases.append(row)
        waiting_cases.append(row["number"])
        timeline(case_id, filed, unit)
        if len(cases) >= CHUNK:
            flush_rows()
    flush_rows()
    with db.session() as session:
        session.add(Cursor(name="events:callback-tasks", position=str(max(answer_ids, default=0)), updated_at=now))
        if db.backend == "postgresql":  # explicit ids: move the sequences past them
            for table in ("users", "cases", "case_events", "callback_tasks", "callback_attempts"):
                session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"(SELECT max(id) FROM {table}))"))
    if db.backend == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")
    loaded = Loaded(n, states, attempt_id, event_id, waiting_cases, now, time.perf_counter() - started)
    with db.session(readonly=True) as session:
        loaded.counts = {state.value: count for state, count in session.execute(
            select(CallbackTask.state, func.count()).group_by(CallbackTask.state))}
    return loaded


# ----------------------------------------------------------------- (a) the daemon


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(site: Site) -> tuple[Path, int]:
    port = free_port()
    path = site.folder / f"config-{site.backend}.toml"
    path.write_text(f"""
[database]
url = "{site.url}"
[web]
port = {port}
[pbx]
agi_port = {free_port()}
[pbx.ami]
port = {free_port()}
[forum]
backend = "builtin"
[sandbox]
enabled = false
[logging]
format = "json"
""", encoding="utf-8")
    return path, port


def memory_kib(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status", encoding="utf-8") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out


@dataclass
class Start:
    seconds: float
    rss_mib: float
    hwm_mib: float
    health: int


def start_daemon(site: Site, log_path: Path) -> Start:
    """Start ``python -m bridge run`` on the site; seconds until /healthz answers, memory then."""
    config, port = write_config(site)
    with open(log_path, "a", encoding="utf-8") as log_file:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "bridge", "run", "-c", str(config)], cwd=REPO,
                                stdout=log_file, stderr=subprocess.STDOUT, env={"PATH": os.environ["PATH"], **SECRETS})
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"the daemon exited {proc.returncode}: {log_path.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError("the daemon did not answer /healthz in 120 s")
                try:
                    response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                    took = time.perf_counter() - started
                    break
                except httpx.TransportError:
                    time.sleep(0.02)
            memory = memory_kib(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    return Start(took, memory["VmRSS"] / 1024, memory["VmHWM"] / 1024, response.status_code)


def config_of(site: Site):
    from bridge.config import validate

    return validate({"database": {"url": site.url}, "sandbox": {"enabled": False}}, environ=SECRETS)


async def capability_start(site: Site, db) -> dict:
    """The callbacks capability's own start work, in this process, timed apart: its engine's
    start (a wake: promote what fell due, owners' turns, then the plan from the rows) and the
    publisher's catch-up with its consumer."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from bridge.capability import Runtime
    from bridge.domain_events import DomainEvents
    from bridge.health import Health
    from bridge.live import LiveEvents
    from callbacks.capability import CallbacksCapability

    config = config_of(site)
    scheduler = AsyncIOScheduler(timezone=config.site.zone)
    scheduler.start()
    capability = CallbacksCapability()
    runtime = Runtime(config, db, Health(), LiveEvents(), capabilities=(capability,), scheduler=scheduler)
    engine = dict(capability.links(runtime))["callbacks"]  # (its other links, e.g. the missed-call sweep, apart)
    runtime.links["callbacks"] = engine
    started = time.perf_counter()
    await engine.start()
    engine_s = time.perf_counter() - started
    publisher = DomainEvents(db, poll_s=3600)
    for consumer in capability.consumers(runtime):
        publisher.register(consumer)
    started = time.perf_counter()
    await publisher.start()
    catch_up = time.perf_counter() - started
    await publisher.stop()
    await engine.stop()
    scheduler.shutdown(wait=False)
    return {"engine_s": engine_s, "catch_up_s": catch_up, "plan": engine.plan}


# ------------------------------------------------------------ (b) the due tasks


def timed_runs(db, runs: int, fn, *, rollback: bool) -> list[float]:
    times = []
    for _ in range(runs):
        session = db.sessions() if rollback else db._readonly_sessions()
        try:
            started = time.perf_counter()
            fn(session)
            times.append(time.perf_counter() - started)
        finally:
            session.rollback()
            session.close()
    return times


def captured_statements(db, fn) -> list[tuple[str, object]]:
    """The SQL and parameters of the SELECT and UPDATE statements ``fn(session)`` sends."""
    from sqlalchemy import event

    seen: list[tuple[str, object]] = []

    def record(_conn, _cursor, statement, parameters, _context, _many) -> None:
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        with db.session() as session:
            fn(session)
            session.rollback()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return [(sql, parameters) for sql, parameters in seen if sql.lstrip().upper().startswith(("SELECT", "UPDATE"))]


def plan(db, statement: str, parameters: object) -> list[str]:
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if db.backend == "postgresql" else "EXPLAIN QUERY PLAN "
    with db.engine.connect() as connection:
        rows = connection.exec_driver_sql(prefix + statement, parameters).all()
        connection.rollback()
    if db.backend == "postgresql":
        return [row[0] for row in rows]
    return [str(row[-1]) for row in rows]


def due_figures(db, now: datetime, runs: int) -> dict:
    from callbacks.engine import plan_from_rows
    from callbacks.tasks import CallbackPolicy, due_tasks, next_wake, promote_due

    policy = CallbackPolicy.of(config_of(Site(db.backend, str(db.url), Path("."))))
    queries = {
        "due_tasks (200 longest-waiting)": (lambda s: due_tasks(s, now), False),
        "next_wake": (lambda s: next_wake(s), False),
        "engine plan_from_rows": (lambda s: plan_from_rows(s, now, policy), False),
        # Last: on PostgreSQL each rolled-back UPDATE leaves its new row versions and index
        # entries dead until a vacuum, which slowed the queries timed after it (run of 12:17).
        "promote_due (rolled back)": (lambda s: promote_due(s, now), True),
    }
    out = {}
    for name, (fn, rollback) in queries.items():
        timed_runs(db, 3, fn, rollback=rollback)  # warm the pool and the caches
        times = timed_runs(db, runs, fn, rollback=rollback)
        plans = [plan(db, statement, parameters) for statement, parameters in captured_statements(db, fn)]
        out[name] = {"times": times, "plan": [line for lines in plans for line in lines],
                     "index": all(any(name in line for name in INDEXES for line in lines) for lines in plans)}
    with db.session() as session:
        out["rows"] = {"due_tasks": len(due_tasks(session, now)), "promoted": promote_due(session, now)}
        session.rollback()
    if db.backend == "postgresql":  # the rolled-back promotions' dead rows, as autovacuum would clear them
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE callback_tasks")
    return out


# ------------------------------------------------------- (c) answers at once


def answer_events(numbers: list[str], at: datetime, tag: str):
    from bridge.forum.adapter import ThreadEvent, ThreadEventKind

    return [ThreadEvent(event_id=f"bench:{tag}:{number}", kind=ThreadEventKind.ANSWERED, case_number=number, at=at,
                        unit_code=UNITS[k % len(UNITS)], actor="王芳", sequence=2,
                        text="您好，您反映的问题已转交街道办理，三个工作日内答复。") for k, number in enumerate(numbers)]


def tasks_made(db, numbers: list[str]) -> int:
    from sqlalchemy import func, select

    from bridge.db.models import CallbackTask, Case

    with db.session(readonly=True) as session:
        return session.scalar(select(func.count()).select_from(CallbackTask).join(Case, Case.id == CallbackTask.case_id)
                              .where(Case.number.in_(numbers)))


def newest_answer_id(db) -> int:
    from sqlalchemy import func, select

    from bridge.db.models import CaseEvent

    with db.session(readonly=True) as session:
        return session.scalar(select(func.max(CaseEvent.id)).where(CaseEvent.kind == "answered"))


def cursor_position(db) -> int:
    """The consumer's cursor: its tasks are committed with it (a light read, polled)."""
    with db.engine.connect() as connection:
        position = connection.exec_driver_sql(
            "SELECT position FROM cursors WHERE name = 'events:callback-tasks'").scalar()
        connection.rollback()
    return int(position or 0)


async def answers_at_once(site: Site, db, numbers: list[str], *, one_transaction: bool, batches: bool = True) -> dict:
    """``batches`` False: the shipped consumer without its ``handle_batch``, one event per
    transaction, as the publisher delivered them before 2026-12-03 (the figure to compare)."""
    from bridge.domain_events import Consumer, DomainEvents
    from bridge.forum import service
    from callbacks.capability import answer_consumer
    from callbacks.tasks import CallbackPolicy

    config = config_of(site)
    deadlines = service.Deadlines.from_config(config)
    policy = CallbackPolicy.of(config)
    policy.calendar.covers(datetime.now(timezone.utc).year)  # the daemon's calendar has its year loaded
    publisher = DomainEvents(db, poll_s=3600)  # delivers when woken, as after a commit in the daemon
    consumer = answer_consumer(policy)
    publisher.register(consumer if batches else Consumer(consumer.name, consumer.topic, consumer.handle))
    await publisher.start()
    events = answer_events(numbers, datetime.now(timezone.utc) - timedelta(seconds=5),
                           f"{'batch' if one_transaction else 'each'}-{batches}")
    written: list[tuple[float, int]] = []

    def write() -> None:
        if one_transaction:
            with db.session() as session:
                service.apply_events(session, events, deadlines)
        else:
            for one in events:
                with db.session() as session:
                    service.apply_event(session, one, deadlines)
        written.append((time.perf_counter(), newest_answer_id(db)))

    try:
        started = time.perf_counter()
        writer = threading.Thread(target=write, name="answers")
        writer.start()
        while not written or await asyncio.to_thread(cursor_position, db) < written[0][1]:
            await asyncio.sleep(0.01)
            if time.perf_counter() - started > 600:
                break
        done = time.perf_counter()
        writer.join(60)
    finally:
        await publisher.stop()
    made = tasks_made(db, numbers)
    return {"all_tasks_s": done - started, "written_s": written[0][0] - started if written else None,
            "after_last_write_s": done - written[0][0] if written else None, "tasks": made}


# ------------------------------------------------------------------- the run


def run_backend(backend: str, args, folder: Path) -> dict:
    from bridge.db.engine import Database

    rng = random.Random(10)
    site = fresh_site(backend, folder / backend)
    daemon_log = folder / f"daemon-{backend}.log"
    result: dict = {"backend": backend}
    db = None
    try:
        log(f"\n== {backend} ==")
        empty = start_daemon(site, daemon_log)
        log(f"(a) daemon start, no tasks (baseline): {empty.seconds:.2f} s to /healthz ({empty.health}), "
            f"RSS {empty.rss_mib:.0f} MiB (peak {empty.hwm_mib:.0f} MiB)")
        db = Database(site.url)
        now = datetime.now(timezone.utc)
        loaded = load_rows(db, args.tasks, 3 * args.answers, now, rng)
        log(f"rows: {loaded.tasks:,} tasks ({', '.join(f'{k} {v:,}' for k, v in sorted(loaded.counts.items()))}), "
            f"{loaded.attempts:,} attempts, {loaded.events:,} case events, {len(loaded.waiting_cases):,} cases "
            f"awaiting an answer; loaded in {loaded.load_s:.1f} s")
        # (b) first: the daemon's engine promotes what fell due at its start (a).
        due = due_figures(db, now, args.runs)
        log(f"(b) finding the due tasks, {args.runs} runs each ({due['rows']['due_tasks']} returned by due_tasks, "
            f"{due['rows']['promoted']:,} promoted by promote_due):")
        for name, figures in due.items():
            if name == "rows":
                continue
            p50, p95, worst = quantiles(figures["times"])
            log(f"    {name:<34} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  max {worst:6.2f} ms   "
                f"callback_tasks indexes: {'used' if figures['index'] else 'NOT used'}")
        for name, figures in due.items():
            if name != "rows":
                log(f"    plan of {name}:")
                for line in figures["plan"]:
                    log(f"      {line}")
        due_p95 = quantiles(due["due_tasks (200 longest-waiting)"]["times"])[1]
        log(f"    goal: due query within {GOAL_DUE_MS:.0f} ms -> {'met' if due_p95 < GOAL_DUE_MS else 'NOT met'} "
            f"(due_tasks p95 {due_p95:.2f} ms)")


        promoting = f" (its engine promotes the {loaded.states.get('overdue', 0):,} fallen due)"
        starts = [start_daemon(site, daemon_log) for _ in range(2)]
        for k, start in enumerate(starts, 1):
            log(f"(a) daemon start {k}, {loaded.tasks:,} tasks{promoting if k == 1 else ''}: {start.seconds:.2f} s to /healthz ({start.health}), "
                f"RSS {start.rss_mib:.0f} MiB (peak {start.hwm_mib:.0f} MiB)")
        own = asyncio.run(capability_start(site, db))
        log(f"    the capability's start work, in this process: the engine's start {own['engine_s'] * 1000:.1f} ms "
            f"(plan: {own['plan'].why} at {own['plan'].at:%Y-%m-%d %H:%M:%S} UTC), the publisher's catch-up "
            f"{own['catch_up_s'] * 1000:.1f} ms")
        worst_start = max(s.seconds for s in starts)
        log(f"    goal: start within {GOAL_START_S:.0f} s -> {'met' if worst_start < GOAL_START_S else 'NOT met'} "
            f"({worst_start:.2f} s worst)")

        half = args.answers
        batch = asyncio.run(answers_at_once(site, db, loaded.waiting_cases[:half], one_transaction=True))
        each = asyncio.run(answers_at_once(site, db, loaded.waiting_cases[half:2 * half], one_transaction=False))
        before = asyncio.run(answers_at_once(site, db, loaded.waiting_cases[2 * half:], one_transaction=True,
                                             batches=False))
        log(f"(c) {half:,} answers in one transaction (a poll cycle's page): the forum service wrote them in "
            f"{batch['written_s']:.2f} s; every task existed {batch['after_last_write_s']:.2f} s after their commit "
            f"({batch['all_tasks_s']:.2f} s from the first answer; {batch['tasks']:,} tasks)")
        log(f"(c) {half:,} answers each in its own transaction (webhooks, back to back): written over "
            f"{each['written_s']:.2f} s; every task existed {each['after_last_write_s']:.2f} s after the last "
            f"answer's commit ({each['all_tasks_s']:.2f} s from the first; {each['tasks']:,} tasks)")
        log(f"(c) for comparison, {half:,} answers in one transaction delivered one event per transaction (before "
            f"2026-12-03): every task existed {before['after_last_write_s']:.2f} s after their commit "
            f"({before['tasks']:,} tasks)")
        worst_answers = max(batch["after_last_write_s"], each["after_last_write_s"])
        log(f"    goal: tasks for {half:,} answers within {GOAL_ANSWERS_S:.0f} s of their arrival -> "
            f"{'met' if worst_answers < GOAL_ANSWERS_S else 'NOT met'} ({worst_answers:.2f} s worst)")
        result.update(empty=empty, starts=starts, own=own, due=due, batch=batch, each=each, before=before, loaded=loaded)
    finally:
        if db is not None:
            db.dispose()
        if not args.keep:
            drop_site(site)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--answers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and the PostgreSQL schema")
    args = parser.parse_args(argv)

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings and up
    folder = Path(tempfile.mkdtemp(prefix="bench-callbacks-"))
    log(f"# {machine()}")
    log(f"# .venv/bin/python -m bench.callbacks --tasks {args.tasks} --answers {args.answers} --runs {args.runs} "
        f"--backend {args.backend}")
    try:
        for backend in (("sqlite", "postgresql") if args.backend == "both" else (args.backend,)):
            run_backend(backend, args, folder)
    finally:
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
