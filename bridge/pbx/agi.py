"""The case-status phone line: a FastAGI server the dialplan calls as
``AGI(agi://HOST:PORT/case-status,DIGITS)``.

The caller keys a case number (the digits after "96811-": year and sequence,
e.g. 2026000123, or only the sequence for this year, e.g. 123; "this year" is the
site's, :class:`bridge.site.clock.SiteClock`, as for the numbers filed).  With no
digits, a caller whose number matches exactly one case still under way is offered that
case: one open for its unit (:data:`bridge.cases.service.OPEN_STATES`), or answered
with the hotline's callback still to make.  An answered case whose caller has been
called back is done for the caller too; they can still key its number.
The server sets ``HOTLINE_CASE_STATUS`` (filed, accepted, answered,
callback_pending, not_found) and ``HOTLINE_CASE_NUMBER`` on the channel and speaks the
status with the prompts in the folder the dialplan's ``HOTLINE_SOUNDS`` names.

An answered case's caller hears the unit's answer itself: the server speaks the newest
answer's text into a file (:mod:`bridge.pbx.answer_speech`, once per answer) and sets
``HOTLINE_ANSWER_AUDIO`` (the file, as Asterisk names it) and ``HOTLINE_ANSWER_EVENT``
(the answer's case event id); the dialplan's ``[hotline-answer]`` plays it with its keys.

``agi://HOST:PORT/answer-heard,EVENT,VIA[,ATTEMPT]``: the dialplan played that answer to
its end.  The server writes the case event ``answer_heard`` (domain-event topic
``answer_heard``; the callbacks capability marks the caller informed) when the listener is
the case's caller: on the status line (``VIA`` status_line) when the calling number is
the case's, on an automated voice callback (``voice_callback``) when ``ATTEMPT`` is that
call's live attempt.  Each answer counts once.

We use panoramisk's ``fast_agi.Request`` for the command exchange, but read the
request headers ourselves: panoramisk 1.4's ``Application.handler`` spins
forever when Asterisk closes the socket before the blank line, and has no
timeout.
"""
from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime

import structlog
from panoramisk.fast_agi import Request
from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from bridge.cases.service import OPEN_STATES
from bridge.cases.validation import normalise_phone
from bridge.db.case_numbers import format_case_number
from bridge.db.models import CallbackAttempt, CallbackState, CallbackTask, Case, CaseEvent, CaseState, utcnow
from bridge.domain_events import ANSWER_HEARD_KIND, announce_case_event
from bridge.pbx.answer_speech import AnswerSpeech, SpeechError
from bridge.site.clock import SiteClock

log = structlog.get_logger(__name__)

SCRIPT = "case-status"
HEARD_SCRIPT = "answer-heard"
HEADER_TIMEOUT_S = 5.0
# The case events that carry a unit's answer (its text in detail["text"]).
ANSWER_KINDS = ("answered", "follow_up_answered")
# Who heard an answer without a person (answer_heard's detail "via").
VIA_STATUS_LINE = "status_line"
VIA_VOICE_CALLBACK = "voice_callback"
# Still owed: everything but done and unreachable (an unreachable caller can key the number).
CALLBACK_PENDING_STATES = (CallbackState.SCHEDULED, CallbackState.DUE, CallbackState.IN_PROGRESS)


@dataclass(frozen=True)
class StatusAnswer:
    status: str  # filed | accepted | answered | callback_pending | not_found
    case_number: str | None = None
    offered: bool = False  # found from the caller's number, not keyed
    answer_event_id: int | None = None  # the newest answer of an answered case (said to the caller)
    answer_text: str = ""


def phone_status(state: CaseState, callback_pending: bool) -> str:
    """What the caller hears for a case in ``state``."""
    if state in (CaseState.QUEUED, CaseState.POSTED):
        return "filed"
    if state in (CaseState.ACCEPTED, CaseState.FORWARDED, CaseState.REOPENED):
        return "accepted"
    return "callback_pending" if callback_pending else "answered"


def case_number_from_digits(digits: str, this_year: int) -> str | None:
    """'2026000123' -> '96811-2026-000123'; '123' -> this year's case 123; else None."""
    digits = re.sub(r"\D", "", digits or "")
    if len(digits) == 10 and digits.startswith("20"):
        return format_case_number(int(digits[:4]), int(digits[4:]))
    if 1 <= len(digits) <= 6:
        return format_case_number(this_year, int(digits))
    return None


def _callback_pending(case_id):
    """SQL: the hotline still owes the caller of case ``case_id`` a callback."""
    return exists().where(CallbackTask.case_id == case_id, CallbackTask.state.in_(CALLBACK_PENDING_STATES))


