"""Call-log benchmark: SIPp calls through the sandbox Asterisk, logged by the real daemon.

    .venv/bin/python -m bench.calllog [--rates 10,25,50] [--calls 2000] [--max-concurrent 200]
                                      [--database sqlite|postgresql] [--keep]

What runs (all on loopback, free ports, a temporary folder; everything is stopped and
removed at the end, also on Ctrl-C / SIGTERM / errors):

* the sandbox Asterisk 22 (``bridge.pbx.sandbox.Sandbox``) with the shipped dialplan and
  the test bed's short timings (``tests.asterisk_testbed.TEST_TUNING``), office open now;
* two desk phones (8001, 8002) answering every call (SIPp uas, ``tests.sipp``);
* the daemon itself, ``python -m bridge run -c CONFIG``, as a separate process, with a
  generated config pointing at the sandbox AMI and a fresh SQLite file (or a fresh
  PostgreSQL database, dropped afterwards);
* per rate, two SIPp callers at rate/2 each with distinct caller numbers: half the
  callers press 1 and stay 1.5 s more (answered by a desk phone when one is free,
  otherwise abandoned in the queue), half press nothing and hang up after 2 s (during the
  greeting/menu).  ``-l`` caps calls at once (``--max-concurrent``, split over the two).

Figures per rate (see docs/performance.md for the definitions):

* placed: calls SIPp created; at PBX: calls Asterisk ended (CEL LINKEDID_END) with a
  caller number of this run; logged: ``calls`` rows with those caller numbers and
  ``ended_at`` set; lost = at PBX - logged;
* CPU seconds (utime+stime from /proc/PID/stat, all threads) of the daemon, Asterisk and
  SIPp over the same window: from just before the first INVITE until every row is ended
  (or the drain timeout);
* event-to-row latency: per call, from Asterisk's LINKEDID_END CEL ``eventtime`` (the
  moment Asterisk finished the call) to the row's ``updated_at`` of the write that set
  ``ended_at`` (the daemon's clock when it stored the final snapshot; same host clock).
  Split into "to daemon" (LINKEDID_END -> ``ended_at``, which is the daemon's receipt time
  of the last Hangup) and "queue+write" (``ended_at`` -> ``updated_at``).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from bridge.pbx.sandbox import Sandbox, SandboxError
from tests import sipp
from tests.asterisk_testbed import AMI_SECRET_ENV, AsteriskTestbed, start_testbed

REPO = Path(__file__).resolve().parents[1]
PG_URL_ENV = "HOTLINE_BRIDGE_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CLK_TCK = os.sysconf("SC_CLK_TCK")
GOAL_RATE = 50
GOAL_CPU_RATIO = 0.2


# ----------------------------------------------------------------------------- helpers


def cpu_seconds(pid: int | None) -> float | None:
    """utime + stime of a process (all its threads), in seconds."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the ")": state is fields[0]; utime/stime are stat fields 14/15 -> [11]/[12].
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds spent busy by the whole machine (all CPUs), from /proc/stat."""
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in parts[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = max(0, min(len(values) - 1, math.ceil(q / 100 * len(values)) - 1))   # nearest rank
    return values[k]


def parse_time(value) -> datetime | None:
    """A datetime from the database / CEL: aware, or naive meaning UTC; epoch seconds too."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value).strip()
        try:
            return datetime.fromtimestamp(float(text), timezone.utc)
        except ValueError:
            pass
        dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt


