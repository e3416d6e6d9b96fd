"""The Asterisk dialler on the real test bed: SIPp plays the operator's desk phone and the
caller's phone (the carrier's far end); the attempt's row follows Asterisk's own events.

The daemon's parts run in this process as the daemon wires them: the PBX link (``PbxService``,
its AMI client) with the callbacks capability's AMI listener, and the capability's ``Placer``.
The test bed's desk phones are qualified every second (``Tuning.phone_qualify_s``), so a phone
whose SIPp is not running reads UNAVAILABLE, as an unregistered one does.  The placer's clock
runs from a working-day morning inside the calling windows, at the real pace.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import time
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from bridge.accounts.service import add_user
from bridge.capability import Runtime, load_capabilities
from bridge.cases.service import file_case
from bridge.db.models import (
    CallbackAttempt,
    CallbackAttemptResult,
    CallbackCheck,
    CallbackOutcome,
    CallbackState,
    CallbackTask,
    CaseEvent,
    Role,
    User,
    utcnow,
)
from bridge.departments.service import ensure_shipped_units
from bridge.domain_events import DomainEvent
from bridge.health import Health
from bridge.live import LiveEvents
from callbacks import tasks
from callbacks.asterisk_dialler import AsteriskDialler, trunk_number
from callbacks.best_time import BestTime
from callbacks.retry import AttemptResult
from callbacks.tasks import CallbackPolicy, CallbackRefused, Refusal
from callbacks.windows import next_opening
from tests.asterisk_testbed import TEST_TUNING, running_testbed
from tests.forum.test_builtin_support import case_form
from tests.waiting import wait_until_async

pytestmark = [pytest.mark.asterisk, pytest.mark.postgres, pytest.mark.timeout(240)]

ZONE = ZoneInfo("Asia/Shanghai")
# Thursday 3 December 2026 10:00 in Beijing: a working day, inside the shipped windows.
MORNING = datetime(2026, 12, 3, 10, 0, tzinfo=ZONE)
OPERATOR_RING_S = 4.0
QUALIFY_S = 1   # the test bed's desk phones are asked every second (qualify_timeout 1 s)
_numbers = itertools.count(1)


def new_phone() -> str:
    """A mobile number no other test of this run dials."""
    return f"139{os.getpid() % 10000:04d}{next(_numbers):04d}"


class SiteClock:
    """From MORNING on, at the real pace (events are minutes apart, never hours)."""

    def __init__(self) -> None:
        self.started = utcnow()

    def __call__(self) -> datetime:
        return MORNING + (utcnow() - self.started)


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    tuning = replace(TEST_TUNING, phone_qualify_s=QUALIFY_S, callback_ring_s=6)
    with running_testbed(tmp_path_factory.mktemp("dialler"), "the dialler's Asterisk", tuning=tuning) as bed:
        yield bed


class Daemon:
    """The daemon's PBX link and callbacks capability, wired as bridge.daemon wires them."""

    def __init__(self, bed, db, config=None):
        self.bed, self.db, self.live, self.clock = bed, db, LiveEvents(), SiteClock()
        self.runtime = Runtime(config or bed.config, db, Health(["pbx"]), self.live, capabilities=load_capabilities())
        self.callbacks = next(c for c in self.runtime.capabilities if c.name == "callbacks")
        self.policy = CallbackPolicy.of(bed.config)

    async def start(self):
        runtime = self.runtime
        runtime.ami_listeners[:] = [listener for c in runtime.capabilities for listener in c.ami_listeners(runtime)]
        for capability in runtime.capabilities:
            for name, link in capability.links(runtime):
                if name == "pbx":
                    runtime.links[name] = link
        self.dialler: AsteriskDialler = self.callbacks.asterisk_dialler(runtime)
        self.dialler.operator_ring_s, self.dialler.clock = OPERATOR_RING_S, self.clock
        self.placer = self.callbacks.placer(runtime)
        self.placer.clock = self.clock
        await runtime.links["pbx"].start()
        assert await runtime.links["pbx"].ami.wait_up(20)

    async def stop(self):
        await self.runtime.links["pbx"].stop()

    async def phone_ready(self, extension: str) -> None:
        """Asterisk sees the desk phone reachable since its SIPp started, and still after one
        more qualify round (an OPTIONS sent before SIPp listened times out late and would mark
        it unreachable again)."""
        for round_ in range(2):
            if round_:
                await asyncio.sleep(QUALIFY_S + 1.2)
            self.bed.cli(f"pjsip qualify {extension}")
            await wait_until_async(self._ready(extension), timeout=10, interval=0.2,
                                   what=f"Asterisk to see desk phone {extension} reachable")

    def _ready(self, extension):
        async def ready():
            return await self.dialler.ready_for(extension) is None
        return ready