def newest_answer(session: Session, case_id: int) -> CaseEvent | None:
    return session.scalar(select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.kind.in_(ANSWER_KINDS))
                          .order_by(CaseEvent.id.desc()).limit(1))


def _answer_for(session: Session, case: Case) -> StatusAnswer:
    pending = bool(session.scalar(select(_callback_pending(case.id))))
    status = phone_status(case.state, pending)
    answer = newest_answer(session, case.id) if status in ("answered", "callback_pending") else None
    text = str((answer.detail or {}).get("text") or "").strip() if answer is not None else ""
    if not text:
        return StatusAnswer(status, case.number)
    return StatusAnswer(status, case.number, answer_event_id=answer.id, answer_text=text)


def look_up(session: Session, digits: str, caller_number: str, this_year: int) -> StatusAnswer:
    """What the caller hears; ``this_year`` is the site's year (a case number's "123")."""
    number = case_number_from_digits(digits, this_year)
    if number:
        case = session.scalar(select(Case).where(Case.number == number))
        return _answer_for(session, case) if case else StatusAnswer("not_found")
    phone = normalise_phone(caller_number)  # cases keep numbers in E.164
    if digits or not phone:
        return StatusAnswer("not_found")
    under_way = or_(Case.state.in_(OPEN_STATES),
                    and_(Case.state == CaseState.ANSWERED, _callback_pending(Case.id)))
    cases = session.scalars(select(Case).where(Case.caller_phone == phone, under_way).limit(2)).all()
    if len(cases) == 1:
        return replace(_answer_for(session, cases[0]), offered=True)
    return StatusAnswer("not_found")


def prompts_for(answer: StatusAnswer, *, answer_follows: bool = False) -> list[str]:
    """Prompt names, in order, relative to the sound folder; ``answer_follows``: the unit's
    answer is played next (by the dialplan), so the status says so instead of promising a call."""
    if answer.status == "not_found":
        return ["case-not-found"]
    sequence = answer.case_number.rsplit("-", 1)[1].lstrip("0") or "0"
    intro = ["case-offered"] if answer.offered else ["case-number-is"]
    status = "status-answer-follows" if answer_follows else f"status-{answer.status.replace('_', '-')}"
    return [*intro, *(f"digits/{d}" for d in sequence), status]


def _is_callers_number(case: Case, caller_number: str) -> bool:
    phone = normalise_phone(caller_number)
    return bool(phone) and phone in {case.caller_phone, normalise_phone(case.caller_phone_alt or "")}


def _listener_is_the_caller(session: Session, case: Case, via: str, caller_number: str, attempt_key: str) -> bool:
    if via == VIA_STATUS_LINE:
        return _is_callers_number(case, caller_number)
    if via == VIA_VOICE_CALLBACK and attempt_key:
        attempt = session.scalar(select(CallbackAttempt).where(CallbackAttempt.idempotency_key == attempt_key))
        return (attempt is not None and attempt.dialler == "voice" and attempt.ended_at is None
                and attempt.task.case_id == case.id)
    return False


def record_heard(session: Session, answer_event_id: int, via: str, *, caller_number: str = "",
                 attempt_key: str = "", linkedid: str = "", now: datetime | None = None) -> CaseEvent | None:
    """The case event ``answer_heard`` for an answer played to its end to the case's caller (the
    first time only); None when the event is not an answer, or the listener is not the caller."""
    answer = session.get(CaseEvent, answer_event_id)
    if answer is None or answer.kind not in ANSWER_KINDS:
        return None
    case = answer.case
    if not _listener_is_the_caller(session, case, via, caller_number, attempt_key):
        log.info("agi.answer_heard_by_another", case_number=case.number, via=via, linkedid=linkedid)
        return None
    for earlier in session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id,
                                                           CaseEvent.kind == ANSWER_HEARD_KIND)):
        if (earlier.detail or {}).get("answer") == answer.id:
            return earlier
    detail = {"answer": answer.id, "via": via, "linkedid": linkedid}
    if attempt_key:
        detail["attempt"] = attempt_key
    announce_case_event(session, ANSWER_HEARD_KIND)
    event = CaseEvent(case_id=case.id, at=now or utcnow(), kind=ANSWER_HEARD_KIND, actor="pbx", detail=detail)
    session.add(event)
    session.flush()
    log.info("agi.answer_heard", case_number=case.number, answer=answer.id, via=via, linkedid=linkedid)
    return event


