"""Benchmark of the forum sync on the Discourse backend (issue 5, "Benchmark").

    .venv/bin/python -m bench.forum [--threads 10000] [--answers 50] [--poll-answers 10]
                                    [--poll-interval 5] [--small 100] [--cycles 5] [--no-contract]

The goal: with 10,000 open threads, the time from an answer on the forum to the case
showing "answered" is under a second with webhooks.

What it runs, all on loopback, in a temporary folder:

1. **The fake Discourse** of the tests (``tests.forum.discourse_server.make_site``: in memory,
   served over HTTP by uvicorn in a thread of this process, every request and response
   checked against ``discourse-openapi.yml`` unless ``--no-contract``). It is seeded with N
   topics by the hotline account, one per case, ``external_id`` = the case number, spread
   over the four unit categories (straight into its memory, not over HTTP; the queued
   webhooks of the seeding are dropped).
2. **A fresh SQLite database** (``bridge db upgrade``) with the N matching cases, state
   ``posted``, ``forum_post_id`` = the topic, an acceptance deadline three days out (so no
   overdue flags), and the polling cursor at the newest post (a daemon in steady state; the
   catch-up from an empty cursor is measured apart, see 3).
3. **Quiet polling cycles, in this process:** ``ForumLink.cycle()`` with the real
   ``DiscourseForum`` over HTTP against the fake, on the same database: HTTP requests
   (``DiscourseForum.requests_made``) and wall time per cycle, at N and at ``--small``
   threads.  A cycle is the poll (/posts.json, /latest.json) plus the verification of up to
   ``forum.discourse.verify_per_cycle`` open threads (default 3: one /t/{id}.json each).
   Also: how many cycles a link with an *empty* cursor needs before it reads new posts again
   (a fresh start puts the cursor at the newest post; until 2026-11 it walked the whole
   /posts.json history first).
4. **Answer latency by webhook:** the real daemon (``python -m bridge run``, discourse
   backend, ``poll_interval_s`` 3600 so polling does not help) in its own process.  For
   each of ``--answers`` random cases, the unit's spokesperson replies on the fake, the
   signed ``post_created`` delivery is POSTed to the daemon's
   ``/forum/discourse/webhook``, and the benchmark polls the database (read-only, every
   2 ms) until the case's state is ``answered``.  Latency = reply -> state seen.
5. **Answer latency by polling only:** the daemon again, ``poll_interval_s`` =
   ``--poll-interval`` (the config's minimum is 5 s), no webhook delivered; replies at
   random moments; latency = reply -> state seen.
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
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SECRETS = {
    "HOTLINE_BRIDGE_SESSION_SECRET": "session-secret-0123456789",
    "HOTLINE_BRIDGE_DISCOURSE_API_KEY": "test-api-key",
    "HOTLINE_BRIDGE_DISCOURSE_WEBHOOK_SECRET": "test-webhook-secret",
    "HOTLINE_BRIDGE_TWILIO_AUTH_TOKEN": "twilio-token",
}
GOAL_S = 1.0
YEAR = datetime.now(timezone.utc).year


def percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 100)) - 1))  # nearest rank
    return s[k]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def case_number(i: int) -> str:
    return f"96811-{YEAR}-{900000 + i:06d}"


# ------------------------------------------------------------------------ set-up


def write_config(folder: Path, port: int, base_url: str, poll_interval: float) -> Path:
    from tests.forum.discourse_server import daemon_config

    return daemon_config(folder, port, base_url, poll_interval)


def cli(config: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "bridge", *args, "-c", str(config)], capture_output=True,
                            text=True, timeout=120, cwd=ROOT, env={"PATH": os.environ["PATH"], **SECRETS})
    if result.returncode != 0:
        raise RuntimeError(f"bridge {' '.join(args)} failed: {result.stderr[-2000:]}")
    return result.stdout


def seed_site(site, n: int) -> dict[str, tuple[int, str]]:
    """N hotline topics; returns case number -> (topic id, spokesperson of its unit)."""
    from tests.forum.discourse_server import CATEGORIES, HOTLINE, SPOKESPEOPLE

    units = list(CATEGORIES)
    speaker = {unit: user for user, unit in SPOKESPEOPLE.items()}
    out = {}
    for i in range(n):
        unit = units[i % len(units)]
        number = case_number(i)
        post = site.create_topic(HOTLINE, f"房屋产权登记问题 [{number}]",
                                 f"朱女士反映：柯城区府山街道，老房子产权登记。案件编号 {number}，经 96811 热线转来。",
                                 CATEGORIES[unit], external_id=number)
        out[number] = (post.topic_id, speaker[unit])
    site.webhook_queue.clear()
    return out


def seed_db(config: Path, site, threads: dict[str, tuple[int, str]]) -> None:
    from sqlalchemy import insert, select

    from bridge.config import load_config
    from bridge.db.engine import Database
    from bridge.db.models import Case, CaseState, Department, DepartmentKind, ForumCursor, Honorific
    from tests.forum.discourse_server import CATEGORIES, UNITS

    cfg = load_config(config, environ=SECRETS)
    db = Database(cfg.database.url)
    from bridge.departments.service import ensure_shipped_units

    now = datetime.now(timezone.utc)
    unit_of_cid = {cid: unit for unit, cid in CATEGORIES.items()}
    try:
        with db.session() as s:
            ensure_shipped_units(s)  # as the daemon does at its first start
            s.flush()
            dept = {d.code: d.id for d in s.scalars(select(Department).where(Department.code.in_(list(CATEGORIES))))}
            for code in sorted(set(CATEGORIES) - set(dept)):  # the tests' CITY-HJ is not a shipped unit
                extra = Department(code=code, name=UNITS[code][1], kind=DepartmentKind.CITY_DEPARTMENT)
                s.add(extra)
                s.flush()
                dept[code] = extra.id
            rows = []
            for number, (topic_id, _) in threads.items():
                topic = site.topics[topic_id]
                rows.append({"number": number, "state": CaseState.POSTED,
                             "department_id": dept[unit_of_cid[topic.category_id]], "caller_surname": "朱",
                             "caller_honorific": Honorific.MS, "location": "柯城区府山街道",
                             "title": "房屋产权登记问题", "description": "老房子产权登记。",
                             "forum_post_id": str(topic_id),
                             "forum_url": f"{site.base_url}/t/{topic.slug}/{topic_id}",
                             "deadline_at": now + timedelta(days=3), "created_at": now, "updated_at": now})
            for k in range(0, len(rows), 2000):
                s.execute(insert(Case), rows[k:k + 2000])
            s.merge(ForumCursor(backend="discourse", cursor=str(max(site.posts)), updated_at=now))
    finally:
        db.dispose()


def set_cursor(db_path: Path, cursor: str | None) -> None:
    con = sqlite3.connect(db_path, timeout=30)
    try:
        con.execute("UPDATE forum_cursors SET cursor = ? WHERE backend = 'discourse'", (cursor,))
        con.commit()
    finally:
        con.close()


def no_contract(site) -> None:
    """Skip the fake's OpenAPI validation (requests and responses) for speed."""
    site.contract.check_request = lambda method, path, *a, **k: None
    site.contract.check_response = lambda *a, **k: None


