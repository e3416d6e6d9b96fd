"""The SMS fallback through the fake Twilio (the real ``twilio`` client, every request held to
Twilio's published API), on SQLite and PostgreSQL: sent once per task even when the sender runs
twice or restarts, never resent after a crash mid-send, do-not-call respected; Twilio's signed
status callbacks update the row, a forged one is refused (403) and stores nothing."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bridge.config import validate
from bridge.db.engine import Database
from bridge.db.models import CallbackMessage, CallbackState, CallbackTask
from bridge.health import Health
from bridge.web.app import create_app
from callbacks import sms, tasks
from callbacks.engine import CallbacksEngine
from callbacks.sms import SmsSender, sms_text
from callbacks.tasks import CallbackPolicy
from callbacks.twilio_gateway import TwilioAccount, TwilioGateway
from callbacks.twilio_status import STATUS_PATH
from tests.callbacks import twilio_server
from tests.callbacks.test_tasks import a_case, an_answer
from tests.callbacks.twilio_server import ACCOUNT_SID, AUTH_TOKEN, twilio_signature
from tests.forum.test_builtin_support import SECRETS

fake_twilio = twilio_server.fake_twilio  # the fixture, offered to this module's tests

pytestmark = pytest.mark.postgres

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 3, 19, 0, tzinfo=ZONE)
PUBLIC_URL = "https://hotline.example.org"
HOTLINE_FROM = "+8657096811"
CALLER = "+8613912345678"  # the case form's 139 1234 5678


@pytest.fixture
def policy(db_url):
    return CallbackPolicy.of(validate({"database": {"url": db_url}}, environ=SECRETS))


def given_up(db, policy, *, sms_consent: bool = True, **form) -> tuple[int, str]:
    """A task whose attempts ran out (its SMS recorded when the caller consented): (id, case number)."""
    with db.session() as session:
        case = a_case(session, None, best_time="any", sms_consent=sms_consent, **form)
        task = tasks.create_for_answer(session, an_answer(session, case, NOW), policy, NOW)
        tasks.give_up(session, task, NOW, why="max_attempts")
        return task.id, case.number


def sender_on(db, fake, **kwargs) -> SmsSender:
    gateway = TwilioGateway(TwilioAccount(ACCOUNT_SID, AUTH_TOKEN, HOTLINE_FROM, fake.base_url))
    return SmsSender(db, gateway, site="96811 热线", hotline="96811", status_callback=PUBLIC_URL + STATUS_PATH,
                     clock=lambda: NOW, **kwargs)


def message_of(db, task_id: int) -> CallbackMessage:
    with db.session() as session:  # committed, so the row keeps what it read (expire_on_commit off)
        return session.query(CallbackMessage).filter_by(task_id=task_id).one()


@pytest.fixture
async def sender(db, fake_twilio):
    sender = sender_on(db, fake_twilio)
    yield sender
    await sender.close()


def test_the_text_names_the_case_and_the_keys_to_hear_the_answer():
    text = sms_text("zh_CN", site="96811 热线", case_number="96811-2026-000123", hotline="96811")
    assert text == ("96811 热线：您的案件 96811-2026-000123 已有答复，我们未能通过电话联系到您。"
                    "收听答复请拨打 96811，按 2 键，再输入 2026000123 并按 # 键。")
    english = sms_text("en", site="Hotline", case_number="96811-2025-000007", hotline="96811")
    assert "96811-2025-000007" in english and "press 2" in english and "2025000007" in english


async def test_the_sms_goes_once_with_the_case_number(db, policy, fake_twilio, sender):
    task_id, number = given_up(db, policy)
    assert message_of(db, task_id).status == "recorded"
    assert await sender.send_pending() == 1
    (sent,) = fake_twilio.messages
    assert (sent.form["To"], sent.form["From"]) == (CALLER, HOTLINE_FROM)
    assert number in sent.form["Body"] and "2026" + number[-6:] in sent.form["Body"]
    message = message_of(db, task_id)
    assert sent.status_callback == f"{PUBLIC_URL}{STATUS_PATH}?ref=sms-{message.id}"  # names the row
    assert (message.status, message.remote_id, message.body) == ("sent", sent.sid, sent.form["Body"])
    assert message.sent_at == NOW
    with db.session(readonly=True) as session:
        assert session.get(CallbackTask, task_id).state is CallbackState.UNREACHABLE

    assert await sender.send_pending() == 0  # the sender runs again
    restarted = sender_on(db, fake_twilio)  # the daemon restarts
    try:
        assert await restarted.recover() == 0
        assert await restarted.send_pending() == 0
    finally:
        await restarted.close()
    assert len(fake_twilio.messages) == 1


async def test_two_senders_at_once_send_one_message(db, db_url, policy, fake_twilio, sender):
    task_id, _ = given_up(db, policy)
    other_db = Database(db_url)  # another daemon on the same database
    other = sender_on(other_db, fake_twilio)
    try:
        results = await asyncio.gather(sender.send_pending(), other.send_pending())
    finally:
        await other.close()
        other_db.dispose()
    assert sorted(results) == [0, 1]
    assert len(fake_twilio.messages) == 1 and message_of(db, task_id).status == "sent"


async def test_a_crash_mid_send_leaves_the_message_to_a_person_and_never_resends(db, policy, fake_twilio, sender):
    task_id, _ = given_up(db, policy)
    fake_twilio.delay_s = 2.0
    sending = asyncio.create_task(sender.send_pending())
    await until(lambda: fake_twilio.requests)  # the request reached Twilio ...
    sending.cancel()  # ... and the daemon dies before the answer
    with pytest.raises(asyncio.CancelledError):
        await sending
    assert message_of(db, task_id).status == "sending"  # claimed and committed before it left

    fake_twilio.delay_s = 0.0
    restarted = sender_on(db, fake_twilio)
    try:
        assert await restarted.recover() == 1
        assert await restarted.send_pending() == 0
    finally:
        await restarted.close()
    message = message_of(db, task_id)
    assert message.status == "unknown" and "check" in message.error
    assert len(fake_twilio.requests) == 1


async def test_twilio_answering_5xx_may_have_sent_it_so_it_is_not_resent(db, policy, fake_twilio, sender):
    task_id, _ = given_up(db, policy)
    fake_twilio.fail_next(503, 20500, "Service unavailable")
    assert await sender.send_pending() == 0
    assert message_of(db, task_id).status == "unknown"
    assert await sender.send_pending() == 0
    assert len(fake_twilio.requests) == 1


async def test_a_rate_limit_sends_it_at_the_next_wake_once(db, policy, fake_twilio, sender):
    task_id, _ = given_up(db, policy)
    fake_twilio.fail_next(429, 20429, "Too Many Requests")
    assert await sender.send_pending() == 0
    message = message_of(db, task_id)
    assert message.status == "recorded" and "429" in message.error and message.sent_at is None
    assert await sender.send_pending() == 1
    assert await sender.send_pending() == 0
    assert len(fake_twilio.messages) == 1 and len(fake_twilio.requests) == 2


async def test_a_number_twilio_refuses_is_failed_for_a_person(db, policy, fake_twilio, sender):
    task_id, _ = given_up(db, policy)
    fake_twilio.invalid_numbers.add(CALLER)
    assert await sender.send_pending() == 0
    message = message_of(db, task_id)
    assert message.status == "failed" and "21211" in message.error
    assert await sender.send_pending() == 0
    assert len(fake_twilio.requests) == 1 and fake_twilio.messages == []


async def test_no_sms_to_a_number_not_to_call_nor_without_consent(db, policy, fake_twilio, sender):
    task_id, _ = given_up(db, policy)
    with db.session() as session:
        tasks.forbid_number(session, CALLER, task_id=None, by=None, note="asked on another case", now=NOW)
    quiet_id, _ = given_up(db, policy, sms_consent=False, caller_phone="13800001111")
    assert await sender.send_pending() == 0
    message = message_of(db, task_id)
    assert (message.status, message.error) == ("not_sent", "do_not_call")
    with db.session(readonly=True) as session:
        assert session.query(CallbackMessage).filter_by(task_id=quiet_id).count() == 0
    assert fake_twilio.requests == []


async def test_the_engine_sends_the_recorded_sms_at_its_wake(db, policy, fake_twilio, sender):
    task_id, _ = given_up(db, policy)
    engine = CallbacksEngine(db, policy, sms=sender, clock=lambda: NOW + timedelta(minutes=1))
    await engine.start()  # its first wake
    try:
        assert len(fake_twilio.messages) == 1
        assert (await engine.wake()).sms_sent == 0
    finally:
        await engine.stop()
    assert message_of(db, task_id).status == "sent" and len(fake_twilio.messages) == 1


async def test_a_task_given_up_while_the_engine_runs_has_its_sms_sent_at_once(db, policy, fake_twilio, sender):
    from bridge.live import LiveEvent, LiveEvents

    live = LiveEvents()
    scheduler = AsyncIOScheduler(timezone=ZONE)
    scheduler.start()
    engine = CallbacksEngine(db, policy, sms=sender, live=live, scheduler=scheduler)
    await engine.start()
    try:
        given_up(db, policy)  # the dialler settled the last attempt ...
        live.publish(LiveEvent("callbacks", "attempt_ended", {}))  # ... and said so, as the placer does
        await until(lambda: fake_twilio.messages)
        await until(lambda: engine.plan is not None and engine.plan.why == "safety")
        fake_twilio.fail_next(429, 20429, "Too Many Requests")
        given_up(db, policy, caller_phone="13800001111")
        engine.changed()
        await until(lambda: len(fake_twilio.requests) == 2)
        await until(lambda: engine.plan.why == "safety")  # put back, tried again at a later wake, not at once
        await asyncio.sleep(0.2)
        assert len(fake_twilio.requests) == 2
    finally:
        await engine.stop()
        scheduler.shutdown(wait=False)


# ----------------------------------------------------------------- status callbacks


@pytest.fixture
async def daemon_app(db_url, db):
    """The daemon's web app with [twilio] enabled, its Twilio route behind the public URL."""
    config = validate({"database": {"url": db_url}, "web": {"public_url": PUBLIC_URL},
                       "twilio": {"enabled": True, "account_sid": ACCOUNT_SID}},
                      environ={**SECRETS, "HOTLINE_BRIDGE_TWILIO_AUTH_TOKEN": AUTH_TOKEN})
    app = create_app(config, db, Health())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as client:
        yield client


