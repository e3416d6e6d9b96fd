"""Twilio's status callbacks: signed by the fake Twilio as Twilio signs them, checked with the
``twilio`` package's RequestValidator; a missing, wrong or stale signature is refused (403) and
nothing reaches the handler."""
from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from twilio.request_validator import RequestValidator

from bridge.config import validate
from bridge.db.engine import Database
from bridge.health import Health
from bridge.web.app import create_app
from callbacks.twilio_gateway import TwilioAccount, TwilioGateway, say_twiml
from callbacks.twilio_status import STATUS_PATH, TwilioStatus, make_status_router, parse_status, status_url
from tests.callbacks import twilio_server
from tests.callbacks.twilio_server import ACCOUNT_SID, AUTH_TOKEN, Sent, twilio_signature

fake_twilio = twilio_server.fake_twilio  # the fixture, offered to this module's tests

PUBLIC_URL = "https://hotline.example.org"
CALLER = "+8613912345678"
SECRETS = {"HOTLINE_BRIDGE_SESSION_SECRET": "s", "HOTLINE_BRIDGE_AMI_SECRET": "a",
           "HOTLINE_BRIDGE_TWILIO_AUTH_TOKEN": AUTH_TOKEN}


def twilio_config(base_url: str, *, enabled: bool = True):
    twilio = {"enabled": True, "account_sid": ACCOUNT_SID, "api_base_url": base_url} if enabled else {}
    return validate({"web": {"public_url": PUBLIC_URL}, "twilio": twilio}, environ=SECRETS)


@pytest.fixture
def statuses() -> list[TwilioStatus]:
    return []


class BehindProxy(httpx.AsyncBaseTransport):
    """A TLS-terminating proxy in front of the daemon: Twilio calls the public https URL, the
    daemon sees the request on its own loopback address."""

    def __init__(self, app):
        self.inner = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=8680)
        return await self.inner.handle_async_request(request)


@pytest.fixture
async def daemon(statuses):
    """The status route as the daemon serves it behind its proxy."""
    app = FastAPI()
    app.include_router(make_status_router(auth_token=AUTH_TOKEN, public_url=PUBLIC_URL, on_status=statuses.append))
    async with httpx.AsyncClient(transport=BehindProxy(app), base_url=PUBLIC_URL) as client:
        yield client


@pytest.fixture
async def gateway(fake_twilio):
    async with TwilioGateway(TwilioAccount(ACCOUNT_SID, AUTH_TOKEN, "+8657096811", fake_twilio.base_url)) as gateway:
        yield gateway


async def sent_sms(gateway, fake_twilio):
    await gateway.send_sms(CALLER, "case QZ-1", status_callback=PUBLIC_URL + STATUS_PATH)
    return fake_twilio.messages[-1]


def test_the_fake_signs_as_the_twilio_package_checks():
    params = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered", "To": CALLER}
    url = PUBLIC_URL + STATUS_PATH
    assert twilio_signature(AUTH_TOKEN, url, params) == RequestValidator(AUTH_TOKEN).compute_signature(url, params)


async def test_a_signed_sms_status_reaches_the_handler(gateway, fake_twilio, daemon, statuses):
    sent = await sent_sms(gateway, fake_twilio)
    response = await fake_twilio.send_status(sent, "delivered", client=daemon)
    assert response.status_code == 204
    assert statuses == [TwilioStatus("message", sent.sid, "delivered")]


async def test_an_undelivered_sms_carries_its_error_code(gateway, fake_twilio, daemon, statuses):
    sent = await sent_sms(gateway, fake_twilio)
    response = await fake_twilio.send_status(sent, "undelivered", error_code=30003, client=daemon)
    assert response.status_code == 204
    assert statuses == [TwilioStatus("message", sent.sid, "undelivered", error_code=30003)]


async def test_a_signed_call_status_reaches_the_handler(gateway, fake_twilio, daemon, statuses):
    await gateway.place_call(CALLER, say_twiml("您好"), PUBLIC_URL + STATUS_PATH)
    (sent,) = fake_twilio.calls
    assert (await fake_twilio.send_status(sent, "busy", client=daemon)).status_code == 204
    assert (await fake_twilio.send_status(sent, "completed", client=daemon)).status_code == 204
    assert statuses == [TwilioStatus("call", sent.sid, "busy", call_duration_s=0),
                        TwilioStatus("call", sent.sid, "completed", call_duration_s=42)]


async def test_an_unsigned_status_is_refused(gateway, fake_twilio, daemon, statuses):
    sent = await sent_sms(gateway, fake_twilio)
    response = await fake_twilio.send_status(sent, "delivered", client=daemon, signature=None)
    assert response.status_code == 403 and "X-Twilio-Signature" in response.json()["error"]
    assert statuses == []


async def test_a_status_signed_with_another_token_is_refused(gateway, fake_twilio, daemon, statuses):
    sent = await sent_sms(gateway, fake_twilio)
    forged = twilio_signature("someone-elses-token", sent.status_callback,
                              fake_twilio.status_params(sent, "delivered"))
    response = await fake_twilio.send_status(sent, "delivered", client=daemon, signature=forged)
    assert response.status_code == 403
    assert statuses == []


