"""Recover calls the daemon missed (it was down, or the AMI link was) from Asterisk's own records.

Where Asterisk keeps them:

* **SQLite files** (the default; the shipped dialplan): CDR rows in ``<astlogdir>/master.db``
  (table ``cdr``) and CEL (channel event logging) rows in ``cel.db`` beside it (table
  ``cel``; ``dialplan/templates/cdr_sqlite3_custom.conf.j2`` and ``cel_sqlite3_custom.conf.j2``).
  Two files, because the CDR and CEL writers are separate Asterisk threads: sharing one
  SQLite file they locked each other out under load and CDR rows were lost.  ``[pbx]
  cdr_path`` names the CDR file; the CEL file is found beside it (:func:`cel_path_for`),
  or, when there is no ``cel.db`` (an older layout or Asterisk writing both tables to
  ``master.db``), the ``cel`` table is read from the CDR file itself.
* **PostgreSQL** (``cel_pgsql`` / ``cdr_pgsql``): ``[pbx] cel_url`` / ``cdr_url`` and the
  table names (:meth:`CdrRecovery.from_urls`; the tables' shape is in :data:`PG_TABLES`).

CEL is a per-channel event stream much like AMI's, so each missed call is replayed through
the same pure ``CallTracker`` that handles live events: one set of rules decides what a call
was, whether its events came live or from the file.  The CDR row of the call's first channel
adds what CEL does not carry: the dialplan's disposition and the recording or message file.

Only calls that have ended (a ``LINKEDID_END`` row) are recovered; calls still in progress
are the live link's (adopted after each reconnect).

Incremental (:func:`recover_batch`): the ``cursors`` row ``cel-recovery`` holds the id of
the last CEL row handled.  A run reads, in SQL, at most ``limit`` ``LINKEDID_END`` rows past
it (never older than the look-back window), drops the calls the call log already holds as
ended, replays only the others from the CEL rows between their first and last row id, and
stores them with the new cursor in one transaction.  Only the primary key (SQLite's rowid,
PostgreSQL's ``id``) is searched, so no index beyond Asterisk's own schema is needed; when
nothing was missed a run costs a few indexed look-ups whatever the table's size.
"""
from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import Connection, bindparam, create_engine, select, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from bridge.db.models import Cursor
from bridge.pbx.calllog import save_records, settled_linkedids
from bridge.pbx.events import CallRecord
from bridge.pbx.tracker import CallTracker

# How far back a recovery looks: the daemon's longest plausible outage.
DEFAULT_LOOKBACK = timedelta(days=7)
# Calls recovered per run at most: a long backlog is worked off in several short runs.
DEFAULT_BATCH = 500
CURSOR_NAME = "cel-recovery"

MESSAGE_DISPOSITIONS = ("after_hours_message", "queue_timeout")

CDR_FILE = "master.db"   # cdr_sqlite3_custom.conf [master]
CEL_FILE = "cel.db"      # cel_sqlite3_custom.conf [cel], beside the CDR file

# A call's first CEL row is at most this much older than the time its Linkedid names
# (Asterisk's uniqueids are "[system-]EPOCH.SEQUENCE", taken when the channel is made).
_START_SLACK = timedelta(seconds=5)
_EPOCH_ID = re.compile(r"(\d{9,11})\.\d+$")
_CHUNK = 500

