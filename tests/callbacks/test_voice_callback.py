"""The voice dialler's decisions (callbacks.voice_callback) on both backends, with a stand-in AMI link:
the row before the Originate, what the Originate carries, and how Asterisk's events settle it in
either order.  The real exchange is tests/callbacks/test_voice_callback_asterisk.py."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bridge.config import validate
from bridge.db.models import (
    CallbackAttempt,
    CallbackAttemptResult,
    CallbackOutcome,
    CallbackState,
    CallbackTask,
    CaseEvent,
)
from bridge.domain_events import DomainEvent
from bridge.pbx.agi import record_heard
from bridge.pbx.ami import AmiConnectionLost, AmiNotConnected
from bridge.pbx.answer_speech import AnswerSpeech
from callbacks import tasks
from callbacks.capability import heard_consumer
from callbacks.tasks import CallbackPolicy, CallbackRefused
from callbacks.voice_callback import VoiceCallbacks, dial_string, wants_voice_callback
from tests.callbacks.test_tasks import a_case, an_answer, operator
from tests.forum.test_builtin_support import SECRETS

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # a working day, inside the windows


class FakeAmi:
    """The AMI link as the dialler uses it: up or not, actions recorded, a chosen failure."""

    def __init__(self, *, up: bool = True, fail: Exception | None = None):
        self.is_up, self.fail, self.actions = up, fail, []

    async def send_action(self, action, **_):
        self.actions.append(dict(action))
        if action["Action"] == "Getvar":
            return {"Value": "carrier"}
        if self.fail is not None:
            raise self.fail
        return {"Response": "Success"}


@pytest.fixture
def policy(db_url):
    return CallbackPolicy.of(validate({"database": {"url": db_url}}, environ=SECRETS))


def voice_task(db, policy, *, chosen: bool = True) -> int:
    with db.session() as session:
        case = a_case(session, None, best_time="any", voice_callback=chosen)
        task = tasks.create_for_answer(session, an_answer(session, case, NOW, text="已安排清理"), policy, NOW)
        return task.id


def dialler(db, policy, tmp_path, ami) -> VoiceCallbacks:
    return VoiceCallbacks(db, policy, AnswerSpeech(tmp_path), ami, hotline_number="96811", ring_s=30,
                          clock=lambda: NOW)


def the_attempt(db, task_id: int) -> tuple[CallbackTask, CallbackAttempt]:
    with db.session(readonly=True) as session:
        task = session.get(CallbackTask, task_id)
        (attempt,) = task.attempts
        session.expunge_all()
        return task, attempt


def events(key: str, uniqueid: str = "1.7"):
    return {"varset": {"Event": "VarSet", "Variable": "HOTLINE_CALLBACK_ATTEMPT", "Value": key, "Uniqueid": uniqueid},
            "busy": {"Event": "Hangup", "Uniqueid": uniqueid, "Cause": "17", "Linkedid": uniqueid},
            "failure": {"Event": "OriginateResponse", "ActionID": key, "Response": "Failure", "Reason": "0",
                        "Uniqueid": "<unknown>"},
            "success": {"Event": "OriginateResponse", "ActionID": key, "Response": "Success", "Reason": "4",
                        "Uniqueid": uniqueid},
            "ended": {"Event": "Hangup", "Uniqueid": uniqueid, "Cause": "16", "Linkedid": uniqueid}}


async def test_the_row_exists_before_the_originate_which_names_the_attempt_and_the_answer(db, policy, tmp_path):
    ami = FakeAmi()
    voice = dialler(db, policy, tmp_path, ami)
    task_id = voice_task(db, policy)
    call = await voice.place(task_id)
    getvar, originate = ami.actions
    assert getvar == {"Action": "Getvar", "Variable": "HOTLINE_TRUNK"}  # the dialplan says the trunk
    assert originate["ActionID"] == call.key and originate["Context"] == "hotline-voice-callback"
    assert originate["Channel"] == "PJSIP/13912345678@carrier"
    assert originate["Variable"] == [f"HOTLINE_CALLBACK_ATTEMPT={call.key}",
                                     f"HOTLINE_ANSWER_EVENT={call.answer_event_id}",
                                     f"HOTLINE_ANSWER_NAME={call.audio}"]
    assert call.audio.startswith(f"answers/answer-{call.answer_event_id}-")
    assert (tmp_path / f"{call.audio}.wav").is_file()  # spoken before the call
    task, attempt = the_attempt(db, task_id)
    assert (attempt.dialler, attempt.operator_id, attempt.ended_at) == ("voice", None, None)
    assert task.state is CallbackState.IN_PROGRESS
    with pytest.raises(CallbackRefused, match="attempt_live"):  # never two at once
        await voice.place(task_id)


@pytest.mark.parametrize("order", [("varset", "failure", "busy"), ("varset", "busy", "failure")])
async def test_busy_is_learnt_from_the_hangup_cause_in_either_order(db, policy, tmp_path, order):
    voice = dialler(db, policy, tmp_path, FakeAmi())
    task_id = voice_task(db, policy)
    call = await voice.place(task_id)
    for name in order:
        await voice.on_ami_event(events(call.key)[name])
    task, attempt = the_attempt(db, task_id)
    assert (attempt.result, attempt.hangup_cause, attempt.settled_by) == (CallbackAttemptResult.BUSY, 17, "events")
    assert task.state is CallbackState.SCHEDULED and task.due_at > NOW  # the busy ladder
    assert wants_voice_callback_now(db, task_id)  # the next try is automated again


def wants_voice_callback_now(db, task_id: int) -> bool:
    return db.in_session(wants_voice_callback, task_id, readonly=True)


async def test_no_channel_at_all_is_failed_at_once(db, policy, tmp_path):
    voice = dialler(db, policy, tmp_path, FakeAmi())
    task_id = voice_task(db, policy)
    call = await voice.place(task_id)
    await voice.on_ami_event(events(call.key)["failure"])
    assert the_attempt(db, task_id)[1].result is CallbackAttemptResult.FAILED


async def test_picked_up_and_heard_is_informed_and_never_automated_again(db, policy, tmp_path):
    voice = dialler(db, policy, tmp_path, FakeAmi())
    task_id = voice_task(db, policy)
    call = await voice.place(task_id)
    for name in ("varset", "success"):
        await voice.on_ami_event(events(call.key)[name])
    assert the_attempt(db, task_id)[1].answered_at is not None
    with db.session() as session:  # the dialplan's AGI answer-heard, at the end of the answer
        assert record_heard(session, call.answer_event_id, "voice_callback", attempt_key=call.key) is not None
    await voice.on_ami_event(events(call.key)["ended"])
    task, attempt = the_attempt(db, task_id)
    assert (attempt.result, attempt.hangup_cause, attempt.linkedid) == (CallbackAttemptResult.ANSWERED, 16, "1.7")
    with db.session() as session:  # the capability's consumer
        heard = session.scalar(select(CaseEvent).where(CaseEvent.kind == "answer_heard"))
        event = DomainEvent(heard.id, "answer_heard", heard.kind, heard.case_id, "", heard.at, heard.detail)
        heard_consumer(clock=lambda: NOW).handle(session, event)
    task, _ = the_attempt(db, task_id)
    assert (task.state, task.outcome, task.satisfaction) == (CallbackState.DONE, CallbackOutcome.INFORMED, None)
    assert not wants_voice_callback_now(db, task_id)


async def test_picked_up_but_not_heard_to_the_end_is_due_for_an_operator(db, policy, tmp_path):
    voice = dialler(db, policy, tmp_path, FakeAmi())
    task_id = voice_task(db, policy)
    call = await voice.place(task_id)
    for name in ("varset", "success", "ended"):
        await voice.on_ami_event(events(call.key)[name])
    task, attempt = the_attempt(db, task_id)
    assert attempt.result is CallbackAttemptResult.ANSWERED and task.state is CallbackState.DUE
    assert not wants_voice_callback_now(db, task_id)  # an operator phones now
    with db.session() as session:  # ... and may: the task is not waiting for an outcome
        attempt, _ = tasks.begin_attempt(session, task_id, operator(session, "op"), NOW + timedelta(minutes=1),
                                         policy, dialler="asterisk", extension="1001")
        assert attempt.dialler == "asterisk"


async def test_refused_without_the_link_without_the_choice_and_when_asterisk_refuses(db, policy, tmp_path):
    task_id = voice_task(db, policy)
    with pytest.raises(CallbackRefused, match="pbx_down"):
        await dialler(db, policy, tmp_path, FakeAmi(up=False)).place(task_id)
    with pytest.raises(CallbackRefused, match="closed"):
        await dialler(db, policy, tmp_path, FakeAmi()).place(voice_task(db, policy, chosen=False))
    with pytest.raises(CallbackRefused, match="pbx_down"):  # not sent: settled at once, no attempt on the caller
        await dialler(db, policy, tmp_path, FakeAmi(fail=AmiNotConnected("down"))).place(task_id)
    assert the_attempt(db, task_id)[1].result is CallbackAttemptResult.OPERATOR_NO_ANSWER


async def test_an_originate_whose_answer_was_lost_stays_dialling(db, policy, tmp_path):
    task_id = voice_task(db, policy)
    await dialler(db, policy, tmp_path, FakeAmi(fail=AmiConnectionLost("link dropped"))).place(task_id)
    _, attempt = the_attempt(db, task_id)
    assert attempt.ended_at is None and attempt.result is None  # settled from Asterisk's record, never re-sent


def test_numbers_are_dialled_in_their_national_form():
    assert dial_string("+8613912345678") == "13912345678"
    assert dial_string("+865701234567") == "05701234567"


async def test_the_engines_wake_places_the_due_voice_callbacks_of_callers_who_chose_them(db, policy, tmp_path):
    from callbacks.engine import CallbacksEngine
    from callbacks.voice_callback import place_due_voice_callbacks

    chosen, not_chosen = voice_task(db, policy), voice_task(db, policy, chosen=False)
    ami = FakeAmi()
    voice = dialler(db, policy, tmp_path, ami)
    engine = CallbacksEngine(db, policy, clock=lambda: NOW,
                             calls=[lambda now: place_due_voice_callbacks(db, voice, now)])
    await engine.wake()
    originates = [a for a in ami.actions if a["Action"] == "Originate"]
    assert len(originates) == 1
    _, attempt = the_attempt(db, chosen)
    assert (attempt.dialler, attempt.ended_at) == ("voice", None)
    with db.session(readonly=True) as session:
        assert session.get(CallbackTask, not_chosen).attempts == []  # an operator phones that caller
    await engine.wake()  # the live attempt is not placed again
    assert len([a for a in ami.actions if a["Action"] == "Originate"]) == 1
