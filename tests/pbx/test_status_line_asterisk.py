"""The answer by phone, without a person, on the real Asterisk test bed: a SIPp caller keys 2
and the case number, hears the unit's answer (spoken offline by the daemon's FastAGI server)
and counts as informed; the keys to hear it again and to reach an operator.

The daemon's PBX link (``PbxService``) runs in this process on a fresh SQLite database, as in
tests/pbx/test_calllog_asterisk.py; the callbacks capability's consumers run over the same
database (the daemon's ``DomainEvents``).
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from bridge.capability import Runtime
from bridge.db.models import CallbackOutcome, CallbackState, CallbackTask, Case, CaseEvent, CaseState
from bridge.domain_events import DomainEvents
from bridge.pbx.answer_speech import AnswerSpeech
from callbacks.capability import CallbacksCapability
from tests.pbx.test_calllog_asterisk import bridge, file_test_case, finished, new_caller  # noqa: F401 (fixture)

pytestmark = [pytest.mark.asterisk, pytest.mark.timeout(180)]

# About ten seconds of speech: keys pressed a few seconds into it land while it plays.
ANSWER_TEXT = ("经现场核查，楼道内饲养的公鸡已由社区工作人员劝导主人移走，"
               "今后如再发现类似情况，请拨打社区电话反映。")


def answer_case(db, number: str, text: str = ANSWER_TEXT) -> int:
    """The unit's answer on the case's timeline, as the forum service writes it; its event id."""
    with db.session() as session:
        case = session.scalar(select(Case).where(Case.number == number))
        case.state = CaseState.ANSWERED
        event = CaseEvent(case_id=case.id, at=datetime.now(timezone.utc), kind="answered", actor="forum",
                          detail={"text": text, "unit": "CITY-ZHZFJ"})
        session.add(event)
        session.flush()
        return event.id


async def run_callbacks(bridge) -> None:  # noqa: F811 (the fixture's name)
    """The callbacks capability's consumers, once over every pending event (as a daemon start does)."""
    publisher = DomainEvents(bridge.db, poll_s=3600)
    runtime = Runtime(bridge.config, bridge.db, bridge.health, bridge.live, capabilities=())
    for consumer in CallbacksCapability().consumers(runtime):
        publisher.register(consumer)
    await publisher.start()
    await publisher.stop()


def task_of(db, answer_event_id: int) -> CallbackTask:
    with db.session(readonly=True) as session:
        task = session.scalar(select(CallbackTask).where(CallbackTask.answer_event_id == answer_event_id))
        session.expunge_all()
        return task


def heard_events(db, number: str) -> list[dict]:
    with db.session(readonly=True) as session:
        return [e.detail for e in session.scalars(select(CaseEvent).join(Case).where(
            Case.number == number, CaseEvent.kind == "answer_heard"))]


def audio_name(bridge, answer_event_id: int, text: str = ANSWER_TEXT) -> str:  # noqa: F811 (the fixture's name)
    """The spoken answer's name in the recordings folder, as the daemon names it."""
    return AnswerSpeech.of(bridge.config).name_for(answer_event_id, text)


def keyed(number: str) -> str:
    return number.split("-", 1)[1].replace("-", "")  # 96811-2026-000001 -> 2026000001


def plays(ami, linkedid: str, audio: str) -> list[dict]:
    """The answer's Read() steps of the call, as the observer saw them."""
    return ami.find("Newexten", Application="Read", Linkedid=linkedid,
                    where=lambda e: e.get("AppData", "").startswith(f"HOTLINE_CHOICE,{audio},"))


@pytest.fixture
def answered_twice(asterisk, bridge):  # noqa: F811
    """A caller with two answered cases, each with its callback task still owed (so the status
    line does not offer one: the caller keys the number)."""
    caller = new_caller()
    numbers = [file_test_case(asterisk, bridge.db, caller) for _ in range(2)]
    answers = [answer_case(bridge.db, number) for number in numbers]
    return caller, numbers, answers


@pytest.fixture
def recordings(asterisk):
    chroot = "/" + str(asterisk.sandbox.paths()["recordings"].relative_to(asterisk.sandbox.root))
    return asterisk.sandbox.paths()["recordings"], chroot


