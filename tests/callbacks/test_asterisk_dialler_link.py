"""The Asterisk dialler against the fake AMI server (tests/pbx/fake_ami.py): what it sends, what
it refuses, whether an Originate may have left when the link breaks, and that nothing is ever
sent twice; and how the capability wires it (the bare web app has no placer)."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from bridge.config import validate
from bridge.db.engine import Database
from bridge.db.models import CallbackAttempt, CallbackAttemptResult
from bridge.health import Health
from bridge.pbx.ami import AmiClient
from bridge.web.app import create_app
from callbacks import tasks
from callbacks.asterisk_dialler import AsteriskDialler, trunk_number
from callbacks.placing import CallOrder, DiallerError
from callbacks.tasks import CallbackPolicy, Refusal
from tests.callbacks.test_tasks import ANSWERED_AT, due_task, operator
from tests.forum.test_builtin_support import SECRETS
from tests.pbx.fake_ami import FakeAmi
from tests.waiting import wait_until_async

ORDER = CallOrder(key="cb-7-0123456789abcdef", task_id=7, attempt_id=3, phone="+8613912345678",
                  extension="8001", operator="alice", case_number="96811-2026-000042")


@pytest.fixture
async def server():
    fake = await FakeAmi().start()
    yield fake
    await fake.close()


@pytest.fixture
async def client(server):
    ami = AmiClient("127.0.0.1", server.port, server.username, server.secret, reconnect_min=0.05,
                    reconnect_max=0.1, action_timeout=1)
    await ami.start()
    assert await ami.wait_up(5)
    yield ami
    await ami.stop()


def policy() -> CallbackPolicy:
    return CallbackPolicy.of(validate({}, environ=SECRETS))


def dialler(ami: AmiClient | None, db: Database | None = None) -> AsteriskDialler:
    return AsteriskDialler(lambda: ami, db or Database("sqlite://"), policy())


def device_state(value: str):
    async def getvar(conn, action):
        return [{"Response": "Success", "Variable": action["Variable"], "Value": value}]
    return getvar


@pytest.mark.parametrize(("state", "refusal"), [
    ("NOT_INUSE", None), ("UNAVAILABLE", Refusal.DEVICE_UNREGISTERED), ("INVALID", Refusal.DEVICE_UNREGISTERED),
    ("INUSE", Refusal.DEVICE_BUSY), ("RINGING", Refusal.DEVICE_BUSY), ("ONHOLD", Refusal.DEVICE_BUSY),
    ("", Refusal.PBX_DOWN),   # no func_devstate on the PBX: it cannot tell, nothing is assumed
])
async def test_asterisk_is_asked_about_the_desk_phone(server, client, state, refusal):
    server.handlers["getvar"] = device_state(state)
    assert await dialler(client).ready_for("8001") is refusal
    (asked,) = server.actions("Getvar")
    assert asked["Variable"] == "DEVICE_STATE(PJSIP/8001)"


async def test_no_link_no_phone_or_an_odd_extension_is_refused_without_asking(server, client):
    assert await dialler(None).ready_for("8001") is Refusal.PBX_DOWN
    assert await dialler(client).ready_for(None) is Refusal.NO_EXTENSION
    assert await dialler(client).ready_for("8001)=x") is Refusal.NO_EXTENSION
    assert server.actions("Getvar") == []


async def test_the_originate_rings_the_desk_phone_into_the_callback_context(server, client):
    await dialler(client).originate(ORDER)
    (sent,) = server.actions("Originate")
    assert sent["ActionID"] == ORDER.key and sent["Async"] == "true"
    assert (sent["Channel"], sent["Context"], sent["Exten"], sent["Priority"]) == (
        "PJSIP/8001", "hotline-callback", "13912345678", "1")
    assert sent["Variable"] == f"HOTLINE_CALLBACK_ATTEMPT={ORDER.key}"
    assert sent["CallerID"] == '"96811-2026-000042" <13912345678>'


async def test_an_originate_refused_or_never_written_was_not_sent(server, client):
    async def refuse(conn, action):
        return [{"Response": "Error", "Message": "Extension does not exist."}]
    server.handlers["originate"] = refuse
    with pytest.raises(DiallerError) as refused:
        await dialler(client).originate(ORDER)
    assert refused.value.sent is False
    await client.stop()
    with pytest.raises(DiallerError) as down:
        await dialler(client).originate(ORDER)
    assert down.value.sent is False


async def test_a_link_lost_after_the_write_may_have_rung_and_is_never_sent_again(server, client):
    server.hold.add("originate")   # Asterisk got it and said nothing yet
    placing = asyncio.create_task(dialler(client).originate(ORDER))
    await wait_until_async(lambda: server.actions("Originate"), timeout=5, what="the Originate at the server")
    await server.drop_all()
    with pytest.raises(DiallerError) as lost:
        await placing
    assert lost.value.sent is True
    await server.wait_logins(2)    # the link is back ...
    await asyncio.sleep(0.3)
    assert len(server.actions("Originate")) == 1   # ... and nothing was replayed


def test_the_trunk_dials_national_digits():
    assert trunk_number("+8613912345678") == "13912345678"
    assert trunk_number("+865701234567") == "05701234567"



@pytest.mark.postgres
async def test_a_result_for_a_call_placed_before_a_restart_settles_it_by_its_linkedid(db):
    rules = policy()
    with db.session() as session:
        alice = operator(session, "alice")
        task = due_task(session, rules)
        attempt, _ = tasks.begin_attempt(session, task.id, alice, ANSWERED_AT, rules, dialler="asterisk")
        attempt.linkedid, key = "1796297525.2", attempt.idempotency_key
    fresh = AsteriskDialler(lambda: None, db, rules, clock=lambda: ANSWERED_AT)   # knows no call
    for event in ({"Event": "VarSet", "Linkedid": "1796297525.2", "Variable": "HOTLINE_CALLBACK_CAUSE", "Value": "17"},
                  {"Event": "VarSet", "Linkedid": "1796297525.2", "Variable": "HOTLINE_CALLBACK_STATUS", "Value": "BUSY"}):
        handled = fresh.on_event(event)
        if handled is not None:
            await handled
    with db.session(readonly=True) as session:
        row = session.scalar(select(CallbackAttempt).where(CallbackAttempt.idempotency_key == key))
        assert (row.result, row.settled_by) == (CallbackAttemptResult.BUSY, "events")


async def test_unrelated_events_cost_no_coroutine():
    ears = dialler(None)
    for event in ({"Event": "Newchannel", "Linkedid": "1.1"}, {"Event": "DialEnd", "Linkedid": "1.1", "Channel": "x"},
                  {"Event": "VarSet", "Linkedid": "1.1", "Variable": "HOTLINE_RECORDING", "Value": "/r.wav"},
                  {"Event": "OriginateResponse", "ActionID": "hb-1", "Response": "Failure"}):
        assert ears.on_event(event) is None


def test_the_bare_web_app_has_no_placer_and_the_daemon_wires_one(tmp_path):
    config = validate({"database": {"url": f"sqlite:///{tmp_path}/d.sqlite3"}}, environ=SECRETS)
    app = create_app(config, Database("sqlite://"), Health())
    assert app.state.callback_placer is None   # no daemon, no PBX link: no call can be placed
    from bridge.daemon import Daemon

    daemon = Daemon(config)
    daemon._build_links()
    app = create_app(config, daemon.db, daemon.health, runtime=daemon.runtime)
    placer = app.state.callback_placer
    assert placer is not None and placer.dialler.name == "asterisk"
    assert placer.dialler.on_event in daemon.links["pbx"].ami._listeners
    assert placer.dialler._client() is None   # the link is not up: ready_for says pbx_down


@pytest.mark.postgres
async def test_a_call_first_seen_mid_call_is_followed_by_the_key_its_channel_carries(db):
    rules = policy()
    with db.session() as session:
        alice = operator(session, "alice")
        task = due_task(session, rules)
        attempt, _ = tasks.begin_attempt(session, task.id, alice, ANSWERED_AT, rules, dialler="asterisk")
        key = attempt.idempotency_key
    fresh = AsteriskDialler(lambda: None, db, rules, clock=lambda: ANSWERED_AT)   # e.g. after a reconnect
    carried = f"HOTLINE_CALLBACK_ATTEMPT={key}"
    hangup = {"Event": "Hangup", "Channel": "PJSIP/8001-00000004", "Uniqueid": "17.4", "Linkedid": "17.4",
              "ChanVariable": carried, "Cause": "16"}
    assert fresh.on_event({**hangup, "ChanVariable": "HOTLINE_CALLBACK_ATTEMPT="}) is None   # other channels
    await fresh.on_event({"Event": "DialEnd", "Channel": "PJSIP/8001-00000004", "Uniqueid": "17.4", "Linkedid": "17.4",
                          "DestChannel": "PJSIP/carrier-00000005", "DialStatus": "ANSWER", "ChanVariable": carried})
    await fresh.on_event(hangup)            # over: the answered call's end is noted, then it is forgotten
    assert fresh.on_event(hangup) is None   # and never adopted again
    with db.session(readonly=True) as session:
        row = session.scalar(select(CallbackAttempt).where(CallbackAttempt.idempotency_key == key))
        assert (row.result, row.settled_by, row.linkedid) == (CallbackAttemptResult.ANSWERED, "events", "17.4")
