"""Recovery is incremental: a stored cursor (``cursors`` row ``cel-recovery``), the CEL read
in SQL past it, bounded per run, and run beside the live event path, not inside it.

The CEL/CDR rows are the real test bed's (tests/pbx/recorded), in one table as one Asterisk
would have written them (tests/pbx/recorded_tables.py); the call log is a migrated database
(SQLite and PostgreSQL, the ``db`` fixture).
"""
from __future__ import annotations

import asyncio
import sqlite3
import threading
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import func, select

from bridge.config import validate
from bridge.db.models import Call, CallDisposition, Cursor
from bridge.health import Health
from bridge.live import LiveEvents
from bridge.pbx.calllog import save_record
from bridge.pbx.recovery import CURSOR_NAME, CdrRecovery, recover_batch
from bridge.pbx.service import PbxService
from tests.pbx.recorded_tables import live_calls, rows, soon_after, sqlite_tables

# The captures recorded together (2026-11-26), so all lie inside one look-back window; every
# capture's replay is compared with its live run in tests/pbx/test_recovery.py.
SCENARIOS = ("abandoned", "after_hours_message", "answered", "chinese_name", "same_second",
             "status_line", "status_line_agi_down")


def stored(db) -> dict[str, Call]:
    with db.session(readonly=True) as session:
        calls = session.scalars(select(Call)).all()
        session.expunge_all()
    return {c.linkedid: c for c in calls}


def cursor(db) -> str | None:
    with db.session(readonly=True) as session:
        return session.scalar(select(Cursor.position).where(Cursor.name == CURSOR_NAME))


def cel_rows(master_db) -> int:
    connection = sqlite3.connect(master_db.with_name("cel.db"))
    try:
        return connection.execute("SELECT max(rowid) FROM cel").fetchone()[0]
    finally:
        connection.close()


def test_a_run_stores_the_missed_calls_once_and_moves_the_cursor(db, tmp_path):
    master = sqlite_tables(tmp_path, *SCENARIOS)
    recovery = CdrRecovery(master, ["96811"], "hotline")
    now = soon_after(*SCENARIOS)
    first = recover_batch(db, recovery, now=now)
    live = live_calls(*SCENARIOS)
    calls = stored(db)
    assert first.recovered == len(live) == len(calls) == 8 and not first.more
    assert {k: c.disposition.value for k, c in calls.items()} == {k: r.disposition for k, r in live.items()}
    assert all(c.source == "recovered" for c in calls.values())
    assert cursor(db) == str(cel_rows(master))       # the last CEL row handled
    again = recover_batch(db, recovery, now=now)
    assert (again.examined, again.recovered) == (0, 0)
    assert stored(db).keys() == calls.keys()


def test_runs_are_bounded_and_the_next_run_goes_on_where_the_last_stopped(db, tmp_path):
    recovery = CdrRecovery(sqlite_tables(tmp_path, *SCENARIOS), ["96811"], "hotline")
    now = soon_after(*SCENARIOS)
    runs = []
    while True:
        result = recover_batch(db, recovery, now=now, limit=3)
        runs.append(result.examined)
        assert result.recovered <= 3
        if not result.more:
            break
    assert runs == [3, 3, 2]
    assert stored(db).keys() == live_calls(*SCENARIOS).keys()


def test_only_calls_the_call_log_lacks_are_replayed(db, tmp_path, monkeypatch):
    recovery = CdrRecovery(sqlite_tables(tmp_path, *SCENARIOS), ["96811"], "hotline")
    live = live_calls(*SCENARIOS)
    logged = sorted(live)[:5]
    with db.session() as session:
        for linkedid in logged:
            save_record(session, live[linkedid])          # ended, from the live link
    replayed = []
    replay_calls = recovery.replay_calls
    monkeypatch.setattr(recovery, "replay_calls", lambda ended: (replayed.extend(e.linkedid for e in ended),
                                                                 replay_calls(ended))[1])
    result = recover_batch(db, recovery, now=soon_after(*SCENARIOS))
    assert result.examined == 8 and result.recovered == 3
    assert sorted(replayed) == sorted(set(live) - set(logged))
    calls = stored(db)
    assert {k for k, c in calls.items() if c.source == "live"} == set(logged)


def test_a_call_whose_last_snapshot_was_lost_or_whose_end_was_inferred_is_replayed(db, tmp_path):
    """A row still in progress (the stop lost its final write) or ended by inference
    (adopted after a reconnect) is not settled: recovery completes it, still one row."""
    recovery = CdrRecovery(sqlite_tables(tmp_path, "answered", "abandoned"), ["96811"], "hotline")
    live = live_calls("answered", "abandoned")
    answered, abandoned = (next(iter(live_calls(n))) for n in ("answered", "abandoned"))
    with db.session() as session:
        save_record(session, _in_progress(live[answered]))
        save_record(session, _inferred_end(live[abandoned]))
    assert recover_batch(db, recovery, now=soon_after("answered", "abandoned")).recovered == 2
    calls = stored(db)
    assert len(calls) == 2
    assert calls[answered].disposition == CallDisposition.ANSWERED and calls[answered].ended_at is not None
    assert calls[abandoned].disposition == CallDisposition.ABANDONED and calls[abandoned].source == "recovered"