async def test_a_tampered_parameter_breaks_the_signature(gateway, fake_twilio, daemon, statuses):
    sent = await sent_sms(gateway, fake_twilio)
    genuine = fake_twilio.status_params(sent, "undelivered", error_code=30003)
    signature = twilio_signature(AUTH_TOKEN, sent.status_callback, genuine)
    tampered = genuine | {"MessageStatus": "delivered", "SmsStatus": "delivered"}
    response = await fake_twilio.send_status(sent, "delivered", client=daemon, signature=signature, params=tampered)
    assert response.status_code == 403
    extra = genuine | {"Injected": "1"}
    response = await fake_twilio.send_status(sent, "delivered", client=daemon, signature=signature, params=extra)
    assert response.status_code == 403
    assert statuses == []


async def test_the_signature_covers_the_public_url(gateway, fake_twilio, daemon, statuses):
    sent = await sent_sms(gateway, fake_twilio)
    params = fake_twilio.status_params(sent, "delivered")
    # Signed for the daemon's loopback address, not the public URL Twilio was given.
    elsewhere = twilio_signature(AUTH_TOKEN, "http://127.0.0.1:8680" + STATUS_PATH, params)
    response = await fake_twilio.send_status(sent, "delivered", client=daemon, signature=elsewhere)
    assert response.status_code == 403
    # A query string is part of what Twilio signs.
    with_query = PUBLIC_URL + STATUS_PATH + "?task=7"
    response = await fake_twilio.send_status(sent, "delivered", client=daemon, url=with_query)
    assert response.status_code == 204
    signed_without = twilio_signature(AUTH_TOKEN, PUBLIC_URL + STATUS_PATH, params)
    response = await fake_twilio.send_status(sent, "delivered", client=daemon, url=with_query, signature=signed_without)
    assert response.status_code == 403
    assert statuses == [TwilioStatus("message", sent.sid, "delivered")]


async def test_a_signed_form_without_a_status_is_a_bad_request(fake_twilio, daemon, statuses):
    sent = Sent("message", "SM" + "2" * 32, {"To": CALLER, "StatusCallback": PUBLIC_URL + STATUS_PATH})
    response = await fake_twilio.send_status(sent, "", client=daemon, params={"AccountSid": ACCOUNT_SID})
    assert response.status_code == 400 and "neither MessageSid nor CallSid" in response.json()["error"]
    response = await fake_twilio.send_status(sent, "", client=daemon, params={"MessageSid": sent.sid})
    assert response.status_code == 400 and "no MessageStatus" in response.json()["error"]
    assert statuses == []


async def test_a_handler_failure_answers_500(gateway, fake_twilio):
    def broken(status):
        raise RuntimeError("database away")

    app = FastAPI()
    app.include_router(make_status_router(auth_token=AUTH_TOKEN, public_url=PUBLIC_URL, on_status=broken))
    sent = await sent_sms(gateway, fake_twilio)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as client:
        response = await fake_twilio.send_status(sent, "delivered", client=client)
    assert response.status_code == 500


async def test_an_async_handler_is_awaited(gateway, fake_twilio):
    seen = []

    async def store(status):
        seen.append(status.sid)

    app = FastAPI()
    app.include_router(make_status_router(auth_token=AUTH_TOKEN, public_url=PUBLIC_URL + "/", on_status=store))
    sent = await sent_sms(gateway, fake_twilio)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as client:
        assert (await fake_twilio.send_status(sent, "sent", client=client)).status_code == 204
    assert seen == [sent.sid]


def test_parse_status_reads_twilio_forms():
    assert parse_status({"CallSid": "CA1", "CallStatus": "no-answer", "ErrorCode": "", "CallDuration": "0"}) == \
        TwilioStatus("call", "CA1", "no-answer", None, 0)
    assert parse_status({"MessageSid": "SM1", "MessageStatus": "failed", "ErrorCode": "30006"}) == \
        TwilioStatus("message", "SM1", "failed", 30006)


# -------------------------------------------------------------- in the daemon's app


async def test_the_callbacks_capability_mounts_the_route_when_twilio_is_enabled(tmp_path, fake_twilio,
                                                                              migrated_template):
    config = twilio_config(fake_twilio.base_url)
    assert status_url(config) == PUBLIC_URL + STATUS_PATH
    migrated_template.copy_to_sqlite(tmp_path / "app.sqlite3")  # the route stores what it is told
    database = Database(f"sqlite:///{tmp_path / 'app.sqlite3'}")
    try:
        app = create_app(config, database, Health())
        async with TwilioGateway.from_config(config) as gateway, \
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as client:
            await gateway.send_sms(CALLER, "case QZ-1", status_callback=status_url(config))
            (sent,) = fake_twilio.messages
            assert (await fake_twilio.send_status(sent, "delivered", client=client)).status_code == 204
            assert (await fake_twilio.send_status(sent, "delivered", client=client, signature=None)).status_code == 403
        assert STATUS_PATH not in app.openapi()["paths"]  # Twilio's, not part of the JSON API

        app = create_app(twilio_config(fake_twilio.base_url, enabled=False), database, Health())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL) as client:
            assert (await fake_twilio.send_status(sent, "delivered", client=client)).status_code == 404
    finally:
        database.dispose()
