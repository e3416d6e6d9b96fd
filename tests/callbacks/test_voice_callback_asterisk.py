"""The automated voice callback through the real Asterisk test bed: the daemon originates to the
caller (SIPp plays the carrier's far end), Asterisk plays the spoken answer in the shipped
context ``hotline-voice-callback``, and the attempt and task follow Asterisk's own events.

The daemon's PBX link runs in this process (tests/pbx/test_calllog_asterisk.py's ``bridge``);
the callbacks run on a controlled clock inside the calling windows (a working day's morning).
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bridge.capability import Runtime
from bridge.db.models import (
    CallbackAttempt,
    CallbackAttemptResult,
    CallbackOutcome,
    CallbackState,
    CallbackTask,
    Case,
    CaseEvent,
    CaseState,
)
from bridge.domain_events import DomainEvents
from bridge.pbx.answer_speech import AnswerSpeech
from callbacks.capability import CallbacksCapability
from callbacks.tasks import CallbackPolicy
from callbacks.voice_callback import VoiceCallbacks, dial_string, wants_voice_callback
from tests.pbx.test_calllog_asterisk import bridge, file_test_case, new_caller  # noqa: F401 (fixture)
from tests.waiting import wait_until_async

pytestmark = [pytest.mark.asterisk, pytest.mark.timeout(180)]

# Thursday 3 December 2026, 10:00 in the site's zone: a working day, inside the shipped windows.
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
ANSWER_TEXT = "经核查，楼道内的公鸡已由社区劝导主人移走。"


async def run_callbacks(bridge) -> None:  # noqa: F811 (the fixture's name)
    """The callbacks capability's consumers over every pending event, on the test's clock."""
    from callbacks.capability import answer_consumer, heard_consumer

    publisher = DomainEvents(bridge.db, poll_s=3600)
    publisher.register(answer_consumer(CallbackPolicy.of(bridge.config), clock=lambda: NOW))
    publisher.register(heard_consumer(clock=lambda: NOW))
    await publisher.start()
    await publisher.stop()


def voice_task(asterisk, db, *, voice_callback: bool = True) -> tuple[int, str]:
    """A case whose caller chose the voice callback, answered by its unit: its task id and number."""
    phone = new_caller()
    number = file_test_case(asterisk, db, phone)
    with db.session() as session:
        case = session.scalar(select(Case).where(Case.number == number))
        case.state, case.voice_callback = CaseState.ANSWERED, voice_callback
        session.add(CaseEvent(case_id=case.id, at=NOW, kind="answered", actor="forum",
                              detail={"text": ANSWER_TEXT, "unit": "CITY-ZHZFJ"}))
    return number, phone


def task_for(db, number: str) -> CallbackTask:
    with db.session(readonly=True) as session:
        task = session.scalar(select(CallbackTask).join(Case).where(Case.number == number))
        task.attempts  # noqa: B018 - loaded before the session closes
        session.expunge_all()
        return task


@pytest.fixture
def voice(asterisk, bridge):  # noqa: F811
    dialler = VoiceCallbacks(bridge.db, CallbackPolicy.of(bridge.config), AnswerSpeech.of(bridge.config),
                             bridge.service.ami, hotline_number="96811", ring_s=8, clock=lambda: NOW)
    bridge.service.ami.add_listener(dialler.on_ami_event)
    return dialler


async def test_the_caller_picks_up_hears_the_answer_and_is_informed(asterisk, bridge, voice):  # noqa: F811
    number, phone = voice_task(asterisk, bridge.db)
    await run_callbacks(bridge)
    task = task_for(bridge.db, number)
    assert task.state is CallbackState.DUE
    assert await bridge.db.run_in_session(wants_voice_callback, task.id, readonly=True)
    with asterisk.carrier() as carrier:
        async with asterisk.ami_events() as ami:
            call = await voice.place(task.id)
            begin = await ami.wait_for("Newexten", Context="hotline-voice-callback", timeout=20)
            linkedid = begin["Linkedid"]
            await ami.wait_for("Hangup", Linkedid=linkedid, timeout=60)
            plays = ami.find("Newexten", Application="Read", Linkedid=linkedid,
                             where=lambda e: "/answers/answer-" in e.get("AppData", ""))
            assert len(plays) == 1 and plays[0]["AppData"].split(",")[1].endswith(f"/{call.audio}")
            assert ami.varset("HOTLINE_CALLBACK_ATTEMPT", Linkedid=linkedid) == [call.key]
            assert ami.varset("HOTLINE_DISPOSITION", Linkedid=linkedid) == ["voice_callback"]
        await wait_until_async(lambda: task_for(bridge.db, number).attempts[0].ended_at is not None, timeout=10,
                               what="the attempt to be settled from the hang-up")
    invites = carrier.received("INVITE")
    assert len(invites) == 1 and invites[0].startswith(f"INVITE sip:{dial_string('+86' + phone)}@")
    from_header = next(line for line in invites[0].splitlines() if line.lower().startswith("from:"))
    assert "sip:96811@" in from_header
    await run_callbacks(bridge)  # the answer_heard the dialplan reported
    task = task_for(bridge.db, number)
    (attempt,) = task.attempts
    assert (attempt.dialler, attempt.operator_id, attempt.result, attempt.settled_by) == (
        "voice", None, CallbackAttemptResult.ANSWERED, "events")
    assert attempt.answered_at is not None and attempt.linkedid == linkedid
    assert (task.state, task.outcome, task.satisfaction) == (CallbackState.DONE, CallbackOutcome.INFORMED, None)
    assert not await bridge.db.run_in_session(wants_voice_callback, task.id, readonly=True)


async def test_a_busy_caller_is_retried_on_the_ladder(asterisk, bridge, voice):  # noqa: F811
    number, _ = voice_task(asterisk, bridge.db)
    await run_callbacks(bridge)
    task = task_for(bridge.db, number)
    with asterisk.carrier("busy") as carrier:
        call = await voice.place(task.id)
        await wait_until_async(lambda: task_for(bridge.db, number).attempts[0].ended_at is not None, timeout=20,
                               what="the busy attempt to be settled")
    assert len(carrier.received("INVITE")) == 1
    task = task_for(bridge.db, number)
    assert task.attempts[0].result is CallbackAttemptResult.BUSY and task.attempts[0].idempotency_key == call.key
    assert task.state is CallbackState.SCHEDULED and task.due_at > NOW  # the busy ladder's first step
    with bridge.db.session(readonly=True) as session:
        assert session.scalar(select(CallbackAttempt.dialler)) == "voice"


async def test_a_caller_who_did_not_choose_it_is_not_phoned_by_machine(asterisk, bridge, voice):  # noqa: F811
    from callbacks.tasks import CallbackRefused

    number, _ = voice_task(asterisk, bridge.db, voice_callback=False)
    await run_callbacks(bridge)
    task = task_for(bridge.db, number)
    with pytest.raises(CallbackRefused, match="closed"):
        await voice.place(task.id)
    assert task_for(bridge.db, number).attempts == []


def test_the_capability_builds_the_voice_dialler_and_listens(asterisk, tmp_path):
    from bridge.db.engine import Database
    from bridge.health import Health
    from bridge.live import LiveEvents

    db = Database(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    try:
        capability = CallbacksCapability()
        runtime = Runtime(asterisk.config, db, Health(), LiveEvents(), capabilities=(capability,))
        listeners = capability.ami_listeners(runtime)
        assert capability.voice.on_ami_event in listeners and capability.voice.ami is None  # no link yet
    finally:
        db.dispose()