async def sent_message(db, policy, fake_twilio, sender):
    task_id, _ = given_up(db, policy)
    await sender.send_pending()
    return task_id, fake_twilio.messages[-1]


async def test_a_signed_status_callback_updates_the_message(db, policy, fake_twilio, sender, daemon_app):
    task_id, sent = await sent_message(db, policy, fake_twilio, sender)
    assert (await fake_twilio.send_status(sent, "delivered", client=daemon_app)).status_code == 204
    assert message_of(db, task_id).status == "delivered"
    # A late "sent" (callbacks arrive in any order) does not move it back.
    assert (await fake_twilio.send_status(sent, "sent", client=daemon_app)).status_code == 204
    assert message_of(db, task_id).status == "delivered"


async def test_twilios_callback_settles_a_message_left_unknown_by_a_crash(db, policy, fake_twilio, sender,
                                                                          daemon_app):
    task_id, _ = given_up(db, policy)
    fake_twilio.delay_s = 2.0
    sending = asyncio.create_task(sender.send_pending())
    await until(lambda: fake_twilio.messages)  # Twilio took it; its answer never reaches us
    sending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sending
    await sender.recover()
    assert message_of(db, task_id).status == "unknown"
    (sent,) = fake_twilio.messages
    # A callback for another row's ref settles nothing (the ref names one row, the SID must be new).
    assert (await fake_twilio.send_status(sent, "delivered", client=daemon_app,
                                          url=PUBLIC_URL + STATUS_PATH + "?ref=sms-999")).status_code == 204
    assert message_of(db, task_id).status == "unknown"
    assert (await fake_twilio.send_status(sent, "delivered", client=daemon_app)).status_code == 204
    message = message_of(db, task_id)
    assert (message.status, message.remote_id, message.error) == ("delivered", sent.sid, None)
    assert await sender.send_pending() == 0 and len(fake_twilio.messages) == 1


