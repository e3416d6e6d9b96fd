"""Benchmark of call recovery from Asterisk's CEL (issue 9, defect 3).

    .venv/bin/python -m bench.recovery [--rows 5000000] [--backend sqlite|postgresql]
                                       [--backlog-days 3] [--cel-dir DIR] [--keep]

The goals: on a CEL table of 5,000,000 rows, a reconnect's recovery costs under 1 s when
nothing was missed, and a live call's pop is not delayed while a backlog is recovered.

What it runs, in a temporary folder (``--cel-dir`` keeps and reuses the built SQLite CEL):

1. **A CEL table of ``--rows`` rows** as Asterisk writes it: a year of calls, one after the
   other, each a copy of one of the test bed's recorded calls (tests/pbx/recorded: answered,
   abandoned, after-hours message, status line; 14-17 CEL rows each) with its own uniqueids
   and Linkedid ("EPOCH.SEQUENCE", as Asterisk makes them), channel names and times, the
   last call ending a minute ago; and the first-leg CDR rows.  SQLite: ``cel.db`` and
   ``master.db`` (executemany, journal off); PostgreSQL: tables shaped as cel_pgsql /
   cdr_pgsql fill them (``bridge.pbx.recovery.PG_TABLES``), loaded with COPY, in the
   ``test`` database, dropped afterwards.  No index beyond Asterisk's own schema.
2. **A fresh call log** (SQLite, migrated) holding the calls of the last ``--backlog-days``
   days as logged live, except where a figure below says otherwise.
3. **(a) Reconnect cost when nothing was missed** (``recovery.recover_batch``, as the daemon
   runs it after each login): with the cursor at the table's end; with 50 calls ended since
   the cursor, all in the call log; and, for comparison, the recovery of before (every
   LINKEDID_END row into Python, 7 days replayed: the code up to 2026-12).  Also the first
   run ever (no cursor; calls of the window all logged): how many runs and how long.
4. **(b) Live pops during a backlog**: the daemon's PBX link (``PbxService``, real AMI client)
   against the tests' local AMI server (tests/pbx/fake_ami.py).  A new live call arrives
   every 50 ms (a Newchannel event over TCP); its pop is the live "arrived" event the desk
   gets.  Pop latency = event sent -> pop published, first with no recovery running, then
   while the recovery works off a backlog of ``--backlog-days`` days (the call log empty, the
   cursor that far back).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECORDED = REPO / "tests" / "pbx" / "recorded"
PG_URL_ENV = "HOTLINE_BRIDGE_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# The mix of recorded calls the year is made of.
MIX = (("answered", 6), ("abandoned", 2), ("after_hours_message", 1), ("status_line", 1))
CEL_COLUMNS = ("eventtime", "eventtype", "userdeftype", "cid_name", "cid_num", "cid_ani", "cid_dnid", "exten",
               "context", "channame", "appname", "appdata", "amaflags", "accountcode", "uniqueid", "linkedid",
               "peer", "extra")
CDR_COLUMNS = ("calldate", "channel", "dstchannel", "lastapp", "src", "dst", "uniqueid", "linkedid",
               "hotline_disposition", "hotline_recording")
GOAL_RECONNECT_S = 1.0
SECRETS = {"HOTLINE_BRIDGE_AMI_SECRET": "bench-ami", "HOTLINE_BRIDGE_SESSION_SECRET": "bench-session"}


# ------------------------------------------------------------------------ the CEL table


@dataclass
class Template:
    """One recorded call, ready to be stamped out: rows with times as offsets from its start."""

    name: str
    cel: list[dict]
    cdr: list[dict]
    ids: list[str]          # its uniqueids, in order of appearance (the first is the Linkedid)
    length_s: float


def templates() -> list[Template]:
    out = []
    for name, weight in MIX:
        cel = json.loads((RECORDED / f"{name}.cel.json").read_text(encoding="utf-8"))
        cdr = json.loads((RECORDED / f"{name}.cdr.json").read_text(encoding="utf-8"))
        start = float(cel[0]["eventtime"])
        ids = list(dict.fromkeys(r["uniqueid"] for r in cel))
        for r in cel:
            r["offset"] = float(r["eventtime"]) - start
        cdr = [r for r in cdr if r["uniqueid"] == r["linkedid"]]
        out += [Template(name, cel, cdr, ids, float(cel[-1]["eventtime"]) - start)] * weight
    return out


_HEX_SUFFIX = re.compile(r"-[0-9a-f]{8}$")


def stamp(template: Template, start: float, seq: int) -> tuple[list[tuple], list[tuple], str]:
    """The template's rows as a new call starting at ``start``: (cel rows, cdr rows, linkedid)."""
    epoch = int(start)
    new_ids = {old: f"{epoch}.{seq + k}" for k, old in enumerate(template.ids)}
    linkedid = new_ids[template.ids[0]]
    caller = f"139{seq % 100_000_000:08d}"

    def swap(value: str) -> str:
        for old, new in new_ids.items():
            if old in value:
                value = value.replace(old, new)
        return value

    cel = []
    for r in template.cel:
        channame = _HEX_SUFFIX.sub(f"-{seq % 0xFFFFFFFF:08x}", r["channame"]) if r["channame"] else ""
        cel.append((f"{start + r['offset']:.6f}", r["eventtype"], r["userdeftype"], r["cid_name"],
                    caller if r["cid_num"] == template.cel[0]["cid_num"] else r["cid_num"], r["cid_ani"],
                    r["cid_dnid"], r["exten"], r["context"], channame, r["appname"], r["appdata"],
                    r["amaflags"], r["accountcode"], new_ids.get(r["uniqueid"], r["uniqueid"]), linkedid,
                    r["peer"], r["extra"]))
    calldate = datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    cdr = [(calldate, r["channel"], r["dstchannel"], r["lastapp"], caller, r["dst"], linkedid, linkedid,
            r["hotline_disposition"], swap(r["hotline_recording"] or "")) for r in template.cdr]
    return cel, cdr, linkedid


