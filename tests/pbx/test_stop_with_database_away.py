"""SIGTERM with the database away: the PBX link stops within a bound (well within the systemd
unit's TimeoutStopSec), logs the calls it could not store, and the next start, with the
database back, recovers exactly those from Asterisk's CEL.

The daemon's PBX link (``PbxService``) runs for real against a local AMI server
(tests/pbx/fake_ami.py) that plays the test bed's recorded AMI events; the CEL/CDR files
hold the rows the same Asterisk wrote for those calls (tests/pbx/recorded).  "Away" is a
PostgreSQL URL on a loopback port where nothing listens: every write is refused at once.
The last test does the same against the real Asterisk test bed with a SIPp call.
"""
from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest
import structlog
from sqlalchemy import select

from bridge.config import validate
from bridge.db.engine import Database
from bridge.db.models import Call
from bridge.health import Health
from bridge.live import LiveEvents
from bridge.pbx.service import STOP_FLUSH_S, PbxService
from tests import sipp
from tests.pbx.fake_ami import FakeAmi
from tests.pbx.recorded_tables import ami_events, live_calls, soon_after, sqlite_tables

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = ("answered", "abandoned", "chinese_name")
SECRETS = {"HOTLINE_BRIDGE_AMI_SECRET": "s3cret", "HOTLINE_BRIDGE_SESSION_SECRET": "y"}


def unit_timeout_stop_s() -> float:
    unit = (REPO / "systemd" / "hotline-bridge.service").read_text(encoding="utf-8")
    return float(re.search(r"^TimeoutStopSec=(\d+)\s*$", unit, re.M).group(1))


def test_the_stop_bound_is_well_within_the_units_timeout_stop_sec():
    # The rest of the daemon (web server, forum link, scheduler) stops in the same window.
    assert STOP_FLUSH_S <= unit_timeout_stop_s() / 3


def pbx_config(ami_port: int, cdr_path: Path):
    return validate({"sandbox": {"enabled": False},
                     "pbx": {"ami": {"port": ami_port, "reconnect_min_s": 0.1, "reconnect_max_s": 0.5},
                             "agi_port": sipp.free_port("127.0.0.1"), "cdr_path": str(cdr_path)}},
                    environ=SECRETS)


