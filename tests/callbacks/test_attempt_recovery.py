"""Attempts left dialling (callbacks.attempt_recovery): the CDR verdict, the CDR rows read from
tables shaped like the shipped templates (SQLite and PostgreSQL), and the daemon's PBX link
settling them after its AMI login (a local AMI server, tests/pbx/fake_ami.py), with the
callbacks database on both backends."""
from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from bridge.config import validate
from bridge.db.models import CallbackAttempt, CallbackAttemptResult, CallbackCheck, CallbackState, CallbackTask
from bridge.health import Health
from bridge.live import LiveEvents
from bridge.pbx.recovery import AsteriskTable, CdrRecovery
from bridge.pbx.service import PbxService
from callbacks import attempt_recovery, tasks
from callbacks.tasks import CallbackPolicy
from callbacks.attempt_recovery import (
    AttemptRecovery,
    CdrLacksColumn,
    CdrUnreadable,
    cdr_rows_for,
    verdict_of,
)
from tests import sipp
from tests.callbacks.cdr_tables import Leg, PgCdr, SqliteCdr, other_call, template_columns
from tests.callbacks.test_tasks import ANSWERED_AT, due_task, operator
from tests.conftest_db import pg_base_url
from tests.pbx.fake_ami import FakeAmi
from tests.pbx.test_stop_with_database_away import SECRETS, pbx_config, until

pytestmark = pytest.mark.postgres

R = CallbackAttemptResult
BEGAN = ANSWERED_AT.timestamp()   # the attempts' start, as epoch seconds (the uniqueid's part)


@pytest.fixture
def policy(db_url):
    return CallbackPolicy.of(validate({"database": {"url": db_url}}, environ=SECRETS))


# ------------------------------------------------------------------ the verdict (pure)


@pytest.mark.parametrize(("disposition", "result"), [
    ("ANSWERED", R.ANSWERED), ("BUSY", R.BUSY), ("NO ANSWER", R.NO_ANSWER), ("FAILED", R.FAILED),
    ("CONGESTION", R.FAILED)])
def test_the_callers_leg_gives_the_result(disposition, result):
    leg = Leg("cb-1-a", disposition, recording="/rec/callback-1.wav").row()
    verdict = verdict_of([leg])
    assert verdict.result is result
    assert (verdict.linkedid, verdict.recording) == (leg["linkedid"], "/rec/callback-1.wav")


def test_without_a_leg_to_the_caller_the_operators_phone_decides():
    assert verdict_of([Leg("k", "NO ANSWER", dialled=False).row()]).result is R.OPERATOR_NO_ANSWER
    # The operator picked up but the caller was never dialled (the trunk refused at once).
    assert verdict_of([Leg("k", "ANSWERED", dialled=False).row()]).result is R.FAILED
    assert verdict_of([]) is None


def test_the_operators_row_after_the_dial_does_not_make_a_busy_caller_answered():
    # As Asterisk 22 writes them: the Dial's row (party B the carrier), then the operator's
    # channel alone, answered (by the operator), until its Hangup().
    dial = Leg("k", "BUSY").row()
    after = {**Leg("k", "ANSWERED", dialled=False).row(), "lastapp": "Hangup", "linkedid": dial["linkedid"]}
    assert verdict_of([dial, after]).result is R.BUSY


def test_an_answered_leg_wins_over_the_rows_around_it():
    rows = [Leg("k", "ANSWERED", dialled=False).row(), Leg("k", "ANSWERED").row(), Leg("k", "NO ANSWER").row()]
    verdict = verdict_of(rows)
    assert verdict.result is R.ANSWERED and verdict.linkedid == rows[1]["linkedid"]


def test_both_cdr_writers_carry_the_column_the_reader_reads():
    from bridge.pbx.recovery import PG_TABLES

    assert attempt_recovery.CDR_COLUMN in template_columns()
    assert f"{attempt_recovery.CDR_COLUMN} varchar" in PG_TABLES


# ------------------------------------------------------------- the CDR rows, both backends


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def cdr(request, tmp_path):
    if request.param == "sqlite":
        yield SqliteCdr(tmp_path)
        return
    engine = request.getfixturevalue("pg_admin_engine")
    table = PgCdr(engine, pg_base_url(), f"cdr_{uuid.uuid4().hex[:10]}")
    yield table
    table.drop()