async def test_the_caller_keys_the_number_hears_the_answer_and_is_informed(asterisk, bridge, answered_twice,  # noqa: F811
                                                                            recordings):
    caller, (number, other), (answer, other_answer) = answered_twice
    await run_callbacks(bridge)  # the answers make their tasks
    assert task_of(bridge.db, answer).state in (CallbackState.SCHEDULED, CallbackState.DUE)
    host_dir, chroot_dir = recordings
    audio = f"{chroot_dir}/{audio_name(bridge, answer)}"
    offset = asterisk.full_log.stat().st_size
    async with asterisk.ami_events() as ami:
        run = asterisk.place_calls(1, caller_number=caller, caller_name="李先生", digits=f"2{keyed(number)}#",
                                   hold_ms=90000)
        case = await ami.wait_for("VarSet", Variable="HOTLINE_CASE_NUMBER", timeout=40)
        linkedid = case["Linkedid"]
        await finished(run)  # the hotline hangs up after the answer, its keys' prompt and "thanks"
        assert ami.varset("HOTLINE_CASE_STATUS", Linkedid=linkedid) == ["not_found", "callback_pending"]
        assert ami.varset("HOTLINE_ANSWER_EVENT", Linkedid=linkedid) == [str(answer)]
        assert ami.varset("HOTLINE_ANSWER_AUDIO", Linkedid=linkedid) == [audio]
        assert len(plays(ami, linkedid, audio)) == 1
        heard = ami.find("Newexten", Application="AGI", Linkedid=linkedid,
                         where=lambda e: "/answer-heard," in e.get("AppData", ""))
        assert heard and heard[0]["AppData"].endswith(f"/answer-heard,{answer},status_line,")
    log = asterisk.full_log.read_bytes()[offset:].decode("utf-8", errors="replace")
    about = [line for line in log.splitlines() if audio_name(bridge, answer) in line]
    assert any(f"Playing '{audio}." in line for line in about), about  # Asterisk found the file and played it
    assert not [line for line in about if "does not exist" in line or "Unable to open" in line]
    assert (host_dir / f"{audio_name(bridge, answer)}.wav").stat().st_size > 44 + 8000 * 2 * 5  # 5 s of speech or more
    assert heard_events(bridge.db, number) == [{"answer": answer, "via": "status_line", "linkedid": linkedid}]

    await run_callbacks(bridge)
    task = task_of(bridge.db, answer)
    assert (task.state, task.outcome, task.satisfaction) == (CallbackState.DONE, CallbackOutcome.INFORMED, None)
    assert task_of(bridge.db, other_answer).state in (CallbackState.SCHEDULED, CallbackState.DUE)  # not that one
    assert heard_events(bridge.db, other) == []


async def test_someone_else_keying_the_number_hears_it_but_the_caller_is_still_owed_the_call(
        asterisk, bridge, answered_twice, recordings):  # noqa: F811
    _, (number, _), (answer, _) = answered_twice
    await run_callbacks(bridge)
    audio = f"{recordings[1]}/{audio_name(bridge, answer)}"
    async with asterisk.ami_events() as ami:
        run = asterisk.place_calls(1, caller_number=new_caller(), caller_name="邻居", digits=f"2{keyed(number)}#",
                                   hold_ms=90000)
        case = await ami.wait_for("VarSet", Variable="HOTLINE_CASE_NUMBER", timeout=40)
        await finished(run)
        assert len(plays(ami, case["Linkedid"], audio)) == 1
        assert ami.find("Newexten", Application="AGI", Linkedid=case["Linkedid"],
                        where=lambda e: "/answer-heard," in e.get("AppData", ""))
    assert heard_events(bridge.db, number) == []
    await run_callbacks(bridge)
    assert task_of(bridge.db, answer).state in (CallbackState.SCHEDULED, CallbackState.DUE)


