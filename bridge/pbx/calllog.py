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

import structlog
from sqlalchemy import select
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


def source_of(record: CallRecord) -> str:
    if record.adopted or not record.complete:
        return "adopted"
    return "live"


def save_record(session: Session, record: CallRecord, *, source: str | None = None,
                now: datetime | None = None) -> Call:
    """Insert or merge ``record`` into its row; return the row."""
    source = source or source_of(record)
    now = now or datetime.now(timezone.utc)
    call = session.scalar(select(Call).where(Call.linkedid == record.linkedid))
    if call is None:
        call = Call(linkedid=record.linkedid, arrived_at=record.arrived_at or record.ended_at or now,
                    source=source)
        session.add(call)
        _apply(call, record, overwrite=True)
    else:
        # A better (or equal) source overwrites; a worse one only fills the row's gaps.
        overwrite = SOURCE_RANK[source] >= SOURCE_RANK.get(call.source, 0)
        _apply(call, record, overwrite=overwrite)
        if overwrite:
            call.source = source
    _link_operator(session, call)
    call.updated_at = now
    session.flush()
    return call


def _apply(call: Call, record: CallRecord, *, overwrite: bool) -> None:
    for name in _FIELDS:
        value = getattr(record, name)
        if value is None or value == "":
            continue
        if overwrite or getattr(call, name) in (None, ""):
            setattr(call, name, value)
    if record.ended:
        if overwrite or call.disposition == CallDisposition.IN_PROGRESS:
            call.disposition = CallDisposition(record.disposition)
    elif call.ended_at is None:
        call.disposition = CallDisposition.IN_PROGRESS


def _link_operator(session: Session, call: Call) -> None:
    if call.extension and call.operator_id is None:
        call.operator_id = session.scalar(
            select(User.id).where(User.extension == call.extension, User.disabled_at.is_(None)).limit(1)
        )
