"""Missed calls become callback tasks (callbacks.missed_calls), on SQLite and PostgreSQL, with the
calls written as the call log writes them (bridge.pbx.calllog.save_record) on a controlled clock."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bridge.accounts.passwords import hash_password
from bridge.cases.service import file_case
from bridge.config import validate
from bridge.db.engine import Database
from bridge.db.models import (
    Call,
    CallbackAttemptResult,
    CallbackOutcome,
    CallbackReason,
    CallbackState,
    CallbackTask,
    CaseEvent,
    Cursor,
    Role,
    User,
)
from bridge.departments.service import ensure_shipped_units
from bridge.health import Health
from bridge.live import LiveEvent, LiveEvents
from bridge.pbx.calllog import save_record
from bridge.pbx.events import CallRecord
from bridge.pbx.service import PbxService
from callbacks import tasks
from callbacks.missed_calls import (
    CURSOR_NAME,
    MISSED_CALL_DAYS,
    NOTE_CASE_FILED,
    OVERLAP,
    MissedCallSweeper,
    close_without_case,
    sweep_missed_calls,
    task_for_call,
)
from callbacks.tasks import CallbackPolicy, CallbackRefused, OutcomeError, Refusal
from tests import sipp
from tests.forum.test_builtin_support import SECRETS, case_form
from tests.pbx.fake_ami import FakeAmi
from tests.pbx.recorded_tables import ami_events, live_calls, soon_after, sqlite_tables
from tests.waiting import wait_until_async

pytestmark = pytest.mark.postgres

ZONE = ZoneInfo("Asia/Shanghai")
# Thursday 3 December 2026, 10:00 in Beijing: a working day, inside the shipped windows (09:00-12:00).
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=ZONE)
CALLER = "13800003333"


@pytest.fixture
def policy(db_url):
    return CallbackPolicy.of(validate({"database": {"url": db_url}}, environ=SECRETS))


def a_call(session, linkedid: str, *, disposition: str = "abandoned", arrived: datetime = NOW - timedelta(minutes=20),
           ended: bool = True, number: str = CALLER, written: datetime | None = None, source: str | None = None) -> Call:
    """A call as the call log stores it: ``written`` is when the snapshot is written (its updated_at)."""
    ended_at = arrived + timedelta(seconds=70) if ended else None
    record = CallRecord(linkedid=linkedid, caller_number=number, dialled_number="12345", arrived_at=arrived,
                        queue_joined_at=arrived + timedelta(seconds=10),
                        queue_wait_s=60.0 if disposition == "abandoned" else None, ended_at=ended_at,
                        disposition=disposition,  # type: ignore[arg-type]
                        message_file=f"msg-{linkedid}" if disposition == "after_hours_message" else None)
    call = session.get(Call, save_record(session, record, source=source,
                                         now=written or ended_at or arrived).id)
    session.flush()
    return call


def own_extension(session) -> str:
    """A desk extension no other user holds (one active user per extension, migration 0011)."""
    return str(1001 + session.scalar(select(func.count()).select_from(User)))


def operator(session, name: str, role: Role = Role.OPERATOR) -> User:
    user = User(username=name, display_name=f"{name} person", role=role, extension=own_extension(session),
                password_hash=hash_password("x" * 12))
    session.add(user)
    session.flush()
    return user


def missed_tasks(session) -> list[CallbackTask]:
    return list(session.scalars(select(CallbackTask).where(CallbackTask.reason == CallbackReason.MISSED_CALL)
                                .order_by(CallbackTask.id)))


def linkedids(session) -> list[str]:
    return [task.call.linkedid for task in missed_tasks(session)]


def sweep(db, policy, now: datetime = NOW) -> list[str]:
    with db.session() as session:
        return [task.call.linkedid for task in sweep_missed_calls(session, policy, now)]


def test_one_task_per_missed_call_across_two_sweeps_and_a_restart(db, db_url, policy):
    with db.session() as session:
        abandoned = a_call(session, "70.1")
        a_call(session, "70.2", disposition="after_hours_message", number="13800004444",
               arrived=NOW - timedelta(hours=14))
        a_call(session, "70.3", disposition="answered")
        a_call(session, "70.4", disposition="status_line")
        a_call(session, "70.5", disposition="hung_up_in_menu")
        a_call(session, "70.6", number="")  # no number to call back
        abandoned_id, arrived_at = abandoned.id, abandoned.arrived_at
    assert sorted(sweep(db, policy)) == ["70.1", "70.2"]
    assert sweep(db, policy, NOW + timedelta(seconds=5)) == []
    with db.session(readonly=True) as session:
        first = task_for_call(session, "70.1")
        assert (first.reason, first.call_id, first.phone, first.state) == (
            CallbackReason.MISSED_CALL, abandoned_id, CALLER, CallbackState.DUE)
        assert first.waiting_since == arrived_at and first.owner_id is None  # the shared pool, as the old list
        assert session.get(Cursor, CURSOR_NAME).position is not None
    restarted = Database(db_url)  # a new daemon on the same database resumes from the cursor
    try:
        with restarted.session() as session:
            a_call(session, "70.7", number="13800005555", arrived=NOW + timedelta(minutes=1))
        assert sweep(restarted, policy, NOW + timedelta(minutes=5)) == ["70.7"]
        assert sweep(restarted, policy, NOW + timedelta(minutes=6)) == []
        with restarted.session(readonly=True) as session:
            assert sorted(linkedids(session)) == ["70.1", "70.2", "70.7"]
    finally:
        restarted.dispose()


def test_a_call_still_in_progress_is_picked_when_it_ends(db, policy):
    with db.session() as session:
        a_call(session, "71.1", ended=False, written=NOW - timedelta(minutes=20))  # queued, still waiting
        a_call(session, "71.2", number="13800004444", arrived=NOW - timedelta(minutes=10))
    assert sweep(db, policy) == ["71.2"]  # the cursor is now past the first call's row
    with db.session() as session:
        assert session.scalar(select(Call.disposition).where(Call.linkedid == "71.1")).value == "in_progress"
        a_call(session, "71.1", written=NOW + timedelta(minutes=2))  # it ends, abandoned
    assert sweep(db, policy, NOW + timedelta(minutes=3)) == ["71.1"]


def test_a_write_that_commits_after_a_younger_one_and_a_call_recovered_late_are_not_passed(db, policy):
    with db.session() as session:
        a_call(session, "72.1", written=NOW)
    assert sweep(db, policy) == ["72.1"]
    with db.session() as session:
        # written a minute before the row the cursor stands on, committed only now
        a_call(session, "72.2", number="13800004444", written=NOW - timedelta(minutes=1))
        # lost while the PBX link was down, recovered from Asterisk's CDR an hour after it ended
        a_call(session, "72.3", number="13800005555", arrived=NOW - timedelta(hours=2), source="recovered",
               written=NOW + timedelta(minutes=1))
    assert sorted(sweep(db, policy, NOW + timedelta(minutes=2))) == ["72.2", "72.3"]


def test_a_case_filed_from_the_call_links_and_closes_its_task(db, policy):
    with db.session() as session:
        alice = operator(session, "alice")
        ensure_shipped_units(session)
        a_call(session, "73.1")
        a_call(session, "73.2", number="13800004444")
        before = a_call(session, "73.3", number="13800005555")
        file_case(session, {**case_form(), "department": "CITY-LJQ", "call_linkedid": before.linkedid},
                  user=alice, now=NOW - timedelta(minutes=5), zone=ZONE)
    assert sorted(sweep(db, policy)) == ["73.1", "73.2"]  # a call with a case needs no callback
    with db.session() as session:
        task = task_for_call(session, "73.1")
        tasks.take(session, task.id, session.get(User, alice.id), NOW, policy)
        attempt, _ = tasks.begin_attempt(session, task.id, session.get(User, alice.id), NOW, policy,
                                         dialler="asterisk")
        tasks.settle_attempt(session, attempt.idempotency_key, CallbackAttemptResult.ANSWERED,
                             NOW + timedelta(minutes=1), policy, settled_by="events")
        # on the callback, alice files the caller's problem from the missed call
        case = file_case(session, {**case_form(), "department": "CITY-LJQ", "call_linkedid": "73.1"},
                         user=session.get(User, alice.id), now=NOW + timedelta(minutes=4), zone=ZONE)
        case_id, case_number = case.id, case.number
    assert sweep(db, policy, NOW + timedelta(minutes=5)) == []
    with db.session(readonly=True) as session:
        task = task_for_call(session, "73.1")
        assert (task.case_id, task.state, task.outcome, task.note) == (
            case_id, CallbackState.DONE, CallbackOutcome.HANDLED, NOTE_CASE_FILED)
        assert task.held_by_id is None and task.completed_at is not None and len(task.attempts) == 1
        timeline = session.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == case_id)).all()
        assert tasks.CALLBACK_OUTCOME in timeline
        other = task_for_call(session, "73.2")
        assert other.state is CallbackState.DUE and other.case_id is None  # not touched
    assert case_number


def test_the_first_run_carries_over_the_old_lists_window_takes_and_done_calls(db, policy):
    with db.session() as session:
        bob, carol = operator(session, "bob"), operator(session, "carol")
        a_call(session, "74.1", arrived=NOW - timedelta(days=MISSED_CALL_DAYS, hours=1))  # off the old list
        a_call(session, "74.2", number="13800004444", arrived=NOW - timedelta(days=MISSED_CALL_DAYS - 1))
        taken = a_call(session, "74.3", number="13800005555")
        taken.taken_by_id, taken.taken_at = bob.id, NOW - timedelta(minutes=30)  # the take still holds
        stale = a_call(session, "74.4", number="13800006666")
        stale.taken_by_id, stale.taken_at = carol.id, NOW - timedelta(hours=3)  # expired: free again
        done = a_call(session, "74.5", number="13800007777")
        done.taken_by_id, done.taken_at, done.handled_at, done.handled_note = bob.id, NOW, NOW, "已回电"
        bob_id = bob.id
    assert sorted(sweep(db, policy)) == ["74.2", "74.3", "74.4"]
    with db.session() as session:
        held = task_for_call(session, "74.3")
        assert (held.held_by_id, held.held_at) == (bob_id, NOW)
        assert task_for_call(session, "74.4").held_by_id is None
        carol = session.scalar(select(User).where(User.username == "carol"))
        with pytest.raises(CallbackRefused) as refused:  # the old take maps onto the task's hold
            tasks.take(session, held.id, carol, NOW, policy)
        assert refused.value.refusal is Refusal.HELD_BY_OTHER and refused.value.holder == "bob person"
        tasks.release(session, held.id, NOW)
        assert tasks.take(session, held.id, carol, NOW, policy).held_by_id == carol.id
    # a call older than the window makes no task on a later run either (e.g. recovered weeks late)
    with db.session() as session:
        a_call(session, "74.6", arrived=NOW - timedelta(days=MISSED_CALL_DAYS + 2), written=NOW + timedelta(minutes=1))
    assert sweep(db, policy, NOW + timedelta(minutes=2)) == []


def test_a_call_done_on_the_old_list_after_its_task_was_made_closes_the_task(db, policy):
    with db.session() as session:
        a_call(session, "75.1")
    assert sweep(db, policy) == ["75.1"]
    with db.session() as session:
        call = session.scalar(select(Call).where(Call.linkedid == "75.1"))
        # as the old list's done_call writes it
        call.handled_at, call.handled_note, call.updated_at = NOW + timedelta(minutes=1), "来电人已自行解决", NOW + timedelta(minutes=1)
    sweep(db, policy, NOW + timedelta(minutes=2))
    with db.session(readonly=True) as session:
        task = task_for_call(session, "75.1")
        assert (task.state, task.outcome, task.note) == (CallbackState.DONE, CallbackOutcome.HANDLED, "来电人已自行解决")


def test_done_without_a_case_needs_a_note_and_the_hold(db, policy):
    with db.session() as session:
        dora, eve = operator(session, "dora"), operator(session, "eve")
        a_call(session, "76.1")
        dora_id, eve_id = dora.id, eve.id
    sweep(db, policy)
    with db.session() as session:
        task = task_for_call(session, "76.1")
        dora, eve = session.get(User, dora_id), session.get(User, eve_id)
        for note in ("", "   "):
            with pytest.raises(OutcomeError) as missing:
                close_without_case(session, task.id, dora, note, NOW)
            assert missing.value.field == "note"
        tasks.take(session, task.id, dora, NOW, policy)
        with pytest.raises(CallbackRefused) as refused:
            close_without_case(session, task.id, eve, "已回电", NOW)
        assert refused.value.refusal is Refusal.HELD_BY_OTHER and refused.value.holder == "dora person"
        assert task_for_call(session, "76.1").state is CallbackState.DUE  # nothing stored
        closed = close_without_case(session, task.id, dora, "  已回电，来电人问题已解决  ", NOW + timedelta(minutes=1))
        assert (closed.state, closed.outcome, closed.note) == (CallbackState.DONE, CallbackOutcome.HANDLED,
                                                               "已回电，来电人问题已解决")
        assert closed.held_by_id is None and closed.completed_at == NOW + timedelta(minutes=1)
        call = closed.call  # the caller's earlier calls show it done, by whom, with the note
        assert (call.handled_note, call.taken_by_id) == ("已回电，来电人问题已解决", dora_id)
        with pytest.raises(CallbackRefused) as again:
            close_without_case(session, task.id, dora, "again", NOW + timedelta(minutes=2))
        assert again.value.refusal is Refusal.CLOSED
        with pytest.raises(CallbackRefused) as unknown:
            close_without_case(session, 999_999, dora, "x", NOW)
        assert unknown.value.refusal is Refusal.NOT_FOUND
    assert sweep(db, policy, NOW + timedelta(minutes=3)) == []  # done: not made again


def test_an_answered_callback_closed_without_a_case_keeps_the_outcome_on_its_attempt(db, policy):
    with db.session() as session:
        frank = operator(session, "frank")
        a_call(session, "77.1")
        frank_id = frank.id
    sweep(db, policy)
    with db.session() as session:
        task, frank = task_for_call(session, "77.1"), session.get(User, frank_id)
        attempt, _ = tasks.begin_attempt(session, task.id, frank, NOW, policy, dialler="asterisk")
        with pytest.raises(CallbackRefused) as live:  # the call is being placed
            close_without_case(session, task.id, frank, "已回电", NOW)
        assert live.value.refusal is Refusal.ATTEMPT_LIVE
        tasks.settle_attempt(session, attempt.idempotency_key, CallbackAttemptResult.ANSWERED,
                             NOW + timedelta(minutes=2), policy, settled_by="events")
        closed = close_without_case(session, task.id, frank, "已告知办理流程", NOW + timedelta(minutes=3))
        assert closed.state is CallbackState.DONE
        assert (closed.attempts[0].outcome, closed.attempts[0].note) == (CallbackOutcome.HANDLED, "已告知办理流程")


def test_a_number_not_to_call_makes_no_task(db, policy):
    with db.session() as session:
        tasks.forbid_number(session, "13800009999", task_id=None, by=None, note="", now=NOW - timedelta(days=1))
        a_call(session, "78.1", number="13800009999")
        a_call(session, "78.2", number="+8613800009999", arrived=NOW - timedelta(minutes=5))  # the same number
        a_call(session, "78.3", arrived=NOW - timedelta(minutes=4))
    assert sweep(db, policy) == ["78.3"]
    assert sweep(db, policy, NOW + timedelta(minutes=1)) == []
    # The calls were seen once, while the number was not to be called: lifting it later (once the
    # cursor has moved on past the overlap) does not phone them back.
    with db.session() as session:
        a_call(session, "78.4", number="13800004444", written=NOW + OVERLAP + timedelta(minutes=1))
    assert sweep(db, policy, NOW + OVERLAP + timedelta(minutes=2)) == ["78.4"]
    with db.session() as session:
        supervisor = operator(session, "supervisor", Role.SUPERVISOR)
        assert tasks.lift_do_not_call(session, "13800009999", by=supervisor, now=NOW + OVERLAP + timedelta(minutes=3))
    assert sweep(db, policy, NOW + OVERLAP + timedelta(minutes=4)) == []
    with db.session(readonly=True) as session:
        assert linkedids(session) == ["78.3", "78.4"]


def test_an_answer_task_is_not_closed_without_a_case(db, policy):
    from bridge.domain_events import DomainEvent

    with db.session() as session:
        gina = operator(session, "gina")
        ensure_shipped_units(session)
        case = file_case(session, {**case_form(), "department": "CITY-LJQ", "best_time": "any"}, user=gina,
                         now=NOW - timedelta(days=1), zone=ZONE)
        event = CaseEvent(case_id=case.id, at=NOW, kind="answered", actor="forum", detail={"text": "已处理"})
        session.add(event)
        session.flush()
        task = tasks.create_for_answer(session, DomainEvent(event.id, "case_answered", "answered", case.id,
                                                            case.number, NOW, event.detail), policy, NOW)
        with pytest.raises(OutcomeError) as refused:
            close_without_case(session, task.id, gina, "已回电", NOW)
        assert refused.value.field == "task" and task.state is CallbackState.DUE


async def test_the_link_sweeps_at_start_and_soon_after_a_call_ends(db, policy):
    with db.session() as session:
        a_call(session, "79.1")
    live = LiveEvents()
    # every_s an hour: only the start and the live event can make these tasks within the test
    sweeper = MissedCallSweeper(db, live, policy, clock=lambda: NOW, every_s=3600, after_call_ended_s=0.05)

    def count() -> int:
        with db.session(readonly=True) as session:
            return len(missed_tasks(session))

    async with live.subscribe() as published:
        await sweeper.start()
        try:
            await wait_until_async(lambda: count() == 1, timeout=10, what="the sweep at start")
            await wait_until_async(lambda: live.subscriber_count == 2, timeout=5, what="the sweeper to listen")
            with db.session() as session:
                a_call(session, "79.2", number="13800004444", arrived=NOW - timedelta(minutes=2))
            live.publish(LiveEvent("call", "ended", {"linkedid": "79.2"}))
            await wait_until_async(lambda: count() == 2, timeout=10, what="a sweep after the call ended")
            seen = []
            while len(seen) < 2:  # each task is published once its sweep has committed
                event = await asyncio.wait_for(published.get(), timeout=10)
                if event.topic == "callbacks":
                    seen.append((event.kind, event.data["linkedid"], event.data["kind"]))
        finally:
            await sweeper.stop()
    assert seen == [("changed", "79.1", "missed_call"), ("changed", "79.2", "missed_call")]


async def test_the_link_outlives_a_failed_sweep(db, policy, monkeypatch):
    from callbacks import missed_calls

    failures = []

    def broken(session, policy, now):
        failures.append(now)
        raise RuntimeError("database away")

    monkeypatch.setattr(missed_calls, "sweep_missed_calls", broken)
    sweeper = MissedCallSweeper(db, LiveEvents(), policy, clock=lambda: NOW, every_s=0.05)
    await sweeper.start()
    try:
        await wait_until_async(lambda: len(failures) >= 2, timeout=5, what="a second try")
    finally:
        await sweeper.stop()


def test_two_sweeps_at_once_make_one_task_per_call(db, policy):
    import threading

    sweep(db, policy)  # the cursor row exists (a first run racing another fails on its key, and is retried)
    with db.session() as session:
        for n in range(20):
            a_call(session, f"80.{n}", number=f"138000{n:05d}", arrived=NOW - timedelta(minutes=30 - n))
    made: list[list[str]] = []
    start = threading.Barrier(2)

    def one() -> None:
        start.wait()
        made.append(sweep(db, policy))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(made) == 2 and sorted(made[0] + made[1]) == sorted(f"80.{n}" for n in range(20))
    with db.session(readonly=True) as session:
        assert len(missed_tasks(session)) == 20


async def test_the_calls_the_pbx_link_logs_become_tasks_once_they_end(db, policy, tmp_path):
    """The daemon's PBX link for real (recorded AMI events of the test bed, played by a local AMI
    server): the abandoned call and the after-hours message make a task each, the answered call none."""
    scenarios = ("answered", "abandoned", "after_hours_message")
    secret = "s3cret"
    ami = await FakeAmi(secret=secret).start()
    config = validate({"sandbox": {"enabled": False},
                       "pbx": {"ami": {"port": ami.port, "reconnect_min_s": 0.1, "reconnect_max_s": 0.5},
                               "agi_port": sipp.free_port("127.0.0.1"),
                               "cdr_path": str(sqlite_tables(tmp_path, *scenarios))}},
                      environ={**SECRETS, "HOTLINE_BRIDGE_AMI_SECRET": secret})
    now = soon_after(*scenarios)
    live = LiveEvents()
    service = PbxService(config, db, Health(), live, clock=lambda: now, write_coalesce_s=0.05)
    service.recovery = None  # the live path only
    sweeper = MissedCallSweeper(db, live, policy, clock=lambda: now, every_s=0.5, after_call_ended_s=0.1)
    missed = sorted(linkedid for linkedid, record in live_calls(*scenarios).items()
                    if record.disposition in ("abandoned", "after_hours_message"))
    assert len(missed) == 2

    def made() -> list[str]:
        with db.session(readonly=True) as session:
            return sorted(linkedids(session))

    await service.start()
    await sweeper.start()
    try:
        assert await service.ami.wait_up(5)
        for event in ami_events(*scenarios):
            await ami.send_event(event)
        assert await wait_until_async(lambda: made() == missed, timeout=15, what="a task per missed call")
        sweeps = sweeper.sweeps
        await wait_until_async(lambda: sweeper.sweeps >= sweeps + 2, timeout=5, what="two more sweeps")
        assert made() == missed
    finally:
        await sweeper.stop()
        await service.stop()
        await ami.close()
    with db.session(readonly=True) as session:
        for task in missed_tasks(session):
            record = live_calls(*scenarios)[task.call.linkedid]
            assert task.phone == record.caller_number and task.waiting_since == task.call.arrived_at
