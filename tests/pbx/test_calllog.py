"""The call log: one row per Linkedid whatever the order of live, adopted and recovered records."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from bridge.accounts.service import add_user
from bridge.db.models import Call, CallDisposition, Role
from bridge.pbx.calllog import save_record
from bridge.pbx.events import CallRecord

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