class CaseStatusServer:
    """Serves ``agi://HOST:PORT/case-status`` inside the daemon's loop."""

    def __init__(self, host: str, port: int, db, *, clock: SiteClock, speech: AnswerSpeech | None = None) -> None:
        """``clock``: the site's (its year completes a keyed "123"); ``speech``: where answers are
        spoken into (None: the status line says only the status)."""
        self.host, self.port, self.db = host, port, db
        self._clock = clock
        self.speech = speech
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._handle, self.host, self.port)
        except OSError as exc:
            raise OSError(exc.errno, f"pbx.agi_port: cannot listen on {self.host}:{self.port}: {exc.strerror}; "
                                     "choose a free port in [pbx]") from None
        log.info("agi.listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            raw = await asyncio.wait_for(reader.readuntil(b"\n\n"), HEADER_TIMEOUT_S)
            headers = OrderedDict(
                line.split(": ", 1) for line in raw.decode("utf-8", "replace").splitlines() if ": " in line
            )
            script = headers.get("agi_network_script", "").strip("/")
            if script == SCRIPT:
                await self._serve(Request(None, headers, reader, writer), headers)
            elif script == HEARD_SCRIPT:
                await self._heard(headers)
            else:
                log.warning("agi.unknown_script", script=script)
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError) as exc:
            log.warning("agi.request_dropped", error=repr(exc))
        except Exception:
            log.exception("agi.failed")
        finally:
            writer.close()

    async def _serve(self, request: Request, headers: dict) -> None:
        digits = headers.get("agi_arg_1", "")
        caller = headers.get("agi_callerid", "")
        linkedid = headers.get("agi_uniqueid", "")
        answer = await self.db.run(self._look_up, digits, caller)
        log.info("agi.case_status", linkedid=linkedid, case_number=answer.case_number,
                 status=answer.status, offered=answer.offered)
        await request.send_command(f"SET VARIABLE HOTLINE_CASE_STATUS {answer.status}")
        if answer.case_number:
            await request.send_command(f"SET VARIABLE HOTLINE_CASE_NUMBER {answer.case_number}")
        if not digits and not answer.offered:
            return  # nothing to offer: the dialplan asks for the number
        # The dialplan's globals say where the prompts and recordings are: one place, no copy here.
        sounds_dir = await _variable(request, "HOTLINE_SOUNDS") or "hotline"
        audio = await self._answer_audio(request, answer, linkedid)
        if audio:
            await request.send_command(f"SET VARIABLE HOTLINE_ANSWER_AUDIO {audio}")
            await request.send_command(f"SET VARIABLE HOTLINE_ANSWER_EVENT {answer.answer_event_id}")
        for prompt in prompts_for(answer, answer_follows=bool(audio)):
            result = await request.send_command(f'STREAM FILE {sounds_dir}/{prompt} ""')
            if "error" in result:  # hung up, or the prompt is missing: nothing more to say
                log.info("agi.stream_stopped", linkedid=linkedid, prompt=prompt, error=result["error"])
                break

    def _look_up(self, digits: str, caller: str) -> StatusAnswer:
        with self.db.session() as session:
            return look_up(session, digits, caller, self._clock.this_year())

    async def _answer_audio(self, request: Request, answer: StatusAnswer, linkedid: str) -> str | None:
        """The spoken answer as Asterisk names it (made now if new), or None: nothing to say, no
        folder to speak into, or speaking failed (the caller then hears the status alone)."""
        if self.speech is None or answer.answer_event_id is None:
            return None
        recordings = await _variable(request, "HOTLINE_RECORDINGS")
        if not recordings:
            log.warning("agi.no_recordings_folder", linkedid=linkedid, case_number=answer.case_number)
            return None
        try:
            await asyncio.to_thread(self.speech.audio_for, answer.answer_event_id, answer.answer_text)
        except (SpeechError, OSError) as exc:
            log.warning("agi.answer_not_spoken", linkedid=linkedid, case_number=answer.case_number, error=str(exc))
            return None
        return f"{recordings.rstrip('/')}/{self.speech.name_for(answer.answer_event_id, answer.answer_text)}"

    async def _heard(self, headers: dict) -> None:
        try:
            answer_event_id = int(headers.get("agi_arg_1", ""))
        except ValueError:
            log.warning("agi.answer_heard_without_answer", arg=headers.get("agi_arg_1"))
            return
        await self.db.run(self.db.in_session, record_heard, answer_event_id, headers.get("agi_arg_2", ""),
                          caller_number=headers.get("agi_callerid", ""), attempt_key=headers.get("agi_arg_3", ""),
                          linkedid=headers.get("agi_uniqueid", ""))


async def _variable(request: Request, name: str) -> str:
    """A channel (or global) variable's value, "" when unset."""
    reply = await request.send_command(f"GET FULL VARIABLE ${{{name}}}")
    return reply.get("result", ("", ""))[1].strip("()")