@dataclass
class Built:
    rows: int
    calls: list[tuple[str, float, int]]     # (linkedid, ended at epoch, LINKEDID_END row id) in order
    build_s: float


def generate(rows: int, end: float):
    """Yield (cel rows, cdr rows, linkedid, ended at) for calls spread over the year before ``end``."""
    shapes = templates()
    per_call = statistics.mean(len(t.cel) for t in shapes)
    count = int(rows / per_call) + 1
    gap = 365 * 86400 / count
    start = end - 365 * 86400
    produced = 0
    seq = 0
    i = 0
    while produced < rows:
        template = shapes[i % len(shapes)]
        at = start + i * gap
        cel, cdr, linkedid = stamp(template, at, seq)
        cel = cel[:rows - produced]
        produced += len(cel)
        seq += len(template.ids)
        i += 1
        yield cel, cdr, linkedid, at + template.length_s, len(cel) == len(template.cel)


def build_sqlite(folder: Path, rows: int, end: float) -> Built:
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    cel_db, cdr_db = sqlite3.connect(folder / "cel.db"), sqlite3.connect(folder / "master.db")
    for connection in (cel_db, cdr_db):
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
    # The shape cel_sqlite3_custom / cdr_sqlite3_custom create: an AcctId rowid, untyped columns.
    cel_db.execute(f"CREATE TABLE cel (AcctId INTEGER PRIMARY KEY, {', '.join(CEL_COLUMNS)})")
    cdr_db.execute(f"CREATE TABLE cdr (AcctId INTEGER PRIMARY KEY, {', '.join(CDR_COLUMNS)})")
    cel_insert = f"INSERT INTO cel ({', '.join(CEL_COLUMNS)}) VALUES ({', '.join('?' * len(CEL_COLUMNS))})"
    cdr_insert = f"INSERT INTO cdr ({', '.join(CDR_COLUMNS)}) VALUES ({', '.join('?' * len(CDR_COLUMNS))})"
    calls: list[tuple[str, float, int]] = []
    cel_buffer: list[tuple] = []
    cdr_buffer: list[tuple] = []
    row_id = 0
    for cel, cdr, linkedid, ended, whole in generate(rows, end):
        cel_buffer += cel
        cdr_buffer += cdr
        row_id += len(cel)
        if whole:
            calls.append((linkedid, ended, row_id))
        if len(cel_buffer) >= 200_000:
            cel_db.executemany(cel_insert, cel_buffer)
            cdr_db.executemany(cdr_insert, cdr_buffer)
            cel_buffer, cdr_buffer = [], []
    cel_db.executemany(cel_insert, cel_buffer)
    cdr_db.executemany(cdr_insert, cdr_buffer)
    for connection in (cel_db, cdr_db):
        connection.commit()
        connection.close()
    (folder / "calls.json").write_text(json.dumps({"rows": rows, "end": end, "calls": calls}))
    return Built(rows, calls, time.perf_counter() - started)


