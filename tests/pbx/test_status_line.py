"""The case-status phone line's decisions (the FastAGI exchange itself is tested on the real Asterisk)."""
from __future__ import annotations

import wave
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from bridge.cases.service import file_case
from bridge.config import validate
from bridge.db.models import (
    CallbackAttempt,
    CallbackOutcome,
    CallbackReason,
    CallbackState,
    CallbackTask,
    CaseEvent,
    CaseState,
)
from bridge.departments.service import ensure_shipped_units
from bridge.health import Health
from bridge.live import LiveEvents
from bridge.pbx.agi import StatusAnswer, case_number_from_digits, look_up, phone_status, prompts_for, record_heard
from bridge.pbx.answer_speech import AnswerSpeech, SpeechError, speakable
from bridge.pbx.service import PbxService
from tests.cases.conftest import valid_form
from tests.site.host_clock import host_clock

pytestmark = pytest.mark.postgres

SECRETS = {"HOTLINE_BRIDGE_AMI_SECRET": "x", "HOTLINE_BRIDGE_SESSION_SECRET": "y"}
# 00:30 on 1 January 2027 in Beijing (the site's zone); still 2026 on a UTC host.
NEW_YEARS_NIGHT = datetime(2026, 12, 31, 16, 30, tzinfo=timezone.utc)
CALLER = "13912345678"


@pytest.mark.parametrize(("digits", "number"), [
    ("2026000123", "96811-2026-000123"),
    ("123", "96811-2026-000123"),
    ("000123", "96811-2026-000123"),
    ("", None),
    ("12345678", None),
    ("1999000001", None),
])
def test_keyed_digits_to_case_number(digits, number):
    assert case_number_from_digits(digits, 2026) == number


@pytest.mark.parametrize(("state", "pending", "heard"), [
    (CaseState.QUEUED, False, "filed"),
    (CaseState.POSTED, False, "filed"),
    (CaseState.ACCEPTED, False, "accepted"),
    (CaseState.FORWARDED, False, "accepted"),
    (CaseState.REOPENED, False, "accepted"),
    (CaseState.ANSWERED, True, "callback_pending"),
    (CaseState.ANSWERED, False, "answered"),
    (CaseState.CLOSED, False, "answered"),
])
def test_what_the_caller_hears(state, pending, heard):
    assert phone_status(state, pending) == heard


def test_prompts_say_the_sequence_then_the_status():
    assert prompts_for(StatusAnswer("callback_pending", "96811-2026-000120")) == [
        "case-number-is", "digits/1", "digits/2", "digits/0", "status-callback-pending"]
    assert prompts_for(StatusAnswer("answered", "96811-2026-000007", offered=True))[0] == "case-offered"
    assert prompts_for(StatusAnswer("not_found")) == ["case-not-found"]


def _file(session, config, now, **form):
    ensure_shipped_units(session)
    return file_case(session, valid_form(call_linkedid=None, **form), user=None, now=now,
                     zone=config.site.zone)


def test_a_keyed_123_on_new_years_night_is_this_years_case_on_a_utc_host(db):
    """Defect 1 of issue 9: case numbers took the site's year, the status line the host's."""
    config = validate({}, environ=SECRETS)
    with db.session() as session:
        number = _file(session, config, NEW_YEARS_NIGHT).number
    assert number == "96811-2027-000001"
    with host_clock(NEW_YEARS_NIGHT, "UTC"):
        server = PbxService(config, db, Health(), LiveEvents()).agi   # as the daemon builds it
        assert server._look_up("1", "") == StatusAnswer("filed", "96811-2027-000001")


def _callback(session, case, state):
    session.add(CallbackTask(case_id=case.id, reason=CallbackReason.ANSWER, phone=CALLER, state=state,
                             due_at=NEW_YEARS_NIGHT, waiting_since=NEW_YEARS_NIGHT, assigned_at=NEW_YEARS_NIGHT))