# ------------------------------------------------------------- quiet cycles


async def quiet_cycles(config: Path, site, cycles: int, *, empty_cursor_catchup: bool = False) -> dict:
    from bridge.config import load_config
    from bridge.db.engine import Database
    from bridge.forum.discourse import DiscourseForum
    from bridge.forum.link import ForumLink
    from bridge.health import Health
    from bridge.live import LiveEvents

    cfg = load_config(config, environ=SECRETS)
    db = Database(cfg.database.url)
    forum = DiscourseForum.from_config(cfg)
    link = ForumLink(cfg, db, Health(), LiveEvents(), forum=forum)
    out: dict = {"requests": [], "wall_s": [], "fake_requests": []}
    try:
        for i in range(cycles + 1):  # the first one loads the cursor and runs the overdue check
            r0, f0, t0 = forum.requests_made, len(site.requests), time.perf_counter()
            stats = await link.cycle()
            dt = time.perf_counter() - t0
            if i == 0:
                out["first"] = (forum.requests_made - r0, dt, stats)
                continue
            out["requests"].append(forum.requests_made - r0)
            out["fake_requests"].append(len(site.requests) - f0)
            out["wall_s"].append(dt)
            out["paths"] = sorted(set(site.requests[f0:]))
        if empty_cursor_catchup:
            # A fresh cursor: how many cycles until the link reads new posts again?
            link.cursor, link._cursor_loaded = None, True
            top = max(site.posts)
            n, reqs, t0 = 0, 0, time.perf_counter()
            while True:
                r0 = forum.requests_made
                await link.cycle()
                n += 1
                reqs += forum.requests_made - r0
                if link.cursor and ":" not in link.cursor and int(link.cursor) >= top:
                    break
                if n > 1000:
                    break
            out["catchup"] = (n, reqs, time.perf_counter() - t0)
    finally:
        await forum.aclose()
        db.dispose()
    return out


# ----------------------------------------------------------------- the daemon