async def test_2_hears_the_answer_again_and_1_reaches_an_operator(asterisk, bridge, answered_twice,  # noqa: F811
                                                                   recordings):
    caller, (number, _), (answer, _) = answered_twice
    audio = f"{recordings[1]}/{audio_name(bridge, answer)}"
    # The case number, then "2" a few seconds into the answer, then "1" a few seconds into its replay.
    digits = f"2{keyed(number)}#" + "," * 8 + "2" + "," * 4 + "1"
    with asterisk.desk_phone("8001"):
        async with asterisk.ami_events() as ami:
            run = asterisk.place_calls(1, caller_number=caller, caller_name="李先生", digits=digits, hold_ms=3000)
            case = await ami.wait_for("VarSet", Variable="HOTLINE_CASE_NUMBER", timeout=40)
            linkedid = case["Linkedid"]
            join = await ami.wait_for("QueueCallerJoin", Linkedid=linkedid, timeout=40)
            assert join["Queue"] == "hotline"
            await finished(run)
            assert len(plays(ami, linkedid, audio)) == 2
            assert ami.varset("HOTLINE_CHOICE", Linkedid=linkedid)[-2:] == ["2", "1"]
            assert ami.varset("HOTLINE_DISPOSITION", Linkedid=linkedid)[-1] == "operator"
    assert heard_events(bridge.db, number) == []  # interrupted both times: an operator tells the caller


async def test_an_answer_file_this_asterisk_cannot_see_is_not_counted_as_heard(asterisk, bridge, tmp_path):  # noqa: F811
    """The daemon spoke the answer into a folder that is not Asterisk's recordings folder (a site
    whose two views of it differ): the caller hears the status and the usual menu, and nothing
    counts as heard."""
    caller = new_caller()
    text = f"{ANSWER_TEXT}（{caller}）"  # a text no other test spoke: its file is nowhere Asterisk looks
    number, _ = (file_test_case(asterisk, bridge.db, caller) for _ in range(2))
    answer = answer_case(bridge.db, number, text)
    await run_callbacks(bridge)
    bridge.service.agi.speech = AnswerSpeech(tmp_path / "elsewhere")
    async with asterisk.ami_events() as ami:
        run = asterisk.place_calls(1, caller_number=caller, caller_name="李先生", digits=f"2{keyed(number)}#",
                                   hold_ms=90000)
        case = await ami.wait_for("VarSet", Variable="HOTLINE_CASE_NUMBER", timeout=40)
        linkedid = case["Linkedid"]
        await finished(run)
        assert ami.varset("HOTLINE_ANSWER_MISSING", Linkedid=linkedid)[0].endswith(audio_name(bridge, answer, text))
        assert not ami.find("Newexten", Application="AGI", Linkedid=linkedid,
                            where=lambda e: "/answer-heard," in e.get("AppData", ""))
        assert ami.find("Newexten", Application="Read", Linkedid=linkedid,
                        where=lambda e: "/after-status," in e.get("AppData", ""))
    assert (tmp_path / "elsewhere" / f"{audio_name(bridge, answer, text)}.wav").is_file()
    assert heard_events(bridge.db, number) == []
    await run_callbacks(bridge)
    assert task_of(bridge.db, answer).state in (CallbackState.SCHEDULED, CallbackState.DUE)


async def test_the_callers_own_answered_case_is_offered_and_its_answer_said_at_once(asterisk, bridge):  # noqa: F811
    """The caller keys only 2: their one case still owed a callback is offered from their number,
    its answer said, and they count as informed."""
    caller = new_caller()
    number = file_test_case(asterisk, bridge.db, caller)
    answer = answer_case(bridge.db, number)
    await run_callbacks(bridge)
    async with asterisk.ami_events() as ami:
        run = asterisk.place_calls(1, caller_number=caller, caller_name="李先生", digits="2", hold_ms=90000)
        case = await ami.wait_for("VarSet", Variable="HOTLINE_CASE_NUMBER", timeout=40)
        linkedid = case["Linkedid"]
        await finished(run)
        assert ami.varset("HOTLINE_CASE_STATUS", Linkedid=linkedid) == ["callback_pending"]
        assert ami.varset("HOTLINE_CASE", Linkedid=linkedid) == []  # nothing keyed
        assert ami.varset("HOTLINE_ANSWER_EVENT", Linkedid=linkedid) == [str(answer)]
    assert [h["via"] for h in heard_events(bridge.db, number)] == ["status_line"]
    await run_callbacks(bridge)
    assert task_of(bridge.db, answer).state is CallbackState.DONE
