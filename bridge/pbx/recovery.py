"""Recover calls the daemon missed (it was down, or the AMI link was) from Asterisk's own records.

The shipped dialplan has Asterisk write CDR rows into ``<astlogdir>/master.db`` (table
``cdr``) and CEL (channel event logging) rows into ``cel.db`` beside it (table ``cel``;
``dialplan/templates/cdr_sqlite3_custom.conf.j2`` and ``cel_sqlite3_custom.conf.j2``).
Two files, because the CDR and CEL writers are separate Asterisk threads: sharing one
SQLite file they locked each other out under load and CDR rows were lost.  ``[pbx]
cdr_path`` names the CDR file; the CEL file is found beside it (:func:`cel_path_for`),
or, when there is no ``cel.db`` (an older layout or Asterisk writing both tables to
``master.db``), the ``cel`` table is read from the CDR file itself.  CEL is a per-channel event stream much like
AMI's, so each missed call is replayed through the same pure ``CallTracker``
that handles live events: one set of rules decides what a call was, whether
its events came live or from the file.  The CDR row of the call's first
channel adds what CEL does not carry: the dialplan's disposition and the
recording or message file.

Only calls that have ended (a LINKEDID_END event) are recovered; calls still
in progress are the live link's (adopted after each reconnect).
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bridge.pbx.events import CallRecord
from bridge.pbx.tracker import CallTracker

# How far back a recovery looks: the daemon's longest plausible outage.
DEFAULT_LOOKBACK = timedelta(days=7)

MESSAGE_DISPOSITIONS = ("after_hours_message", "queue_timeout")

CDR_FILE = "master.db"   # cdr_sqlite3_custom.conf [master]
CEL_FILE = "cel.db"      # cel_sqlite3_custom.conf [cel], beside the CDR file


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
    """CEL's eventtime: epoch seconds with microseconds (Asterisk's default), or ISO-like text in UTC."""
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


class CdrRecovery:
    """Reads the CEL and CDR SQLite files Asterisk writes (read-only; Asterisk keeps writing).

    ``path`` is the CDR file (or the folder holding ``master.db``); ``cel_path`` defaults to
    :func:`cel_path_for`, looked up at each :meth:`records` call.
    """

    def __init__(self, path: str | Path, hotline_numbers, queue: str = "hotline", *,
                 cel_path: str | Path | None = None, lookback: timedelta = DEFAULT_LOOKBACK) -> None:
        self.path = Path(path)
        self.cel_path = Path(cel_path) if cel_path is not None else None
        self.hotline_numbers = list(hotline_numbers)
        self.queue = queue
        self.lookback = lookback

    def records(self, now: datetime | None = None) -> list[CallRecord]:
        cdr_path = cdr_path_for(self.path)
        cel_path = self.cel_path or cel_path_for(self.path)
        if not cel_path.exists():
            return []
        since = (now or datetime.now(timezone.utc)) - self.lookback
        with _read_only(cel_path) as connection:
            ended = self._ended_linkedids(connection, since)
            if not ended:
                return []
            cel = self._cel_rows(connection, ended)
        cdr: dict[str, dict] = {}
        if cdr_path.exists():
            with _read_only(cdr_path) as connection:
                cdr = self._first_legs(connection, ended)
        return replay(cel, cdr, self.hotline_numbers, self.queue)

    @staticmethod
    def _ended_linkedids(connection: sqlite3.Connection, since: datetime) -> list[str]:
        rows = connection.execute("SELECT linkedid, eventtime FROM cel WHERE eventtype = 'LINKEDID_END'")
        ended = []
        for linkedid, eventtime in rows:
            at = parse_cel_time(str(eventtime))
            if at is not None and at >= since:
                ended.append(linkedid)
        return ended

    @staticmethod
    def _cel_rows(connection: sqlite3.Connection, linkedids: list[str]) -> list[dict]:
        rows: list[dict] = []
        for chunk in _chunks(linkedids, 500):
            marks = ",".join("?" * len(chunk))
            rows += [dict(r) for r in connection.execute(
                f"SELECT * FROM cel WHERE linkedid IN ({marks}) ORDER BY rowid", chunk)]
        rows.sort(key=lambda r: (parse_cel_time(str(r["eventtime"])) or datetime.min.replace(tzinfo=timezone.utc)))
        return [{k: ("" if v is None else str(v)) for k, v in r.items()} for r in rows]

    @staticmethod
    def _first_legs(connection: sqlite3.Connection, linkedids: list[str]) -> dict[str, dict]:
        legs: dict[str, dict] = {}
        for chunk in _chunks(linkedids, 500):
            marks = ",".join("?" * len(chunk))
            for r in connection.execute(
                    f"SELECT * FROM cdr WHERE uniqueid = linkedid AND linkedid IN ({marks}) ORDER BY rowid", chunk):
                row = {k: ("" if r[k] is None else str(r[k])) for k in r.keys()}
                # A channel can leave several CDR rows; the last says where the call ended up.
                legs[row["linkedid"]] = row
        return legs


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A short read-only connection: it never writes, and waits (busy timeout) rather than fail."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    connection.row_factory = sqlite3.Row
    try:
        yield connection
    finally:
        connection.close()


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