# The tables cel_pgsql and cdr_pgsql write into (Asterisk does not create them).  cel_pgsql
# fills the columns it finds by name; ``eventtime`` as UTC text with usegmtime=yes.
# cdr_pgsql fills any other column from the CDR variable of that name (hotline_*;
# hotline_callback_attempt is read by callbacks/attempt_recovery.py).
PG_TABLES = """
CREATE TABLE IF NOT EXISTS {cel} (
    id bigserial PRIMARY KEY,
    eventtype varchar(30) NOT NULL, eventtime timestamp NOT NULL, userdeftype varchar(255) NOT NULL,
    cid_name varchar(80) NOT NULL, cid_num varchar(80) NOT NULL, cid_ani varchar(80) NOT NULL,
    cid_rdnis varchar(80) NOT NULL, cid_dnid varchar(80) NOT NULL, exten varchar(80) NOT NULL,
    context varchar(80) NOT NULL, channame varchar(80) NOT NULL, appname varchar(80) NOT NULL,
    appdata varchar(512) NOT NULL, amaflags int NOT NULL, accountcode varchar(80) NOT NULL,
    peeraccount varchar(80) NOT NULL, uniqueid varchar(150) NOT NULL, linkedid varchar(150) NOT NULL,
    userfield varchar(255) NOT NULL, peer varchar(80) NOT NULL, extra text
);
CREATE TABLE IF NOT EXISTS {cdr} (
    id bigserial PRIMARY KEY,
    calldate timestamp NOT NULL, answerdate timestamp, enddate timestamp,
    clid varchar(80) NOT NULL DEFAULT '', src varchar(80) NOT NULL DEFAULT '',
    dst varchar(80) NOT NULL DEFAULT '', dcontext varchar(80) NOT NULL DEFAULT '',
    channel varchar(80) NOT NULL DEFAULT '', dstchannel varchar(80) NOT NULL DEFAULT '',
    lastapp varchar(80) NOT NULL DEFAULT '', lastdata varchar(512) NOT NULL DEFAULT '',
    duration int NOT NULL DEFAULT 0, billsec int NOT NULL DEFAULT 0,
    disposition varchar(45) NOT NULL DEFAULT '', amaflags int NOT NULL DEFAULT 0,
    accountcode varchar(80) NOT NULL DEFAULT '', uniqueid varchar(150) NOT NULL DEFAULT '',
    linkedid varchar(150) NOT NULL DEFAULT '', userfield varchar(255) NOT NULL DEFAULT '',
    hotline_disposition varchar(40) NOT NULL DEFAULT '', hotline_recording varchar(255) NOT NULL DEFAULT '',
    hotline_callback_attempt varchar(96) NOT NULL DEFAULT ''
);
"""


def cdr_path_for(path: str | Path) -> Path:
    """The CDR file: ``path`` itself, or ``path/master.db`` when ``path`` is Asterisk's log folder."""
    path = Path(path)
    return path / CDR_FILE if path.is_dir() else path


def cel_path_for(path: str | Path) -> Path:
    """The CEL file for the CDR file (or log folder) ``path``: ``cel.db`` beside it when that
    exists, else the CDR file itself (both tables in one file, the older layout)."""
    cdr = cdr_path_for(path)
    beside = cdr.with_name(CEL_FILE)
    return beside if beside.exists() else cdr