def test_the_attempts_rows_are_found_among_other_calls_reading_back_in_chunks(cdr, monkeypatch):
    monkeypatch.setattr(attempt_recovery, "_CHUNK", 7)
    cdr.add(*[other_call(BEGAN - 3600 + i) for i in range(40)])
    mine = [Leg("cb-1-x", "ANSWERED", dialled=False, started=BEGAN + 1).row(), Leg("cb-1-x", "BUSY", started=BEGAN + 1).row()]
    cdr.add(mine[0], *[other_call(BEGAN + i) for i in range(10)], mine[1], Leg("cb-2-y", "NO ANSWER", started=BEGAN).row())
    cdr.add(*[other_call(BEGAN + 60 + i) for i in range(30)])
    table = cdr.table()
    try:
        found = cdr_rows_for(table, ["cb-1-x", "cb-9-none"], ANSWERED_AT)
    finally:
        table.dispose()
    assert list(found) == ["cb-1-x"]
    assert [r["uniqueid"] for r in found["cb-1-x"]] == [m["uniqueid"] for m in mine]
    assert verdict_of(found["cb-1-x"]).result is R.BUSY


def test_reading_back_stops_at_calls_that_ended_before_the_attempt_began(cdr, monkeypatch):
    monkeypatch.setattr(attempt_recovery, "_CHUNK", 5)
    # A row with the key among calls that ended a day before: the scan never goes that far.
    cdr.add(Leg("cb-1-old", "BUSY", started=BEGAN - 86400).row(), *[other_call(BEGAN - 86400 + i) for i in range(20)])
    cdr.add(*[other_call(BEGAN + i) for i in range(12)], Leg("cb-1-new", "BUSY", started=BEGAN).row())
    table = cdr.table()
    try:
        found = cdr_rows_for(table, ["cb-1-old", "cb-1-new"], ANSWERED_AT)
    finally:
        table.dispose()
    assert list(found) == ["cb-1-new"]


def test_a_cdr_table_without_the_attempt_column_says_so(tmp_path, pg_admin_engine):
    old = SqliteCdr(tmp_path, columns=[c for c in template_columns() if c != "hotline_callback_attempt"])
    old.add(other_call(BEGAN))
    with pytest.raises(CdrLacksColumn, match="hotline_callback_attempt"):
        cdr_rows_for(old.table(), ["cb-1-x"], ANSWERED_AT)
    pg = PgCdr(pg_admin_engine, pg_base_url(), f"cdr_{uuid.uuid4().hex[:10]}")
    try:
        pg.add(other_call(BEGAN))
        with pg_admin_engine.begin() as connection:
            connection.execute(text(f"ALTER TABLE {pg.name} DROP COLUMN hotline_callback_attempt"))
        table = pg.table()
        with pytest.raises(CdrLacksColumn, match="hotline_callback_attempt"):
            cdr_rows_for(table, ["cb-1-x"], ANSWERED_AT)
        table.dispose()
    finally:
        pg.drop()


def test_a_cdr_table_that_cannot_be_reached_is_unreadable_not_empty():
    from bridge.pbx.recovery import AsteriskTable

    away = AsteriskTable.postgresql(f"postgresql+psycopg://postgres@127.0.0.1:{sipp.free_port()}/test", "cdr")
    try:
        with pytest.raises(CdrUnreadable):
            cdr_rows_for(away, ["cb-1-x"], ANSWERED_AT)
    finally:
        away.dispose()


def test_a_locked_sqlite_file_is_unreadable_not_empty(tmp_path):
    table = SqliteCdr(tmp_path)
    locker = sqlite3.connect(table.path)
    locker.execute("PRAGMA locking_mode=EXCLUSIVE")
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(CdrUnreadable):
            cdr_rows_for(table.table(), ["cb-1-x"], ANSWERED_AT)
    finally:
        locker.rollback()
        locker.close()


# ----------------------------------------------------- the PBX link's login settles them


LATER = ANSWERED_AT + timedelta(minutes=10)


def begin(db, policy, name: str) -> str:
    """A due task and its attempt row, committed (what the Placer writes before the Originate)."""
    with db.session() as session:
        user = operator(session, name)
        task = due_task(session, policy, user)
        attempt, _ = tasks.begin_attempt(session, task.id, user, ANSWERED_AT, policy, dialler="asterisk")
        return attempt.idempotency_key


