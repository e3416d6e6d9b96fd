"""The Twilio gateway: the real ``twilio`` client (its aiohttp client) against the fake Twilio,
every request and response held to Twilio's published API (tests/callbacks/twilio_server.py)."""
from __future__ import annotations

import asyncio
import socket
import time
import xml.etree.ElementTree as ET

import pytest

from bridge.config import ConfigError, validate
from callbacks.twilio_gateway import (
    TwilioAccount,
    TwilioAuthFailed,
    TwilioBadNumber,
    TwilioGateway,
    TwilioRateLimited,
    TwilioRejected,
    TwilioUnreachable,
    play_twiml,
    say_twiml,
)
from tests.callbacks import twilio_server
from tests.callbacks.twilio_server import ACCOUNT_SID, AUTH_TOKEN

fake_twilio = twilio_server.fake_twilio  # the fixture, offered to this module's tests

CALLER = "+8613912345678"
HOTLINE = "+8657096811"
STATUS_URL = "https://hotline.example.org/callbacks/twilio/status"
ANSWER = "您好，这里是96811热线。您反映的问题，市住房和城乡建设局已经答复。"


@pytest.fixture
async def gateway(fake_twilio):
    async with TwilioGateway(TwilioAccount(ACCOUNT_SID, AUTH_TOKEN, HOTLINE, fake_twilio.base_url)) as gateway:
        yield gateway