def parse_cel_time(value: str) -> datetime | None:
    """CEL's eventtime: epoch seconds with microseconds (Asterisk's default), or ISO-like text
    (PostgreSQL's timestamp) in UTC."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return datetime.fromtimestamp(float(value), timezone.utc)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _extra(text: str) -> dict:
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def cel_to_ami(row: dict) -> dict[str, str] | None:
    """One CEL row as the AMI event the tracker understands, or None when it adds nothing."""
    base = {"Channel": row["channame"], "Uniqueid": row["uniqueid"], "Linkedid": row["linkedid"]}
    kind = row["eventtype"]
    if kind == "CHAN_START":
        return {"Event": "Newchannel", **base, "CallerIDNum": row["cid_num"], "CallerIDName": row["cid_name"],
                "Exten": row["exten"], "Context": row["context"], "Dnid": row.get("cid_dnid", "")}
    if kind in ("APP_START", "APP_END") and row["appname"].lower() == "queue":
        queue = row["appdata"].split(",", 1)[0]
        return {"Event": "QueueCallerJoin" if kind == "APP_START" else "QueueCallerLeave", **base, "Queue": queue}
    if kind == "BRIDGE_ENTER":
        return {"Event": "BridgeEnter", **base, "BridgeUniqueid": str(_extra(row["extra"]).get("bridge_id", ""))}
    if kind == "BRIDGE_EXIT":
        return {"Event": "BridgeLeave", **base, "BridgeUniqueid": str(_extra(row["extra"]).get("bridge_id", ""))}
    if kind == "HANGUP":
        cause = _extra(row["extra"]).get("hangupcause", "")
        return {"Event": "Hangup", **base, "Cause": str(cause)}
    return None


def replay(cel_rows: Iterable[dict], cdr_by_linkedid: dict[str, dict], hotline_numbers, queue: str) -> list[CallRecord]:
    """Pure: CEL rows (in event order) and first-leg CDR rows -> the ended hotline calls."""
    tracker = CallTracker(hotline_numbers, queue)
    records: list[CallRecord] = []
    hinted: set[str] = set()
    for row in cel_rows:
        at = parse_cel_time(row["eventtime"])
        if at is None:
            continue
        linkedid = row["linkedid"]
        if linkedid not in hinted and linkedid in cdr_by_linkedid:
            hinted.add(linkedid)
            for event in _cdr_hints(cdr_by_linkedid[linkedid]):
                tracker.feed(event, at)
        event = cel_to_ami(row)
        if event is not None:
            for update in tracker.feed(event, at):
                if update.kind == "ended":
                    records.append(update.record)
    return records


def _cdr_hints(cdr: dict) -> Iterator[dict[str, str]]:
    """The dialplan's own verdict, as the VarSet events the live tracker would have seen."""
    base = {"Event": "VarSet", "Channel": cdr.get("channel", ""), "Uniqueid": cdr["linkedid"],
            "Linkedid": cdr["linkedid"]}
    disposition = cdr.get("hotline_disposition") or ""
    if disposition:
        yield {**base, "Variable": "HOTLINE_DISPOSITION", "Value": disposition}
    recording = cdr.get("hotline_recording") or ""
    if recording:
        variable = "HOTLINE_MESSAGE" if disposition in MESSAGE_DISPOSITIONS else "HOTLINE_RECORDING"
        yield {**base, "Variable": variable, "Value": recording}


def call_started_by(linkedid: str, ended_at: datetime, lookback: timedelta) -> datetime:
    """Pure: no row of the call ``linkedid`` (ended at ``ended_at``) is older than this.

    Asterisk's Linkedid is its first channel's uniqueid, "[system-]EPOCH.SEQUENCE", made when
    the call arrived; an id of another shape bounds the call by the look-back window."""
    floor = ended_at - lookback
    match = _EPOCH_ID.search(linkedid)
    if match:
        started = datetime.fromtimestamp(int(match.group(1)), timezone.utc) - _START_SLACK
        if floor <= started <= ended_at:
            return started
    return floor


# ------------------------------------------------------------------- reading the tables


@dataclass(frozen=True)
class Ended:
    """A LINKEDID_END row: the CEL row id, the call and when it ended."""

    row_id: int
    linkedid: str
    at: datetime | None