def two_operators(db) -> None:
    with db.session() as session:
        ensure_shipped_units(session)
        add_user(session, "alice", Role.OPERATOR, "a long enough password", extension="8001")
        add_user(session, "bob", Role.SUPERVISOR, "a long enough password", extension="8002")


@pytest.fixture
async def daemon(bed, db):
    two_operators(db)
    running = Daemon(bed, db)
    await running.start()
    try:
        yield running
    finally:
        bed.stop_sipp()
        await running.stop()


def user_id(db, name: str) -> int:
    with db.session(readonly=True) as session:
        return session.scalar(select(User.id).where(User.username == name))


def a_due_task(db, policy, phone: str) -> tuple[int, str]:
    """A case filed by alice, answered by the unit: its callback task (due now); and the case number."""
    with db.session() as session:
        alice = session.scalar(select(User).where(User.username == "alice"))
        case = file_case(session, {**case_form(), "department": "CITY-LJQ", "caller_phone": phone,
                                   "best_time": "any"}, user=alice, now=MORNING - timedelta(days=1), zone=ZONE)
        event = CaseEvent(case_id=case.id, at=MORNING, kind="answered", actor="forum",
                          detail={"text": "已安排清理", "unit": "CITY-LJQ"})
        session.add(event)
        session.flush()
        task = tasks.create_for_answer(session, DomainEvent(event.id, "case_answered", "answered", case.id,
                                                            case.number, MORNING, event.detail), policy, MORNING)
        assert task is not None and task.state is CallbackState.DUE
        return task.id, case.number


def attempts_of(db, task_id: int) -> list[CallbackAttempt]:
    with db.session(readonly=True) as session:
        rows = session.scalars(select(CallbackAttempt).where(CallbackAttempt.task_id == task_id)
                               .order_by(CallbackAttempt.id)).all()
        session.expunge_all()
        return list(rows)


def task_of(db, task_id: int) -> CallbackTask:
    with db.session(readonly=True) as session:
        task = session.get(CallbackTask, task_id)
        session.expunge_all()
        return task


async def settled(db, task_id: int, timeout: float = 30) -> CallbackAttempt:
    async def ended():
        rows = attempts_of(db, task_id)
        return rows[-1] if rows and rows[-1].result is not None else None
    return await wait_until_async(ended, timeout=timeout, interval=0.2, what=f"task {task_id}'s attempt to settle")


def invites(run) -> list[str]:
    return run.received("INVITE")