def machine() -> dict[str, str]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return {"nproc": str(os.cpu_count()), "cpu": model, "memory": mem,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


# ------------------------------------------------------------------------------ parts


@dataclass
class Database:
    kind: str
    url: str                 # the daemon's URL
    admin_url: str | None = None
    name: str | None = None

    @classmethod
    def create(cls, kind: str, folder: Path) -> Database:
        if kind == "sqlite":
            return cls(kind, f"sqlite:///{folder / 'bridge.sqlite3'}")
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        admin = os.environ.get(PG_URL_ENV, DEFAULT_PG_URL)
        name = f"bench_calllog_{os.getpid()}_{secrets.token_hex(3)}"
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        url = make_url(admin).set(database=name).render_as_string(hide_password=False)
        return cls(kind, url, admin, name)

    def drop(self) -> None:
        if self.kind != "postgresql" or not self.name:
            return
        from sqlalchemy import create_engine, text

        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        finally:
            engine.dispose()

    def ended_rows(self, numbers: list[str]) -> list[tuple]:
        """(caller_number, linkedid, ended_at, updated_at, disposition, source) of the run's rows."""
        from sqlalchemy import bindparam, create_engine, text

        engine = create_engine(self.url)
        try:
            with engine.connect() as conn:
                q = text("SELECT caller_number, linkedid, ended_at, updated_at, disposition, source "
                         "FROM calls WHERE caller_number IN :nums").bindparams(bindparam("nums", expanding=True))
                out = []
                for i in range(0, len(numbers), 500):
                    out += [tuple(r) for r in conn.execute(q, {"nums": numbers[i:i + 500]})]
                return out
        finally:
            engine.dispose()


class DaemonProcess:
    """``python -m bridge run -c CONFIG`` with a generated config."""

    def __init__(self, folder: Path, bed: AsteriskTestbed, db: Database, environ: dict[str, str],
                 log_level: str, profile: Path | None = None):
        self.profile = profile
        self.folder = folder
        self.web_port = sipp.free_port("127.0.0.1", kinds=(socket.SOCK_STREAM,), taken=bed._taken)
        sb = bed.config.sandbox
        phones = "\n".join(f'"{ext}" = {port}' for ext, port in sb.phones.items())
        self.config_path = folder / "config.toml"
        self.config_path.write_text(f"""# generated by bench/calllog.py
[database]
url = "{db.url}"
[web]
host = "127.0.0.1"
port = {self.web_port}
public_url = "http://127.0.0.1:{self.web_port}"
[pbx]
agi_host = "127.0.0.1"
agi_port = {bed.config.pbx.agi_port}
[pbx.ami]
host = "127.0.0.1"
port = {bed.ami_port}
username = "{bed.ami_username}"
secret_env = "{AMI_SECRET_ENV}"
[sandbox]
enabled = true
asterisk_root = "{sb.asterisk_root}"
state_dir = "{bed.sandbox.state_dir}"
host = "127.0.0.1"
trunk_port = {sb.trunk_port}
carrier_port = {sb.carrier_port}
ami_port = {sb.ami_port}
[sandbox.phones]
{phones}
[logging]
level = "{log_level}"
format = "json"
""", encoding="utf-8")
        self.env = {**os.environ, **environ}
        self.log_path = folder / "daemon.log"
        self.proc: subprocess.Popen | None = None
        self.db = db

    def upgrade(self) -> None:
        if self.db.kind == "postgresql":
            subprocess.run([sys.executable, "-m", "bridge", "db", "upgrade", "-c", str(self.config_path)],
                           cwd=self.folder, env=self.env, check=True, capture_output=True)

    def start(self, timeout: float = 60) -> None:
        self.upgrade()
        log = open(self.log_path, "ab")
        try:
            prefix = [sys.executable] + (["-m", "cProfile", "-o", str(self.profile)] if self.profile else [])
            self.proc = subprocess.Popen(prefix + ["-m", "bridge", "run", "-c", str(self.config_path)],
                                         cwd=self.folder, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/healthz", timeout=2) as r:
                    last = json.loads(r.read())
            except (OSError, ValueError) as exc:
                last = repr(exc)
            else:
                if last.get("components", {}).get("pbx", {}).get("state") == "up":
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the daemon's PBX link did not come up in {timeout} s: {last}\n{self.tail()}")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def tail(self, n: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@dataclass
class RunResult:
    rate: float
    calls: int
    created: int = 0
    sipp_ok: int = 0
    sipp_failed: int = 0
    at_pbx: int = 0
    logged: int = 0
    duplicates: int = 0
    without_cel: int = 0      # ended rows whose call has no LINKEDID_END in Asterisk's CEL
    missing: list[str] = field(default_factory=list)
    cpu_daemon: float = 0.0
    cpu_asterisk: float = 0.0
    cpu_sipp: float = 0.0
    cpu_phones: float = 0.0
    cpu_machine: float = 0.0
    wall_s: float = 0.0
    place_s: float = 0.0
    drain_s: float = 0.0
    lat: list[float] = field(default_factory=list)
    lat_recv: list[float] = field(default_factory=list)
    lat_write: list[float] = field(default_factory=list)
    dispositions: dict[str, int] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    daemon_rss_mb: float | None = None
    max_at_once: int = 0
    call_length_s: float | None = None   # SIPp's mean call length (both callers)
    answer_s: float | None = None        # SIPp's mean INVITE -> 200 OK time (both callers)

    arrival_rate: float | None = None    # calls/s reaching Asterisk (CEL CHAN_START), first to last

    @property
    def achieved(self) -> float | None:
        """Calls SIPp created per second over the time it took to place and finish them."""
        return self.created / self.place_s if self.place_s else None

    @property
    def ratio(self) -> float | None:
        return self.cpu_daemon / self.cpu_asterisk if self.cpu_asterisk else None


def arrival_rate(starts: list[datetime | None]) -> float | None:
    """Calls per second between the first and the last arrival at the PBX."""
    times = sorted(t for t in starts if t is not None)
    if len(times) < 2:
        return None
    span = (times[-1] - times[0]).total_seconds()
    return (len(times) - 1) / span if span > 0 else None


def sipp_stats(path: Path) -> list[dict[str, str]]:
    """The samples of a SIPp -trace_stat file (one a second, the last one final), as dicts."""
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return []
    head = lines[0].split(";") if lines else []
    return [dict(zip(head, ln.split(";"))) for ln in lines[1:]]


def _hms(text: str) -> float | None:
    """SIPp's "HH:MM:SS:micro" -> seconds."""
    try:
        h, m, sec, us = (int(x) for x in text.strip().split(":"))
    except ValueError:
        return None
    return h * 3600 + m * 60 + sec + us / 1e6


class Bench:
    def __init__(self, args):
        self.args = args
        self.base = Path(tempfile.mkdtemp(prefix="bench-calllog-"))
        self.bed: AsteriskTestbed | None = None
        self.box: Sandbox | None = None
        self.daemon: DaemonProcess | None = None
        self.db: Database | None = None
        self.phones: list[sipp.SippRun] = []
        self.callers: list[sipp.SippRun] = []
        self.run_no = 0

    # ------------------------------------------------------------------ set-up
    def start(self) -> None:
        print(f"starting the sandbox Asterisk in {self.base} ...", flush=True)
        self.bed = start_testbed(self.base)
        self.box = self.bed.sandbox
        self.environ = self.bed.environ
        for ext in ("8001", "8002"):
            self.phones.append(self.bed.desk_phone(ext, "answer"))
        self.bed.sync_queue()
        self.db = Database.create(self.args.database, self.base)
        self.daemon = DaemonProcess(self.base, self.bed, self.db, self.environ, self.args.log_level,
                                    self.args.profile.resolve() if self.args.profile else None)
        print(f"starting the daemon (database {self.args.database}) ...", flush=True)
        self.daemon.start()
        print(f"daemon pid {self.daemon.pid}, asterisk pid {self.box.pid()}", flush=True)

    # -------------------------------------------------------------------- calls
    def _caller(self, name: str, numbers: list[str], rate: float, digits: str | None, hold_ms: int,
                limit: int) -> sipp.SippRun:
        bed = self.bed
        workdir = bed.workdir
        scenario = workdir / f"{name}.xml"
        scenario.write_text(sipp.render_caller(digits, hold_ms), encoding="utf-8")
        inject = workdir / f"{name}.csv"
        inject.write_text("SEQUENTIAL\n" + "".join(f"{n};来电{n[-4:]}\n" for n in numbers), encoding="utf-8")
        stat = workdir / f"{name}.stat.csv"
        cmd = [sipp.sipp_binary(), "-sf", str(scenario), "-inf", str(inject), "-s", bed.hotline_number,
               "-m", str(len(numbers)), "-r", f"{rate:g}", "-rp", "1000", "-l", str(max(1, limit)),
               "-i", bed.host, "-p", str(sipp.free_port(bed.host, taken=bed._taken)),
               "-mp", str(sipp.free_port(bed.host, span=4, even=True, taken=bed._taken)),
               "-recv_timeout", "60000", "-timeout", f"{int(len(numbers) / rate + 180)}s",
               "-trace_stat", "-stf", str(stat), "-fd", "1",
               "-nostdin", "-nd", f"{bed.host}:{bed.trunk_port}"]
        run = sipp.SippRun(name, cmd, workdir)
        run.stat_file = stat
        self.callers.append(run)
        return run

    def cel_calls(self, numbers: set[str]) -> tuple[dict[str, datetime], dict[str, datetime]]:
        """(linkedid -> CHAN_START eventtime of its first channel, linkedid -> LINKEDID_END
        eventtime) for calls whose caller is one of ``numbers``."""
        db = self.box.paths()["cel_db"]
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        try:
            con.execute("PRAGMA busy_timeout = 30000")
            starts = {}
            for linkedid, uniqueid, num, eventtime in con.execute(
                    "SELECT linkedid, uniqueid, cid_num, eventtime FROM cel WHERE eventtype = 'CHAN_START'"):
                if linkedid == uniqueid and num in numbers:
                    starts[linkedid] = parse_time(eventtime)
            ends = {}
            for linkedid, eventtime in con.execute(
                    "SELECT linkedid, eventtime FROM cel WHERE eventtype = 'LINKEDID_END'"):
                if linkedid in starts:
                    ends[linkedid] = parse_time(eventtime)
            return starts, ends
        finally:
            con.close()

    def run_rate(self, rate: float, calls: int) -> RunResult:
        self.run_no += 1
        res = RunResult(rate, calls)
        # Distinct caller numbers per run (and per bench process): 1 + 2 digits run + 3 pid + 5 seq.
        prefix = f"1{self.run_no:02d}{os.getpid() % 1000:03d}"
        numbers = [f"{prefix}{i:05d}" for i in range(calls)]
        pressing, silent = numbers[0::2], numbers[1::2]
        self.bed.sync_queue()
        pids = {"daemon": self.daemon.pid, "asterisk": self.box.pid()}
        for i, phone in enumerate(self.phones):
            pids[f"phone{i}"] = phone.proc.pid
        before = {k: cpu_seconds(p) for k, p in pids.items()}
        busy0 = machine_busy_seconds()
        t0 = time.monotonic()
        runs = []
        half = max(1, self.args.max_concurrent // 2)
        if pressing:
            runs.append(self._caller(f"r{self.run_no}-press1", pressing, rate / 2, "1", 1500, half))
        if silent:
            runs.append(self._caller(f"r{self.run_no}-silent", silent, rate / 2, None, 2000, half))
        print(f"rate {rate:g}/s: placing {calls} calls ...", flush=True)
        sipp_cpu = {r.name: 0.0 for r in runs}
        deadline = t0 + calls / rate + 240
        while any(r.running for r in runs):
            for r in runs:
                c = cpu_seconds(r.proc.pid)
                if c is not None:
                    sipp_cpu[r.name] = c
            if time.monotonic() > deadline:
                print("  SIPp still running past its deadline; stopping it", flush=True)
                for r in runs:
                    r.stop()
                break
            time.sleep(0.25)
        for r in runs:
            with contextlib.suppress(Exception):
                r.wait(10)
        res.place_s = time.monotonic() - t0
        res.cpu_sipp = sum(sipp_cpu.values())
        lengths, answers = [], []
        for r in runs:
            samples = sipp_stats(r.stat_file)
            st = samples[-1] if samples else {}
            res.created += int(st.get("TotalCallCreated", 0) or 0)
            res.sipp_ok += int(st.get("SuccessfulCall(C)", 0) or 0)
            res.sipp_failed += int(st.get("FailedCall(C)", 0) or 0)
            with contextlib.suppress(ValueError):
                res.max_at_once += max((int(x.get("CurrentCall", 0) or 0) for x in samples), default=0)
            lengths.append(_hms(st.get("CallLength(C)", "")))
            answers.append(_hms(st.get("ResponseTime1(C)", "")))
        if lengths and all(x is not None for x in lengths):
            res.call_length_s = sum(lengths) / len(lengths)
        if answers and all(x is not None for x in answers):
            res.answer_s = sum(answers) / len(answers)
        # Drain: wait until every call Asterisk ended has an ended row, or nothing changes for long.
        print(f"  SIPp done in {res.place_s:.1f} s ({res.created} created, {res.sipp_ok} ok, "
              f"{res.sipp_failed} failed); waiting for the rows ...", flush=True)
        t1 = time.monotonic()
        number_set = set(numbers)
        last_change, last_count, rows, starts, ends = time.monotonic(), -1, [], {}, {}
        time.sleep(1.0)
        while True:
            starts, ends = self.cel_calls(number_set)
            rows = self.db.ended_rows(numbers)
            ended = sum(1 for r in rows if r[2] is not None)
            if ended != last_count:
                last_count, last_change = ended, time.monotonic()
            if ends and ended >= max(len(ends), res.created - res.sipp_failed):
                break
            if time.monotonic() - last_change > self.args.drain_timeout:
                break
            time.sleep(0.5)
        after = {k: cpu_seconds(p) for k, p in pids.items()}
        res.cpu_machine = machine_busy_seconds() - busy0
        res.cpu_phones = sum((after[k] or 0) - (before[k] or 0) for k in pids if k.startswith("phone"))
        res.drain_s = time.monotonic() - t1
        res.wall_s = time.monotonic() - t0
        res.cpu_daemon = (after["daemon"] or 0) - (before["daemon"] or 0)
        res.cpu_asterisk = (after["asterisk"] or 0) - (before["asterisk"] or 0)
        res.daemon_rss_mb = rss_mb(self.daemon.pid)
        if after["daemon"] is None:
            print("  THE DAEMON IS GONE:\n" + self.daemon.tail(), flush=True)
        res.at_pbx = len(ends)
        res.arrival_rate = arrival_rate(list(starts.values()))
        by_linkedid: dict[str, tuple] = {}
        for row in rows:
            if row[1] in by_linkedid:
                res.duplicates += 1
            by_linkedid[row[1]] = row
        logged = {lid for lid, r in by_linkedid.items() if r[2] is not None}
        res.logged = len(logged)
        res.missing = sorted(set(ends) - logged)
        res.without_cel = len(logged - set(ends))
        for lid, r in by_linkedid.items():
            res.dispositions[str(r[4])] = res.dispositions.get(str(r[4]), 0) + 1
            res.sources[str(r[5])] = res.sources.get(str(r[5]), 0) + 1
            end = ends.get(lid)
            ended_at, updated_at = parse_time(r[2]), parse_time(r[3])
            if end is None or ended_at is None or updated_at is None:
                continue
            res.lat.append((updated_at - end).total_seconds())
            res.lat_recv.append((ended_at - end).total_seconds())
            res.lat_write.append((updated_at - ended_at).total_seconds())
        return res

    # ---------------------------------------------------------------- tear-down
    def close(self) -> None:
        for what, fn in (("callers", lambda: [r.stop() for r in self.callers]),
                         ("daemon", lambda: self.daemon and self.daemon.stop()),
                         ("phones", lambda: [r.stop() for r in self.phones]),
                         ("asterisk", lambda: self.box and self.box.stop()),
                         ("database", lambda: self.db and self.db.drop())):
            try:
                fn()
            except Exception as exc:  # go on cleaning up the rest
                print(f"cleanup of {what} failed: {exc!r}", file=sys.stderr, flush=True)
        if self.args.keep:
            print(f"kept {self.base} (and the instance folder)", flush=True)
            return
        if self.box is not None:
            shutil.rmtree(self.box.instance_dir, ignore_errors=True)
        shutil.rmtree(self.base, ignore_errors=True)


# ------------------------------------------------------------------------------ report


def fmt(v, spec=".2f", none="-"):
    return none if v is None else format(v, spec)


def table(results: list[RunResult]) -> str:
    head = ["rate/s", "arrived/s", "achieved/s", "answer s", "placed", "at PBX", "logged", "lost", "dup", "no CEL", "daemon CPU s", "Asterisk CPU s",
            "daemon/Asterisk", "SIPp CPU s", "machine busy s", "lat p50 ms", "lat p99 ms", "lat max ms",
            "recv p50/p99 ms", "write p50/p99 ms", "wall s"]
    rows = []
    for r in results:
        ms = lambda xs, q: fmt(None if not xs else percentile(xs, q) * 1000, ".0f")  # noqa: E731
        rows.append([f"{r.rate:g}", fmt(r.arrival_rate, ".1f"), fmt(r.achieved, ".1f"), fmt(r.answer_s, ".2f"), str(r.created), str(r.at_pbx), str(r.logged),
                     str(len(r.missing)), str(r.duplicates), str(r.without_cel),
                     fmt(r.cpu_daemon), fmt(r.cpu_asterisk), fmt(r.ratio, ".3f"), fmt(r.cpu_sipp + r.cpu_phones), fmt(r.cpu_machine),
                     ms(r.lat, 50), ms(r.lat, 99), fmt(max(r.lat) * 1000 if r.lat else None, ".0f"),
                     f"{ms(r.lat_recv, 50)}/{ms(r.lat_recv, 99)}", f"{ms(r.lat_write, 50)}/{ms(r.lat_write, 99)}",
                     f"{r.wall_s:.0f}"])
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def verdict(results: list[RunResult]) -> str:
    goal = [r for r in results if r.rate >= GOAL_RATE]
    if not goal:
        return f"goal not measured (no run at {GOAL_RATE} calls/s)"
    r = goal[-1]
    complete = r.at_pbx > 0 and not r.missing and r.duplicates == 0
    placed_all = r.at_pbx >= r.created and r.created == r.calls
    cpu_ok = r.ratio is not None and r.ratio <= GOAL_CPU_RATIO
    parts = [
        f"every call logged at {r.rate:g}/s: {'yes' if complete else 'NO'} "
        f"({r.at_pbx - len(r.missing)}/{r.at_pbx} calls Asterisk handled are logged; {r.created}/{r.calls} placed by SIPp"
        f"{'' if placed_all else ', not every placed call reached Asterisk'})",
        f"daemon CPU <= 1/5 of Asterisk's: {'yes' if cpu_ok else 'NO'} (ratio {fmt(r.ratio, '.3f')})",
    ]
    sustained = r.arrival_rate is not None and r.arrival_rate >= 0.95 * r.rate
    parts.append(f"calls reached Asterisk at {fmt(r.arrival_rate, '.1f')}/s (first to last arrival)")
    if not sustained:
        parts.append(f"the rate was NOT sustained (mean INVITE -> 200 OK {fmt(r.answer_s, '.2f')} s: calls lasted "
                     f"longer, so the -l limit of calls at once held the rate down), so the goal "
                     f"was not tested at {r.rate:g}/s")
    met = complete and cpu_ok and placed_all and sustained
    return ("GOAL MET: " if met else "GOAL NOT MET: ") + "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.calllog", description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", default="10,25,50", help="calls per second, comma-separated (default 10,25,50)")
    p.add_argument("--calls", type=int, default=2000, help="calls per rate (default 2000)")
    p.add_argument("--max-concurrent", type=int, default=200, help="SIPp -l, calls at once (default 200)")
    p.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--drain-timeout", type=float, default=30.0,
                   help="give up waiting for rows after this many seconds without progress (default 30)")
    p.add_argument("--log-level", default="info", help="the daemon's [logging] level (default info)")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--profile", type=Path,
                   help="run the daemon under cProfile and write its stats here (slows the daemon down)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder and the instance")
    args = p.parse_args(argv)
    rates = [float(x) for x in args.rates.split(",") if x.strip()]

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    info = machine()
    bench = Bench(args)
    results: list[RunResult] = []
    status = 0
    try:
        bench.start()
        for rate in rates:
            r = bench.run_rate(rate, args.calls)
            results.append(r)
            print(f"  rate {rate:g}/s: {r.logged}/{r.at_pbx} logged (SIPp created {r.created}), "
                  f"daemon {r.cpu_daemon:.2f} s CPU vs Asterisk {r.cpu_asterisk:.2f} s, "
                  f"p50 {fmt(percentile(r.lat, 50), '.3f')} s p99 {fmt(percentile(r.lat, 99), '.3f')} s, "
                  f"dispositions {r.dispositions}, sources {r.sources}, SIPp calls at once (peak) {r.max_at_once}, "
                  f"mean call length {fmt(r.call_length_s, '.1f')} s, mean INVITE->200 {fmt(r.answer_s, '.2f')} s, achieved {fmt(r.achieved, '.1f')} calls/s, "
                  f"daemon RSS {fmt(r.daemon_rss_mb, '.0f')} MB", flush=True)
            if r.missing:
                print(f"  missing linkedids (first 10): {r.missing[:10]}", flush=True)
            if bench.daemon.pid is None:
                print("the daemon died; stopping", flush=True)
                status = 1
                break
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr, flush=True)
        status = 130
    except (SandboxError, RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        if bench.daemon is not None:
            print(bench.daemon.tail(), file=sys.stderr)
        status = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not break the cleanup
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if results and bench.daemon is not None:
                errors = [ln for ln in bench.daemon.tail(100000).splitlines()
                          if '"level": "error"' in ln or '"level": "warning"' in ln or "Traceback" in ln]
                if errors:
                    print(f"daemon log: {len(errors)} warning/error lines; first: {errors[0][:400]}", flush=True)
            bench.close()
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    if results:
        print()
        print(f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory']}; {info['date']}; "
              f"database {args.database}; {args.calls} calls per rate, at most {args.max_concurrent} at once")
        print(table(results))
        print(verdict(results))
        if args.json:
            args.json.write_text(json.dumps({"machine": info, "args": {k: str(v) for k, v in vars(args).items()},
                                             "results": [{**r.__dict__, "missing": r.missing[:50],
                                                          "ratio": r.ratio} for r in results]},
                                            default=str, indent=2), encoding="utf-8")
    return status


if __name__ == "__main__":
    sys.exit(main())
