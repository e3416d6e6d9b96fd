"""Queue presence against a real Asterisk 22 and SIPp desk phones: the queue's members are the
operators signed in at the desk, paused when they pause; an Asterisk restart keeps them."""
from __future__ import annotations

import asyncio
import contextlib

import pytest

from bridge.accounts.service import add_user
from bridge.db.models import Role, utcnow
from bridge.health import Health
from bridge.live import LiveEvents
from bridge.pbx.service import PbxService
from bridge.presence import service
from bridge.presence.link import PresenceLink
from tests.waiting import wait_until_async

pytestmark = [pytest.mark.asterisk, pytest.mark.timeout(240)]


def members(asterisk) -> str:
    return asterisk.cli(f"queue show {asterisk.config.pbx.queue}")


@contextlib.asynccontextmanager
async def daemon_parts(asterisk, db):
    """The daemon's PBX link with the presence link on it, as bridge/daemon.py wires them."""
    live = LiveEvents()
    holder: dict = {}
    pbx = PbxService(asterisk.config, db, Health(["pbx"]), live,
                     listeners=[lambda event: holder["link"].on_ami_event(event)])
    link = holder["link"] = PresenceLink(db, asterisk.config, live, pbx, sweep_s=1.0)
    with asterisk.membership_by_daemon():
        await link.start()
        await pbx.start()
        try:
            assert await pbx.ami.wait_up(20)
            yield link, pbx
        finally:
            await pbx.stop()
            await link.stop()


@pytest.fixture
def alice_at_8001(db):
    with db.session() as session:
        alice = add_user(session, "alice", Role.OPERATOR, "a long enough password", display_name="王芳")
        add_user(session, "bob", Role.OPERATOR, "a long enough password", display_name="李军")
        return service.open_session(session, alice, "8001", utcnow()).token


async def offered_to(asterisk, ami, linkedid: str) -> set[str]:
    connect = await ami.wait_for("AgentConnect", Linkedid=linkedid, timeout=20)
    return {e["Interface"] for e in ami.find("AgentCalled", Linkedid=linkedid)} | {connect["Interface"]}


async def test_only_the_signed_in_operator_is_offered_calls_and_a_pause_stops_them(
        asterisk, sipp_cleanup, db, alice_at_8001):
    async with daemon_parts(asterisk, db) as (link, pbx):
        await wait_until_async(lambda: "PJSIP/8001" in members(asterisk), timeout=10, what="8001 added")
        listed = members(asterisk)
        assert "王芳" in listed and "PJSIP/8002" not in listed
        with asterisk.desk_phone("8001"), asterisk.desk_phone("8002") as phone_8002:
            async with asterisk.ami_events() as ami:
                call = asterisk.place_calls(1, caller_number="13800002222", digits="1", hold_ms=1500)
                join = await ami.wait_for("QueueCallerJoin", timeout=20)
                assert await offered_to(asterisk, ami, join["Linkedid"]) == {"PJSIP/8001"}
                assert await asyncio.to_thread(call.wait, 60) == 0, call.report()
            assert phone_8002.received("INVITE") == []

            # Paused (break): the caller waits, no phone rings; resumed: 8001 rings.
            with db.session() as session:
                service.pause(session, alice_at_8001, "break", utcnow())
            link.request()
            await wait_until_async(lambda: "paused:break" in members(asterisk).replace(" ", ""), timeout=10,
                                   what="8001 paused with its reason")
            async with asterisk.ami_events() as ami:
                call = asterisk.place_calls(1, caller_number="13800003333", digits="1", hold_ms=12000)
                join = await ami.wait_for("QueueCallerJoin", timeout=20)
                await asyncio.sleep(4)   # more than a member's ring time: nothing may be offered meanwhile
                assert ami.find("AgentCalled", Linkedid=join["Linkedid"]) == []
                await wait_until_async(lambda: len(link.board.waiting()) == 1, timeout=5,
                                       what="the waiting caller on the board")
                with db.session() as session:
                    service.resume(session, alice_at_8001, utcnow())
                link.request()
                assert await offered_to(asterisk, ami, join["Linkedid"]) == {"PJSIP/8001"}
                assert await asyncio.to_thread(call.wait, 60) == 0, call.report()
            assert phone_8002.received("INVITE") == []


async def test_an_asterisk_restart_keeps_the_membership(asterisk, sipp_cleanup, db, alice_at_8001):
    async with daemon_parts(asterisk, db) as (link, pbx):
        await wait_until_async(lambda: "PJSIP/8001" in members(asterisk), timeout=10, what="8001 added")
        await asyncio.to_thread(asterisk.sandbox.stop)
        await wait_until_async(lambda: not pbx.ami.is_up, timeout=10, what="the link to drop")
        try:
            await asyncio.to_thread(asterisk.sandbox.start)
        finally:
            asterisk.open_now()
        assert await pbx.ami.wait_up(30)
        await wait_until_async(lambda: "PJSIP/8001" in members(asterisk), timeout=15,
                               what="8001 added again after the restart")
        assert "王芳" in members(asterisk) and "PJSIP/8002" not in members(asterisk)
        # Signed out: removed.
        with db.session() as session:
            service.end_session(session, alice_at_8001, utcnow())
        link.request()
        await wait_until_async(lambda: "PJSIP/8001" not in members(asterisk), timeout=10, what="8001 removed")
