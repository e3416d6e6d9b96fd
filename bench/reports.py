"""Benchmark of the supervisors' reports and the public page (issue 12, "Speed").

    .venv/bin/python -m bench.reports [--cases 1000000] [--database bench_reports] [--runs 20]
                                      [--month YYYY-MM] [--only NAME,...] [--xlsx-rows 100000] [--no-xlsx]

The goals, with 1,000,000 cases, their events, 1,500,000 calls and 1,000,000 callback attempts on
PostgreSQL: every supervisor page and report answers within 500 ms at p95 for a month's range, the
transparency page within 100 ms (cached), and an XLSX export of 100,000 rows streams within 30 s with
bounded memory.

The data set is :mod:`bench.reports_data`'s (generated first if the database does not hold
``--cases`` cases).  The month is the last whole month before the data set's "now", in the site's
zone (about 41,000 cases at full size).  Each target of :data:`TARGETS` is a request to the real
app (``bridge.web.app.create_app`` on the data set, through Starlette's TestClient, in this process),
signed in as a supervisor (an API token for the API, a desk session for the pages), ``--runs``
times after two warm-up requests: p50 / p95 / max of the wall time until the whole body is read.
A target whose route the app does not have (yet) is skipped, and the benchmark says so.  A target
with ``uncached`` empties the transparency cache before each request.

The XLSX export runs in a child process (so its memory is its own): the same functions the route
calls (``bridge.reports.exports.write_xlsx``, then ``file_chunks`` read to the end), for the
``--xlsx-rows`` cases filed last before the month's end (the range's first day is chosen so that at
least that many are in it).  Memory is the child's peak RSS (``ru_maxrss``) after the export less
its peak before it (imports, the engine, a first query).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.callbacks import machine, quantiles
from bench.reports_data import DEFAULT_DATABASE, ensure

REPO = Path(__file__).resolve().parents[1]
SECRETS = {"HOTLINE_BRIDGE_SESSION_SECRET": "bench-reports-secret-0123456789", "HOTLINE_BRIDGE_AMI_SECRET": "a"}
ZONE = ZoneInfo("Asia/Shanghai")
SUPERVISOR, PASSWORD = "bench_supervisor", "bench reports password 1"
GOAL_REPORT_MS = 500.0
GOAL_PUBLIC_MS = 100.0
GOAL_XLSX_S = 30.0


@dataclass(frozen=True)
class Target:
    """One measured request: ``path`` with ``{from}`` / ``{to}`` (the month's days) filled in."""

    name: str
    path: str
    auth: str  # "token" (the API), "session" (a desk page), "public"
    goal_ms: float | None  # None: measured, no goal of its own
    uncached: bool = False  # the transparency cache emptied before each request


# The measured requests; a page or report added later is one line here.
TARGETS = (
    Target("callback log API (JSON rows + summary)", "/api/v1/reports/callbacks?from={from}&to={to}", "token",
           GOAL_REPORT_MS),
    Target("callback log page (first page)", "/desk/reports/callbacks?from={from}&to={to}", "session", GOAL_REPORT_MS),
    Target("units API", "/api/v1/reports/units?from={from}&to={to}", "token", GOAL_REPORT_MS),
    Target("call figures API", "/api/v1/reports/calls?from={from}&to={to}", "token", GOAL_REPORT_MS),
    Target("units page", "/desk/reports/units?from={from}&to={to}", "session", GOAL_REPORT_MS),
    Target("reports dashboard", "/desk/reports?from={from}&to={to}", "session", GOAL_REPORT_MS),
    Target("/transparency, cached", "/transparency?period=last_month", "public", GOAL_PUBLIC_MS),
    Target("/transparency.json, cached", "/transparency.json?period=last_month", "public", GOAL_PUBLIC_MS),
    Target("/transparency, uncached (last month)", "/transparency?period=last_month", "public", None, uncached=True),
    Target("/transparency, uncached (this month)", "/transparency?period=this_month", "public", None, uncached=True),
)


def log(message: str) -> None:
    print(message, flush=True)


def month_of(now: datetime, asked: str | None) -> tuple[date, date]:
    """[first day, first day of the next month): ``asked`` (YYYY-MM), else the last whole month before ``now``."""
    if asked:
        year, month = (int(part) for part in asked.split("-"))
        start = date(year, month, 1)
    else:
        today = now.astimezone(ZONE).date()
        start = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


# ------------------------------------------------------------------ the app


def make_app(url: str):
    from bridge.config import validate
    from bridge.db.engine import Database
    from bridge.health import Health
    from bridge.web.app import create_app

    os.environ.update(SECRETS)
    config = validate({"database": {"url": url}, "web": {"secure_cookies": False}, "sandbox": {"enabled": False}},
                      environ=SECRETS, base_dir=Path("/tmp/bench-reports"))
    db = Database(url)
    return create_app(config, db, Health()), db


def supervisor_token(db) -> str:
    """The benchmark's supervisor (made once in the data set) and a new API token for it."""
    from sqlalchemy import select

    from bridge.accounts.service import add_user
    from bridge.accounts.tokens import create_token
    from bridge.db.models import Role, User

    with db.session() as session:
        user = session.scalar(select(User).where(User.username == SUPERVISOR))
        if user is None:
            user = add_user(session, SUPERVISOR, Role.SUPERVISOR, PASSWORD, display_name="基准班长")
        return create_token(session, user)


def sign_in(client) -> None:
    page = client.get("/desk/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    answer = client.post("/desk/login", data={"csrf_token": csrf, "username": SUPERVISOR, "password": PASSWORD,
                                              "extension": "", "next": "/desk/"})
    if answer.status_code != 303:
        raise RuntimeError(f"sign-in refused: {answer.status_code} {answer.text[:300]}")