async def test_an_answered_callback_rings_the_operator_then_the_caller_and_links_the_recording(bed, daemon, db):
    phone = new_phone()
    task_id, number = a_due_task(db, daemon.policy, phone)
    other_task, _ = a_due_task(db, daemon.policy, new_phone())
    async with daemon.live.subscribe() as feed:
        with bed.desk_phone("8001") as desk, bed.carrier("answer") as caller:
            await daemon.phone_ready("8001")
            placed = await daemon.placer.place(task_id, user_id(db, "alice"))
            attempt = await settled(db, task_id)
            assert attempt.result is CallbackAttemptResult.ANSWERED and attempt.settled_by == "events"
            assert attempt.id == placed.attempt_id and attempt.idempotency_key == placed.key
            assert attempt.answered_at is not None and attempt.ended_at is not None
            assert attempt.linkedid and attempt.extension == "8001" and attempt.dialler == "asterisk"
            # The operator's phone rang first, showing the case; then the caller, from the hotline number.
            (ring,) = invites(desk)
            assert f'"{number}"' in ring.split("From:", 1)[1].splitlines()[0]
            (call,) = invites(caller)
            assert call.startswith(f"INVITE sip:{trunk_number(phone)}@")
            assert bed.hotline_number in call.split("From:", 1)[1].splitlines()[0]
            # While the operator is on this call, Asterisk says the desk phone is in use.
            with pytest.raises(CallbackRefused) as busy:
                await daemon.placer.place(other_task, user_id(db, "alice"))
            assert busy.value.refusal is Refusal.DEVICE_BUSY
            assert len(attempts_of(db, other_task)) == 0
            bed.cli("channel request hangup all")
            await asyncio.sleep(1)
        kinds = []
        while not feed.empty():
            event = feed.get_nowait()
            if event.topic == "callbacks" and event.data.get("task_id") == task_id:
                kinds.append(event.kind)
    assert kinds[:2] == ["attempt_started", "attempt_answered"]
    attempt = await wait_until_async(lambda: next((a for a in attempts_of(db, task_id)
                                                    if a.ended_at > a.answered_at), None),
                                     timeout=10, what="the hang-up to end the answered attempt")
    assert attempt.linkedid in attempt.recording    # the context's MixMonitor file, on the attempt
    recording = bed.sandbox.root / attempt.recording.lstrip("/")
    await wait_until_async(recording.is_file, timeout=10, what="the callback's recording on disk")
    # The operator now records the outcome: the task waits for it.
    task = task_of(db, task_id)
    assert task.state is CallbackState.IN_PROGRESS and task.outcome is None


async def test_a_busy_caller_is_tried_again_on_the_busy_ladder(bed, daemon, db):
    task_id, _ = a_due_task(db, daemon.policy, new_phone())
    with bed.desk_phone("8001"), bed.carrier("busy") as caller:
        await daemon.phone_ready("8001")
        await daemon.placer.place(task_id, user_id(db, "alice"))
        attempt = await settled(db, task_id)
        assert len(invites(caller)) == 1
    assert (attempt.result, attempt.hangup_cause) == (CallbackAttemptResult.BUSY, 17)
    task = task_of(db, task_id)
    first_step = daemon.policy.retry.ladders[AttemptResult.BUSY][0]   # 15 minutes, shipped
    assert task.state is CallbackState.SCHEDULED and task.due_at >= attempt.ended_at + first_step
    assert task.held_by_id is None


async def test_a_caller_who_does_not_pick_up_is_no_answer(bed, daemon, db):
    task_id, _ = a_due_task(db, daemon.policy, new_phone())
    with bed.desk_phone("8001"), bed.carrier("noanswer") as caller:
        await daemon.phone_ready("8001")
        started = time.monotonic()
        await daemon.placer.place(task_id, user_id(db, "alice"))
        attempt = await settled(db, task_id)
        assert time.monotonic() - started >= 5   # rang the dialplan's HOTLINE_CALLBACK_RING (6 s here)
        assert len(invites(caller)) == 1
    assert attempt.result is CallbackAttemptResult.NO_ANSWER and attempt.answered_at is None
    assert task_of(db, task_id).state is CallbackState.SCHEDULED


async def test_a_number_that_does_not_exist_stops_at_once_for_a_check(bed, daemon, db):
    task_id, _ = a_due_task(db, daemon.policy, new_phone())
    with bed.desk_phone("8001"), bed.carrier("notfound"):
        await daemon.phone_ready("8001")
        await daemon.placer.place(task_id, user_id(db, "alice"))
        attempt = await settled(db, task_id)
    assert (attempt.result, attempt.hangup_cause) == (CallbackAttemptResult.FAILED, 1)
    task = task_of(db, task_id)
    assert (task.state, task.needs_check) == (CallbackState.UNREACHABLE, CallbackCheck.NUMBER)


