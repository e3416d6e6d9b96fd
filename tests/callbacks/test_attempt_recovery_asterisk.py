"""Never lost, never twice, on the real Asterisk test bed with SIPp playing the operator's desk
phone (8001) and the caller's phone (the carrier's far end):

* SIGKILL of the daemon (a real ``python -m bridge run`` process) while the caller talks, while
  their phone rings, while the operator's phone rings, or between the attempt's commit and its
  Originate: after the restart exactly one attempt row, settled from Asterisk's CDR or
  ``unknown``, and SIPp saw at most one INVITE to the caller;
* the AMI link cut while an Originate is on its way (a TCP relay between the daemon's PBX
  link and Asterisk drops the connection right after the action went through): the link
  comes back, no second Originate is sent, and the attempt is settled from the CDR;
* Asterisk killed while the caller's phone rings: one attempt, ``unknown`` for a person;
* an Asterisk of its own writing the CDR into PostgreSQL (cdr_pgsql, ``[pbx] cel_url``): an
  attempt whose call ended while no daemon watched is settled from that table.

The AMI link and Asterisk-killed tests place the call through the real Placer and Asterisk dialler
(callbacks/placing.py, callbacks/asterisk_dialler.py) on the daemon's PBX link.  With the
daemon process killed, the test sends the dialler's own Originate (``originate_action``:
ActionID = the attempt key, channel variable HOTLINE_CALLBACK_ATTEMPT; the
``hotline-callback`` context puts the key in ``CDR(hotline_callback_attempt)``) after the
attempt row was committed, as the Placer does: the daemon has no API route to place a call
on this branch.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text

from bridge.config import validate
from bridge.db.models import CallbackAttempt, CallbackAttemptResult, CallbackCheck, CallbackState, User
from bridge.health import Health
from bridge.live import LiveEvents
from bridge.pbx.service import PbxService
from callbacks import tasks
from callbacks.asterisk_dialler import AsteriskDialler
from callbacks.attempt_recovery import AttemptRecovery
from callbacks.placing import CallOrder, Placer
from callbacks.tasks import CallbackPolicy
from tests import sipp
from tests.asterisk_testbed import AMI_SECRET_ENV, SESSION_SECRET_ENV
from tests.callbacks.test_tasks import ANSWERED_AT, due_task, operator

pytestmark = [pytest.mark.asterisk, pytest.mark.postgres, pytest.mark.timeout(240)]

R = CallbackAttemptResult
REPO = Path(__file__).resolve().parents[2]
_callers = iter(range(1, 10_000))


def new_caller() -> str:
    return f"1390{os.getpid() % 1000:03d}{next(_callers):04d}"


@pytest.fixture
def policy(asterisk, db_url):
    return CallbackPolicy.of(validate({"database": {"url": db_url}}, environ=asterisk.environ))


def a_task(db, policy, phone: str) -> tuple[int, int]:
    """A due task for ``phone`` owned by an operator whose desk phone is 8001: (task, user)."""
    with db.session() as session:
        user = operator(session, f"op{phone[-4:]}")
        user.extension = "8001"
        task = due_task(session, policy, user, caller_phone=phone)
        return task.id, user.id


def begin(db, policy, phone: str) -> tuple[int, str]:
    """A due task for ``phone`` and its attempt row, committed before anything is dialled."""
    task_id, user_id = a_task(db, policy, phone)
    with db.session() as session:
        user = session.get(User, user_id)
        attempt, _ = tasks.begin_attempt(session, task_id, user, ANSWERED_AT, policy, dialler="asterisk",
                                         extension=user.extension)
        return task_id, attempt.idempotency_key


def originate(db, key: str) -> dict:
    """The Originate the Asterisk dialler sends for the attempt ``key``."""
    with db.session(readonly=True) as session:
        attempt = tasks.attempt_by_key(session, key)
        order = CallOrder(key=key, task_id=attempt.task_id, attempt_id=attempt.id, phone=attempt.task.phone,
                          extension=attempt.extension, operator=None, case_number=attempt.task.case.number)
    return AsteriskDialler(lambda: None, db, None).originate_action(order)


def attempts_of(db, task_id: int) -> list[CallbackAttempt]:
    with db.session(readonly=True) as session:
        rows = list(session.scalars(select(CallbackAttempt).where(CallbackAttempt.task_id == task_id)))
        for row in rows:
            _ = row.task.state, row.task.needs_check
        session.expunge_all()
        return rows


async def settled(db, task_id: int, timeout: float = 40) -> CallbackAttempt:
    deadline = time.monotonic() + timeout
    while True:
        rows = attempts_of(db, task_id)
        if rows and all(r.ended_at is not None for r in rows):
            (row,) = rows
            return row
        assert time.monotonic() < deadline, f"attempt not settled: {[(r.result, r.ended_at) for r in rows]}"
        await asyncio.sleep(0.3)


# ----------------------------------------------------------------------- the daemon process


def free_port() -> int:
    return sipp.free_port("127.0.0.1")


class Daemon:
    """``python -m bridge run`` on the test bed's Asterisk (its CDR file), logs to a file."""

    def __init__(self, asterisk, db_url: str, folder: Path) -> None:
        self.asterisk, self.folder = asterisk, folder
        self.web_port = free_port()
        self.config = folder / "config.toml"
        self.config.write_text(f"""
[database]
url = {json.dumps(db_url)}
[web]
port = {self.web_port}
[pbx]
agi_port = {free_port()}
cdr_path = {json.dumps(str(asterisk.cdr_db))}
[pbx.ami]
host = "127.0.0.1"
port = {asterisk.ami_port}
username = {json.dumps(asterisk.ami_username)}
reconnect_min_s = 0.2
reconnect_max_s = 1.0
[sandbox]
enabled = false
[logging]
format = "json"
""", encoding="utf-8")
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.folder / f"daemon-{self.starts}.log", "w", encoding="utf-8")  # noqa: SIM115
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), AMI_SECRET_ENV: self.asterisk.ami_secret,
               SESSION_SECRET_ENV: self.asterisk.environ[SESSION_SECRET_ENV]}
        self.proc = subprocess.Popen([sys.executable, "-m", "bridge", "run", "-c", str(self.config)], cwd=REPO,
                                     stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
        log.close()

    def log_events(self) -> list[dict]:
        text = (self.folder / f"daemon-{self.starts}.log").read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    async def pbx_up(self, timeout: float = 40) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, (self.folder / f"daemon-{self.starts}.log").read_text()
                try:
                    health = (await client.get(f"http://127.0.0.1:{self.web_port}/healthz", timeout=2)).json()
                    if health["components"]["pbx"]["state"] == "up":
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError("the daemon's PBX link did not come up")

    async def logged(self, event: str, timeout: float = 20, **fields) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in self.log_events():
                if record.get("event") == event and all(record.get(k) == v for k, v in fields.items()):
                    return record
            await asyncio.sleep(0.2)
        raise AssertionError(f"the daemon never logged {event} {fields}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def daemon(asterisk, db_url, tmp_path):
    process = Daemon(asterisk, db_url, tmp_path)
    yield process
    process.stop()


def invites_to(run: sipp.SippRun, phone: str) -> list[str]:
    return [m for m in run.received("INVITE") if m.startswith(f"INVITE sip:{phone}@")]


async def test_sigkill_while_the_caller_talks_then_the_call_ends_after_the_restart(
        asterisk, sipp_cleanup, db, policy, daemon):
    phone = new_caller()
    daemon.start()
    await daemon.pbx_up()
    task_id, key = begin(db, policy, phone)    # as the Placer does, on the running daemon
    with asterisk.desk_phone("8001"), asterisk.carrier("answer") as carrier:
        async with asterisk.ami_events() as ami, asterisk.ami_events(daemon_account=True) as dialler:
            response = await dialler.action(originate(db, key))
            assert (response[0] if isinstance(response, list) else response)["Response"] == "Success"
            talking = await ami.wait_for("DialEnd", DialStatus="ANSWER", timeout=20,
                                         where=lambda e: e.get("DestChannel", "").startswith("PJSIP/carrier-"))
            daemon.kill()                                          # mid-call
            daemon.start()
            await daemon.pbx_up()
            await daemon.logged("callbacks.attempt_still_live", attempt=key)
            await asyncio.sleep(1)
            assert attempts_of(db, task_id)[0].ended_at is None    # still up: left dialling
            asterisk.hangup(talking["Channel"])                     # the operator hangs up
            attempt = await settled(db, task_id)
    assert (attempt.result, attempt.settled_by) == (R.ANSWERED, "cel")
    assert attempt.recording and attempt.linkedid == talking["Linkedid"]
    assert attempt.task.state is CallbackState.IN_PROGRESS          # waits for the operator's outcome
    assert len(invites_to(carrier, phone)) == 1


async def test_sigkill_while_the_callers_phone_rings_and_it_stops_ringing_while_the_daemon_is_down(
        asterisk, sipp_cleanup, db, policy, daemon):
    phone = new_caller()
    daemon.start()
    await daemon.pbx_up()
    task_id, key = begin(db, policy, phone)    # as the Placer does, on the running daemon
    with asterisk.desk_phone("8001"), asterisk.carrier("noanswer") as carrier:
        async with asterisk.ami_events() as ami, asterisk.ami_events(daemon_account=True) as dialler:
            await dialler.action(originate(db, key))
            ringing = await ami.wait_for("DialBegin", timeout=20,
                                         where=lambda e: e.get("DestChannel", "").startswith("PJSIP/carrier-"))
            daemon.kill()                                          # the caller's phone is ringing
            await ami.wait_for("Hangup", timeout=30, Channel=ringing["Channel"])   # rang out meanwhile
        daemon.start()
        await daemon.pbx_up()
        attempt = await settled(db, task_id)
    assert (attempt.result, attempt.settled_by) == (R.NO_ANSWER, "cel")
    assert attempt.task.state is CallbackState.SCHEDULED          # the no-answer ladder
    assert len(invites_to(carrier, phone)) == 1


async def test_sigkill_while_the_operators_phone_rings_then_it_stops_the_caller_is_never_dialled(
        asterisk, sipp_cleanup, db, policy, daemon):
    phone = new_caller()
    daemon.start()
    await daemon.pbx_up()
    task_id, key = begin(db, policy, phone)
    with asterisk.desk_phone("8001", "noanswer") as desk, asterisk.carrier("answer") as carrier:
        async with asterisk.ami_events() as ami, asterisk.ami_events(daemon_account=True) as dialler:
            # panoramisk waits for the OriginateResponse, which comes only when the ringing ends.
            sent = asyncio.ensure_future(dialler.manager.send_action(originate(db, key)))
            ringing = await ami.wait_for("Newchannel", timeout=20,
                                         where=lambda e: e.get("Channel", "").startswith("PJSIP/8001-"))
            daemon.kill()                                          # the operator's phone rings
            daemon.start()
            await daemon.pbx_up()
            await daemon.logged("callbacks.attempt_still_live", attempt=key)
            asterisk.hangup(ringing["Channel"])                    # it stops ringing, unanswered
            attempt = await settled(db, task_id)
            sent.cancel()
    # The dialplan names the attempt in the CDR only once the operator answers; without
    # CDR(hotline_callback_attempt) among the Originate's variables the CDR cannot tell
    # operator_no_answer, so a person checks it (unknown), never a silent retry.
    assert (attempt.result, attempt.settled_by) in ((R.UNKNOWN, "daemon"), (R.OPERATOR_NO_ANSWER, "cel"))
    assert len(desk.received("INVITE")) == 1
    assert invites_to(carrier, phone) == []


async def test_sigkill_between_the_attempts_commit_and_its_originate_leaves_it_unknown(
        asterisk, sipp_cleanup, db, policy, daemon):
    phone = new_caller()
    with asterisk.carrier("answer") as carrier:
        daemon.start()
        await daemon.pbx_up()
        task_id, key = begin(db, policy, phone)     # committed; the daemon dies before sending
        daemon.kill()
        daemon.start()
        await daemon.pbx_up()
        attempt = await settled(db, task_id)
        await asyncio.sleep(1)
    assert (attempt.result, attempt.settled_by) == (R.UNKNOWN, "daemon")
    assert (attempt.task.state, attempt.task.needs_check) == (CallbackState.DUE, CallbackCheck.ATTEMPT)
    assert invites_to(carrier, phone) == []                      # nothing placed, nothing retried


# ------------------------------------------------------------------- the AMI link cut


class CuttingRelay:
    """A TCP relay between the daemon and Asterisk's AMI: counts the Originates that pass and,
    when armed, drops the connection right after one went through (before Asterisk answers)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.originates = 0
        self.cut_next_originate = False
        self.cuts = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> CuttingRelay:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        self._server.close()

    async def _serve(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def downstream() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()

        back = asyncio.create_task(downstream())
        try:
            while data := await reader.read(65536):
                up_writer.write(data)
                await up_writer.drain()
                count = data.count(b"Action: Originate")
                self.originates += count
                if count and self.cut_next_originate:
                    self.cut_next_originate = False
                    self.cuts += 1
                    writer.transport.abort()     # Asterisk has the action; its answer is lost
                    up_writer.transport.abort()
                    return
        except ConnectionError:
            pass
        finally:
            back.cancel()
            writer.transport.abort()
            up_writer.transport.abort()


@asynccontextmanager
async def pbx_link_through(relay: CuttingRelay, asterisk, db, policy):
    """The daemon's PBX link through ``relay``, with the callbacks' dialler and attempt recovery
    as the capability wires them (the dialler's listener, then the recovery's)."""
    base = asterisk.config
    ami = base.pbx.ami.model_copy(update={"port": relay.port, "reconnect_min_s": 0.5, "reconnect_max_s": 1.0})
    config = base.model_copy(update={"pbx": base.pbx.model_copy(update={"ami": ami, "agi_port": free_port()})})
    service = PbxService(config, db, Health(), LiveEvents())
    dialler = AsteriskDialler(lambda: service.ami, db, policy)
    recovery = AttemptRecovery(db, policy, service)
    service.ami.add_listener(dialler.on_event)
    service.ami.add_listener(recovery.on_ami_event)
    await service.start()
    try:
        assert await service.ami.wait_up(20)
        # The Placer's clock: a working-day morning, inside the calling windows.
        yield service, Placer(db, policy, dialler, clock=lambda: ANSWERED_AT), recovery
    finally:
        await recovery.stop()
        await service.stop()


async def test_the_ami_link_cut_during_an_originate_places_no_second_call_and_the_cdr_settles_it(
        asterisk, sipp_cleanup, db, policy):
    phone = new_caller()
    task_id, user_id = a_task(db, policy, phone)
    relay = await CuttingRelay(asterisk.ami_port).start()
    try:
        with asterisk.desk_phone("8001"), asterisk.carrier("answer") as carrier:
            async with asterisk.ami_events() as ami, \
                    pbx_link_through(relay, asterisk, db, policy) as (service, placer, recovery):
                await asyncio.sleep(0.5)
                runs = recovery.runs
                relay.cut_next_originate = True
                placed = await placer.place(task_id, user_id)   # the link drops as the Originate goes
                assert relay.cuts == 1
                assert attempts_of(db, task_id)[0].ended_at is None           # it may ring: dialling
                assert await service.ami.wait_up(20)                          # the link is back
                talking = await ami.wait_for("DialEnd", DialStatus="ANSWER", timeout=20,
                                             where=lambda e: e.get("DestChannel", "").startswith("PJSIP/carrier-"))
                deadline = time.monotonic() + 10
                while recovery.runs <= runs and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                assert recovery.runs > runs                                   # it looked after the reconnect
                assert attempts_of(db, task_id)[0].ended_at is None           # the call is up: left to it
                asterisk.hangup(talking["Channel"])
                attempt = await settled(db, task_id)
    finally:
        await relay.close()
    assert attempt.idempotency_key == placed.key
    assert (attempt.result, attempt.settled_by) == (R.ANSWERED, "cel")
    assert attempt.recording and attempt.linkedid == talking["Linkedid"]
    assert relay.originates == 1                                          # never sent again
    assert len(invites_to(carrier, phone)) == 1
    with db.session(readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(CallbackAttempt)
                              .where(CallbackAttempt.task_id == task_id)) == 1


# ------------------------------------------------------- the CDR in PostgreSQL (cdr_pgsql)


@asynccontextmanager
async def pbx_link(bed, db, policy):
    """The daemon's PBX link on ``bed`` with the attempt recovery (its CDR table as configured)."""
    config = bed.config.model_copy(update={"pbx": bed.config.pbx.model_copy(update={"agi_port": free_port()})})
    service = PbxService(config, db, Health(), LiveEvents())
    recovery = AttemptRecovery(db, policy, service)
    service.ami.add_listener(recovery.on_ami_event)
    await service.start()
    try:
        assert await service.ami.wait_up(20)
        yield service, recovery
    finally:
        await recovery.stop()
        await service.stop()


@pytest.fixture(scope="module")
def cdr_in_postgresql(tmp_path_factory, pg_admin_engine):
    """An Asterisk of its own writing CEL/CDR into PostgreSQL tables of the shipped shape
    (PG_TABLES, with hotline_callback_attempt) through cel_pgsql / cdr_pgsql."""
    from tests.pbx.recorded_tables import asterisk_writing_to_postgresql

    with asterisk_writing_to_postgresql(tmp_path_factory.mktemp("asterisk-pg-cdr"), pg_admin_engine) as bed:
        yield bed


async def test_with_the_cdr_in_postgresql_an_attempt_whose_call_ended_unseen_is_settled_from_there(
        cdr_in_postgresql, pg_admin_engine, db, db_url):
    bed = cdr_in_postgresql
    policy = CallbackPolicy.of(validate({"database": {"url": db_url}}, environ=bed.environ))
    _, cdr_table = bed.tables
    phone = new_caller()
    task_id, key = begin(db, policy, phone)          # committed; then the daemon is gone
    try:
        with bed.desk_phone("8001"), bed.carrier("busy") as carrier:
            async with bed.ami_events() as ami, bed.ami_events(daemon_account=True) as dialler:
                await dialler.action(originate(db, key))
                dialled = await ami.wait_for("DialBegin", timeout=20,
                                             where=lambda e: e.get("DestChannel", "").startswith("PJSIP/carrier-"))
                await ami.wait_for("Hangup", timeout=20, Channel=dialled["Channel"])
        deadline = time.monotonic() + 20
        while True:   # cdr_pgsql has written the call's rows
            with pg_admin_engine.connect() as connection:
                rows = connection.execute(text(f"SELECT disposition, dstchannel FROM {cdr_table} "
                                               "WHERE hotline_callback_attempt = :k"), {"k": key}).all()
            if rows or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        assert ("BUSY", dialled["DestChannel"]) in [tuple(r) for r in rows], rows
        async with pbx_link(bed, db, policy) as (service, recovery):
            assert service.recovery.cdr.table == cdr_table         # [pbx] cel_url / cdr_table
            attempt = await settled(db, task_id)
    finally:
        bed.stop_sipp()
    assert (attempt.result, attempt.settled_by) == (R.BUSY, "cel")
    assert attempt.task.state is CallbackState.SCHEDULED              # the busy ladder
    assert len(invites_to(carrier, phone)) == 1


async def test_asterisk_killed_while_the_callers_phone_rings_leaves_one_attempt_for_a_person(
        asterisk, sipp_cleanup, db, policy):
    phone = new_caller()
    task_id, user_id = a_task(db, policy, phone)
    relay = await CuttingRelay(asterisk.ami_port).start()     # only to count the Originates
    try:
        with asterisk.desk_phone("8001"), asterisk.carrier("noanswer") as carrier:
            async with pbx_link_through(relay, asterisk, db, policy) as (service, placer, recovery):
                async with asterisk.ami_events() as ami:
                    await placer.place(task_id, user_id)
                    await ami.wait_for("DialBegin", timeout=20,
                                       where=lambda e: e.get("DestChannel", "").startswith("PJSIP/carrier-"))
                    runs = recovery.runs
                    os.kill(asterisk.sandbox.pid(), signal.SIGKILL)     # no hang-up, no CDR row
                try:
                    await asyncio.to_thread(asterisk.sandbox.start)
                finally:
                    asterisk.open_now()
                    asterisk.sync_queue()
                assert await service.ami.wait_up(30)
                attempt = await settled(db, task_id)
                assert recovery.runs > runs
    finally:
        await relay.close()
    assert (attempt.result, attempt.settled_by) == (R.UNKNOWN, "daemon")
    assert (attempt.task.state, attempt.task.needs_check) == (CallbackState.DUE, CallbackCheck.ATTEMPT)
    assert relay.originates == 1 and len(invites_to(carrier, phone)) == 1
