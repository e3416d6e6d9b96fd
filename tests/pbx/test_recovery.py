"""Recovery from CEL/CDR: the recorded rows of each scenario give the calls the live AMI replay gives.

``tests/pbx/recorded/<scenario>.cel.json`` / ``.cdr.json`` are the rows the real Asterisk test
bed wrote into its ``log/cel.db`` and ``log/master.db`` for the very calls whose AMI events
are in ``<scenario>.txt`` (``tests/pbx/record_sequences.py``).  They are put back into SQLite
files of the same shape (CEL in ``cel.db`` beside the CDR's ``master.db``, as Asterisk writes
them) and read by ``CdrRecovery`` (its SQL, then ``recovery.replay``); the records
must match the live tracker's, field by field, times within a second.
"""
from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bridge.pbx.events import CallRecord
from bridge.pbx.recovery import CdrRecovery, cel_path_for, parse_cel_time, replay
from bridge.pbx.tracker import CallTracker
from tests.pbx.test_tracker import RECORDED, ended, load
from tests.pbx.test_tracker import replay as live_replay

SCENARIOS = sorted(p.name[:-len(".cel.json")] for p in RECORDED.glob("*.cel.json"))
SAME = ("linkedid", "caller_number", "caller_name", "dialled_number", "disposition", "extension",
        "recording", "message_file", "complete", "hangup_cause")
TIMES = ("arrived_at", "queue_joined_at", "answered_at", "ended_at")
DURATIONS = ("queue_wait_s", "talk_s")
# Not compared: member_name and hangup_cause_text, which CEL does not carry.


def rows(name: str, table: str) -> list[dict]:
    return json.loads((RECORDED / f"{name}.{table}.json").read_text(encoding="utf-8"))


def write_table(path: Path, name: str, table: str) -> None:
    """The scenario's rows of ``table`` in ``path`` (untyped columns: values keep the type
    Asterisk stored them with)."""
    data = rows(name, table)
    columns = list(data[0])
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
        connection.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(columns))})",
                               [[r[c] for c in columns] for r in data])
    connection.close()


def master_db(path: Path, name: str) -> Path:
    """The scenario's rows as Asterisk writes them: table cdr in ``path`` (master.db), table
    cel in ``cel.db`` beside it."""
    write_table(path, name, "cdr")
    write_table(path.with_name("cel.db"), name, "cel")
    return path


def live(name: str) -> dict[str, CallRecord]:
    tracker = CallTracker(["96811"], "hotline")
    records = {r.linkedid: r for r in ended(live_replay(tracker, load(f"{name}.txt")))}
    assert tracker.internal_errors == 0
    return records


def recovered(name: str, tmp_path: Path, path: Path | None = None) -> dict[str, CallRecord]:
    last = max(parse_cel_time(str(r["eventtime"])) for r in rows(name, "cel"))
    recovery = CdrRecovery(path or master_db(tmp_path / "master.db", name), ["96811"], "hotline")
    return {r.linkedid: r for r in recovery.records(now=last + timedelta(minutes=5))}


def summary(records: dict[str, CallRecord]) -> dict[str, tuple]:
    return {k: (r.disposition, r.recording, r.message_file) for k, r in records.items()}


def test_cel_is_read_from_cel_db_beside_the_cdr_file(tmp_path):
    cdr = master_db(tmp_path / "master.db", "answered")
    assert cel_path_for(cdr) == tmp_path / "cel.db"
    assert cel_path_for(tmp_path) == tmp_path / "cel.db"      # cdr_path may name the log folder
    got = recovered("answered", tmp_path, cdr)
    assert got and summary(got) == summary(live("answered"))
    assert summary(recovered("answered", tmp_path, tmp_path)) == summary(got)


def test_one_file_with_both_tables_still_works(tmp_path):
    """The older layout (or an Asterisk that writes both tables to master.db): no cel.db."""
    both = tmp_path / "master.db"
    write_table(both, "answered", "cdr")
    write_table(both, "answered", "cel")
    assert cel_path_for(both) == both
    got = recovered("answered", tmp_path, both)
    assert got and summary(got) == summary(live("answered"))


def test_cdr_rows_come_from_the_cdr_file(tmp_path):
    """Without master.db the calls are still recovered from CEL, minus the dialplan's verdict."""
    master_db(tmp_path / "master.db", "after_hours_message").unlink()
    live_records = live("after_hours_message")
    got = recovered("after_hours_message", tmp_path, tmp_path / "master.db")
    assert set(got) == set(live_records)
    assert any(r.message_file for r in live_records.values())
    assert not any(r.message_file for r in got.values())


def test_no_files_no_records(tmp_path):
    assert CdrRecovery(tmp_path / "master.db", ["96811"]).records() == []


def test_every_scenario_was_recorded_with_cel_and_cdr():
    assert {"answered", "abandoned", "after_hours_message", "same_second", "chinese_name"} <= set(SCENARIOS)
    assert any(s.startswith("status_line") for s in SCENARIOS)
    for name in SCENARIOS:
        assert (RECORDED / f"{name}.txt").is_file() and (RECORDED / f"{name}.cdr.json").is_file()


@pytest.mark.parametrize("name", SCENARIOS)
def test_recovered_records_match_the_live_replay(name, tmp_path):
    expected, got = live(name), recovered(name, tmp_path)
    assert expected, f"{name}: the live replay ended no call"
    assert set(got) == set(expected)
    for linkedid, want in expected.items():
        have = got[linkedid]
        assert {f: getattr(have, f) for f in SAME} == {f: getattr(want, f) for f in SAME}, linkedid
        for f in TIMES:
            a, b = getattr(have, f), getattr(want, f)
            assert (a is None) == (b is None), (linkedid, f, a, b)
            if a is not None:
                assert abs((a - b).total_seconds()) < 1, (linkedid, f, a, b)
        for f in DURATIONS:
            a, b = getattr(have, f), getattr(want, f)
            assert (a is None) == (b is None), (linkedid, f, a, b)
            if a is not None:
                assert abs(a - b) < 1, (linkedid, f, a, b)


@pytest.mark.parametrize("name", SCENARIOS)
def test_replay_of_the_rows_alone(name):
    """``replay`` itself, fed the rows in event order, as CdrRecovery feeds it."""
    cel = [{k: "" if v is None else str(v) for k, v in r.items()} for r in rows(name, "cel")]
    cel.sort(key=lambda r: parse_cel_time(r["eventtime"]))
    first_legs = {}
    for r in rows(name, "cdr"):
        if r["uniqueid"] == r["linkedid"]:
            first_legs[r["linkedid"]] = {k: "" if v is None else str(v) for k, v in r.items()}
    records = replay(cel, first_legs, ["96811"], "hotline")
    assert {r.linkedid: r.disposition for r in records} == {k: r.disposition for k, r in live(name).items()}


def test_cel_eventtime_is_epoch_text_and_parses():
    """Asterisk 22 with cel_sqlite3_custom's '${eventtime}' stores text epoch seconds with
    microseconds ("1795673104.272917"), not ISO text and not a REAL."""
    for name in SCENARIOS:
        for r in rows(name, "cel"):
            assert isinstance(r["eventtime"], str) and re.fullmatch(r"\d{10}\.\d{6}", r["eventtime"]), r["eventtime"]
            at = parse_cel_time(r["eventtime"])
            assert at is not None and at.tzinfo is timezone.utc
            assert at == datetime.fromtimestamp(float(r["eventtime"]), timezone.utc)