def build_postgresql(url: str, tables: tuple[str, str], rows: int, end: float) -> Built:
    import psycopg

    from bridge.pbx.recovery import PG_TABLES

    started = time.perf_counter()
    cel, cdr = tables
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    calls: list[tuple[str, float, int]] = []
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(PG_TABLES.format(cel=cel, cdr=cdr))
        extra_cel = ("cid_rdnis", "peeraccount", "userfield")
        with connection.cursor() as cursor:
            with cursor.copy(f"COPY {cel} ({', '.join(CEL_COLUMNS + extra_cel)}) FROM STDIN") as copy_cel:
                row_id = 0
                cdr_rows: list[tuple] = []
                for cel_rows, cdr_part, linkedid, ended, whole in generate(rows, end):
                    for r in cel_rows:
                        copy_cel.write_row((datetime.fromtimestamp(float(r[0]), timezone.utc).replace(tzinfo=None),
                                            *r[1:12], int(r[12] or 0), *r[13:], "", "", ""))
                    row_id += len(cel_rows)
                    cdr_rows += cdr_part
                    if whole:
                        calls.append((linkedid, ended, row_id))
            with cursor.copy(f"COPY {cdr} ({', '.join(CDR_COLUMNS)}) FROM STDIN") as copy_cdr:
                for r in cdr_rows:
                    copy_cdr.write_row(r)
        connection.execute(f"ANALYZE {cel}")
    return Built(rows, calls, time.perf_counter() - started)


# -------------------------------------------------------------------------- the figures


def migrated_call_log(folder: Path):
    from bridge.db import migrate
    from bridge.db.engine import Database

    path = folder / f"calls-{uuid.uuid4().hex[:6]}.sqlite3"
    migrate.upgrade(f"sqlite:///{path}")
    return Database(f"sqlite:///{path}")


def log_live(db, calls: list[tuple[str, float, int]]) -> None:
    """The calls as the live link would have stored them (ended, source live)."""
    from bridge.pbx.calllog import save_records
    from bridge.pbx.events import CallRecord

    with db.session() as session:
        for start in range(0, len(calls), 2000):
            records = []
            for linkedid, ended, _ in calls[start:start + 2000]:
                at = datetime.fromtimestamp(ended, timezone.utc)
                records.append((CallRecord(linkedid=linkedid, caller_number="13900000000", caller_name="",
                                           dialled_number="96811", arrived_at=at - timedelta(seconds=5),
                                           ended_at=at, disposition="answered"), None))
            save_records(session, records, now=datetime.now(timezone.utc))


def set_cursor(db, position: int | None) -> None:
    from bridge.db.models import Cursor
    from bridge.pbx.recovery import CURSOR_NAME

    with db.session() as session:
        cursor = session.get(Cursor, CURSOR_NAME)
        if cursor is None:
            session.add(Cursor(name=CURSOR_NAME, position=None if position is None else str(position)))
        else:
            cursor.position = None if position is None else str(position)


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def old_full_replay(cel_path: Path, cdr_path: Path, now: datetime) -> int:
    """The recovery of before (up to 2026-12), for comparison: every LINKEDID_END row read into
    Python, the 7-day window replayed (CEL rows by ``linkedid IN (...)``, no index)."""
    from bridge.pbx.recovery import parse_cel_time, replay

    since = now - timedelta(days=7)
    cel = sqlite3.connect(f"file:{cel_path}?mode=ro", uri=True)
    cel.row_factory = sqlite3.Row
    everything = cel.execute("SELECT linkedid, eventtime FROM cel WHERE eventtype = 'LINKEDID_END'")
    ended = [linkedid for linkedid, at in everything
             if (parse_cel_time(str(at)) or since) >= since]
    rows = []
    for start in range(0, len(ended), 500):
        chunk = ended[start:start + 500]
        rows += [dict(r) for r in cel.execute(
            f"SELECT * FROM cel WHERE linkedid IN ({','.join('?' * len(chunk))}) ORDER BY rowid", chunk)]
    cel.close()
    rows = [{k: "" if v is None else str(v) for k, v in r.items()} for r in rows]
    rows.sort(key=lambda r: parse_cel_time(r["eventtime"]))
    cdr = sqlite3.connect(f"file:{cdr_path}?mode=ro", uri=True)
    cdr.row_factory = sqlite3.Row
    legs = {}
    for start in range(0, len(ended), 500):
        chunk = ended[start:start + 500]
        for r in cdr.execute(f"SELECT * FROM cdr WHERE uniqueid = linkedid AND linkedid IN "
                             f"({','.join('?' * len(chunk))}) ORDER BY rowid", chunk):
            legs[r["linkedid"]] = {k: "" if r[k] is None else str(r[k]) for k in r.keys()}
    cdr.close()
    return len(replay(rows, legs, ["96811"], "hotline"))