class Daemon:
    def __init__(self, config: Path, port: int, log: Path):
        self.port, self.log = port, log
        self._fh = open(log, "w", encoding="utf-8")
        self.proc = subprocess.Popen([sys.executable, "-m", "bridge", "run", "-c", str(config)], cwd=ROOT,
                                     stdout=self._fh, stderr=subprocess.STDOUT,
                                     env={"PATH": os.environ["PATH"], **SECRETS})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited {self.proc.returncode}: {log.read_text()[-2000:]}")
            try:
                h = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()
                if h["components"]["forum"]["state"] != "connecting":
                    return
            except (httpx.TransportError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        raise RuntimeError("the daemon did not come up")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._fh.close()

    def problems(self) -> list[str]:
        return [ln for ln in self.log.read_text(encoding="utf-8", errors="replace").splitlines()
                if '"level": "error"' in ln or '"level": "warning"' in ln or "Traceback" in ln]


def state_of(con: sqlite3.Connection, number: str) -> str | None:
    row = con.execute("SELECT state FROM cases WHERE number = ?", (number,)).fetchone()
    return row[0] if row else None


async def answer_latency(site, threads, db_path: Path, port: int | None, count: int, *, timeout: float,
                         spacing: tuple[float, float] = (0.0, 0.0)) -> dict:
    """``port`` set: deliver the webhook there; None: wait for polling."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    rng = random.Random(5)
    open_numbers = [n for n in threads if state_of(con, n) == "posted"]
    chosen = rng.sample(open_numbers, min(count, len(open_numbers)))
    lat, deliver, missed = [], [], []
    url = f"http://127.0.0.1:{port}/forum/discourse/webhook" if port else None
    async with httpx.AsyncClient(timeout=30) as client:
        for number in chosen:
            if spacing[1]:
                await asyncio.sleep(rng.uniform(*spacing))
            topic_id, speaker = threads[number]
            site.webhook_queue.clear()
            t0 = time.perf_counter()
            site.reply(speaker, topic_id, "答复：经核实，老房子产权登记请到市不动产登记中心办理。")
            if url:
                answers = await site.deliver_webhooks(client, url)
                deliver.append(time.perf_counter() - t0)
                if [a.status_code for a in answers] != [200]:
                    raise RuntimeError(f"webhook answered {[(a.status_code, a.text[:200]) for a in answers]}")
            else:
                site.webhook_queue.clear()
            while True:
                if state_of(con, number) == "answered":
                    lat.append(time.perf_counter() - t0)
                    break
                if time.perf_counter() - t0 > timeout:
                    missed.append(number)
                    break
                await asyncio.sleep(0.002)
    con.close()
    return {"lat": lat, "deliver": deliver, "missed": missed}


# ---------------------------------------------------------------------- report


def ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1000:.0f}"


def machine() -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return (f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, Python {platform.python_version()}, "
            f"load average {load[0]:.1f}")


def run_size(args, n: int, base: Path) -> tuple:
    from tests.forum.discourse_server import make_site

    folder = base / f"n{n}"
    folder.mkdir()
    site = make_site()
    if args.no_contract:
        no_contract(site)
    site.start()
    t0 = time.perf_counter()
    threads = seed_site(site, n)
    config = write_config(folder, free_port(), site.base_url, 3600)
    cli(config, "db", "upgrade")
    seed_db(config, site, threads)
    print(f"N={n}: seeded {n} topics and cases in {time.perf_counter() - t0:.1f} s", flush=True)
    return site, threads, config, folder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.forum", description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=10000, help="open threads (default 10000)")
    p.add_argument("--small", type=int, default=100, help="the comparison size for quiet cycles (default 100)")
    p.add_argument("--answers", type=int, default=50, help="answers delivered by webhook (default 50)")
    p.add_argument("--poll-answers", type=int, default=10, help="answers picked up by polling (default 10)")
    p.add_argument("--poll-interval", type=float, default=5.0, help="poll_interval_s for the polling run (default 5)")
    p.add_argument("--cycles", type=int, default=5, help="quiet cycles measured per size (default 5)")
    p.add_argument("--no-contract", action="store_true", help="skip the fake's OpenAPI validation (speed)")
    p.add_argument("--no-catchup", action="store_true", help="skip the empty-cursor catch-up measurement")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (daemon logs)")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    started = datetime.now(timezone.utc)
    base = Path(tempfile.mkdtemp(prefix="bench-forum-"))
    sites, daemons, report = [], [], {}
    status = 0
    try:
        # 1. Quiet cycles at the small size and at N.
        for n in (args.small, args.threads):
            site, threads, config, folder = run_size(args, n, base)
            sites.append(site)
            q = asyncio.run(quiet_cycles(config, site, args.cycles, empty_cursor_catchup=not args.no_catchup))
            report[("quiet", n)] = q
            print(f"  quiet cycles at N={n}: requests {q['requests']}, wall ms "
                  f"{[round(x * 1000) for x in q['wall_s']]}; paths {q['paths']}; first cycle {q['first'][:2]}",
                  flush=True)
            if "catchup" in q:
                print(f"  empty cursor at N={n}: {q['catchup'][0]} cycles, {q['catchup'][1]} requests, "
                      f"{q['catchup'][2]:.1f} s before new posts are read again", flush=True)
            if n != args.threads:
                site.stop()
                sites.remove(site)
        db_path = folder / "bridge.sqlite3"

        def answers_through(kind: str, label: str, poll_interval: float, count: int, **timing) -> None:
            """A daemon on the seeded data, webhooks on (kind "webhook") or polling only ("poll"):
            time ``count`` answers on the forum to "answered" on their cases."""
            set_cursor(db_path, str(max(site.posts)))
            port = free_port()
            daemon = Daemon(write_config(folder, port, site.base_url, poll_interval), port,
                            folder / f"daemon-{kind}.log")
            daemons.append(daemon)
            result = asyncio.run(answer_latency(site, threads, db_path, port if kind == "webhook" else None,
                                                count, **timing))
            daemon.stop()
            daemons.remove(daemon)
            report[kind], report[f"{kind}_problems"] = result, daemon.problems()
            print(f"  {label}: {len(result['lat'])} answered, p50 {ms(percentile(result['lat'], 50))} ms, "
                  f"p99 {ms(percentile(result['lat'], 99))} ms, missed {len(result['missed'])}", flush=True)

        # 2. Webhooks (polling every hour: out of the way).
        answers_through("webhook", "webhook", 3600, args.answers, timeout=30)
        # 3. Polling only.
        answers_through("poll", "polling", args.poll_interval, args.poll_answers,
                        timeout=args.poll_interval * 4 + 30, spacing=(0.0, args.poll_interval))
        report["violations"] = list(site.violations)
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        status = 130
    finally:
        for d in daemons:
            d.stop()
        for s in sites:
            s.stop()
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    if status:
        return status

    print()
    print(f"machine: {machine()}; {started:%Y-%m-%d %H:%M} UTC; contract validation "
          f"{'OFF' if args.no_contract else 'on'}")
    print()
    print("| what | N threads | requests/cycle | cycle ms p50 | cycle ms max | notes |")
    print("|---|---|---|---|---|---|")
    for n in (args.small, args.threads):
        q = report[("quiet", n)]
        cu = q.get("catchup")
        note = f"empty cursor: {cu[0]} cycles / {cu[1]} requests before new posts are read" if cu else ""
        print(f"| quiet polling cycle | {n} | {'/'.join(str(x) for x in sorted(set(q['requests'])))} | "
              f"{ms(percentile(q['wall_s'], 50))} | {ms(max(q['wall_s']))} | {note} |")
    print()
    print("| answer -> case 'answered' | N threads | answers | p50 ms | p99 ms | max ms | notes |")
    print("|---|---|---|---|---|---|---|")
    w, pl = report["webhook"], report["poll"]
    print(f"| webhook | {args.threads} | {len(w['lat'])} | {ms(percentile(w['lat'], 50))} | "
          f"{ms(percentile(w['lat'], 99))} | {ms(max(w['lat'], default=None))} | webhook POST answered in p50 "
          f"{ms(percentile(w['deliver'], 50))} / p99 {ms(percentile(w['deliver'], 99))} ms; missed {len(w['missed'])} |")
    print(f"| polling only, poll_interval_s = {args.poll_interval:g} | {args.threads} | {len(pl['lat'])} | "
          f"{ms(percentile(pl['lat'], 50))} | {ms(percentile(pl['lat'], 99))} | {ms(max(pl['lat'], default=None))} | "
          f"missed {len(pl['missed'])} |")
    p99 = percentile(w["lat"], 99)
    met = p99 is not None and p99 < GOAL_S and not w["missed"]
    print()
    print(("GOAL MET" if met else "GOAL NOT MET") + f": webhook answer latency p99 {ms(p99)} ms at "
          f"{args.threads} open threads (goal < {GOAL_S * 1000:.0f} ms)")
    for key in ("webhook_problems", "poll_problems"):
        if report.get(key):
            print(f"daemon log ({key}): {len(report[key])} warning/error lines; first: {report[key][0][:300]}")
    if report.get("violations"):
        print(f"contract violations: {len(report['violations'])}; first: {report['violations'][0][:300]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