async def test_an_operator_who_does_not_answer_is_not_an_attempt_on_the_caller(bed, daemon, db):
    task_id, _ = a_due_task(db, daemon.policy, new_phone())
    with bed.desk_phone("8001", "noanswer") as desk, bed.carrier("answer") as caller:
        await daemon.phone_ready("8001")
        await daemon.placer.place(task_id, user_id(db, "alice"))
        attempt = await settled(db, task_id, timeout=OPERATOR_RING_S + 15)
        assert len(invites(desk)) == 1 and invites(caller) == []
    assert attempt.result is CallbackAttemptResult.OPERATOR_NO_ANSWER
    task = task_of(db, task_id)
    assert task.state in (CallbackState.DUE, CallbackState.SCHEDULED) and task.needs_check is None


async def test_an_unregistered_desk_phone_is_refused_before_anything_is_written_or_dialled(bed, daemon, db):
    task_id, _ = a_due_task(db, daemon.policy, new_phone())
    bob = user_id(db, "bob")   # desk phone 8002: no SIPp runs there (any earlier one's contact has timed out)

    async def unreachable():
        return await daemon.dialler.ready_for("8002") is Refusal.DEVICE_UNREGISTERED
    await wait_until_async(unreachable, timeout=10, interval=0.2, what="Asterisk to see desk phone 8002 gone")
    async with bed.ami_events() as observer:
        with bed.carrier("answer") as caller:
            with pytest.raises(CallbackRefused) as refused:
                await daemon.placer.place(task_id, bob, supervisor=True)
            await asyncio.sleep(1)
            assert invites(caller) == []
        assert refused.value.refusal is Refusal.DEVICE_UNREGISTERED
        assert observer.find("Newchannel", where=lambda e: e.get("Channel", "").startswith("PJSIP/8002")) == []
    assert attempts_of(db, task_id) == []
    assert task_of(db, task_id).state is CallbackState.DUE


async def test_two_presses_on_one_task_at_once_place_one_call(bed, daemon, db):
    task_id, _ = a_due_task(db, daemon.policy, new_phone())
    with bed.desk_phone("8001"), bed.desk_phone("8002"), bed.carrier("busy") as caller:
        await daemon.phone_ready("8001")
        await daemon.phone_ready("8002")
        results = await asyncio.gather(daemon.placer.place(task_id, user_id(db, "alice")),
                                       daemon.placer.place(task_id, user_id(db, "bob"), supervisor=True),
                                       return_exceptions=True)
        placed = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, CallbackRefused)]
        assert len(placed) == 1 and len(refused) == 1, results
        assert refused[0].refusal in (Refusal.ATTEMPT_LIVE, Refusal.HELD_BY_OTHER)
        await settled(db, task_id)
        await asyncio.sleep(1)
        assert len(invites(caller)) == 1
    assert len(attempts_of(db, task_id)) == 1


# ------------------------------------------------------------------------ the whole loop


def an_opening_after_today(policy: CallbackPolicy) -> datetime:
    """A moment inside the calling windows, tomorrow or later (the test never depends on the hour)."""
    tomorrow = (utcnow().astimezone(ZONE) + timedelta(days=1)).replace(hour=9, minute=30, second=0, microsecond=0)
    return next_opening(tomorrow, best_time=BestTime.ANY, not_before=None, calendar=policy.calendar,
                        windows=policy.windows)