def has_route(app, path: str) -> bool:
    """Whether a route of the app (included routers too) takes a GET of ``path``."""
    from starlette.routing import Match

    scope = {"type": "http", "method": "GET", "path": path.split("?", 1)[0], "root_path": "", "query_string": b"",
             "headers": []}
    return any(route.matches(scope)[0] is Match.FULL for route in app.routes)


def measure(client, app, target: Target, period: tuple[date, date], token: str, runs: int) -> dict:
    from bridge.transparency.cache import TtlCache
    from bridge.transparency.public import CACHE_TTL_S

    path = target.path.format(**{"from": period[0].isoformat(), "to": period[1].isoformat()})
    headers = {"Authorization": f"Bearer {token}"} if target.auth == "token" else {}
    times, sizes, statuses = [], [], set()
    for run in range(runs + 2):
        if target.uncached:
            app.state.transparency_cache = TtlCache(CACHE_TTL_S)
        started = time.perf_counter()
        answer = client.get(path, headers=headers)
        body = answer.content
        took = time.perf_counter() - started
        statuses.add(answer.status_code)
        if run >= 2:  # the first two warm the pool, the caches and the templates
            times.append(took)
            sizes.append(len(body))
    return {"path": path, "times": times, "bytes": max(sizes), "status": sorted(statuses)}


def run_targets(url: str, period: tuple[date, date], runs: int, only: set[str] | None) -> list[dict]:
    from fastapi.testclient import TestClient

    app, db = make_app(url)
    token = supervisor_token(db)
    results = []
    with TestClient(app, follow_redirects=False) as client:
        sign_in(client)
        for target in TARGETS:
            if only and not any(word in target.name for word in only):
                continue
            if not has_route(app, target.path):
                log(f"  skipped: {target.name} ({target.path.split('?')[0]} does not exist in this app yet)")
                results.append({"target": target, "skipped": True})
                continue
            found = measure(client, app, target, period, token, runs)
            p50, p95, worst = quantiles(found["times"])
            verdict = "" if target.goal_ms is None else (
                f"goal {target.goal_ms:.0f} ms: {'met' if p95 <= target.goal_ms else 'NOT met'}")
            log(f"  {target.name:<42} p50 {p50:8.1f} ms  p95 {p95:8.1f} ms  max {worst:8.1f} ms  "
                f"{found['bytes'] / 1024:8.0f} KiB  HTTP {','.join(map(str, found['status']))}  {verdict}")
            results.append({"target": target, "p50": p50, "p95": p95, "max": worst, **found})
    db.dispose()
    return results


# ------------------------------------------------------------------ the XLSX export


