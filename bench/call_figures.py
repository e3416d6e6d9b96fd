"""Benchmark of the call figures and the supervisors' call log on PostgreSQL (issue 12, "Speed").

    .venv/bin/python -m bench.call_figures [--calls 1500000] [--runs 10]

A fresh schema ``bench_calls_<hex>`` of the ``test`` database (``$HOTLINE_BRIDGE_TEST_PG_URL`` for
another server), migrated to head, then ``--calls`` calls spread evenly over 2026 (one every
21 s: about 125,000 a month) written by one ``INSERT ... SELECT generate_series`` (70 % answered
by 20 operators, 10 % abandoned, 10 % hung up in the menu, 10 % failed), then vacuumed and analysed (as autovacuum would).  Timed,
``--runs`` times each, each in its own session as the page runs them (p50, max): the whole report
of June 2026 for a supervisor (``call_report``) and for one operator, the log's first 500 rows,
its count, and the log filtered by disposition and by a part of the caller's number.  The schema
is dropped afterwards (``--keep``: kept, to look at the plans).  Goal (issue 12): 500 ms at p95 for a month's range.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, text

from bridge.db import migrate
from bridge.db.engine import Database
from bridge.reports import call_log
from bridge.reports.call_figures import Scope, call_report, failures, headline, per_operator, volumes
from bridge.reports.call_log import CallFilter
from bridge.site.periods import Period
from bench.callbacks import DEFAULT_PG_URL, PG_URL_ENV

ZONE = ZoneInfo("Asia/Shanghai")
JUNE = Period(date(2026, 6, 1), date(2026, 7, 1))
LOAD = """
INSERT INTO calls (linkedid, caller_number, caller_name, dialled_number, arrived_at, queue_wait_s, operator_id,
                   talk_s, hangup_cause, hangup_cause_text, disposition, source, updated_at)
SELECT 'bench.' || g, '139' || lpad((g % 100000)::text, 8, '0'), '', '96811',
       timestamptz '2026-01-01 00:00+08' + g * interval '21 seconds', (g % 60)::float,
       CASE WHEN g % 10 < 7 THEN (SELECT min(id) FROM users) + g % 20 END, (g % 300)::float,
       CASE WHEN g % 10 = 9 THEN 34 ELSE 16 END, 'Normal Clearing',
       (ARRAY['answered', 'answered', 'answered', 'answered', 'answered', 'answered', 'answered', 'abandoned',
              'hung_up_in_menu', 'failed'])[1 + g % 10], 'live', now()
FROM generate_series(1, :calls) g"""


def load(db: Database, calls: int) -> float:
    started = time.perf_counter()
    with db.engine.begin() as connection:
        connection.execute(text("INSERT INTO users (username, display_name, role, password_hash, created_at) "
                                "SELECT 'op' || g, 'op' || g, 'operator', 'x', now() FROM generate_series(1, 20) g"))
        connection.execute(text(LOAD), {"calls": calls})
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE calls"))  # what autovacuum does within a minute
    return time.perf_counter() - started


def timed(db: Database, work, runs: int) -> tuple[float, float]:
    found = []
    for _ in range(runs):
        started = time.perf_counter()
        with db.session(readonly=True) as session:
            work(session)
        found.append((time.perf_counter() - started) * 1000)
    return statistics.median(found), max(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_500_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="keep the schema (to look at plans)")
    args = parser.parse_args()
    base = os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)
    schema = f"bench_calls_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    db = Database(f"{base}?options=-csearch_path%3D{schema}")
    try:
        migrate.upgrade(db.engine)
        print(f"{args.calls} calls loaded in {load(db, args.calls):.1f} s")
        everyone, one = Scope(*JUNE.instants(ZONE)), Scope(*JUNE.instants(ZONE), operator=1)
        work = {
            "report (supervisor)": lambda s: call_report(s, JUNE, ZONE),
            "  headline": lambda s: headline(s, everyone), "  volumes": lambda s: volumes(s, everyone, JUNE, ZONE),
            "  failures": lambda s: failures(s, everyone), "  per operator": lambda s: per_operator(s, everyone),
            "  headline, one operator": lambda s: headline(s, one),
            "  per operator, one": lambda s: per_operator(s, one),
            "report (one operator)": lambda s: call_report(s, JUNE, ZONE, 1),
            "log, first 500 rows": lambda s: list(call_log.rows(s, CallFilter(JUNE), ZONE, limit=500)),
            "log, count": lambda s: call_log.count(s, CallFilter(JUNE), ZONE),
            "log, failed": lambda s: list(call_log.rows(s, CallFilter(JUNE, disposition="failed"), ZONE, limit=500)),
            "log, part of a number": lambda s: list(call_log.rows(s, CallFilter(JUNE, caller="12345"), ZONE,
                                                                  limit=500)),
        }
        for name, run in work.items():
            median, worst = timed(db, run, args.runs)
            print(f"{name:24} p50 {median:7.1f} ms   max {worst:7.1f} ms")
    finally:
        db.dispose()
        if args.keep:
            print(f"kept: schema {schema}")
        else:
            with admin.begin() as connection:
                connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


if __name__ == "__main__":
    main()