async def test_an_sms_goes_from_the_hotline_number_to_the_caller(gateway, fake_twilio):
    text = "您的案件 QZ-20261203-0007 已有答复，请拨打 96811 按 2 收听。"
    sid = await gateway.send_sms(CALLER, text)
    (sent,) = fake_twilio.messages
    assert sid == sent.sid and sid.startswith("SM")
    assert sent.form == {"To": CALLER, "From": HOTLINE, "Body": text}
    assert fake_twilio.requests == [("POST", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")]


async def test_an_sms_can_ask_for_its_delivery_status(gateway, fake_twilio):
    await gateway.send_sms(CALLER, "case QZ-1", status_callback=STATUS_URL)
    assert fake_twilio.messages[0].form["StatusCallback"] == STATUS_URL


async def test_a_call_speaks_the_answer_in_mandarin(gateway, fake_twilio):
    sid = await gateway.place_call(CALLER, say_twiml(ANSWER), STATUS_URL)
    (sent,) = fake_twilio.calls
    assert sid == sent.sid and sid.startswith("CA")
    assert {k: sent.form[k] for k in ("To", "From", "StatusCallback")} == {
        "To": CALLER, "From": HOTLINE, "StatusCallback": STATUS_URL}
    assert "Url" not in sent.form
    response = ET.fromstring(sent.form["Twiml"])
    (say,) = response
    assert (response.tag, say.tag, say.get("language"), say.text) == ("Response", "Say", "zh-CN", ANSWER)


async def test_a_call_plays_a_recording_or_fetches_twiml_from_a_url(gateway, fake_twilio):
    recording = "https://hotline.example.org/callbacks/answers/QZ-7.wav"
    await gateway.place_call(CALLER, play_twiml(recording), STATUS_URL)
    (play,) = ET.fromstring(fake_twilio.calls[0].form["Twiml"])
    assert (play.tag, play.text) == ("Play", recording)

    await gateway.place_call(CALLER, "https://hotline.example.org/callbacks/twiml/QZ-7", STATUS_URL)
    assert fake_twilio.calls[1].form["Url"] == "https://hotline.example.org/callbacks/twiml/QZ-7"
    assert "Twiml" not in fake_twilio.calls[1].form


async def test_a_call_script_must_be_twiml_or_a_url(gateway, fake_twilio):
    with pytest.raises(ValueError, match="twiml_or_url"):
        await gateway.place_call(CALLER, "just words", STATUS_URL)
    assert fake_twilio.requests == []


@pytest.mark.parametrize(("status", "code", "error"), [
    (429, 20429, TwilioRateLimited),
    (400, 14107, TwilioRateLimited),
    (400, 21211, TwilioBadNumber),
    (400, 21614, TwilioBadNumber),
    (403, 20003, TwilioAuthFailed),
    (400, 21610, TwilioRejected),  # the recipient replied STOP
    (500, 20500, TwilioUnreachable),
    (503, 20503, TwilioUnreachable),
])
async def test_twilio_refusals_are_mapped(gateway, fake_twilio, status, code, error):
    fake_twilio.fail_next(status, code)
    with pytest.raises(error) as caught:
        await gateway.send_sms(CALLER, "case QZ-1")
    assert (type(caught.value), caught.value.status, caught.value.code) == (error, status, code)
    assert caught.value.may_have_sent is (status >= 500)
    fake_twilio.fail_next(status, code)
    with pytest.raises(error):
        await gateway.place_call(CALLER, say_twiml(ANSWER), STATUS_URL)


async def test_a_number_twilio_calls_invalid_is_a_bad_number(gateway, fake_twilio):
    fake_twilio.invalid_numbers.add("+8610000")
    with pytest.raises(TwilioBadNumber, match="21211"):
        await gateway.send_sms("+8610000", "case QZ-1")


async def test_a_number_not_in_e164_is_refused_before_any_request(gateway, fake_twilio):
    recorded = []
    for number in ("13912345678", "+86 139 1234 5678", ""):
        with pytest.raises(TwilioBadNumber, match="E.164"):
            await gateway.send_sms(number, "case QZ-1", record=lambda: recorded.append(1))
        with pytest.raises(TwilioBadNumber):
            await gateway.place_call(number, say_twiml(ANSWER), STATUS_URL, record=lambda: recorded.append(1))
    assert fake_twilio.requests == [] and recorded == []


async def test_a_wrong_auth_token_is_an_auth_failure(fake_twilio):
    account = TwilioAccount(ACCOUNT_SID, "not-the-token", HOTLINE, fake_twilio.base_url)
    async with TwilioGateway(account) as gateway:
        with pytest.raises(TwilioAuthFailed, match="20003"):
            await gateway.send_sms(CALLER, "case QZ-1")
    assert fake_twilio.messages == []


async def test_twilio_down_is_unreachable_and_surely_not_sent():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with TwilioGateway(TwilioAccount(ACCOUNT_SID, AUTH_TOKEN, HOTLINE, f"http://127.0.0.1:{port}")) as gateway:
        with pytest.raises(TwilioUnreachable) as caught:
            await gateway.send_sms(CALLER, "case QZ-1")
    assert caught.value.may_have_sent is False


async def test_a_slow_twilio_times_out_and_may_have_sent(fake_twilio):
    fake_twilio.delay_s = 2
    account = TwilioAccount(ACCOUNT_SID, AUTH_TOKEN, HOTLINE, fake_twilio.base_url)
    async with TwilioGateway(account, timeout_s=0.3) as gateway:
        with pytest.raises(TwilioUnreachable, match="did not answer within 0.3 s") as caught:
            await gateway.send_sms(CALLER, "case QZ-1")
    assert caught.value.may_have_sent is True
    assert len(fake_twilio.messages) == 1  # Twilio took it: why an SMS is never sent twice


async def test_requests_never_block_the_loop(gateway, fake_twilio):
    fake_twilio.delay_s = 0.5
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    started = time.monotonic()
    try:
        sids = await asyncio.gather(gateway.send_sms(CALLER, "case QZ-1"),
                                    gateway.place_call(CALLER, say_twiml(ANSWER), STATUS_URL))
    finally:
        ticking.cancel()
    elapsed = time.monotonic() - started
    assert len(set(sids)) == 2
    assert elapsed < 0.95, "the two requests ran one after the other"
    assert ticks >= 15, f"the loop ticked {ticks} times in {elapsed:.2f} s: a request blocked it"


# ------------------------------------------------------------------- at most once


async def test_the_attempt_is_recorded_before_the_request_leaves(gateway, fake_twilio):
    seen_by_twilio_when_recorded = []

    async def record():
        seen_by_twilio_when_recorded.append(len(fake_twilio.messages))

    await gateway.send_sms(CALLER, "case QZ-1", record=record)
    assert seen_by_twilio_when_recorded == [0] and len(fake_twilio.messages) == 1

    calls_when_recorded = []
    await gateway.place_call(CALLER, say_twiml(ANSWER), STATUS_URL,
                             record=lambda: calls_when_recorded.append(len(fake_twilio.calls)))
    assert calls_when_recorded == [0] and len(fake_twilio.calls) == 1


async def test_a_recorder_that_refuses_stops_the_send(gateway, fake_twilio):
    class AlreadySent(Exception):
        pass

    def record():
        raise AlreadySent("task 7 has its SMS")

    with pytest.raises(AlreadySent):
        await gateway.send_sms(CALLER, "case QZ-1", record=record)
    assert fake_twilio.requests == []


async def test_a_failed_send_keeps_its_record(gateway, fake_twilio):
    recorded = []
    fake_twilio.fail_next(500, 20500)
    with pytest.raises(TwilioUnreachable):
        await gateway.send_sms(CALLER, "case QZ-1", record=lambda: recorded.append("sms"))
    assert recorded == ["sms"] and len(fake_twilio.requests) == 1  # one request, never retried


# ------------------------------------------------------------------------ config


def test_the_gateway_is_built_from_the_twilio_section(fake_twilio):
    config = validate({"twilio": {"enabled": True, "account_sid": ACCOUNT_SID, "from_number": HOTLINE,
                                  "api_base_url": fake_twilio.base_url}},
                      environ={"HOTLINE_BRIDGE_SESSION_SECRET": "s", "HOTLINE_BRIDGE_AMI_SECRET": "a",
                               "HOTLINE_BRIDGE_TWILIO_AUTH_TOKEN": AUTH_TOKEN})
    gateway = TwilioGateway.from_config(config)
    assert gateway.account == TwilioAccount(ACCOUNT_SID, AUTH_TOKEN, HOTLINE, fake_twilio.base_url)

    async def send():
        async with gateway:
            return await gateway.send_sms(CALLER, "case QZ-1")

    assert asyncio.run(send()) == fake_twilio.messages[0].sid


@pytest.mark.parametrize(("twilio", "problem"), [
    ({"from_number": "057096811"}, "twilio.from_number: '057096811' is not an E.164 number"),
    ({"api_base_url": "127.0.0.1:8901"}, "twilio.api_base_url: '127.0.0.1:8901' is not an http(s) URL"),
])
def test_a_bad_twilio_key_is_named(twilio, problem):
    with pytest.raises(ConfigError) as caught:
        validate({"twilio": twilio}, environ={"HOTLINE_BRIDGE_SESSION_SECRET": "s", "HOTLINE_BRIDGE_AMI_SECRET": "a"})
    (found,) = caught.value.problems
    assert found.startswith(problem)
