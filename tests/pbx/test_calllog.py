"""The call log: one row per Linkedid whatever the order of live, adopted and recovered records."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from bridge.accounts.service import add_user
from bridge.config import validate
from bridge.db.models import Call, CallDisposition, Role
from bridge.pbx.calllog import save_record, save_records
from bridge.health import Health
from bridge.live import LiveEvents
from bridge.pbx.events import CallRecord, CallUpdate
from bridge.pbx.service import PbxService

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)


def live(**kw) -> CallRecord:
    base = dict(linkedid="1764036000.1", caller_number="13905700001", caller_name="张三",
                dialled_number="96811", arrived_at=T0)
    return CallRecord(**{**base, **kw})


def count(session) -> int:
    return session.scalar(select(func.count()).select_from(Call))


def test_live_updates_build_one_row_and_link_the_operator(db):
    with db.session() as session:
        add_user(session, "wangfang", Role.OPERATOR, "correct horse battery", extension="8001")
    with db.session() as session:
        save_record(session, live())
        save_record(session, live(answered_at=T0 + timedelta(seconds=12), queue_wait_s=12.0, extension="8001"))
        save_record(session, live(answered_at=T0 + timedelta(seconds=12), queue_wait_s=12.0, extension="8001",
                                  ended_at=T0 + timedelta(seconds=90), talk_s=78.0, hangup_cause=16,
                                  hangup_cause_text="Normal Clearing", disposition="answered",
                                  recording="1764036000.1.wav"))
    with db.session() as session:
        assert count(session) == 1
        call = session.scalar(select(Call))
        assert call.disposition == CallDisposition.ANSWERED
        assert call.caller_name == "张三"
        assert call.operator.username == "wangfang"
        assert call.talk_s == 78.0 and call.source == "live"
        assert call.arrived_at == T0


def test_in_progress_until_ended(db):
    with db.session() as session:
        call = save_record(session, live())
        assert call.disposition == CallDisposition.IN_PROGRESS


def test_recovered_record_fills_gaps_but_never_overrides_live_figures(db):
    with db.session() as session:
        save_record(session, live(ended_at=T0 + timedelta(seconds=30), disposition="abandoned", queue_wait_s=30.0))
        save_record(session, live(ended_at=T0 + timedelta(seconds=31), disposition="failed", queue_wait_s=None,
                                  recording="from-cdr.wav"), source="recovered")
        call = session.scalar(select(Call))
        assert call.disposition == CallDisposition.ABANDONED
        assert call.ended_at == T0 + timedelta(seconds=30)
        assert call.recording == "from-cdr.wav"
        assert call.source == "live"


def test_recovery_corrects_an_inferred_end(db):
    with db.session() as session:
        save_record(session, live(adopted=True, complete=False, ended_at=T0 + timedelta(minutes=5),
                                  disposition="failed"))
        save_record(session, live(ended_at=T0 + timedelta(seconds=95), disposition="answered", talk_s=60.0),
                    source="recovered")
        call = session.scalar(select(Call))
        assert call.ended_at == T0 + timedelta(seconds=95)
        assert call.disposition == CallDisposition.ANSWERED
        assert call.source == "recovered"


def test_any_order_gives_one_row(db):
    records = [
        (live(ended_at=T0 + timedelta(seconds=40), disposition="answered"), "recovered"),
        (live(adopted=True), None),
        (live(ended_at=T0 + timedelta(seconds=41), disposition="answered", talk_s=20.0), None),
    ]
    for ordering in (records, list(reversed(records))):
        with db.session() as session:
            for record, source in ordering:
                save_record(session, record, source=source)
            assert count(session) == 1
            assert session.scalar(select(Call)).disposition == CallDisposition.ANSWERED


def test_one_batch_of_many_calls_matches_saving_them_one_by_one(db):
    """The writer's batches (save_records): several calls, several snapshots and sources of
    one call, in one transaction, end as the same rows as one save_record per snapshot."""
    with db.session() as session:
        add_user(session, "lina", Role.OPERATOR, "correct horse battery", extension="8002")
    other = dict(linkedid="1764036000.9", caller_number="13905700009")
    batch = [
        (live(), None),
        (live(**other), None),
        (live(ended_at=T0 + timedelta(seconds=40), disposition="answered", extension="8002"), "recovered"),
        (live(ended_at=T0 + timedelta(seconds=41), disposition="answered", talk_s=20.0, extension="8002"), None),
        (live(**other, ended_at=T0 + timedelta(seconds=5), disposition="abandoned", extension="8002"), None),
    ]
    with db.session() as session:
        assert save_records(session, batch, now=T0 + timedelta(minutes=1)) == 2
    with db.session() as session:
        calls = {c.linkedid: c for c in session.scalars(select(Call))}
        assert len(calls) == 2
        first, second = calls["1764036000.1"], calls["1764036000.9"]
        assert first.source == "live" and first.talk_s == 20.0
        assert first.ended_at == T0 + timedelta(seconds=41)
        assert first.operator.username == "lina" and second.operator.username == "lina"
        assert second.disposition == CallDisposition.ABANDONED


async def test_the_writer_stores_a_calls_quick_updates_in_one_transaction(db):
    """Updates published within the writer's coalescing window are stored together: one
    transaction, one row write per call (the newest snapshot), nothing lost."""
    config = validate({}, environ={"HOTLINE_BRIDGE_AMI_SECRET": "x", "HOTLINE_BRIDGE_SESSION_SECRET": "y"})
    service = PbxService(config, db, Health(), LiveEvents(), write_coalesce_s=0.3)
    transactions = []
    store = service._store_sync
    service._store_sync = lambda items: (transactions.append(len(items)), store(items))[1]
    writer = asyncio.create_task(service._write_loop())
    try:
        steps = [live(), live(queue_wait_s=3.0), live(queue_wait_s=3.0, answered_at=T0 + timedelta(seconds=3)),
                 live(linkedid="1764036000.2"),
                 live(queue_wait_s=3.0, answered_at=T0 + timedelta(seconds=3), ended_at=T0 + timedelta(seconds=60),
                      talk_s=57.0, disposition="answered")]
        for record in steps:   # as AMI events come: a few ms apart, the writer free in between
            service._publish(CallUpdate(kind="arrived", linkedid=record.linkedid, at=T0, record=record))
            await asyncio.sleep(0.02)
        await asyncio.wait_for(service._writes.join(), 5)
    finally:
        writer.cancel()
    assert transactions == [2]
    with db.session() as session:
        calls = {c.linkedid: c for c in session.scalars(select(Call))}
        assert calls["1764036000.1"].talk_s == 57.0 and calls["1764036000.1"].ended_at is not None
        assert calls["1764036000.2"].disposition == CallDisposition.IN_PROGRESS


def test_a_step_that_changes_nothing_stored_is_not_written_again():
    """Queue and ringing steps change no column: the writer gets the snapshot once."""
    config = validate({}, environ={"HOTLINE_BRIDGE_AMI_SECRET": "x", "HOTLINE_BRIDGE_SESSION_SECRET": "y"})
    service = PbxService(config, None, Health(), LiveEvents())
    queued = live(queue_wait_s=None)
    for kind in ("queued", "ringing", "ring_stopped"):
        service._publish(CallUpdate(kind=kind, linkedid=queued.linkedid, at=T0, record=queued))
    answered = live(answered_at=T0 + timedelta(seconds=4), extension="8001")
    service._publish(CallUpdate(kind="connected", linkedid=answered.linkedid, at=T0, record=answered))
    ended = live(answered_at=T0 + timedelta(seconds=4), extension="8001", ended_at=T0 + timedelta(seconds=9),
                 disposition="answered")
    service._publish(CallUpdate(kind="ended", linkedid=ended.linkedid, at=T0, record=ended))
    assert [record for record, _ in service._writes._queue] == [queued, answered, ended]


def test_the_call_log_never_overwrites_the_desks_columns(db):
    """An operator takes the call from the shared list while it is still being logged:
    later call-log writes leave taken_by / taken_at alone."""
    with db.session() as session:
        user = add_user(session, "zhaomin", Role.OPERATOR, "correct horse battery", extension="8001")
        save_record(session, live())
        call = session.scalar(select(Call))
        call.taken_by_id, call.taken_at = user.id, T0 + timedelta(seconds=5)
    with db.session() as session:
        save_records(session, [(live(ended_at=T0 + timedelta(seconds=30), disposition="abandoned"), None)])
    with db.session() as session:
        call = session.scalar(select(Call))
        assert call.taken_by.username == "zhaomin" and call.taken_at == T0 + timedelta(seconds=5)
        assert call.disposition == CallDisposition.ABANDONED