def attempt_row(db, key: str) -> tuple[CallbackAttempt, CallbackTask]:
    with db.session(readonly=True) as session:
        attempt = session.scalar(select(CallbackAttempt).where(CallbackAttempt.idempotency_key == key))
        task = attempt.task
        session.expunge_all()
        return attempt, task


class Asterisk:
    """The fake AMI's channels up now, each with its HOTLINE_CALLBACK_ATTEMPT (Getvar)."""

    def __init__(self, ami: FakeAmi) -> None:
        self.ami = ami
        self.variables: dict[str, str] = {}
        ami.handlers["getvar"] = self._getvar

    def channel_up(self, name: str, linkedid: str, key: str) -> None:
        self.ami.channels.append({"Channel": name, "Uniqueid": linkedid, "Linkedid": linkedid,
                                  "Context": "hotline-callback", "ChannelStateDesc": "Up"})
        self.variables[name] = key

    def hang_up(self, name: str) -> None:
        self.ami.channels[:] = [c for c in self.ami.channels if c["Channel"] != name]
        self.variables.pop(name, None)

    async def _getvar(self, conn, action):
        channel = action.get("Channel", "")
        if channel not in self.variables:
            return [{"Response": "Error", "Message": "No such channel"}]
        return [{"Response": "Success", "Variable": action.get("Variable"), "Value": self.variables[channel]}]


@pytest.fixture
async def fake_ami():
    server = await FakeAmi(secret=SECRETS["HOTLINE_BRIDGE_AMI_SECRET"]).start()
    yield server
    await server.close()


def pbx_link(db, cdr, fake_ami, tmp_path):
    config = pbx_config(fake_ami.port, cdr.path if isinstance(cdr, SqliteCdr) else tmp_path / "none.db")
    service = PbxService(config, db, Health(), LiveEvents(), clock=lambda: LATER)
    if isinstance(cdr, PgCdr):
        service.recovery = CdrRecovery.from_urls(cdr.url, cdr.url, ["96811"], cel_table=f"{cdr.name}_cel",
                                                 cdr_table=cdr.name)
    return service


async def settled(db, key: str, timeout: float = 10) -> CallbackAttempt:
    await until(lambda: attempt_row(db, key)[0].ended_at is not None, timeout)
    return attempt_row(db, key)[0]


class PublishedEvents(list):
    """A live feed that keeps what is published (bridge.live.LiveEvents' publish)."""

    def publish(self, event) -> None:
        self.append(event)


async def test_at_login_each_attempt_left_dialling_is_settled_from_cdr_unknown_or_left_to_its_live_call(
        db, policy, cdr, fake_ami, tmp_path):
    busy, lost, live = (begin(db, policy, name) for name in ("alice", "bob", "carol"))
    cdr.add(*[other_call(BEGAN + i) for i in range(5)], Leg(busy, "BUSY", started=BEGAN).row())
    asterisk = Asterisk(fake_ami)
    asterisk.channel_up("PJSIP/8001-00000021", "1796270400.33", live)
    asterisk.channel_up("PJSIP/8002-00000022", "1796270400.40", "")   # an inbound call: no attempt
    service = pbx_link(db, cdr, fake_ami, tmp_path)
    published = PublishedEvents()
    recovery = AttemptRecovery(db, policy, service, clock=lambda: LATER, live=published)
    service.ami.add_listener(recovery.on_ami_event)
    await service.start()
    await recovery.start()
    try:
        assert await service.ami.wait_up(5)
        assert (await settled(db, busy)).result is R.BUSY
        attempt, task = attempt_row(db, busy)
        assert attempt.settled_by == "cel" and task.state is CallbackState.SCHEDULED  # the busy ladder
        attempt, task = attempt_row(db, lost)
        assert (attempt.result, attempt.settled_by) == (R.UNKNOWN, "daemon")
        assert (task.state, task.needs_check) == (CallbackState.DUE, CallbackCheck.ATTEMPT)
        assert attempt_row(db, live)[0].ended_at is None                   # its call is still up

        # The live call ends: its CDR row is written at the hang-up, and settles it.
        recording = "/recordings/callback-20261203-100000-1796270400.33.wav"
        cdr.add(Leg(live, "ANSWERED", started=BEGAN, recording=recording).row())
        asterisk.hang_up("PJSIP/8001-00000021")
        await fake_ami.send_event({"Event": "Hangup", "Channel": "PJSIP/8001-00000021",
                                   "Uniqueid": "1796270400.33", "Linkedid": "1796270400.33", "Cause": "16"})
        attempt = await settled(db, live)
        assert (attempt.result, attempt.settled_by, attempt.recording) == (R.ANSWERED, "cel", recording)
        assert attempt_row(db, live)[1].state is CallbackState.IN_PROGRESS   # the operator records the outcome
        # Each settled attempt is published (the desk's queue, and the engine plans the retry now).
        await until(lambda: len(published) == 3)
        assert sorted((e.topic, e.kind, e.data["task_id"], e.data["result"]) for e in published) == sorted(
            ("callbacks", "attempt_ended", attempt_row(db, key)[1].id, result)
            for key, result in ((busy, "busy"), (lost, "unknown"), (live, "answered")))
    finally:
        await recovery.stop()
        await service.stop()
    assert not fake_ami.actions("Originate")                                # never placed again
    with db.session(readonly=True) as session:
        assert session.scalar(select(text("count(*)")).select_from(CallbackAttempt)) == 3