class AsteriskTable:
    """One table Asterisk writes (read-only): a SQLite file or a PostgreSQL table.

    ``row_id`` is the column rows are numbered by as Asterisk appends them: SQLite's rowid
    (the file's ``AcctId``/``id``, when it has one, is the same), PostgreSQL's ``id``."""

    def __init__(self, table: str, connect: Callable[[], Iterator[Connection | None]], row_id: str,
                 dispose: Callable[[], None] = lambda: None) -> None:
        self.table = table
        self.row_id = row_id
        self.connect = connect      # a context manager: a connection, or None (no SQLite file yet)
        self.dispose = dispose

    @classmethod
    def sqlite(cls, path: Callable[[], Path], table: str) -> AsteriskTable:
        """The table in a SQLite file; ``path()`` is asked at each connection (the file may
        appear, or be replaced, while the daemon runs)."""

        @contextmanager
        def connect() -> Iterator[Connection]:
            file = path()
            if not file.exists():
                yield None
                return
            engine = create_engine("sqlite://", poolclass=NullPool, creator=lambda: sqlite3.connect(
                f"file:{file}?mode=ro", uri=True, timeout=5, check_same_thread=False))
            try:
                with engine.connect() as connection:
                    yield connection
            finally:
                engine.dispose()

        return cls(table, connect, "rowid")

    @classmethod
    def postgresql(cls, url: str, table: str) -> AsteriskTable:
        engine = create_engine(url, pool_size=1, max_overflow=1, pool_pre_ping=True,
                               connect_args={"connect_timeout": 5})

        @contextmanager
        def connect() -> Iterator[Connection]:
            with engine.connect() as connection:
                yield connection

        return cls(table, connect, "id", engine.dispose)

    # --- SQL, searching the row id only (Asterisk's tables have no other index)

    def bounds(self, connection: Connection) -> tuple[int | None, int | None]:
        # Two subqueries: each is one look-up in the primary key (min and max together scan).
        row = connection.execute(text(f"SELECT (SELECT min({self.row_id}) FROM {self.table}), "
                                      f"(SELECT max({self.row_id}) FROM {self.table})")).one()
        return row[0], row[1]

    def time_at(self, connection: Connection, row_id: int) -> tuple[int, datetime | None] | None:
        """The first row at or after ``row_id``: (its id, its eventtime)."""
        row = connection.execute(text(
            f"SELECT {self.row_id}, eventtime FROM {self.table} WHERE {self.row_id} >= :id "
            f"ORDER BY {self.row_id} LIMIT 1"), {"id": row_id}).first()
        return None if row is None else (row[0], parse_cel_time(_text(row[1])))

    def first_id_since(self, connection: Connection, since: datetime, lo: int, hi: int) -> int | None:
        """The first row id in [lo, hi] whose eventtime is ``since`` or later (None: none is):
        a binary search over the row id, since Asterisk appends rows in time order."""
        last = self.time_at(connection, hi)
        if last is None or last[1] is None or last[1] < since:
            return None
        while lo < hi:
            mid = (lo + hi) // 2
            found = self.time_at(connection, mid)
            if found is not None and found[1] is not None and found[1] >= since:
                hi = mid
            else:
                lo = mid + 1
        found = self.time_at(connection, lo)
        return found[0] if found else None

    def ended_after(self, connection: Connection, after: int, limit: int) -> list[Ended]:
        rows = connection.execute(text(
            f"SELECT {self.row_id}, linkedid, eventtime FROM {self.table} "
            f"WHERE {self.row_id} > :after AND eventtype = 'LINKEDID_END' ORDER BY {self.row_id} LIMIT :limit"),
            {"after": after, "limit": limit})
        return [Ended(r[0], _text(r[1]), parse_cel_time(_text(r[2]))) for r in rows]

    def rows_of(self, connection: Connection, linkedids: list[str], lo: int, hi: int) -> list[dict[str, str]]:
        """Every row of the calls ``linkedids`` with an id in [lo, hi], in id order, as text."""
        query = text(f"SELECT {self.row_id} AS _row_id, * FROM {self.table} WHERE {self.row_id} >= :lo "
                     f"AND {self.row_id} <= :hi AND linkedid IN :ids ORDER BY {self.row_id}"
                     ).bindparams(bindparam("ids", expanding=True))
        rows: list[dict[str, str]] = []
        for chunk in _chunks(linkedids, _CHUNK):
            rows += [{k: _text(v) for k, v in r._mapping.items()}
                     for r in connection.execute(query, {"lo": lo, "hi": hi, "ids": chunk})]
        rows.sort(key=lambda r: int(r["_row_id"]))
        return rows

    def first_legs(self, connection: Connection, linkedids: list[str]) -> dict[str, dict[str, str]]:
        """CDR: the row of each call's first channel (the last such row, where the call ended up)."""
        query = text(f"SELECT {self.row_id} AS _row_id, * FROM {self.table} WHERE uniqueid = linkedid "
                     f"AND linkedid IN :ids ORDER BY {self.row_id}").bindparams(bindparam("ids", expanding=True))
        legs: dict[str, dict[str, str]] = {}
        for chunk in _chunks(linkedids, _CHUNK):
            for r in connection.execute(query, {"ids": chunk}):
                row = {k: _text(v) for k, v in r._mapping.items()}
                legs[row["linkedid"]] = row   # a channel can leave several rows; the last counts
        return legs


# ------------------------------------------------------------------------------ recovery


@dataclass(frozen=True)
class Pending:
    """What one run found past the cursor."""

    ended: list[Ended]          # LINKEDID_END rows, in id order, inside the window
    position: int | None        # the cursor once these are handled
    more: bool                  # the run stopped at its limit: more rows wait past ``position``


