"""The automated voice callback through Twilio's Calls API: the real ``twilio`` client against the
fake Twilio (every request held to Twilio's published API), its signed status callbacks and the
signed ``<Redirect>`` after the answer posted to the daemon's routes, on both backends."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from bridge.config import validate
from bridge.db.models import CallbackAttemptResult, CallbackOutcome, CallbackState, CallbackTask, CaseEvent
from bridge.domain_events import DomainEvent
from callbacks import tasks
from callbacks.capability import heard_consumer
from callbacks.tasks import CallbackPolicy
from callbacks.twilio_gateway import TwilioAccount, TwilioGateway
from callbacks.twilio_status import make_status_router
from callbacks.voice_callback import HEARD_PATH, TwilioVoiceCallbacks, heard_router
from tests.callbacks import twilio_server
from tests.callbacks.test_tasks import a_case, an_answer
from tests.callbacks.twilio_server import ACCOUNT_SID, AUTH_TOKEN, twilio_signature
from tests.forum.test_builtin_support import SECRETS

fake_twilio = twilio_server.fake_twilio  # the fixture, offered to this module's tests
pytestmark = pytest.mark.postgres

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
PUBLIC = "https://hotline.example.org"
ANSWER = "已安排环卫工人清理，明天上午前完成。"


@pytest.fixture
def policy(db_url):
    return CallbackPolicy.of(validate({"database": {"url": db_url}}, environ=SECRETS))


@pytest.fixture
async def voice(db, policy, fake_twilio):
    async with TwilioGateway(TwilioAccount(ACCOUNT_SID, AUTH_TOKEN, "+8657096811", fake_twilio.base_url)) as gateway:
        yield TwilioVoiceCallbacks(db, policy, gateway, public_url=PUBLIC, clock=lambda: NOW)


@pytest.fixture
async def daemon(voice):
    """The daemon's two Twilio routes, reached as Twilio reaches them (the public URL)."""
    app = FastAPI()
    app.include_router(make_status_router(auth_token=AUTH_TOKEN, public_url=PUBLIC, on_status=voice.on_status))
    app.include_router(heard_router(voice, auth_token=AUTH_TOKEN))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        yield client


def voice_task(db, policy) -> int:
    with db.session() as session:
        case = a_case(session, None, best_time="any", voice_callback=True)
        return tasks.create_for_answer(session, an_answer(session, case, NOW, text=ANSWER), policy, NOW).id


def attempt_of(db, task_id: int):
    with db.session(readonly=True) as session:
        task = session.get(CallbackTask, task_id)
        (attempt,) = task.attempts
        session.expunge_all()
        return task, attempt


async def post_heard(daemon, url: str, *, signature: str | None = "sign") -> httpx.Response:
    form = {"CallSid": "CA1", "To": "+8613912345678", "AccountSid": ACCOUNT_SID}
    headers = {"X-Twilio-Signature": twilio_signature(AUTH_TOKEN, url, form) if signature == "sign" else signature}
    return await daemon.post(url, data=form, headers={k: v for k, v in headers.items() if v})