async def test_a_case_filed_and_answered_on_the_builtin_board_is_called_back_and_informed(bed, daemon, db):
    """File a case through the API, the unit accepts and answers it on the builtin board, the
    answer makes one task, the operator calls through the API: SIPp's desk phone rings, then
    SIPp's caller; the attempt reads back answered with its recording, and the operator records
    ``informed`` with a grade."""
    from bridge.accounts.tokens import create_token
    from bridge.domain_events import DomainEvents
    from bridge.forum.builtin.forum import BuiltinForum
    from bridge.forum.outbox import OutboxWorker
    from bridge.forum.service import Deadlines
    from bridge.web.app import create_app
    from callbacks import api
    from callbacks.capability import answer_consumer

    opening = an_opening_after_today(daemon.policy)
    clock = lambda: opening + (utcnow() - daemon.clock.started)  # noqa: E731
    daemon.dialler.clock = clock
    with db.session() as session:
        alice = session.scalar(select(User).where(User.username == "alice"))
        alice_token = create_token(session, alice)
        unit = add_user(session, "fyr-ljq", Role.SPOKESPERSON, "a long enough password", department_code="CITY-LJQ")
        unit_token = create_token(session, unit)
    app = create_app(bed.config, db, daemon.runtime.health, runtime=daemon.runtime)
    placer = app.state.callback_placer   # the capability's, on the daemon's dialler
    assert placer is not None and placer.dialler is daemon.dialler
    placer.clock = clock
    app.dependency_overrides[api.clock] = lambda: clock
    operator = {"Authorization": f"Bearer {alice_token}"}
    unit_auth = {"Authorization": f"Bearer {unit_token}"}
    phone = new_phone()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as web:
        filed = await web.post("/api/v1/cases", headers=operator,
                               json={**case_form(), "department": "CITY-LJQ", "caller_phone": phone, "best_time": "any"})
        assert filed.status_code == 201, filed.text
        number = filed.json()["number"]
        worker = OutboxWorker(db, BuiltinForum(db, bed.config.web.public_url), backoff_s=bed.config.forum.retry_backoff_s,
                              deadlines=Deadlines.from_config(bed.config), live=daemon.live)
        assert (await worker.run_once()).sent == 1
        case = (await web.get(f"/api/v1/cases/{number}", headers=operator)).json()
        post = case["forum_url"].rsplit("/", 1)[1]
        assert (await web.post(f"/api/v1/board/posts/{post}/accept", headers=unit_auth)).status_code == 200
        answered = await web.post(f"/api/v1/board/posts/{post}/answer", headers=unit_auth,
                                  json={"text": "经核实，垃圾已清运，今后每日清理两次。"})
        assert answered.status_code == 200, answered.text
        # The daemon's domain events reach the callbacks capability's consumer: one task for the answer.
        events = DomainEvents(db, poll_s=3600)
        events.register(answer_consumer(daemon.policy, clock=clock))
        await events.start()
        await events.stop()
        listed = (await web.get("/api/v1/callbacks", params={"case": number}, headers=operator)).json()
        (task,) = listed["callbacks"]
        task_id = task["id"]
        with bed.desk_phone("8001") as desk, bed.carrier("answer") as caller:
            await daemon.phone_ready("8001")
            placed = await web.post(f"/api/v1/callbacks/{task_id}/attempts", headers=operator)
            assert placed.status_code == 201, placed.text
            await settled(db, task_id)
            attempt = (await web.get(f"/api/v1/callbacks/{task_id}", headers=operator)).json()["attempts"][0]
            assert (attempt["result"], attempt["operator"], attempt["dialler"]) == ("answered", "alice", "asterisk")
            assert len(invites(desk)) == 1 and len(invites(caller)) == 1
            assert invites(caller)[0].startswith(f"INVITE sip:{trunk_number(phone)}@")
            bed.cli("channel request hangup all")
            await asyncio.sleep(1)
        told = await web.post(f"/api/v1/callbacks/{task_id}/outcome", headers=operator,
                              json={"outcome": "informed", "satisfaction": 5, "note": "caller thanked the unit"})
        assert told.status_code == 200, told.text
        done = told.json()
        assert (done["state"], done["outcome"], done["satisfaction"]) == ("done", "informed", 5)
        assert done["attempts"][0]["recording"]   # the recording's URL in the API
    (row,) = attempts_of(db, task_id)
    assert row.recording and row.linkedid in row.recording and row.outcome is CallbackOutcome.INFORMED


