"""Record the call sequences of ``tests/pbx/recorded`` from the real Asterisk 22 test bed.

    .venv/bin/python -m tests.pbx.record_sequences [SCENARIO ...]

Starts the test bed exactly as the ``asterisk`` fixture does (it *is* the fixture's own
function, driven by hand), places each scenario's calls with SIPp and writes, per scenario:

* ``<scenario>.txt``       every AMI event of the scenario's calls (``Linkedid`` /
                            ``DestLinkedid`` / ``Uniqueid`` of one of their channels), as
                            received on the daemon's AMI account: raw wire format, UTF-8,
                            each with Asterisk's own ``Timestamp`` header (timestampevents);
* ``<scenario>.cel.json``  the calls' CEL rows from the sandbox's ``log/master.db``, as stored;
* ``<scenario>.cdr.json``  the calls' CDR rows, as stored.

Nothing is edited afterwards: what Asterisk said is what the tests replay.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from tests import asterisk_testbed

OUT = Path(__file__).parent / "recorded"
HOTLINE_EVENT_KEYS = ("Linkedid", "DestLinkedid")
ID_KEYS = ("Uniqueid", "UniqueID", "DestUniqueid")


# ------------------------------------------------------------------ the test bed


class _TmpPathFactory:
    """What the fixture needs of pytest's ``tmp_path_factory``: ``mktemp``."""

    def __init__(self, base: Path):
        self.base = base

    def mktemp(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.base))


def start_testbed(base: Path):
    """(test bed, generator): the ``asterisk`` fixture's own code; ``generator.close()`` stops it."""
    fixture = asterisk_testbed.asterisk
    function = (fixture._get_wrapped_function() if hasattr(fixture, "_get_wrapped_function")
                else getattr(fixture, "__wrapped__", fixture))
    generator = function(_TmpPathFactory(base))
    return next(generator), generator


# ---------------------------------------------------------------- AMI raw stream


class RawStream:
    """panoramisk's ``save_stream`` hook: every byte the AMI link received, as it came."""

    def __init__(self):
        self.data = bytearray()

    def write(self, chunk: bytes) -> None:
        self.data += chunk

    def messages(self) -> list[str]:
        text = self.data.decode("utf-8", "replace")
        return [block for block in text.replace("\r\n", "\n").split("\n\n") if block.strip()]