def _in_progress(record):
    return replace(record, ended_at=None, talk_s=None, disposition="in_progress")


def _inferred_end(record):
    return replace(record, adopted=True, complete=False, disposition="failed",
                   ended_at=record.ended_at + timedelta(minutes=5))


def test_the_window_is_bounded_and_the_first_run_starts_inside_it(db, tmp_path):
    recovery = CdrRecovery(sqlite_tables(tmp_path, *SCENARIOS), ["96811"], "hotline", lookback=timedelta(days=1))
    later = soon_after(*SCENARIOS) + timedelta(days=2)
    result = recover_batch(db, recovery, now=later)
    assert (result.examined, result.recovered) == (0, 0)
    assert stored(db) == {}
    assert cursor(db) is not None                     # the next run starts at the table's end


def test_a_table_replaced_by_a_shorter_one_is_read_from_its_start(db, tmp_path):
    recovery = CdrRecovery(sqlite_tables(tmp_path, *SCENARIOS), ["96811"], "hotline")
    with db.session() as session:
        session.add(Cursor(name=CURSOR_NAME, position="999999"))
    assert recover_batch(db, recovery, now=soon_after(*SCENARIOS)).recovered == 8


def test_calls_ending_after_a_run_are_found_by_the_next(db, tmp_path):
    folder = tmp_path / "log"
    folder.mkdir()
    master = sqlite_tables(folder, "answered")
    recovery = CdrRecovery(master, ["96811"], "hotline")
    now = soon_after(*SCENARIOS)
    assert recover_batch(db, recovery, now=now).recovered == 1
    sqlite_tables(folder, "abandoned", "chinese_name")   # Asterisk goes on appending
    assert recover_batch(db, recovery, now=now).recovered == 2
    assert len(stored(db)) == 3


def config():
    return validate({"sandbox": {"enabled": False}},
                    environ={"HOTLINE_BRIDGE_AMI_SECRET": "x", "HOTLINE_BRIDGE_SESSION_SECRET": "y"})


async def test_recovery_runs_beside_the_live_event_path(db, tmp_path):
    """After a (re)login the AMI consumer hands the recovery to a task of its own and goes on:
    a live call's pop is published while a recovery is still reading."""
    master = sqlite_tables(tmp_path, *SCENARIOS)
    now = soon_after(*SCENARIOS)
    service = PbxService(config(), db, Health(), LiveEvents(), clock=lambda: now)
    service.recovery = CdrRecovery(master, ["96811"], "hotline")
    release, reading = threading.Event(), threading.Event()
    pending = service.recovery.pending

    def slow_pending(*args, **kwargs):
        reading.set()
        release.wait(10)
        return pending(*args, **kwargs)

    service.recovery.pending = slow_pending
    service.ami.send_action = _no_channels
    try:
        async with service.live.subscribe() as popped:
            await asyncio.wait_for(service._on_connected(), 2)   # returns at once
            assert await asyncio.to_thread(reading.wait, 5)
            service._on_event({"Event": "Newchannel", "Channel": "PJSIP/carrier-00000099",
                               "Uniqueid": "1795673999.99", "Linkedid": "1795673999.99",
                               "CallerIDNum": "13900000001", "CallerIDName": "张三", "Exten": "96811",
                               "Context": "from-carrier"})
            event = await asyncio.wait_for(popped.get(), 1)
            assert event.data["linkedid"] == "1795673999.99"
            assert not service._recovering.done()
        release.set()
        assert await asyncio.wait_for(service._recovering, 10) == 8
    finally:
        release.set()


async def _no_channels(action, expect_list=False):
    class Response:
        events = []
    return Response()


def test_every_recorded_scenario_has_its_ending_row():
    for name in SCENARIOS:
        assert any(r["eventtype"] == "LINKEDID_END" for r in rows(name, "cel")), name


def test_nothing_past_the_cursor_costs_no_write(db, tmp_path, monkeypatch):
    recovery = CdrRecovery(sqlite_tables(tmp_path, *SCENARIOS), ["96811"], "hotline")
    now = soon_after(*SCENARIOS)
    recover_batch(db, recovery, now=now)
    with db.session(readonly=True) as session:
        before = session.scalar(select(func.max(Cursor.updated_at)))
    recover_batch(db, recovery, now=now + timedelta(minutes=1))
    with db.session(readonly=True) as session:
        assert session.scalar(select(func.max(Cursor.updated_at))) == before