def reconnect_figures(recovery, built: Built, folder: Path, now: datetime, *, old: tuple[Path, Path] | None):
    from bridge.pbx.recovery import recover_batch

    out = {}
    window = [c for c in built.calls if c[1] >= (now - timedelta(days=7)).timestamp()]
    # At the end: the daemon was up, nothing new since the last run.
    db = migrated_call_log(folder)
    log_live(db, window[-50:])
    set_cursor(db, built.rows)
    took = [timed(recover_batch, db, recovery, now=now)[0] for _ in range(5)]
    out["cursor at the end"] = (min(took), max(took), "examined 0")
    # 50 calls ended since the last run, all logged live (a short AMI cut).
    times, examined = [], 0
    for _ in range(5):
        set_cursor(db, window[-51][2])
        t, result = timed(recover_batch, db, recovery, now=now)
        times.append(t)
        examined = result.examined
        assert result.recovered == 0, result
    out["50 calls since, all logged"] = (min(times), max(times), f"examined {examined}, recovered 0")
    db.dispose()
    # The first run ever: no cursor, every call of the window logged live.
    db = migrated_call_log(folder)
    log_live(db, window)
    started = time.perf_counter()
    runs = 0
    while True:
        runs += 1
        if not recover_batch(db, recovery, now=now).more:
            break
    out["first run (no cursor), 7 days logged"] = (time.perf_counter() - started, None,
                                                   f"{runs} runs over {len(window)} calls")
    db.dispose()
    if old is not None:
        t, count = timed(old_full_replay, *old, now)
        out["before: full 7-day replay"] = (t, None, f"{count} calls replayed")
    return out


async def pop_figures(recovery, built: Built, folder: Path, now: datetime, backlog_days: float) -> dict:
    """Pop latency of live calls (event sent over AMI -> live event), without and during a backlog."""
    from bridge.config import validate
    from bridge.health import Health
    from bridge.live import LiveEvents
    from bridge.pbx.service import PbxService
    from tests import sipp
    from tests.pbx.fake_ami import FakeAmi

    db = migrated_call_log(folder)
    backlog = [c for c in built.calls if c[1] >= now.timestamp() - backlog_days * 86400]
    set_cursor(db, backlog[0][2] - 1)
    ami = await FakeAmi(secret=SECRETS["HOTLINE_BRIDGE_AMI_SECRET"]).start()
    config = validate({"sandbox": {"enabled": False},
                       "pbx": {"ami": {"port": ami.port}, "agi_port": sipp.free_port("127.0.0.1")}},
                      environ=SECRETS)
    service = PbxService(config, db, Health(), LiveEvents())
    service.recovery = None          # started by hand below, once the baseline is taken
    await service.start()
    sent: dict[str, float] = {}
    latencies: list[float] = []
    counter = iter(range(10**9))

    async def consume(events):
        while True:
            event = await events.get()
            if event.kind == "arrived" and event.data["linkedid"] in sent:
                latencies.append(time.perf_counter() - sent.pop(event.data["linkedid"]))

    async def calls_for(condition, minimum: int) -> list[float]:
        latencies.clear()
        n = 0
        while condition() or n < minimum:
            i = next(counter)
            linkedid = f"{int(time.time())}.{900000 + i}"
            sent[linkedid] = time.perf_counter()
            await ami.send_event({"Event": "Newchannel", "Channel": f"PJSIP/carrier-{i:08x}", "Uniqueid": linkedid,
                                  "Linkedid": linkedid, "CallerIDNum": f"1380000{i:04d}", "CallerIDName": "",
                                  "Exten": "96811", "Context": "from-carrier", "ChannelState": "0"})
            n += 1
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        return list(latencies)

    try:
        assert await service.ami.wait_up(5)
        async with service.live.subscribe() as events:
            consumer = asyncio.create_task(consume(events))
            quiet = await calls_for(lambda: False, 100)
            service.recovery = recovery
            started = time.perf_counter()
            task = service.start_recovery()
            finished: list[float] = []
            task.add_done_callback(lambda _: finished.append(time.perf_counter() - started))
            during = await calls_for(lambda: not task.done(), 100)
            recovered = await task
            took = finished[0]
            consumer.cancel()
    finally:
        await service.stop()
        await ami.close()
        db.dispose()
    return {"quiet": quiet, "during": during, "recovered": recovered, "recovery_s": took,
            "backlog_calls": len(backlog)}