def xlsx_range(url: str, end: date, rows: int) -> tuple[date, int]:
    """The first day from which at least ``rows`` cases were filed before ``end`` (site zone), and their count."""
    from sqlalchemy import create_engine, text

    from bridge.site.clock import midnight

    engine = create_engine(url)
    with engine.connect() as connection:
        boundary = connection.execute(text(
            "SELECT created_at FROM cases WHERE created_at < :end ORDER BY created_at DESC OFFSET :n LIMIT 1"),
            {"end": midnight(end, ZONE), "n": rows - 1}).scalar()
        start = boundary.astimezone(ZONE).date()
        count = connection.execute(text("SELECT count(*) FROM cases WHERE created_at >= :s AND created_at < :e"),
                                   {"s": midnight(start, ZONE), "e": midnight(end, ZONE)}).scalar()
    engine.dispose()
    return start, count


def xlsx_child(url: str, start: str, end: str) -> None:
    """In the child: the export of [start, end), timed, with the peak RSS before and after (JSON on stdout)."""
    from sqlalchemy import text

    from bridge.db.engine import Database
    from bridge.db.models import utcnow
    from bridge.reports import exports
    from bridge.reports.callback_log import LogFilter

    db = Database(url)
    with db.session(readonly=True) as session:
        session.execute(text("SELECT count(*) FROM departments")).scalar()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    flt = LogFilter(start=date.fromisoformat(start), end=date.fromisoformat(end))
    started = time.perf_counter()
    path = exports.write_xlsx(db, flt, ZONE, utcnow())
    written = time.perf_counter() - started
    size = os.path.getsize(path)
    streamed = sum(len(chunk) for chunk in exports.file_chunks(path))
    took = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    db.dispose()
    print(json.dumps({"written_s": written, "total_s": took, "bytes": size, "streamed": streamed,
                      "rss_before_kib": before, "rss_after_kib": after}))


def run_xlsx(url: str, end: date, rows: int) -> dict:
    start, count = xlsx_range(url, end, rows)
    command = [sys.executable, "-m", "bench.reports", "--xlsx-child", url, start.isoformat(), end.isoformat()]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env={**os.environ, **SECRETS})
    if done.returncode != 0:
        raise RuntimeError(f"the export failed: {done.stderr[-3000:]}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    grew = (found["rss_after_kib"] - found["rss_before_kib"]) / 1024
    verdict = "met" if found["total_s"] <= GOAL_XLSX_S else "NOT met"
    log(f"  XLSX export of {count:,} rows ({start} to {end}): written in {found['written_s']:.1f} s, "
        f"streamed by {found['total_s']:.1f} s, {found['bytes'] / 2**20:.1f} MiB; peak RSS "
        f"{found['rss_before_kib'] / 1024:.0f} MiB before, {found['rss_after_kib'] / 1024:.0f} MiB after "
        f"(+{grew:.0f} MiB)  goal {GOAL_XLSX_S:.0f} s: {verdict}")
    return {**found, "rows": count, "start": start, "end": end, "grew_mib": grew}


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--xlsx-child":
        xlsx_child(*sys.argv[2:5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--month", help="YYYY-MM (default: the last whole month before the data set's now)")
    parser.add_argument("--only", help="comma-separated words: only the targets whose name holds one")
    parser.add_argument("--xlsx-rows", type=int, default=100_000)
    parser.add_argument("--no-xlsx", action="store_true")
    args = parser.parse_args(argv)

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    log(f"# {machine()}")
    log(f"# uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    log(f"# .venv/bin/python -m bench.reports {' '.join(argv if argv is not None else sys.argv[1:])}")
    url, found = ensure(args.database, args.cases, rebuild=False)
    period = month_of(found["now"], args.month)
    log(f"# {args.cases:,} cases; the month [{period[0]}, {period[1]}) in {ZONE.key}; {args.runs} runs each")
    only = {word.strip() for word in args.only.split(",")} if args.only else None
    run_targets(url, period, args.runs, only)
    if not args.no_xlsx and (not only or any("xlsx" in word.lower() for word in only)):
        run_xlsx(url, period[1], args.xlsx_rows)
    log(f"# done; load average now {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
