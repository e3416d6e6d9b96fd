"""The daemon's call log against the real Asterisk test bed: SIPp calls in, rows out.

Each test runs the daemon's PBX link (``PbxService``: AMI client, tracker, call log
writer, FastAGI status line) in this process against the session's Asterisk, on a
fresh SQLite database.  Calls are told apart by caller number, since the test bed
(and its CDR file, which recovery reads) is shared by the whole session.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from bridge.accounts.service import add_user
from bridge.config import validate
from bridge.cases.service import file_case
from bridge.db import migrate
from bridge.db.engine import Database
from bridge.db.models import Call, CallDisposition, Role
from bridge.departments.service import ensure_shipped_units
from bridge.health import Health
from bridge.live import LiveEvents
from bridge.pbx.service import PbxService
from tests.asterisk_testbed import AMI_SECRET_ENV
from tests.waiting import wait_until_async

pytestmark = [pytest.mark.asterisk, pytest.mark.timeout(180)]

_numbers = itertools.count(1)


def new_caller() -> str:
    """A caller number no other test of this session uses."""
    return f"139{os.getpid() % 10000:04d}{next(_numbers):04d}"


class Bridge:
    """The PBX side of the daemon, started and stopped at will, on one database."""

    def __init__(self, asterisk, db: Database, config=None):
        self.asterisk, self.db = asterisk, db
        self.config = config or asterisk.config
        self.health = Health()
        self.live = LiveEvents()
        self.service: PbxService | None = None

    async def start(self, *, wait_up: bool = True) -> PbxService:
        self.service = PbxService(self.config, self.db, self.health, self.live)
        await self.service.start()
        if wait_up:
            assert await self.service.ami.wait_up(20), self.health.snapshot()
        return self.service

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()
            self.service = None

    def calls(self, *numbers: str) -> list[Call]:
        with self.db.session(readonly=True) as session:
            query = select(Call).order_by(Call.id)
            if numbers:
                query = query.where(Call.caller_number.in_(numbers))
            rows = session.scalars(query).all()
            session.expunge_all()
            return list(rows)

    async def wait_calls(self, numbers, *, count: int, ended: bool = True, timeout: float = 40) -> list[Call]:
        deadline = time.monotonic() + timeout
        while True:
            rows = self.calls(*numbers)
            done = [r for r in rows if r.ended_at is not None] if ended else rows
            if len(done) >= count or time.monotonic() > deadline:
                return rows
            await asyncio.sleep(0.2)


@pytest.fixture
async def bridge(asterisk, tmp_path, sipp_cleanup):
    url = f"sqlite:///{tmp_path / 'bridge.sqlite3'}"
    migrate.upgrade(url)
    db = Database(url)
    with db.session() as session:
        ensure_shipped_units(session)
        add_user(session, "zhuli", Role.OPERATOR, "a long enough password", extension="8001")
    bridge = Bridge(asterisk, db)
    await bridge.start()
    try:
        yield bridge
    finally:
        await bridge.stop()
        db.dispose()


async def finished(run, timeout: float = 90) -> None:
    status = await asyncio.to_thread(run.wait, timeout)
    assert status == 0, run.report()


def host_file(asterisk, chroot_path: str) -> Path:
    return asterisk.sandbox.root / chroot_path.lstrip("/")


async def test_answered_call_is_logged_with_operator_recording_and_chinese_name(asterisk, bridge):
    caller = new_caller()
    popped = []
    async with bridge.live.subscribe() as events:
        with asterisk.desk_phone("8001"):
            await finished(asterisk.place_calls(1, caller_number=caller, caller_name="朱丽华",
                                                digits="1", hold_ms=3000))
        while not events.empty():
            popped.append(events.get_nowait())
    (call,) = await bridge.wait_calls([caller], count=1)
    assert call.disposition == CallDisposition.ANSWERED
    assert call.caller_name == "朱丽华"
    assert call.dialled_number == "96811"
    assert call.extension == "8001"
    assert call.operator_id is not None  # linked to the operator at extension 8001
    assert call.answered_at is not None and call.answered_at >= call.arrived_at
    assert call.queue_wait_s is not None and call.queue_wait_s >= 0
    assert call.talk_s is not None and call.talk_s > 1
    assert call.ended_at >= call.answered_at
    assert call.hangup_cause == 16
    assert call.recording and call.linkedid in call.recording
    assert host_file(asterisk, call.recording).is_file()
    # The desk hears about it live: ringing and connected at extension 8001.
    kinds = [(e.kind, e.data["extension"]) for e in popped if e.data["linkedid"] == call.linkedid]
    assert ("ringing", "8001") in kinds and ("connected", "8001") in kinds
    assert kinds[-1][0] == "ended"


async def test_caller_hanging_up_in_the_queue_is_abandoned(asterisk, bridge):
    caller = new_caller()
    with asterisk.desk_phone("8001", "noanswer"), asterisk.desk_phone("8002", "noanswer"):
        await finished(asterisk.place_calls(1, caller_number=caller, caller_name="钱先生",
                                            digits="1", hold_ms=4000))
    (call,) = await bridge.wait_calls([caller], count=1)
    assert call.disposition == CallDisposition.ABANDONED
    assert call.answered_at is None and call.extension is None
    assert call.queue_wait_s is not None and 2 <= call.queue_wait_s <= 15
    assert call.talk_s is None


async def test_after_hours_message_is_logged_with_its_file(office_closed, bridge):
    asterisk = office_closed
    caller = new_caller()
    await finished(asterisk.place_calls(1, caller_number=caller, caller_name="孙女士", hold_ms=5000))
    (call,) = await bridge.wait_calls([caller], count=1)
    assert call.disposition == CallDisposition.AFTER_HOURS_MESSAGE
    assert call.message_file and call.linkedid in call.message_file
    assert host_file(asterisk, call.message_file).is_file()


def file_test_case(asterisk, db, phone: str) -> str:
    with db.session() as session:
        case = file_case(session, {
            "caller_surname": "李", "caller_honorific": "先生", "caller_full_name": "李建国",
            "caller_phone": phone, "department": "CITY-ZHZFJ", "location": "柯城区荷花街道",
            "title": "楼道里的公鸡凌晨打鸣", "description": "居民楼里有人养公鸡，每天凌晨四五点打鸣，影响休息。",
            "callback_wanted": True, "sms_consent": False, "best_time": "morning",
        }, user=None, now=datetime.now(timezone.utc), zone=asterisk.config.site.zone)
        return case.number


async def test_status_line_by_case_number(asterisk, bridge):
    number = file_test_case(asterisk, bridge.db, new_caller())
    caller = new_caller()  # someone else, keying the number
    keyed = number.split("-", 1)[1].replace("-", "")  # 96811-2026-000001 -> 2026000001
    async with asterisk.ami_events() as ami:
        run = asterisk.place_calls(1, caller_number=caller, caller_name="李先生", digits=f"2{keyed}#",
                                   hold_ms=9000)
        case = await ami.wait_for("VarSet", Variable="HOTLINE_CASE_NUMBER", timeout=40)
        status = ami.varset("HOTLINE_CASE_STATUS", Linkedid=case["Linkedid"])
        await finished(run)
    assert case["Value"] == number
    assert status == ["not_found", "filed"]  # no open case of its own, then the keyed one
    (call,) = await bridge.wait_calls([caller], count=1)
    assert call.disposition == CallDisposition.STATUS_LINE


async def test_status_line_offers_the_callers_only_open_case(asterisk, bridge):
    caller = new_caller()
    number = file_test_case(asterisk, bridge.db, caller)
    async with asterisk.ami_events() as ami:
        run = asterisk.place_calls(1, caller_number=caller, caller_name="李先生", digits="2", hold_ms=9000)
        case = await ami.wait_for("VarSet", Variable="HOTLINE_CASE_NUMBER", timeout=40)
        status = ami.varset("HOTLINE_CASE_STATUS", Linkedid=case["Linkedid"])
        await finished(run)
    assert case["Value"] == number
    assert status == ["filed"]
    spoken = asterisk.full_log.read_text(encoding="utf-8", errors="replace")
    assert "sounds/case-offered" in spoken and "sounds/status-filed" in spoken


async def test_fifty_concurrent_calls_give_fifty_rows(asterisk, bridge):
    callers = [new_caller() for _ in range(50)]
    assert len(set(callers)) == 50
    with asterisk.desk_phone("8001"), asterisk.desk_phone("8002"):
        await finished(asterisk.place_calls(50, rate=50, caller_number=callers,
                                            caller_name=[f"来电{i}" for i in range(50)],
                                            digits="1", hold_ms=3000), timeout=150)
    rows = await bridge.wait_calls(callers, count=50, timeout=60)
    assert len(rows) == 50
    assert len({r.linkedid for r in rows}) == 50
    assert all(r.ended_at is not None for r in rows)
    assert {r.caller_name for r in rows} == {f"来电{i}" for i in range(50)}


async def test_ami_link_cut_mid_call_logs_the_call_once(asterisk, bridge):
    caller = new_caller()
    with asterisk.desk_phone("8001"):
        run = asterisk.place_calls(1, caller_number=caller, caller_name="周女士", digits="1", hold_ms=8000)
        rows = []
        deadline = time.monotonic() + 30
        while not (rows and rows[0].answered_at) and time.monotonic() < deadline:
            rows = bridge.calls(caller)
            await asyncio.sleep(0.2)
        assert rows and rows[0].answered_at, "the call was not answered"
        bridge.service.ami._writer.transport.abort()  # the link drops mid-call
        await wait_until_async(lambda: not bridge.service.ami.is_up, timeout=5, what="the link to notice the drop")
        assert await bridge.service.ami.wait_up(20)
        await finished(run)
    rows = await bridge.wait_calls([caller], count=1)
    assert len(rows) == 1
    (call,) = rows
    assert call.ended_at is not None
    assert call.disposition == CallDisposition.ANSWERED
    assert call.extension == "8001"


async def test_asterisk_restart_mid_call_logs_the_call_once_and_logging_goes_on(asterisk, bridge):
    first, second = new_caller(), new_caller()
    with asterisk.desk_phone("8001"):
        run = asterisk.place_calls(1, caller_number=first, caller_name="吴先生", digits="1", hold_ms=20000)
        deadline = time.monotonic() + 30
        while not any(r.answered_at for r in bridge.calls(first)) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        asterisk.sandbox.stop()
        asterisk.sandbox.start()
        asterisk.open_now()
        await asyncio.to_thread(run.wait, 60)  # the PBX went away under this call: no success expected
        assert await bridge.service.ami.wait_up(30), bridge.health.snapshot()
        await finished(asterisk.place_calls(1, caller_number=second, caller_name="郑女士", digits="1",
                                            hold_ms=2000))
    rows = await bridge.wait_calls([first, second], count=2)
    assert sorted(r.caller_number for r in rows) == sorted([first, second])
    assert all(r.ended_at is not None for r in rows)
    assert [r.disposition for r in rows if r.caller_number == first] == [CallDisposition.ANSWERED]


async def test_calls_made_while_the_daemon_is_down_are_recovered_once(asterisk, bridge):
    callers = [new_caller() for _ in range(3)]
    await bridge.stop()
    with asterisk.desk_phone("8001"):
        await finished(asterisk.place_calls(1, caller_number=callers[0], caller_name="冯先生", digits="1",
                                            hold_ms=2500))
    with asterisk.desk_phone("8001", "noanswer"), asterisk.desk_phone("8002", "noanswer"):
        await finished(asterisk.place_calls(1, caller_number=callers[1], caller_name="陈女士", digits="1",
                                            hold_ms=4000))
    await finished(asterisk.place_calls(1, caller_number=callers[2], caller_name="褚先生", hold_ms=1000))
    assert bridge.calls(*callers) == []
    await bridge.start()
    rows = await bridge.wait_calls(callers, count=3)
    by_caller = {r.caller_number: r for r in rows}
    assert len(rows) == 3 and set(by_caller) == set(callers)
    assert all(r.source == "recovered" for r in rows)
    assert by_caller[callers[0]].disposition == CallDisposition.ANSWERED
    assert by_caller[callers[0]].extension == "8001"
    assert by_caller[callers[1]].disposition == CallDisposition.ABANDONED
    assert by_caller[callers[0]].caller_name == "冯先生"
    # A second restart recovers the same calls again: still one row each.
    await bridge.stop()
    await bridge.start()
    await asyncio.sleep(1)
    assert len(bridge.calls(*callers)) == 3


async def test_wrong_ami_password_is_reported_and_backed_off(asterisk, tmp_path):
    url = f"sqlite:///{tmp_path / 'wrong.sqlite3'}"
    migrate.upgrade(url)
    db = Database(url)
    data = asterisk.config.model_dump()
    data["pbx"]["ami"].update(reconnect_min_s=0.5, reconnect_max_s=2.0)
    config = validate(data, base_dir=asterisk.config.base_dir,
                      environ={AMI_SECRET_ENV: "not-the-secret", "HOTLINE_BRIDGE_SESSION_SECRET": "s"})
    bridge = Bridge(asterisk, db, config)
    await bridge.start(wait_up=False)
    try:
        await asyncio.sleep(4)
        state = bridge.health.get("pbx")
        assert state.startswith("down: ") and "authentication failed" in state, state
        # Back-off: 0.5 s doubling to 2 s (with jitter) allows at most 4 tries in 4 s, not one every few ms.
        assert 1 <= bridge.service.ami.connect_attempts <= 4, bridge.service.ami.connect_attempts
    finally:
        await bridge.stop()
        db.dispose()