async def test_a_hung_up_call_whose_row_is_late_waits_for_it_rather_than_being_unknown(
        db, policy, cdr, fake_ami, tmp_path):
    key = begin(db, policy, "alice")
    asterisk = Asterisk(fake_ami)
    asterisk.channel_up("PJSIP/8001-00000031", "1796270400.50", key)
    service = pbx_link(db, cdr, fake_ami, tmp_path)
    recovery = AttemptRecovery(db, policy, service, clock=lambda: LATER)
    service.ami.add_listener(recovery.on_ami_event)
    await service.start()
    try:
        assert await service.ami.wait_up(5)
        await until(lambda: recovery.runs >= 1)
        asterisk.hang_up("PJSIP/8001-00000031")
        await fake_ami.send_event({"Event": "Hangup", "Channel": "PJSIP/8001-00000031",
                                   "Uniqueid": "1796270400.50", "Linkedid": "1796270400.50"})
        await until(lambda: recovery.runs >= 2)
        await asyncio.sleep(0.2)
        assert attempt_row(db, key)[0].ended_at is None     # no row yet: within the grace, not unknown
        cdr.add(Leg(key, "NO ANSWER", started=BEGAN).row())
        assert (await settled(db, key)).result is R.NO_ANSWER
    finally:
        await recovery.stop()
        await service.stop()


async def test_an_attempt_begun_after_the_login_is_left_to_the_link_that_placed_it(db, policy, fake_ami, tmp_path):
    cdr = SqliteCdr(tmp_path)
    service = pbx_link(db, cdr, fake_ami, tmp_path)
    logged_in = ANSWERED_AT - timedelta(minutes=1)       # the link came up before the attempt began
    recovery = AttemptRecovery(db, policy, service, clock=lambda: logged_in)
    key = begin(db, policy, "alice")
    await service.start()
    try:
        assert await service.ami.wait_up(5)
        await until(lambda: recovery.runs >= 1)
        await recovery.request_run()
    finally:
        await recovery.stop()
        await service.stop()
    assert attempt_row(db, key)[0].ended_at is None


async def test_with_the_cdr_table_away_nothing_is_called_unknown(db, policy, fake_ami, tmp_path):
    key = begin(db, policy, "alice")
    service = pbx_link(db, SqliteCdr(tmp_path), fake_ami, tmp_path)
    away = f"postgresql+psycopg://postgres@127.0.0.1:{sipp.free_port()}/test"
    service.recovery = CdrRecovery.from_urls(away, away, ["96811"])
    recovery = AttemptRecovery(db, policy, service, clock=lambda: LATER, retry_s=0.2)
    await service.start()
    try:
        assert await service.ami.wait_up(5)
        await until(lambda: recovery.runs >= 2, timeout=20)   # postponed, tried again
    finally:
        await recovery.stop()
        await service.stop()
    assert attempt_row(db, key)[0].ended_at is None


async def test_each_reconnect_looks_again(db, policy, cdr, fake_ami, tmp_path):
    service = pbx_link(db, cdr, fake_ami, tmp_path)
    clock = [LATER]
    recovery = AttemptRecovery(db, policy, service, clock=lambda: clock[0])
    await service.start()
    try:
        assert await service.ami.wait_up(5)
        await until(lambda: recovery.runs >= 1)
        key = begin(db, policy, "alice")          # placed on this link; then the link drops
        clock[0] = LATER + timedelta(minutes=5)
        cdr.add(Leg(key, "FAILED", started=BEGAN).row())
        await fake_ami.drop_all()
        await fake_ami.wait_logins(2)
        assert (await settled(db, key)).result is R.FAILED
    finally:
        await recovery.stop()
        await service.stop()
    assert not fake_ami.actions("Originate")