# ------------------------------------------------------------- the link cut mid-Originate


class CuttingProxy:
    """Between the daemon and Asterisk's AMI: passes everything, except that the first
    connection is cut right after it carried an Originate to Asterisk (before the answer)."""

    def __init__(self, host: str, port: int):
        self.host, self.port, self.listen_port = host, port, 0
        self.cut = asyncio.Event()
        self._server = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.listen_port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()

    async def _serve(self, client_reader, client_writer):
        server_reader, server_writer = await asyncio.open_connection(self.host, self.port)
        self._writers += [client_writer, server_writer]
        cut_this = not self.cut.is_set()

        async def up():
            while chunk := await client_reader.read(65536):
                server_writer.write(chunk)
                await server_writer.drain()
                if cut_this and b"Action: Originate" in chunk:
                    self.cut.set()
                    client_writer.transport.abort()
                    server_writer.transport.abort()
                    return

        async def down():
            while chunk := await server_reader.read(65536):
                client_writer.write(chunk)
                await client_writer.drain()

        await asyncio.gather(up(), down(), return_exceptions=True)
        for writer in (client_writer, server_writer):
            writer.transport.abort()


async def test_the_link_cut_during_an_originate_rings_once_and_is_followed_after_the_reconnect(bed, db):
    two_operators(db)
    proxy = await CuttingProxy(bed.host, bed.ami_port).start()
    pbx = bed.config.pbx
    ami = pbx.ami.model_copy(update={"port": proxy.listen_port, "reconnect_min_s": 0.2, "reconnect_max_s": 0.5})
    running = Daemon(bed, db, config=bed.config.model_copy(update={"pbx": pbx.model_copy(update={"ami": ami})}))
    await running.start()
    task_id, _ = a_due_task(db, running.policy, new_phone())
    try:
        async with bed.ami_events() as observer:
            with bed.desk_phone("8001") as desk, bed.carrier("answer") as caller:
                await running.phone_ready("8001")
                placed = await running.placer.place(task_id, user_id(db, "alice"))   # sent: may ring
                assert proxy.cut.is_set()
                client = running.runtime.links["pbx"].ami
                await wait_until_async(lambda: client.is_up and client.connect_attempts > 1, timeout=10,
                                       what="the daemon's AMI link back up")
                await wait_until_async(lambda: invites(caller), timeout=15, what="the caller's phone to ring")
                await asyncio.sleep(2)   # long enough for a replayed Originate to show
                # Asterisk got one Originate: one operator leg, one INVITE each to the desk phone and the caller.
                legs = observer.find("Newchannel", where=lambda e: e.get("Channel", "").startswith("PJSIP/8001-"))
                assert len(legs) == 1 and len(invites(desk)) == 1 and len(invites(caller)) == 1
                # A second press places nothing while this call is on.
                with pytest.raises(CallbackRefused) as again:
                    await running.placer.place(task_id, user_id(db, "alice"))
                assert again.value.refusal in (Refusal.ATTEMPT_LIVE, Refusal.OUTCOME_PENDING, Refusal.DEVICE_BUSY)
                # The operator's channel's events carry the attempt key, so after the reconnect the
                # attempt is followed (the Dial's ANSWER, or the dialplan's status when the caller
                # hangs up) and settled from Asterisk's events, not guessed.
                (leg,) = observer.find("Newchannel", where=lambda e: e.get("Channel", "").startswith("PJSIP/carrier-"))
                bed.hangup(leg["Channel"])
                attempt = await settled(db, task_id)
                assert attempt.idempotency_key == placed.key
                assert (attempt.result, attempt.settled_by) == (CallbackAttemptResult.ANSWERED, "events")
                assert attempt.linkedid == leg["Linkedid"]
                bed.cli("channel request hangup all")
                await asyncio.sleep(1)
    finally:
        bed.stop_sipp()
        await running.stop()
        await proxy.close()
    assert len(attempts_of(db, task_id)) == 1
