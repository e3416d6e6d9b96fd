"""Time in the menu and time in the queue: from real Asterisk 22 captures (tests/pbx/recorded) through
the tracker and the call log into the calls table (both databases), and back out as the desk and the
calls API reckon them (bridge.pbx.waits).  The queue wait is QueueCallerJoin to the answer (or to the
caller leaving the queue), the menu what came before it: they add up to the caller's whole wait."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from bridge.db.models import Call
from bridge.desk.queries import call_waits
from bridge.pbx.calllog import save_record
from bridge.pbx.recordings import audible_recording, has_audio
from bridge.pbx.tracker import CallTracker
from bridge.pbx.waits import menu_and_queue, short_duration, waits_text
from tests.pbx.test_tracker import arrival, at, ended, find, load, replay
from tests.wav_files import EMPTY_WAV, wav_bytes


def stored_waits(db, record) -> dict:
    """The menu and queue seconds of ``record`` once stored in its calls row, as the desk reads them."""
    with db.session() as session:
        save_record(session, record)
    with db.session(readonly=True) as session:
        return call_waits(session.scalar(select(Call).where(Call.linkedid == record.linkedid)))


def seconds(later, earlier) -> float:
    return (at(later) - at(earlier)).total_seconds()


@pytest.mark.parametrize("name", ["answered", "chinese_name"])
def test_an_answered_call_menu_then_queue(db, name):
    events = load(f"{name}.txt")
    (record,) = ended(replay(CallTracker(["96811"], "hotline"), events))
    (join,), (answer,) = find(events, "QueueCallerJoin"), find(events, "DialEnd", DialStatus="ANSWER")
    new = arrival(events)
    assert record.queue_wait_s == pytest.approx(seconds(answer, join), abs=1e-3)
    waits = stored_waits(db, record)
    assert waits["menu_s"] == pytest.approx(seconds(join, new), abs=2e-3)  # the greeting and menu
    assert waits["queue_s"] == pytest.approx(seconds(answer, join), abs=1e-3)
    assert waits["menu_s"] + waits["queue_s"] == pytest.approx(seconds(answer, new), abs=2e-3)
    assert waits["menu_s"] > 0.5 and 0.1 < waits["queue_s"] < 1  # the test bed's short prompts, a phone at once


def test_an_abandoned_call_waited_in_the_queue_until_it_hung_up(db):
    events = load("abandoned.txt")
    (record,) = ended(replay(CallTracker(["96811"], "hotline"), events))
    (join,), (abandon,) = find(events, "QueueCallerJoin"), find(events, "QueueCallerAbandon")
    waits = stored_waits(db, record)
    assert waits["queue_s"] == pytest.approx(seconds(abandon, join), abs=1e-3) and 8 < waits["queue_s"] < 10
    assert waits["menu_s"] == pytest.approx(seconds(join, arrival(events)), abs=0.01)
    assert waits_text(waits["menu_s"], waits["queue_s"], lambda s: s) == "menu 1 s · queue 9 s"


def test_a_call_that_hung_up_in_the_menu_spent_it_all_there(db):
    events = load("hung_up_in_menu.txt")
    (record,) = ended(replay(CallTracker(["96811"], "hotline"), events))
    waits = stored_waits(db, record)
    assert waits["queue_s"] is None
    assert waits["menu_s"] == pytest.approx((record.ended_at - record.arrived_at).total_seconds(), abs=1e-3)


def test_the_live_snapshot_while_queued_counts_the_queue_from_its_join():
    events = load("abandoned.txt")
    tracker = CallTracker(["96811"], "hotline")
    queued = next(u for u in replay(tracker, events) if u.kind == "queued").record
    menu, queue = menu_and_queue(queued.arrived_at, queued.queue_wait_s, queued.answered_at, None,
                                 queue_joined_at=queued.queue_joined_at, now=queued.queue_joined_at)
    assert menu == pytest.approx((queued.queue_joined_at - queued.arrived_at).total_seconds(), abs=1e-3)
    assert queue == 0.0


@pytest.mark.parametrize(("value", "text"), [(0, "0 s"), (14, "14 s"), (59.4, "59 s"), (59.6, "1:00"),
                                            (75, "1:15"), (600, "10:00"), (None, "")])
def test_short_durations(value, text):
    assert short_duration(value, lambda s: s) == text


def test_a_header_only_wav_has_no_audio(tmp_path):
    (tmp_path / "empty.wav").write_bytes(EMPTY_WAV)
    (tmp_path / "spoken.wav").write_bytes(wav_bytes(0.1))
    (tmp_path / "odd.wav").write_bytes(b"not a wav at all, but longer than a header of forty-four bytes")
    (tmp_path / "empty.gsm").write_bytes(b"")
    assert not has_audio(tmp_path / "empty.wav") and has_audio(tmp_path / "spoken.wav")
    assert has_audio(tmp_path / "odd.wav") and not has_audio(tmp_path / "empty.gsm")
    assert not has_audio(tmp_path / "missing.wav")
    assert audible_recording(tmp_path, "/x/recordings/empty", "spoken.wav") == tmp_path / "spoken.wav"
    assert audible_recording(tmp_path, "empty.wav", None) is None and audible_recording(None, "spoken") is None