class CdrRecovery:
    """Reads the CEL and CDR tables Asterisk writes (read-only; Asterisk keeps writing).

    ``path`` is the CDR file (or the folder holding ``master.db``); ``cel_path`` defaults to
    :func:`cel_path_for`, looked up at each read.  :meth:`from_urls` reads PostgreSQL instead.
    """

    def __init__(self, path: str | Path | None, hotline_numbers, queue: str = "hotline", *,
                 cel_path: str | Path | None = None, lookback: timedelta = DEFAULT_LOOKBACK,
                 tables: tuple[AsteriskTable, AsteriskTable | None] | None = None) -> None:
        self.hotline_numbers = list(hotline_numbers)
        self.queue = queue
        self.lookback = lookback
        if tables is None:
            base = Path(path)
            cel_file = Path(cel_path) if cel_path is not None else None
            tables = (AsteriskTable.sqlite(lambda: cel_file or cel_path_for(base), "cel"),
                      AsteriskTable.sqlite(lambda: cdr_path_for(base), "cdr"))
        self.cel, self.cdr = tables

    @classmethod
    def from_urls(cls, cel_url: str, cdr_url: str | None, hotline_numbers, queue: str = "hotline", *,
                  cel_table: str = "cel", cdr_table: str = "cdr",
                  lookback: timedelta = DEFAULT_LOOKBACK) -> CdrRecovery:
        """CEL (and CDR) in PostgreSQL, as cel_pgsql / cdr_pgsql write them."""
        cdr = AsteriskTable.postgresql(cdr_url, cdr_table) if cdr_url else None
        return cls(None, hotline_numbers, queue, lookback=lookback,
                   tables=(AsteriskTable.postgresql(cel_url, cel_table), cdr))

    def dispose(self) -> None:
        self.cel.dispose()
        if self.cdr is not None:
            self.cdr.dispose()

    def records(self, now: datetime | None = None) -> list[CallRecord]:
        """Every hotline call that ended within the look-back window (no cursor)."""
        ended: list[Ended] = []
        position = None
        while True:
            pending = self.pending(position, now=now, limit=DEFAULT_BATCH)
            ended += pending.ended
            position = pending.position
            if not pending.more:
                return self.replay_calls(ended)

    def pending(self, position: int | None, *, now: datetime | None = None,
                limit: int = DEFAULT_BATCH) -> Pending:
        """At most ``limit`` LINKEDID_END rows past ``position`` (a row id; None: from the start
        of the look-back window), in SQL on the row id alone."""
        since = (now or datetime.now(timezone.utc)) - self.lookback
        with self.cel.connect() as connection:
            if connection is None:
                return Pending([], position, False)
            lo, hi = self.cel.bounds(connection)
            if hi is None:
                return Pending([], position, False)
            if position is not None and position > hi:
                position = None        # the table was emptied or replaced: start again
            after = position if position is not None else lo - 1
            at_cursor = self.cel.time_at(connection, after + 1) if after < hi else None
            if at_cursor is not None and (at_cursor[1] is None or at_cursor[1] < since):
                start = self.cel.first_id_since(connection, since, after + 1, hi)
                after = hi if start is None else max(after, start - 1)
            found = self.cel.ended_after(connection, after, limit)
        more = len(found) == limit
        ended = [e for e in found if e.at is not None and e.at >= since]
        # Done with everything read: the cursor may pass the rows of calls still going on,
        # whose LINKEDID_END comes later with a higher id (Asterisk's writers append in order).
        position = found[-1].row_id if more else max(after, hi, *(e.row_id for e in found))
        return Pending(ended, position, more)

    def replay_calls(self, ended: list[Ended]) -> list[CallRecord]:
        """The calls of ``ended`` replayed from their CEL rows (and first-leg CDR rows)."""
        if not ended:
            return []
        linkedids = [e.linkedid for e in ended]
        starts = min(call_started_by(e.linkedid, e.at, self.lookback) for e in ended if e.at is not None)
        with self.cel.connect() as connection:
            if connection is None:
                return []
            lo, _ = self.cel.bounds(connection)
            hi = max(e.row_id for e in ended)
            first = self.cel.first_id_since(connection, starts, lo, hi) or lo
            cel = self.cel.rows_of(connection, linkedids, first, hi)
        cdr: dict[str, dict] = {}
        if self.cdr is not None:
            with self.cdr.connect() as connection:
                if connection is not None:
                    cdr = self.cdr.first_legs(connection, linkedids)
        cel.sort(key=lambda r: parse_cel_time(r["eventtime"]) or datetime.min.replace(tzinfo=timezone.utc))
        return replay(cel, cdr, self.hotline_numbers, self.queue)