def test_the_caller_is_offered_the_one_case_still_under_way(db):
    """Open for its unit, or answered with the hotline's callback still to make; an answered case
    whose caller was called back is done (the unit's view: bridge.cases.service.OPEN_STATES)."""
    config = validate({}, environ=SECRETS)
    with db.session() as session:
        called_back = _file(session, config, NEW_YEARS_NIGHT)
        called_back.state = CaseState.ANSWERED
        _callback(session, called_back, CallbackState.DONE)
        session.flush()
        assert look_up(session, "", CALLER, 2027) == StatusAnswer("not_found")

        waiting = _file(session, config, NEW_YEARS_NIGHT + timedelta(days=1))
        waiting.state = CaseState.ANSWERED
        _callback(session, waiting, CallbackState.DUE)
        session.flush()
        assert look_up(session, "", CALLER, 2027) == StatusAnswer("callback_pending", waiting.number, offered=True)

        waiting.state = CaseState.ACCEPTED
        session.flush()
        assert look_up(session, "", CALLER, 2027) == StatusAnswer("accepted", waiting.number, offered=True)

        _file(session, config, NEW_YEARS_NIGHT + timedelta(days=2))       # two under way: ask for the number
        assert look_up(session, "", CALLER, 2027) == StatusAnswer("not_found")
        # Keyed, every case is found, done or not.
        assert look_up(session, "1", CALLER, 2027) == StatusAnswer("answered", called_back.number)


# ------------------------------------------------------------- the answer, by phone

ANSWER_TEXT = "已安排环卫工人清理，明天上午前完成。"


def _answered(session, config, text: str = ANSWER_TEXT, kind: str = "answered"):
    case = _file(session, config, NEW_YEARS_NIGHT)
    case.state = CaseState.ANSWERED
    event = CaseEvent(case_id=case.id, at=NEW_YEARS_NIGHT, kind=kind, actor="forum",
                      detail={"text": text, "unit": "CITY-LJQ"})
    session.add(event)
    session.flush()
    return case, event


def test_an_answered_case_carries_its_newest_answer_to_say(db):
    config = validate({}, environ=SECRETS)
    with db.session() as session:
        case, first = _answered(session, config, "第一次答复")
        later = CaseEvent(case_id=case.id, at=NEW_YEARS_NIGHT, kind="follow_up_answered", actor="forum",
                          detail={"text": ANSWER_TEXT})
        session.add(later)
        session.flush()
        keyed = look_up(session, "1", "", 2027)
        assert (keyed.status, keyed.answer_event_id, keyed.answer_text) == ("answered", later.id, ANSWER_TEXT)
        assert look_up(session, "", CALLER, 2027) == StatusAnswer("not_found")  # no callback owed: not offered
        case.state = CaseState.REOPENED  # a follow-up is being worked on: the old answer is not said
        session.flush()
        assert look_up(session, "1", "", 2027) == StatusAnswer("accepted", case.number)


def test_the_status_says_the_answer_follows_instead_of_promising_a_call():
    answer = StatusAnswer("callback_pending", "96811-2026-000003", answer_event_id=9, answer_text="x")
    assert prompts_for(answer, answer_follows=True) == ["case-number-is", "digits/3", "status-answer-follows"]
    assert prompts_for(answer)[-1] == "status-callback-pending"  # no audio (speaking failed): as before


def test_an_answer_heard_by_the_callers_own_number_is_recorded_once(db):
    config = validate({}, environ=SECRETS)
    with db.session() as session:
        case, answer = _answered(session, config)
        assert record_heard(session, answer.id, "status_line", caller_number="13800000000") is None  # a stranger
        heard = record_heard(session, answer.id, "status_line", caller_number=CALLER, linkedid="1.1")
        assert heard.kind == "answer_heard" and heard.case_id == case.id
        assert heard.detail == {"answer": answer.id, "via": "status_line", "linkedid": "1.1"}
        assert record_heard(session, answer.id, "status_line", caller_number=f"+86{CALLER}") is heard  # once
        assert record_heard(session, answer.id, "voice_callback", attempt_key="cb-1-nope") is None  # no such call
        filed = session.scalar(select(CaseEvent).where(CaseEvent.kind == "filed"))
        assert record_heard(session, filed.id, "status_line", caller_number=CALLER) is None  # not an answer
        kinds = session.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == case.id)).all()
        assert kinds.count("answer_heard") == 1