def _fields(block: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.split("\n"):
        key, sep, value = line.partition(":")
        if sep:
            out.setdefault(key.strip(), value[1:] if value.startswith(" ") else value)
    return out


# --------------------------------------------------------------------- scenarios


@dataclass
class Placed:
    callers: list[str]          # caller numbers of the scenario's calls (tell them apart in a shared bed)
    note: str                   # what happened, for the file's header
    same_second: bool = False   # the calls must arrive within one epoch second (else record again)


Scenario = Callable[[asterisk_testbed.AsteriskTestbed, str], Awaitable[Placed]]


async def _finish(run, timeout: float = 90) -> None:
    status = await asyncio.to_thread(run.wait, timeout)
    if status != 0:
        raise RuntimeError(f"SIPp run failed:\n{run.report()}")


async def answered(bed, prefix):
    caller = prefix + "01"
    with bed.desk_phone("8001"):
        await _finish(bed.place_calls(1, caller_number=caller, caller_name="王小明", digits="1", hold_ms=2500))
    return Placed([caller], "Caller keys 1 (operator); desk phone 8001 answers at once; the caller hangs up "
                            "2.5 s after the key (about 2 s of talk).")


async def abandoned(bed, prefix):
    caller = prefix + "02"
    with bed.desk_phone("8001", "noanswer"), bed.desk_phone("8002", "noanswer"):
        await _finish(bed.place_calls(1, caller_number=caller, caller_name="钱先生", digits="1", hold_ms=9000))
    return Placed([caller], "Caller keys 1; desk phones 8001 and 8002 ring but never answer "
                            "(queue strategy rrmemory, 3 s per member); the caller hangs up in the queue "
                            "9 s after the key.")


async def after_hours_message(bed, prefix):
    caller = prefix + "03"
    bed.closed_now()
    try:
        await _finish(bed.place_calls(1, caller_number=caller, caller_name="张伟", hold_ms=6000))
    finally:
        bed.open_now()
    return Placed([caller], "Office closed (asterisk.closed_now()): after-hours prompt, beep, Record(); "
                            "the caller hangs up 6 s after the answer, leaving a message.")


async def status_line_agi_down(bed, prefix):
    caller = prefix + "04"
    await _finish(bed.place_calls(1, caller_number=caller, caller_name="陈静", digits="2", hold_ms=7000))
    return Placed([caller], "Caller keys 2 (case status) but no FastAGI server listens: AGI() fails "
                            "(AGISTATUS FAILURE), status-unavailable is played and the call goes on to the "
                            "operator queue (no desk phone running); the caller hangs up there 7 s after the key.")


async def status_line(bed, prefix):
    """The case-status line proper: the daemon's FastAGI server on the test bed's agi port,
    with a database holding one open case filed from the caller's number."""
    from bridge.cases.service import file_case
    from bridge.db import migrate
    from bridge.db.engine import Database
    from bridge.departments.service import ensure_shipped_units
    from bridge.pbx.agi import CaseStatusServer
    from bridge.site.clock import SiteClock

    caller = prefix + "05"
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bridge.sqlite3'}"
        migrate.upgrade(url)
        db = Database(url)
        try:
            with db.session() as session:
                ensure_shipped_units(session)
                file_case(session, {
                    "caller_surname": "李", "caller_honorific": "先生", "caller_full_name": "李建国",
                    "caller_phone": caller, "department": "CITY-ZHZFJ", "location": "柯城区荷花街道",
                    "title": "楼道里的公鸡凌晨打鸣", "description": "居民楼里有人养公鸡，每天凌晨四五点打鸣，影响休息。",
                    "callback_wanted": True, "sms_consent": False, "best_time": "morning",
                }, user=None, now=datetime.now(timezone.utc), zone=bed.config.site.zone)
            server = CaseStatusServer(bed.config.pbx.agi_host, bed.config.pbx.agi_port, db,
                                      clock=SiteClock.of(bed.config))
            await server.start()
            try:
                await _finish(bed.place_calls(1, caller_number=caller, caller_name="李先生", digits="2",
                                              hold_ms=15000))
            finally:
                await server.stop()
        finally:
            db.dispose()
    return Placed([caller], "Caller keys 2; the daemon's FastAGI server (CaseStatusServer, one open case filed "
                            "from the caller's number) offers that case and speaks its status; no key after "
                            "it, so thanks and the hotline hangs up.")


async def same_second(bed, prefix):
    callers = [prefix + "06", prefix + "07"]
    with bed.desk_phone("8002"):
        # Start on a fresh second so that both INVITEs (0.05 s apart) fall in the same one.
        await asyncio.sleep(1.05 - time.time() % 1)
        await _finish(bed.place_calls(2, rate=20, caller_number=callers, caller_name=["刘洋", "赵磊"],
                                      digits="1", hold_ms=5000))
    return Placed(callers, "Two calls placed 0.05 s apart (same second), both key 1; only desk phone 8002 "
                           "runs (ringinuse=no): it answers one call, the other waits in the queue until "
                           "its caller hangs up 5 s after the key.", same_second=True)


async def chinese_name(bed, prefix):
    caller = prefix + "08"
    with bed.desk_phone("8001"):
        await _finish(bed.place_calls(1, caller_number=caller, caller_name="张三", digits="1", hold_ms=4000))
    return Placed([caller], "CallerIDName 张三 (UTF-8 in the SIP From display name); caller keys 1, "
                            "desk phone 8001 answers.")


async def hung_up_in_menu(bed, prefix):
    caller = prefix + "09"
    await _finish(bed.place_calls(1, caller_number=caller, caller_name="孙阿姨", hold_ms=1500))
    return Placed([caller], "Office open; the caller keys nothing and hangs up (SIP BYE) 1.5 s after the "
                            "answer, in the greeting / menu, before the no-key timeout would put them "
                            "through to the queue.")


async def failed_in_menu(bed, prefix):
    """A technical failure during the menu: the network drops the call (Q.850 cause 38,
    network out of order), here an AMI Hangup with that cause on the caller's channel."""
    caller = prefix + "10"
    async with bed.ami_events() as ami:
        run = bed.place_calls(1, caller_number=caller, caller_name="周先生", hold_ms=60000)
        first = await ami.wait_for("Newchannel", CallerIDNum=caller, timeout=10)
        await ami.wait_for("VarSet", Variable="HOTLINE_DISPOSITION", Value="menu",
                           Linkedid=first["Linkedid"], timeout=10)
        await asyncio.sleep(0.5)
        await ami.action({"Action": "Hangup", "Channel": first["Channel"], "Cause": "38"})
        await _finish(run)
    return Placed([caller], "Office open; during the greeting / menu the hotline side drops the call with "
                            "Q.850 cause 38 (network out of order: AMI Hangup Cause 38 on the caller's "
                            "channel); the caller answers the BYE.")


SCENARIOS: dict[str, Scenario] = {
    "answered": answered, "abandoned": abandoned, "after_hours_message": after_hours_message,
    "status_line_agi_down": status_line_agi_down, "status_line": status_line,
    "same_second": same_second, "chinese_name": chinese_name,
    "hung_up_in_menu": hung_up_in_menu, "failed_in_menu": failed_in_menu,
}


# --------------------------------------------------------------------- recording


def _linkedids(blocks: list[dict[str, str]], callers: list[str]) -> list[str]:
    out = []
    for ev in blocks:
        if (ev.get("Event") == "Newchannel" and ev.get("Uniqueid") == ev.get("Linkedid")
                and ev.get("CallerIDNum") in callers and ev["Linkedid"] not in out):
            out.append(ev["Linkedid"])
    return out


def _rows(db: Path, table: str, linkedids: list[str]) -> list[dict]:
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    connection.row_factory = sqlite3.Row
    try:
        marks = ",".join("?" * len(linkedids))
        return [dict(r) for r in connection.execute(
            f"SELECT * FROM {table} WHERE linkedid IN ({marks}) ORDER BY rowid", linkedids)]
    finally:
        connection.close()


async def record(bed, name: str, scenario: Scenario, prefix: str, version: str) -> dict:
    async with bed.ami_events() as ami:
        stream = RawStream()
        ami.manager.save_stream = stream
        placed = await scenario(bed, prefix)
        deadline = time.monotonic() + 30
        while True:   # every channel of the scenario's calls hung up, and CEL says the calls ended
            blocks = [_fields(b) for b in stream.messages()]
            lids = _linkedids(blocks, placed.callers)
            uids = {b["Uniqueid"] for b in blocks if b.get("Event") == "Newchannel" and b.get("Linkedid") in lids}
            dead = {b["Uniqueid"] for b in blocks if b.get("Event") == "Hangup" and b.get("Linkedid") in lids}
            ended = {r["linkedid"] for r in _rows(bed.cel_db, "cel", lids) if r["eventtype"] == "LINKEDID_END"} \
                if lids else set()
            if len(lids) == len(placed.callers) and uids <= dead and ended == set(lids):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: calls {lids} did not end ({len(uids - dead)} channels up)")
            await asyncio.sleep(0.3)
        await asyncio.sleep(1.0)        # the last CDR rows and late AMI events (Cdr)
        raw = stream.messages()
    uids = set()
    keep = []
    for block in raw:
        ev = _fields(block)
        if "Event" not in ev:
            continue
        if ev.get("Linkedid") in lids or ev.get("DestLinkedid") in lids:
            uids.update(ev.get(k) for k in ("Uniqueid", "DestUniqueid") if ev.get(k))
            keep.append(block)
        elif any(ev.get(k) in uids for k in ID_KEYS):
            keep.append(block)          # e.g. Cdr events (no Linkedid header)
    seconds = {_fields(b)["Timestamp"].split(".")[0] for b in keep
               if _fields(b).get("Event") == "Newchannel" and _fields(b).get("Uniqueid") in lids}
    if placed.same_second and len(seconds) != 1:
        return {"scenario": name, "retry": f"arrivals in seconds {sorted(seconds)}"}
    cel = _rows(bed.cel_db, "cel", lids)
    cdr = _rows(bed.cdr_db, "cdr", lids)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = [f"# RECORDED (not hand-written) from the real Asterisk test bed ({version}) on {stamp}",
              "# by tests/pbx/record_sequences.py; every AMI event of the scenario's calls, unedited.",
              f"# Scenario {name}: {placed.note}",
              f"# Linkedids: {', '.join(lids)}; CEL/CDR rows in {name}.cel.json / {name}.cdr.json."]
    (OUT / f"{name}.txt").write_text("\n".join(header) + "\n\n" + "\n\n".join(keep) + "\n\n", encoding="utf-8")
    for table, rows in (("cel", cel), ("cdr", cdr)):
        (OUT / f"{name}.{table}.json").write_text(
            json.dumps(rows, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return {"scenario": name, "linkedids": lids, "ami_events": len(keep), "cel_rows": len(cel), "cdr_rows": len(cdr)}


async def main_async(bed, names: list[str]) -> None:
    version = bed.cli("core show version").strip().split(" built ")[0]
    run_id = f"{int(time.time()) % 100000:05d}"
    prefix = f"1390{run_id}"        # + two digits per call: numbers this run alone uses
    for name in names:
        for _attempt in range(3):    # each attempt listens afresh, so the same caller numbers do
            summary = await record(bed, name, SCENARIOS[name], prefix, version)
            print(json.dumps(summary, ensure_ascii=False), flush=True)
            if "retry" not in summary:
                break
        else:
            raise RuntimeError(f"{name}: not recorded")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help=f"default: all of {', '.join(SCENARIOS)}")
    args = parser.parse_args(argv)
    unknown = [n for n in args.scenarios if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    names = args.scenarios or list(SCENARIOS)
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="record-sequences-") as base:
        bed, fixture = start_testbed(Path(base))
        try:
            asyncio.run(main_async(bed, names))
        finally:
            fixture.close()          # the fixture's own teardown: SIPp, Asterisk, instance folder
    return 0


if __name__ == "__main__":
    sys.exit(main())
