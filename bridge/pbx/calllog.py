"""The call log: ``CallRecord`` snapshots from the tracker into one ``calls`` row per Linkedid.

A call can be learnt several ways (live events, adoption after a reconnect,
Asterisk's CDR after an outage), in any order.  The row is keyed by Linkedid,
so it exists once whatever the order, and each source only fills in what a
better source has not already established:

    live (complete)  >  recovered (CDR)  >  adopted / inferred

Rows are updated as the call goes on, never deleted (the database refuses it).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from bridge.db.models import Call, CallDisposition, User
from bridge.pbx.events import CallRecord

log = structlog.get_logger(__name__)

# Higher is more trustworthy.
SOURCE_RANK = {"adopted": 0, "recovered": 1, "live": 2}

_FIELDS = (
    "caller_number", "caller_name", "dialled_number", "arrived_at", "queue_wait_s", "answered_at",
    "extension", "talk_s", "ended_at", "hangup_cause", "hangup_cause_text", "recording", "message_file",
)
# The columns the call log writes (never the desk's taken_* / handled_* columns).
_STORED = (*_FIELDS, "disposition", "source", "operator_id", "updated_at")


def stored_view(record: CallRecord) -> tuple:
    """What of ``record`` reaches its row: a snapshot equal to the last one stored for the
    call (a queue or ringing step changes nothing stored) need not be written again."""
    return (*(getattr(record, name) for name in _FIELDS),
            record.disposition if record.ended else None, source_of(record))


def source_of(record: CallRecord) -> str:
    if record.adopted or not record.complete:
        return "adopted"
    return "live"


def save_record(session: Session, record: CallRecord, *, source: str | None = None,
                now: datetime | None = None) -> Call:
    """Insert or merge ``record`` into its row; return the row."""
    save_records(session, [(record, source)], now=now)
    return session.scalars(select(Call).where(Call.linkedid == record.linkedid)
                           .execution_options(populate_existing=True)).one()


def save_records(session: Session, items: list[tuple[CallRecord, str | None]], *,
                 now: datetime | None = None) -> int:
    """Insert or merge each (record, source) in order (source None: from the record);
    return how many rows were written.

    The call-log writer's path, so it is lean: one query reads the batch's existing rows,
    then one bulk INSERT and one bulk UPDATE (by primary key) write them, touching only the
    call-log columns (the desk's "taken" columns are left alone).  Going through ORM
    objects cost several times more CPU per row (docs/performance.md).
    """
    now = now or datetime.now(timezone.utc)
    calls = Call.__table__
    linkedids = {record.linkedid for record, _ in items}
    stored = {row.linkedid: dict(row._mapping) for row in session.execute(
        select(*(calls.c[name] for name in ("id", "linkedid", *_STORED))).where(calls.c.linkedid.in_(linkedids)))}
    new: dict[str, dict[str, Any]] = {}
    changed: dict[str, dict[str, Any]] = {}
    operators: dict[str, int | None] = {}
    for record, source in items:
        source = source or source_of(record)
        row = new.get(record.linkedid) or changed.get(record.linkedid)
        if row is None and record.linkedid in stored:
            row = changed[record.linkedid] = stored[record.linkedid]
        if row is None:
            row = new[record.linkedid] = _new_row(record, source, now)
        else:
            # A better (or equal) source overwrites; a worse one only fills the row's gaps.
            overwrite = SOURCE_RANK[source] >= SOURCE_RANK.get(row["source"], 0)
            _apply(row, record, overwrite=overwrite)
            if overwrite:
                row["source"] = source
        _link_operator(session, row, operators)
        row["updated_at"] = now
    if new:
        session.execute(insert(Call), list(new.values()))
    if changed:
        session.execute(update(Call), [{k: v for k, v in row.items() if k != "linkedid"} for row in changed.values()])
    return len(new) + len(changed)


def _new_row(record: CallRecord, source: str, now: datetime) -> dict[str, Any]:
    row: dict[str, Any] = {name: None for name in _STORED}
    row.update(linkedid=record.linkedid, caller_number="", caller_name="", dialled_number="",
               arrived_at=record.arrived_at or record.ended_at or now, source=source,
               disposition=CallDisposition.IN_PROGRESS)
    _apply(row, record, overwrite=True)
    return row


def _apply(row: dict[str, Any], record: CallRecord, *, overwrite: bool) -> None:
    for name in _FIELDS:
        value = getattr(record, name)
        if value is None or value == "":
            continue
        if overwrite or row[name] in (None, ""):
            row[name] = value
    if record.ended:
        if overwrite or row["disposition"] == CallDisposition.IN_PROGRESS:
            row["disposition"] = CallDisposition(record.disposition)
    elif row["ended_at"] is None:
        row["disposition"] = CallDisposition.IN_PROGRESS


def _link_operator(session: Session, row: dict[str, Any], operators: dict[str, int | None]) -> None:
    """Set the operator from the extension (looked up once per extension and batch)."""
    extension = row["extension"]
    if extension and row["operator_id"] is None:
        if extension not in operators:
            operators[extension] = session.scalar(
                select(User.id).where(User.extension == extension, User.disabled_at.is_(None)).limit(1)
            )
        row["operator_id"] = operators[extension]


def settled_linkedids(session: Session, linkedids: list[str]) -> set[str]:
    """Those of ``linkedids`` whose row has ended from a complete source (live or recovered):
    recovery need not replay them.  A missing row, one still in progress (its last snapshot
    was lost) or one whose end was only inferred (adopted) is not settled."""
    settled: set[str] = set()
    calls = Call.__table__
    for start in range(0, len(linkedids), 500):
        chunk = linkedids[start:start + 500]
        settled.update(session.scalars(select(calls.c.linkedid).where(
            calls.c.linkedid.in_(chunk), calls.c.ended_at.is_not(None),
            calls.c.source.in_(("live", "recovered")))))
    return settled