def test_a_voice_callback_counts_only_with_its_live_voice_attempt(db):
    config = validate({}, environ=SECRETS)
    with db.session() as session:
        case, answer = _answered(session, config)
        task = CallbackTask(case_id=case.id, reason=CallbackReason.ANSWER, answer_event_id=answer.id, phone=CALLER,
                            state=CallbackState.IN_PROGRESS, due_at=NEW_YEARS_NIGHT, waiting_since=NEW_YEARS_NIGHT,
                            assigned_at=NEW_YEARS_NIGHT)
        session.add(task)
        session.flush()
        session.add(CallbackAttempt(task_id=task.id, idempotency_key="cb-op", dialler="asterisk",
                                    started_at=NEW_YEARS_NIGHT))
        session.flush()
        assert record_heard(session, answer.id, "voice_callback", attempt_key="cb-op") is None  # an operator's call
        session.get(CallbackAttempt, 1).ended_at = NEW_YEARS_NIGHT
        session.add(CallbackAttempt(task_id=task.id, idempotency_key="cb-voice", dialler="voice",
                                    started_at=NEW_YEARS_NIGHT))
        session.flush()
        heard = record_heard(session, answer.id, "voice_callback", attempt_key="cb-voice")
        assert heard.detail["attempt"] == "cb-voice" and heard.detail["via"] == "voice_callback"


def test_answer_heard_reads_in_the_pages_language():
    from bridge.cases.timeline import timeline_view
    from bridge.i18n import translations

    entry = {"at": NEW_YEARS_NIGHT, "kind": "answer_heard", "actor": "pbx",
             "detail": {"answer": 3, "via": "status_line"}}
    (view,) = timeline_view([entry], {}, translations("zh_CN"))
    assert (view["label"], view["actor"], view["note"]) == ("来电人已电话收听答复（无人工）", "电话系统", "通过案件查询热线")
    (english,) = timeline_view([entry], {}, translations("en"))
    assert english["label"] == "answer heard by phone, without an operator"


def test_the_answer_is_spoken_once_into_an_8khz_wav(tmp_path):
    speech = AnswerSpeech(tmp_path / "recordings")
    path = speech.audio_for(41, f"{ANSWER_TEXT} 详见 https://forum.example.org/t/1")
    assert path.parent == tmp_path / "recordings" / "answers" and path.name.startswith("answer-41-")
    assert f"{speech.name_for(41, ANSWER_TEXT + ' 详见')}.wav" == f"answers/{path.name}"  # links are not said
    with wave.open(str(path)) as audio:
        assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (8000, 1, 2)
        assert audio.getnframes() > 8000  # more than a second of speech
    made = path.stat().st_mtime_ns
    assert speech.audio_for(41, f"{ANSWER_TEXT} 详见").stat().st_mtime_ns == made  # made once, then kept
    # The same event id with another text (another database, a reset) is another file, never the stale one.
    assert speech.audio_for(41, "另一个答复").name != path.name
    assert speakable("答复 http://x.org/a  见\n附件") == "答复 见 附件"
    assert not list(path.parent.glob(".speaking-*"))
    with pytest.raises(SpeechError, match="no text"):
        speech.audio_for(42, "https://only.a.link/")


async def test_the_callbacks_capability_makes_the_heard_answer_informed(db):
    """answer_heard -> the domain-event consumer -> callbacks.tasks.heard_answer: the case's open
    task for that answer (or an older one) is done, informed, without a grade; a newer answer's is not."""
    from bridge.domain_events import DomainEvents
    from callbacks.capability import heard_consumer

    config = validate({}, environ=SECRETS)
    with db.session() as session:
        case, answer = _answered(session, config)
        task = CallbackTask(case_id=case.id, reason=CallbackReason.ANSWER, answer_event_id=answer.id, phone=CALLER,
                            state=CallbackState.DUE, due_at=NEW_YEARS_NIGHT, waiting_since=NEW_YEARS_NIGHT,
                            assigned_at=NEW_YEARS_NIGHT)
        session.add(task)
        session.flush()
        record_heard(session, answer.id, "status_line", caller_number=CALLER)
        task_id = task.id
    publisher = DomainEvents(db, poll_s=3600)
    publisher.register(heard_consumer(clock=lambda: NEW_YEARS_NIGHT + timedelta(hours=1)))
    await publisher.start()
    await publisher.stop()
    with db.session(readonly=True) as session:
        task = session.get(CallbackTask, task_id)
        assert (task.state, task.outcome, task.satisfaction) == (CallbackState.DONE, CallbackOutcome.INFORMED, None)
        assert task.completed_at == NEW_YEARS_NIGHT + timedelta(hours=1)
        outcome = session.scalar(select(CaseEvent).where(CaseEvent.kind == "callback_outcome"))
        assert outcome.detail == {"task": task_id, "outcome": "informed", "via": "status_line"}