async def until(predicate, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def stop_with_the_database_away(service) -> dict:
    """Stop ``service`` (stop_flush_s=1): bounded, and the one log line naming the unsaved calls."""
    with structlog.testing.capture_logs() as logs:
        started = time.monotonic()
        await asyncio.wait_for(service.stop(), 15)
        took = time.monotonic() - started
    assert took < 1.0 + 1.5, f"stop took {took:.1f} s"
    (unsaved,) = [e for e in logs if e["event"] == "calllog.unsaved_at_stop"]
    return unsaved


@pytest.fixture
async def ami():
    server = await FakeAmi(secret=SECRETS["HOTLINE_BRIDGE_AMI_SECRET"]).start()
    yield server
    await server.close()


async def test_stop_with_the_database_away_is_bounded_names_the_lost_calls_and_they_are_recovered(
        ami, db, tmp_path):
    cdr_path = sqlite_tables(tmp_path, *SCENARIOS)     # what Asterisk wrote for these calls
    config = pbx_config(ami.port, cdr_path)
    now = soon_after(*SCENARIOS)
    away = Database(f"postgresql+psycopg://postgres@127.0.0.1:{sipp.free_port('127.0.0.1')}/test"
                    "?connect_timeout=2")
    service = PbxService(config, away, Health(), LiveEvents(), clock=lambda: now,
                         write_coalesce_s=0.05, stop_flush_s=1.0)
    await service.start()
    try:
        assert await service.ami.wait_up(5)
        for event in ami_events(*SCENARIOS):
            await ami.send_event(event)
        expected = set(live_calls(*SCENARIOS))
        await until(lambda: not service.tracker.open_calls() and service._storing)
    finally:
        unsaved = await stop_with_the_database_away(service)
        away.dispose()
    assert unsaved["log_level"] == "error"
    assert set(unsaved["linkedids"]) == expected and unsaved["calls"] == len(expected)

    # The next start, the database back: the calls come from Asterisk's CEL, once each.
    service = PbxService(pbx_config(ami.port, cdr_path), db, Health(), LiveEvents(), clock=lambda: now)
    await service.start()
    try:
        assert await service.ami.wait_up(5)
        await until(lambda: service._recovering is not None)
        assert await asyncio.wait_for(service._recovering, 10) == len(expected)
    finally:
        await service.stop()
    with db.session(readonly=True) as session:
        rows = session.scalars(select(Call)).all()
        session.expunge_all()
    live = live_calls(*SCENARIOS)
    assert sorted(r.linkedid for r in rows) == sorted(expected)
    assert all(r.source == "recovered" and r.ended_at is not None for r in rows)
    assert {r.linkedid: r.disposition.value for r in rows} == {k: v.disposition for k, v in live.items()}
    assert {r.linkedid: r.caller_name for r in rows} == {k: v.caller_name for k, v in live.items()}


async def test_a_stop_with_the_database_up_still_stores_everything(ami, db, tmp_path):
    config = pbx_config(ami.port, sqlite_tables(tmp_path, *SCENARIOS))
    service = PbxService(config, db, Health(), LiveEvents(), clock=lambda: soon_after(*SCENARIOS),
                         write_coalesce_s=0.5)
    service.recovery = None                        # only the live path
    await service.start()
    assert await service.ami.wait_up(5)
    for event in ami_events(*SCENARIOS):
        await ami.send_event(event)
    await until(lambda: not service.tracker.open_calls() and service._writes.qsize() + len(service._storing) > 0)
    with structlog.testing.capture_logs() as logs:
        await service.stop()
    assert not [e for e in logs if e["event"] == "calllog.unsaved_at_stop"]
    with db.session(readonly=True) as session:
        rows = session.scalars(select(Call)).all()
        session.expunge_all()
    assert sorted(r.linkedid for r in rows) == sorted(live_calls(*SCENARIOS))
    assert all(r.source == "live" for r in rows)


@pytest.mark.asterisk
@pytest.mark.timeout(180)
async def test_on_the_real_asterisk_a_call_lost_at_a_stop_with_the_database_away_is_recovered(
        asterisk, sipp_cleanup, tmp_path):
    from bridge.db import migrate
    from bridge.db.models import CallDisposition
    from tests.pbx.test_calllog_asterisk import Bridge, finished, new_caller

    caller = new_caller()
    away = Database(f"postgresql+psycopg://postgres@127.0.0.1:{sipp.free_port('127.0.0.1')}/test"
                    "?connect_timeout=2")
    service = PbxService(asterisk.config, away, Health(), LiveEvents(), stop_flush_s=1.0)
    await service.start()
    try:
        assert await service.ami.wait_up(20)
        async with service.live.subscribe() as popped:
            with asterisk.desk_phone("8001"):
                await finished(asterisk.place_calls(1, caller_number=caller, caller_name="韩先生", digits="1",
                                                    hold_ms=2500))
            ended = None
            while ended is None:
                event = await asyncio.wait_for(popped.get(), 20)
                if event.kind == "ended" and event.data["caller_number"] == caller:
                    ended = event.data["linkedid"]
    finally:
        unsaved = await stop_with_the_database_away(service)
        away.dispose()
    assert ended in unsaved["linkedids"]

    url = f"sqlite:///{tmp_path / 'back.sqlite3'}"
    migrate.upgrade(url)
    db = Database(url)
    bridge = Bridge(asterisk, db)
    try:
        await bridge.start()
        (call,) = await bridge.wait_calls([caller], count=1)
    finally:
        await bridge.stop()
        db.dispose()
    assert call.linkedid == ended and call.source == "recovered"
    assert call.disposition == CallDisposition.ANSWERED and call.extension == "8001"