def test_a_sandbox_cdr_file_made_before_the_column_gets_it_and_keeps_its_rows(tmp_path):
    # cdr_sqlite3_custom only creates the table: an older master.db would make every INSERT
    # (which names the new column) fail, so the sandbox adds the column before Asterisk starts.
    from bridge.pbx.sandbox import Sandbox
    from tests.dialplan.test_dialplan_render import _box

    box: Sandbox = _box(tmp_path)
    path = box.paths()["cdr_db"]
    path.parent.mkdir(parents=True)
    old = SqliteCdr(path.parent, columns=[c for c in template_columns() if c != "hotline_callback_attempt"])
    old.add(other_call(BEGAN))
    assert box.upgrade_cdr_file() == ["hotline_callback_attempt"]
    assert box.upgrade_cdr_file() == []
    SqliteCdr(path.parent).add(Leg("cb-1-x", "BUSY", started=BEGAN).row())   # as Asterisk writes now
    table = AsteriskTable.sqlite(lambda: path, "cdr")
    assert verdict_of(cdr_rows_for(table, ["cb-1-x"], ANSWERED_AT)["cb-1-x"]).result is R.BUSY
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT count(*) FROM cdr").fetchone() == (2,)
    connection.close()


async def test_an_attempt_begun_a_moment_before_the_login_waits_until_its_originate_had_time(
        db, policy, fake_ami, tmp_path):
    # A Placer that saw the link up as it logged in: the row is there, the Originate on its way.
    key = begin(db, policy, "alice")
    clock = [ANSWERED_AT + timedelta(seconds=2)]
    service = pbx_link(db, SqliteCdr(tmp_path), fake_ami, tmp_path)
    recovery = AttemptRecovery(db, policy, service, clock=lambda: clock[0])
    await service.start()
    try:
        assert await service.ami.wait_up(5)
        await until(lambda: recovery.runs >= 1)
        assert attempt_row(db, key)[0].ended_at is None
        clock[0] = ANSWERED_AT + attempt_recovery.MIN_AGE          # no channel came, no CDR row
        await recovery.request_run()
        assert (attempt_row(db, key)[0].result, recovery.runs) == (R.UNKNOWN, 2)
    finally:
        await recovery.stop()
        await service.stop()


def test_an_attempt_its_events_settled_first_keeps_what_they_said(db, policy):
    key = begin(db, policy, "alice")
    with db.session() as session:
        tasks.settle_attempt(session, key, R.ANSWERED, LATER, policy, settled_by="events")
    with db.session() as session:
        got = attempt_recovery.settle_from_record(session, {key: None}, LATER, policy)
    assert got == {key: (R.ANSWERED, "events")}
    assert attempt_row(db, key)[0].result is R.ANSWERED


async def test_an_attempt_dialling_for_too_long_on_a_link_that_stayed_up_is_looked_at(db, policy, fake_ami, tmp_path):
    """Its events were lost without a reconnect (the database away when they came): the sweep
    between logins settles it, here unknown (no channel, no CDR row), rather than never."""
    from callbacks.attempt_recovery import STALE_AFTER

    cdr = SqliteCdr(tmp_path)
    service = pbx_link(db, cdr, fake_ami, tmp_path)
    now = {"at": ANSWERED_AT - timedelta(minutes=1)}       # the link came up before the attempt began
    recovery = AttemptRecovery(db, policy, service, clock=lambda: now["at"])
    key = begin(db, policy, "alice")
    await service.start()
    try:
        assert await service.ami.wait_up(5)
        await until(lambda: recovery.runs >= 1)
        assert attempt_row(db, key)[0].ended_at is None          # young: left to the link that placed it
        now["at"] = ANSWERED_AT + STALE_AFTER + timedelta(minutes=1)
        await recovery.request_run()                             # what the sweep does every few minutes
    finally:
        await recovery.stop()
        await service.stop()
    attempt, _ = attempt_row(db, key)
    assert (attempt.result, attempt.settled_by) == (CallbackAttemptResult.UNKNOWN, "daemon")