# --------------------------------------------------------------------- incremental runs


@dataclass(frozen=True)
class BatchResult:
    examined: int          # LINKEDID_END rows past the cursor
    recovered: int         # calls written (missing from the call log, or not settled there)
    more: bool             # another run should follow shortly


def read_cursor(session: Session) -> int | None:
    position = session.scalar(select(Cursor.position).where(Cursor.name == CURSOR_NAME))
    return int(position) if position not in (None, "") else None


def _move_cursor(session: Session, position: int | None, now: datetime) -> None:
    cursor = session.get(Cursor, CURSOR_NAME)
    if cursor is None:
        session.add(Cursor(name=CURSOR_NAME, position=_position(position), updated_at=now))
    else:
        cursor.position, cursor.updated_at = _position(position), now


def _position(value: int | None) -> str | None:
    return None if value is None else str(value)


def recover_batch(db, recovery: CdrRecovery, *, now: datetime, limit: int = DEFAULT_BATCH) -> BatchResult:
    """One run (blocking; the daemon runs it in a worker thread): the calls past the cursor
    that the call log lacks are stored, with the cursor moved, in one transaction."""
    with db.session(readonly=True) as session:
        position = read_cursor(session)
    pending = recovery.pending(position, now=now, limit=limit)
    if not pending.ended and pending.position == position:
        return BatchResult(0, 0, pending.more)
    # Calls the live tracker still holds open are replayed too: the call log's source ranks
    # keep the live row's figures whichever write comes first.
    with db.session(readonly=True) as session:
        settled = settled_linkedids(session, [e.linkedid for e in pending.ended])
    records = recovery.replay_calls([e for e in pending.ended if e.linkedid not in settled])
    with db.session() as session:
        if records:
            save_records(session, [(record, "recovered") for record in records], now=now)
        _move_cursor(session, pending.position, now)
    return BatchResult(len(pending.ended), len(records), pending.more)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def add_missing_cdr_columns(path: Path, columns: list[str]) -> list[str]:
    """Add to the ``cdr`` table of the SQLite file ``path`` (if there is one) the ``columns``
    it lacks, as text; returns those added.  Run while Asterisk is stopped."""
    if not path.exists():
        return []
    connection = sqlite3.connect(path, timeout=5)
    try:
        have = {row[1] for row in connection.execute("PRAGMA table_info(cdr)")}
        missing = [c for c in columns if have and c not in have and re.fullmatch(r"[a-z_][a-z0-9_]*", c)]
        with connection:
            for column in missing:
                connection.execute(f"ALTER TABLE cdr ADD COLUMN {column}")
        return missing
    finally:
        connection.close()


def pgsql_writer_settings(config) -> dict[str, dict | None]:
    """Template context for cel_pgsql.conf / cdr_pgsql.conf (``dialplan/templates``): where the
    Asterisk we render for writes CEL and CDR when ``[pbx] cel_url`` is set, else None."""
    from sqlalchemy.engine import make_url

    def settings(url: str | None, table: str) -> dict | None:
        if url is None:
            return None
        parsed = make_url(url)
        return {"host": parsed.host or "", "port": parsed.port or 5432, "dbname": parsed.database or "",
                "user": parsed.username or "", "password": parsed.password or "", "table": table}

    pbx = config.pbx
    return {"cel_pgsql": settings(config.cel_database_url, pbx.cel_table),
            "cdr_pgsql": settings(config.cdr_database_url if pbx.cel_url else None, pbx.cdr_table)}