async def test_the_call_says_the_answer_in_mandarin_then_reports_it_heard(db, policy, voice, daemon, fake_twilio):
    task_id = voice_task(db, policy)
    key = await voice.place(task_id)
    (sent,) = fake_twilio.calls
    assert fake_twilio.violations == []
    assert (sent.form["To"], sent.form["StatusCallback"]) == ("+8613912345678", f"{PUBLIC}/callbacks/twilio/status")
    first, answer, redirect = ET.fromstring(sent.form["Twiml"])
    assert (answer.tag, answer.get("language"), answer.text) == ("Say", "zh-CN", ANSWER)
    assert first.get("language") == "zh-CN" and first.text.startswith("这里是96811热线回访")
    assert redirect.tag == "Redirect" and parse_qs(urlparse(redirect.text).query) == {"attempt": [key]}
    task, attempt = attempt_of(db, task_id)
    assert (attempt.dialler, attempt.remote_id, attempt.ended_at) == ("voice", sent.sid, None)

    heard = await post_heard(daemon, redirect.text)
    assert heard.status_code == 200 and "<Hangup" in heard.text
    completed = await fake_twilio.send_status(sent, "completed", client=daemon)
    assert completed.status_code == 204
    task, attempt = attempt_of(db, task_id)
    assert (attempt.result, attempt.settled_by) == (CallbackAttemptResult.ANSWERED, "twilio")
    with db.session() as session:  # the callbacks capability's consumer of answer_heard
        event = session.scalar(select(CaseEvent).where(CaseEvent.kind == "answer_heard"))
        assert event.detail["attempt"] == key and event.detail["via"] == "voice_callback"
        heard_consumer(clock=lambda: NOW).handle(
            session, DomainEvent(event.id, "answer_heard", event.kind, event.case_id, "", event.at, event.detail))
    task, _ = attempt_of(db, task_id)
    assert (task.state, task.outcome, task.satisfaction) == (CallbackState.DONE, CallbackOutcome.INFORMED, None)


async def test_a_forged_heard_is_refused_and_stores_nothing(db, policy, voice, daemon, fake_twilio):
    task_id = voice_task(db, policy)
    key = await voice.place(task_id)
    url = f"{PUBLIC}{HEARD_PATH}?attempt={key}"
    assert (await post_heard(daemon, url, signature=None)).status_code == 403
    assert (await post_heard(daemon, url, signature="c2lnbmF0dXJl")).status_code == 403
    with db.session(readonly=True) as session:
        assert session.scalar(select(CaseEvent).where(CaseEvent.kind == "answer_heard")) is None
    await fake_twilio.send_status(fake_twilio.calls[0], "completed", client=daemon)
    task, attempt = attempt_of(db, task_id)  # picked up, never said to its end: an operator phones
    assert attempt.result is CallbackAttemptResult.ANSWERED and task.state is CallbackState.DUE


@pytest.mark.parametrize(("status", "result"), [("busy", CallbackAttemptResult.BUSY),
                                                ("no-answer", CallbackAttemptResult.NO_ANSWER)])
async def test_not_picked_up_goes_on_the_ladder(db, policy, voice, daemon, fake_twilio, status, result):
    task_id = voice_task(db, policy)
    await voice.place(task_id)
    assert (await fake_twilio.send_status(fake_twilio.calls[0], status, client=daemon)).status_code == 204
    task, attempt = attempt_of(db, task_id)
    assert attempt.result is result and task.state is CallbackState.SCHEDULED and task.due_at > NOW


async def test_twilio_refusing_the_call_settles_it_failed_at_once(db, policy, voice, fake_twilio):
    from callbacks.tasks import CallbackRefused

    task_id = voice_task(db, policy)
    fake_twilio.fail_next(400, 21211)
    with pytest.raises(CallbackRefused):
        await voice.place(task_id)
    assert attempt_of(db, task_id)[1].result is CallbackAttemptResult.FAILED
    assert len(fake_twilio.calls) == 0


async def test_the_callbacks_capability_mounts_the_heard_route_with_twilio(db, fake_twilio):
    from bridge.health import Health
    from bridge.web.app import create_app
    from tests.callbacks.test_twilio_status import twilio_config

    app = create_app(twilio_config(fake_twilio.base_url), db, Health())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        url = f"{PUBLIC}{HEARD_PATH}?attempt=cb-9-unknown"
        assert (await post_heard(client, url, signature=None)).status_code == 403
        assert (await post_heard(client, url)).status_code == 200  # signed; no such attempt: nothing stored
    assert HEARD_PATH not in app.openapi()["paths"]
    with db.session(readonly=True) as session:
        assert session.scalar(select(CaseEvent).where(CaseEvent.kind == "answer_heard")) is None
