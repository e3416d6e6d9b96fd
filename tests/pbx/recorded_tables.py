"""The recorded CEL/CDR rows (tests/pbx/recorded/*.cel.json, *.cdr.json) put back into the
tables Asterisk writes: SQLite files (``master.db`` + ``cel.db``) or PostgreSQL tables of
the shape cel_pgsql / cdr_pgsql fill (``bridge.pbx.recovery.PG_TABLES``).  Several
scenarios go into one table in the order they were recorded, row ids ascending, as one
Asterisk would have written them."""
from __future__ import annotations

import json
import sqlite3
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import Engine, text

from bridge.pbx.events import CallRecord
from bridge.pbx.recovery import PG_TABLES, parse_cel_time
from bridge.pbx.tracker import CallTracker
from tests.pbx.test_tracker import RECORDED, ended, load
from tests.pbx.test_tracker import replay as live_replay


def rows(name: str, table: str) -> list[dict]:
    return json.loads((RECORDED / f"{name}.{table}.json").read_text(encoding="utf-8"))


def in_recorded_order(names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: min(float(r["eventtime"]) for r in rows(n, "cel")))


def live_calls(*names: str) -> dict[str, CallRecord]:
    """The calls of the scenarios as the live tracker ends them from their AMI capture."""
    out = {}
    for name in names:
        tracker = CallTracker(["96811"], "hotline")
        out.update({r.linkedid: r for r in ended(live_replay(tracker, load(f"{name}.txt")))})
    return out


def ami_events(*names: str) -> list[dict[str, str]]:
    return [event for name in in_recorded_order(list(names)) for event in load(f"{name}.txt")]


def last_event_time(*names: str) -> datetime:
    return max(parse_cel_time(str(r["eventtime"])) for n in names for r in rows(n, "cel"))


def soon_after(*names: str) -> datetime:
    """A "now" a few minutes after the scenarios: inside recovery's look-back window."""
    return last_event_time(*names) + timedelta(minutes=5)


def sqlite_tables(folder: Path, *names: str) -> Path:
    """master.db (table cdr) and cel.db (table cel) in ``folder`` with the scenarios' rows;
    returns master.db's path (what ``[pbx] cdr_path`` names)."""
    for table, file in (("cdr", "master.db"), ("cel", "cel.db")):
        data = [r for n in in_recorded_order(list(names)) for r in rows(n, table)]
        columns = [c for c in data[0] if c != "AcctId"]
        connection = sqlite3.connect(folder / file)
        with connection:
            connection.execute(f"CREATE TABLE IF NOT EXISTS {table} (AcctId INTEGER PRIMARY KEY, "
                               f"{', '.join(columns)})")
            connection.executemany(f"INSERT INTO {table} ({', '.join(columns)}) "
                                   f"VALUES ({', '.join('?' * len(columns))})",
                                   [[r[c] for c in columns] for r in data])
        connection.close()
    return folder / "master.db"


def create_pg_tables(engine: Engine, cel: str, cdr: str) -> None:
    with engine.begin() as connection:
        for statement in PG_TABLES.format(cel=cel, cdr=cdr).split(";"):
            if statement.strip():
                connection.execute(text(statement))


@contextmanager
def asterisk_writing_to_postgresql(base: Path, engine: Engine):
    """An Asterisk test bed of its own writing CEL/CDR (cel_pgsql, cdr_pgsql) into fresh
    PostgreSQL tables of the shipped shape; ``bed.tables`` names them; dropped afterwards."""
    from tests.asterisk_testbed import running_testbed
    from tests.conftest_db import pg_base_url

    suffix = uuid.uuid4().hex[:10]
    cel, cdr = f"cel_{suffix}", f"cdr_{suffix}"
    create_pg_tables(engine, cel, cdr)     # cel_pgsql / cdr_pgsql read the tables' columns when they load
    url = pg_base_url().replace("postgresql+psycopg://", "postgresql://")
    try:
        with running_testbed(base, pbx={"cel_url": url, "cel_table": cel, "cdr_table": cdr}) as bed:
            bed.tables = (cel, cdr)
            yield bed
    finally:
        with engine.begin() as connection:
            for name in (cel, cdr):
                connection.execute(text(f"DROP TABLE IF EXISTS {name}"))


def pg_tables(engine: Engine, cel: str, cdr: str, *names: str) -> None:
    """The scenarios' rows in PostgreSQL tables ``cel`` / ``cdr`` as cel_pgsql and cdr_pgsql
    write them (eventtime a UTC timestamp, amaflags an integer)."""
    create_pg_tables(engine, cel, cdr)
    order = in_recorded_order(list(names))
    with engine.begin() as connection:
        for r in (r for n in order for r in rows(n, "cel")):
            row = {k: v for k, v in r.items() if k != "AcctId"}
            row.update(eventtime=parse_cel_time(row["eventtime"]).replace(tzinfo=None),
                       amaflags=int(row["amaflags"] or 0), cid_rdnis="", peeraccount="", userfield="")
            connection.execute(text(f"INSERT INTO {cel} ({', '.join(row)}) VALUES "
                                    f"({', '.join(':' + k for k in row)})"), row)
        for r in (r for n in order for r in rows(n, "cdr")):
            row = {k: ("" if v is None else v) for k, v in r.items()
                   if k in ("channel", "dstchannel", "uniqueid", "linkedid", "hotline_disposition",
                            "hotline_recording", "lastapp", "src", "dst")}
            row["calldate"] = datetime.fromisoformat(r["calldate"]).replace(tzinfo=timezone.utc)
            connection.execute(text(f"INSERT INTO {cdr} ({', '.join(row)}) VALUES "
                                    f"({', '.join(':' + k for k in row)})"), row)