def quantiles(values: list[float]) -> str:
    if not values:
        return "no pops"
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return (f"p50 {pick(0.5):.1f} ms, p95 {pick(0.95):.1f} ms, max {ordered[-1] * 1000:.1f} ms "
            f"({len(values)} pops)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--backlog-days", type=float, default=3.0)
    parser.add_argument("--cel-dir", type=Path, help="build the SQLite CEL here, or reuse the one built there")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))   # warnings and up
    from bridge.pbx.recovery import CdrRecovery

    folder = Path(tempfile.mkdtemp(prefix="bench-recovery-"))
    tables = (f"bench_cel_{uuid.uuid4().hex[:8]}", f"bench_cdr_{uuid.uuid4().hex[:8]}")
    pg_url = os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load {os.getloadavg()[0]:.2f}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    recovery = None
    try:
        end = time.time() - 60
        if args.backend == "sqlite":
            cel_dir = args.cel_dir or folder / "cel"
            meta = cel_dir / "calls.json"
            if meta.exists() and json.loads(meta.read_text())["rows"] == args.rows:
                data = json.loads(meta.read_text())
                built = Built(data["rows"], [tuple(c) for c in data["calls"]], 0.0)
                shift = end - data["end"]     # reuse: "now" moves with the table
                end = data["end"]
                print(f"CEL reused from {cel_dir} ({built.rows:,} rows, built {shift / 60:.0f} min ago)")
            else:
                shutil.rmtree(cel_dir, ignore_errors=True)
                built = build_sqlite(cel_dir, args.rows, end)
                print(f"CEL built: {built.rows:,} rows, {len(built.calls):,} calls, {built.build_s:.1f} s "
                      f"({(cel_dir / 'cel.db').stat().st_size / 2**20:.0f} MiB)")
            recovery = CdrRecovery(cel_dir / "master.db", ["96811"], "hotline")
            old = (cel_dir / "cel.db", cel_dir / "master.db")
        else:
            built = build_postgresql(pg_url, tables, args.rows, end)
            print(f"CEL built in PostgreSQL: {built.rows:,} rows, {len(built.calls):,} calls, {built.build_s:.1f} s")
            recovery = CdrRecovery.from_urls(pg_url, pg_url, ["96811"], "hotline", cel_table=tables[0],
                                             cdr_table=tables[1])
            old = None
        now = datetime.fromtimestamp(end + 60, timezone.utc)
        print("\n(a) a reconnect's recovery")
        figures = reconnect_figures(recovery, built, folder, now, old=old)
        for name, (best, worst, note) in figures.items():
            span = f"{best * 1000:8.1f} ms" + (f" (worst {worst * 1000:.1f} ms)" if worst is not None else "")
            print(f"  {name:<40} {span}   {note}")
        nothing_missed = max(worst for name, (_, worst, _) in figures.items() if name.startswith(("cursor", "50")))
        print(f"  goal: under {GOAL_RECONNECT_S:.0f} s when nothing was missed -> "
              f"{'met' if nothing_missed < GOAL_RECONNECT_S else 'NOT met'} ({nothing_missed * 1000:.1f} ms worst)")

        print(f"\n(b) live pops while a backlog of {args.backlog_days:g} days is recovered")
        pops = asyncio.run(pop_figures(recovery, built, folder, now, args.backlog_days))
        print(f"  no recovery running:      {quantiles(pops['quiet'])}")
        print(f"  during the recovery:      {quantiles(pops['during'])}")
        print(f"  the recovery: {pops['recovered']:,} of {pops['backlog_calls']:,} backlog calls stored "
              f"in {pops['recovery_s']:.1f} s")
    finally:
        if recovery is not None:
            recovery.dispose()
        if args.backend == "postgresql":
            with contextlib.suppress(Exception):
                import psycopg

                with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://"),
                                     autocommit=True) as connection:
                    for table in tables:
                        connection.execute(f"DROP TABLE IF EXISTS {table}")
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