async def test_an_undelivered_status_keeps_twilios_error_code(db, policy, fake_twilio, sender, daemon_app):
    task_id, sent = await sent_message(db, policy, fake_twilio, sender)
    response = await fake_twilio.send_status(sent, "undelivered", error_code=30003, client=daemon_app)
    assert response.status_code == 204
    message = message_of(db, task_id)
    assert (message.status, message.error) == ("undelivered", "Twilio error 30003")


async def test_a_forged_status_callback_is_refused_and_stores_nothing(db, policy, fake_twilio, sender, daemon_app):
    task_id, sent = await sent_message(db, policy, fake_twilio, sender)
    params = fake_twilio.status_params(sent, "failed", error_code=30008)
    forged = twilio_signature("not-the-auth-token", sent.status_callback, params)
    response = await fake_twilio.send_status(sent, "failed", client=daemon_app, signature=forged)
    assert response.status_code == 403
    response = await fake_twilio.send_status(sent, "failed", client=daemon_app, signature=None)
    assert response.status_code == 403
    message = message_of(db, task_id)
    assert (message.status, message.error) == ("sent", None)


async def test_a_status_for_a_sid_not_ours_changes_nothing(db, policy, fake_twilio, sender, daemon_app):
    task_id, sent = await sent_message(db, policy, fake_twilio, sender)
    stranger = twilio_server.Sent("message", "SM" + "9" * 32, sent.form)
    assert (await fake_twilio.send_status(stranger, "delivered", client=daemon_app)).status_code == 204
    assert message_of(db, task_id).status == "sent"


def test_apply_status_ignores_calls(db):
    from callbacks.twilio_status import TwilioStatus

    with db.session() as session:
        assert sms.apply_status(session, TwilioStatus("call", "CA1", "completed")) is None


async def until(condition, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the condition did not come true in time")
        await asyncio.sleep(0.01)
