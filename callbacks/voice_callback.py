"""The automated voice callback: for a caller who chose it (``cases.voice_callback``), the site's
own Asterisk phones them and plays the unit's answer, spoken offline (the status line's
recording, :mod:`bridge.pbx.answer_speech`), with the status line's keys (2 = hear it again,
1 = an operator).  No operator is on the line.

The engine (:mod:`callbacks.engine`) decides when; it calls :meth:`VoiceCallbacks.place` for a
due task whose case :func:`wants_voice_callback`.  The order is the Placer's, "never twice":

1. the answer is spoken into its file (made once per answer, before any row, so a speech
   failure costs no attempt);
2. :func:`callbacks.tasks.begin_attempt` (``user`` None, dialler ``voice``) writes the attempt
   row and **commits**;
3. AMI ``Originate`` to the caller through the trunk, into the shipped context
   ``hotline-voice-callback``, ActionID and ``HOTLINE_CALLBACK_ATTEMPT`` = the attempt's key.

The result comes from Asterisk's events (:meth:`VoiceCallbacks.on_ami_event`, an AMI listener
of the callbacks capability): the outbound channel is known by its ``VarSet`` of
``HOTLINE_CALLBACK_ATTEMPT``; ``OriginateResponse`` failure and the channel's ``Hangup`` cause
-> ``busy`` / ``no_answer`` / ``failed`` with the cause (:func:`callbacks.tasks.settle_attempt`:
the retry ladder, or "check the number"); success -> the caller picked up, and at the
channel's ``Hangup`` the attempt is settled ``answered``.  Heard to its
end, the dialplan told the daemon (AGI ``answer-heard``, case event ``answer_heard`` with the
attempt's key) and the capability's consumer made the task ``done``/informed
(:func:`callbacks.tasks.heard_answer`).  Picked up but not heard to the end, the task is due
again, for an operator: an automated call is not placed twice for one answer.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog
from fastapi import APIRouter, Request, Response
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from bridge.cases.validation import display_phone
from bridge.db.engine import Database
from bridge.db.models import (
    CallbackAttempt,
    CallbackAttemptResult,
    CallbackReason,
    CallbackState,
    CallbackTask,
    Case,
    CaseEvent,
    utcnow,
)
from bridge.domain_events import ANSWER_HEARD_KIND
from bridge.live import LiveEvent
from bridge.pbx.answer_speech import AnswerSpeech, SpeechError
from callbacks import tasks
from callbacks.placing import LIVE_TOPIC, DiallerError
from callbacks.tasks import CallbackPolicy, CallbackRefused, Refusal
from callbacks.twilio_gateway import TwilioError
from callbacks.twilio_status import SIGNATURE_HEADER, STATUS_PATH

log = structlog.get_logger(__name__)

DIALLER = "voice"  # callback_attempts.dialler
CONTEXT = "hotline-voice-callback"  # dialplan/templates/extensions.conf.j2
# OriginateResponse's Reason (Asterisk's AST_CONTROL_* of the outbound channel) -> the attempt's result.
REASONS = {"1": CallbackAttemptResult.NO_ANSWER,  # hung up (rejected) before answering
           "3": CallbackAttemptResult.NO_ANSWER,  # still ringing when Timeout ran out
           "5": CallbackAttemptResult.BUSY}
# A channel hung up with one of these causes (Q.850) is busy / not answered, whatever the Reason.
CAUSES = {"17": CallbackAttemptResult.BUSY, "18": CallbackAttemptResult.NO_ANSWER,
          "19": CallbackAttemptResult.NO_ANSWER}


@dataclass(frozen=True)
class VoiceCall:
    """What is known of a voice callback placed: the attempt and the answer it plays."""

    key: str
    task_id: int
    attempt_id: int
    answer_event_id: int
    audio: str  # the spoken answer's name in the recordings folder (AnswerSpeech.name_for)
    dial: str  # the number as the trunk is dialled (national form)


def wants_voice_callback(session: Session, task_id: int) -> bool:
    """The task brings an answer to a caller who chose the automated voice callback, and no voice
    callback of this task has reached them yet (then an operator phones, as for everyone)."""
    task = session.get(CallbackTask, task_id)
    if task is None or task.reason is not CallbackReason.ANSWER or task.case is None or not task.case.voice_callback:
        return False
    return not any(a.dialler == DIALLER and a.result is CallbackAttemptResult.ANSWERED for a in task.attempts)


# At most this many automated voice callbacks are placed per wake of the engine (the rest next wake).
VOICE_CALLS_PER_WAKE = 20


def due_voice_callbacks(session: Session, now: datetime, limit: int = VOICE_CALLS_PER_WAKE) -> list[int]:
    """The tasks due now whose caller chose the automated voice callback and has not heard it yet,
    the longest-waiting first."""
    due = or_(CallbackTask.state == CallbackState.DUE,
              and_(CallbackTask.state == CallbackState.SCHEDULED, CallbackTask.due_at <= now))
    ids = session.scalars(select(CallbackTask.id).join(Case, Case.id == CallbackTask.case_id)
                          .where(due, CallbackTask.reason == CallbackReason.ANSWER, Case.voice_callback.is_(True),
                                 CallbackTask.needs_check.is_(None))
                          .order_by(CallbackTask.waiting_since, CallbackTask.id).limit(limit))
    return [task_id for task_id in ids if wants_voice_callback(session, task_id)]


async def place_due_voice_callbacks(db: Database, dialler, now: datetime) -> list[int]:
    """Place the due automated voice callbacks through ``dialler`` (:class:`VoiceCallbacks` or
    :class:`TwilioVoiceCallbacks`); a task refused now (PBX down, outside the windows, a call
    live) waits for the next wake.  The tasks placed."""
    placed = []
    for task_id in await db.run_in_session(due_voice_callbacks, now, readonly=True):
        try:
            await dialler.place(task_id)
        except CallbackRefused as refused:
            log.info("voice_callback.not_placed", task_id=task_id, refusal=refused.refusal.value)
            continue
        placed.append(task_id)
    return placed


def dial_string(phone: str) -> str:
    """A stored E.164 number as the carrier is dialled: the national form, digits only."""
    return "".join(ch for ch in display_phone(phone) if ch.isdigit() or ch == "+")


def answer_to_say(session: Session, task_id: int) -> tuple[int, str]:
    """The newest answer of the task's case (event id, text); :class:`CallbackRefused` when the
    caller did not choose a voice callback or there is nothing to say."""
    task = session.get(CallbackTask, task_id)
    if task is None:
        raise CallbackRefused(Refusal.NOT_FOUND)
    if not wants_voice_callback(session, task_id):
        raise CallbackRefused(Refusal.CLOSED, "the caller did not choose an automated voice callback")
    brief = tasks.briefing(session, task)
    if brief.answer_event_id is None or not brief.answer_text.strip():
        raise CallbackRefused(Refusal.NOT_FOUND, "the case has no answer text to say")
    return brief.answer_event_id, brief.answer_text


def not_heard_goes_to_an_operator(task: CallbackTask, now: datetime) -> None:
    """Picked up but not heard to the end: due again, for an operator (no outcome will be recorded
    for the automated call, and it is not placed again for this answer)."""
    if task.state is CallbackState.IN_PROGRESS:
        task.state, task.updated_at = CallbackState.DUE, now


def heard_on(session: Session, attempt: CallbackAttempt) -> bool:
    """The dialplan reported the answer heard to its end on this attempt's call."""
    events = session.scalars(select(CaseEvent.detail).where(CaseEvent.case_id == attempt.task.case_id,
                                                            CaseEvent.kind == ANSWER_HEARD_KIND))
    return any((detail or {}).get("attempt") == attempt.idempotency_key for detail in events)


@dataclass
class _Progress:
    """What Asterisk said so far about one call (its events come in either order)."""

    call: VoiceCall
    uniqueid: str | None = None  # the outbound channel's
    response: str | None = None  # OriginateResponse: Success (picked up) | Failure
    reason: str | None = None
    cause: str | None = None  # the channel's Hangup cause, once it hung up
    linkedid: str | None = None


class VoiceCallbacks:
    """The voice dialler of one daemon; ``ami``: the PBX link's AMI client (``send_action``,
    ``is_up``), or a callable giving it (the link is built after the capability)."""

    name = DIALLER

    def __init__(self, db: Database, policy: CallbackPolicy, speech: AnswerSpeech, ami, *,
                 hotline_number: str, ring_s: int = 45, clock: Callable[[], datetime] = utcnow,
                 live=None) -> None:
        self.db, self.policy, self.speech, self.live = db, policy, speech, live
        self._ami = ami
        self.hotline_number, self.ring_s, self.clock = hotline_number, ring_s, clock
        self._trunk: str | None = None
        self._live: dict[str, _Progress] = {}  # ActionID (the attempt's key) -> the call under way
        self._by_channel: dict[str, _Progress] = {}  # its channel's Uniqueid -> the same

    @classmethod
    def of(cls, runtime, policy: CallbackPolicy | None = None) -> VoiceCallbacks | None:
        """The daemon's voice dialler (its AMI client is the PBX link's, looked up when needed); None
        without a PBX or a recordings folder to speak the answers into."""
        config = runtime.config
        speech = AnswerSpeech.of(config)
        if config.pbx.backend == "none" or speech is None:
            return None

        def link_ami():
            return getattr(runtime.links.get("pbx"), "ami", None)

        return cls(runtime.db, policy or CallbackPolicy.of(config), speech, link_ami,
                   hotline_number=config.pbx.hotline_numbers[0], live=runtime.live)

    @property
    def ami(self):
        return self._ami() if callable(self._ami) else self._ami

    # ------------------------------------------------------------------ placing

    async def place(self, task_id: int) -> VoiceCall:
        """Phone the caller of ``task_id`` with the answer, now.  Raises :class:`CallbackRefused`
        (``pbx_down``, ``closed``, ``not_due``, ``outside_windows``, ``attempt_live``, ...)."""
        ami = self.ami
        if ami is None or not ami.is_up:
            raise CallbackRefused(Refusal.PBX_DOWN)
        answer_id, text = await self.db.run_in_session(answer_to_say, task_id, readonly=True)
        try:
            await asyncio.to_thread(self.speech.audio_for, answer_id, text)
        except (SpeechError, OSError) as exc:
            log.warning("voice_callback.not_spoken", task_id=task_id, error=str(exc))
            raise CallbackRefused(Refusal.NOT_FOUND, f"the answer could not be spoken: {exc}") from None
        trunk = await self._trunk_name(ami)
        call = await self.db.run_in_session(self._begin, task_id, answer_id)
        self._live[call.key] = _Progress(call)
        try:
            await self._originate(ami, call, trunk)
        except DiallerError as exc:
            log.warning("voice_callback.originate_failed", task_id=task_id, attempt=call.key, error=str(exc),
                        sent=exc.sent)
            if not exc.sent:
                self._live.pop(call.key, None)
                # Nothing rang: no attempt on the caller (see callbacks.placing.DiallerError).
                await self.db.run_in_session(self._settle, call.key, CallbackAttemptResult.OPERATOR_NO_ANSWER, None)
                raise CallbackRefused(Refusal.PBX_DOWN, str(exc)) from exc
        log.info("voice_callback.placed", task_id=task_id, attempt=call.key, answer=answer_id)
        return call

    def _begin(self, session: Session, task_id: int, spoken_id: int) -> VoiceCall:
        attempt, brief = tasks.begin_attempt(session, task_id, None, self.clock(), self.policy, dialler=DIALLER)
        if brief.answer_event_id != spoken_id:  # answered again meanwhile: say the newest (rare; one more try)
            raise CallbackRefused(Refusal.NOT_DUE, "the case was answered again; place the call again")
        return VoiceCall(attempt.idempotency_key, task_id, attempt.id, spoken_id,
                         self.speech.name_for(spoken_id, brief.answer_text), dial_string(attempt.task.phone))

    async def _trunk_name(self, ami) -> str:
        """The dialplan's HOTLINE_TRUNK global (one place says which endpoint reaches the carrier)."""
        if self._trunk is None:
            try:
                response = await ami.send_action({"Action": "Getvar", "Variable": "HOTLINE_TRUNK"})
            except Exception as exc:  # noqa: BLE001 - not sent or no answer: nothing was dialled
                raise CallbackRefused(Refusal.PBX_DOWN, f"cannot read HOTLINE_TRUNK: {exc}") from None
            self._trunk = str(response.get("Value") or "").strip() or None
            if self._trunk is None:
                raise CallbackRefused(Refusal.PBX_DOWN, "the dialplan has no HOTLINE_TRUNK global")
        return self._trunk

    async def _originate(self, ami, call: VoiceCall, trunk: str) -> None:
        from bridge.pbx.ami import AmiActionError, AmiNotConnected

        action = {
            "Action": "Originate", "ActionID": call.key, "Channel": f"PJSIP/{call.dial}@{trunk}",
            "Context": CONTEXT, "Exten": "s", "Priority": "1", "Async": "true",
            "CallerID": f"{self.hotline_number} <{self.hotline_number}>", "Timeout": str(self.ring_s * 1000),
            "Variable": [f"HOTLINE_CALLBACK_ATTEMPT={call.key}", f"HOTLINE_ANSWER_EVENT={call.answer_event_id}",
                         f"HOTLINE_ANSWER_NAME={call.audio}"],
        }
        try:
            await ami.send_action(action)
        except AmiNotConnected as exc:
            raise DiallerError(str(exc), sent=False) from exc
        except AmiActionError as exc:  # Asterisk refused it: nothing dials
            raise DiallerError(str(exc), sent=False) from exc
        except Exception as exc:  # noqa: BLE001 - sent, answer lost: settled from the PBX's record
            raise DiallerError(str(exc), sent=True) from exc

    # ------------------------------------------------------------------ results

    async def on_ami_event(self, event: dict[str, str]) -> None:
        """The callbacks capability's AMI listener: our calls' channel (the VarSet of
        HOTLINE_CALLBACK_ATTEMPT), their OriginateResponse and their Hangup, in either order."""
        name = event.get("Event")
        if name == "VarSet" and event.get("Variable") == "HOTLINE_CALLBACK_ATTEMPT":
            progress = self._live.get(event.get("Value", ""))
            if progress is not None and progress.uniqueid is None:
                progress.uniqueid = event.get("Uniqueid")
                self._by_channel[progress.uniqueid] = progress
        elif name == "OriginateResponse" and event.get("ActionID") in self._live:
            progress = self._live[event["ActionID"]]
            progress.response, progress.reason = event.get("Response"), event.get("Reason")
            if progress.response == "Success":
                progress.uniqueid = progress.uniqueid or event.get("Uniqueid")
                self._by_channel[progress.uniqueid] = progress
                await self.db.run_in_session(self._picked_up, progress.call.key, event.get("Uniqueid"))
            elif progress.uniqueid is None or progress.cause is not None:
                await self._finish(progress)  # no channel was made, or it is gone already
        elif name == "Hangup" and event.get("Uniqueid") in self._by_channel:
            progress = self._by_channel[event["Uniqueid"]]
            progress.cause, progress.linkedid = event.get("Cause") or "", event.get("Linkedid")
            if progress.response is not None:
                await self._finish(progress)

    async def _finish(self, progress: _Progress) -> None:
        self._live.pop(progress.call.key, None)
        self._by_channel.pop(progress.uniqueid or "", None)
        cause = int(progress.cause) if (progress.cause or "").isdigit() else None
        if progress.response == "Success":
            await self.db.run_in_session(self._hung_up, progress.call, cause, progress.linkedid)
            announce_ended(self.live, progress.call.task_id, CallbackAttemptResult.ANSWERED)
            return
        result = (CAUSES.get(progress.cause or "") or REASONS.get(progress.reason or "")
                  or CallbackAttemptResult.FAILED)
        log.info("voice_callback.not_picked_up", task_id=progress.call.task_id, attempt=progress.call.key,
                 reason=progress.reason, hangup_cause=cause, result=result.value)
        await self.db.run_in_session(self._settle, progress.call.key, result, cause)
        announce_ended(self.live, progress.call.task_id, result)

    def _picked_up(self, session: Session, key: str, linkedid: str | None) -> None:
        attempt = tasks.attempt_by_key(session, key)
        if attempt is not None and attempt.answered_at is None:
            attempt.answered_at, attempt.linkedid = self.clock(), attempt.linkedid or linkedid
            log.info("voice_callback.picked_up", task_id=attempt.task_id, attempt=key)

    def _hung_up(self, session: Session, call: VoiceCall, cause: int | None, linkedid: str | None) -> None:
        attempt = tasks.attempt_by_key(session, call.key)
        if attempt is None:
            return
        heard = heard_on(session, attempt)
        tasks.settle_attempt(session, call.key, CallbackAttemptResult.ANSWERED, self.clock(), self.policy,
                             settled_by="events", hangup_cause=cause, answered_at=attempt.answered_at,
                             linkedid=linkedid)
        task = attempt.task
        if not heard:
            not_heard_goes_to_an_operator(task, self.clock())
        log.info("voice_callback.ended", task_id=call.task_id, attempt=call.key, heard=heard,
                 state=task.state.value)

    def _settle(self, session: Session, key: str, result: CallbackAttemptResult, cause: int | None) -> None:
        tasks.settle_attempt(session, key, result, self.clock(), self.policy, settled_by="events",
                             hangup_cause=cause)


def announce_ended(live, task_id: int, result: CallbackAttemptResult) -> None:
    """Publish a settled voice callback (the desk's queue shows it; the engine plans the task's
    next step at once rather than at its safety net)."""
    if live is not None:
        live.publish(LiveEvent(LIVE_TOPIC, "attempt_ended", {"task_id": task_id, "result": result.value}))


# ======================================================================= through Twilio

# A call's final CallStatus (Twilio's status callback) -> the attempt's result; "completed": picked up.
TWILIO_RESULTS = {"busy": CallbackAttemptResult.BUSY, "no-answer": CallbackAttemptResult.NO_ANSWER,
                  "failed": CallbackAttemptResult.FAILED, "canceled": CallbackAttemptResult.FAILED,
                  "completed": CallbackAttemptResult.ANSWERED}
HEARD_PATH = "/callbacks/twilio/voice/heard"  # the TwiML's <Redirect> after the answer: heard to its end


def prompt_texts(*names: str) -> list[str]:
    """The Mandarin prompts of dialplan/prompts.toml (the line's words, kept out of the code)."""
    import tomllib

    from bridge.pbx.sandbox import PROMPTS_FILE

    prompts = tomllib.loads(PROMPTS_FILE.read_text(encoding="utf-8"))["prompts"]
    return [prompts[name] for name in names]


def voice_twiml(answer_text: str, heard_url: str) -> str:
    """TwiML that says the intro and the answer with Twilio's zh-CN voice, then asks Twilio to fetch
    ``heard_url`` (the answer was said to its end)."""
    intro, follows = prompt_texts("callback-intro", "status-answer-follows")
    response = VoiceResponse()
    response.say(f"{intro}{follows}", language="zh-CN")
    response.say(answer_text, language="zh-CN")
    response.redirect(heard_url, method="POST")
    return str(response)


def goodbye_twiml() -> str:
    response = VoiceResponse()
    response.say(prompt_texts("thanks")[0], language="zh-CN")
    response.hangup()
    return str(response)


class TwilioVoiceCallbacks:
    """The voice dialler through Twilio's Calls API (``[callbacks] dialler = "twilio"``): the attempt
    row first (committed), then one ``Calls`` request (never sent twice: no idempotency key there);
    the result from Twilio's signed status callback (:meth:`on_status`), heard from the signed
    ``<Redirect>`` after the answer (:meth:`heard`)."""

    name = DIALLER

    def __init__(self, db: Database, policy: CallbackPolicy, gateway, *, public_url: str,
                 clock: Callable[[], datetime] = utcnow, live=None) -> None:
        self.db, self.policy, self.gateway, self.clock, self.live = db, policy, gateway, clock, live
        self.public_url = public_url.rstrip("/")

    def heard_url(self, key: str) -> str:
        return f"{self.public_url}{HEARD_PATH}?attempt={key}"

    async def place(self, task_id: int) -> str:
        """Phone the caller of ``task_id`` with the answer; the attempt's key.  Raises
        :class:`CallbackRefused` as :meth:`VoiceCallbacks.place` does."""
        answer_id, text = await self.db.run_in_session(answer_to_say, task_id, readonly=True)
        key, phone = await self.db.run_in_session(self._begin, task_id, answer_id)
        try:
            sid = await self.gateway.place_call(phone, voice_twiml(text, self.heard_url(key)),
                                                self.public_url + STATUS_PATH)
        except TwilioError as exc:
            log.warning("voice_callback.twilio_failed", task_id=task_id, attempt=key, error=str(exc),
                        may_have_sent=getattr(exc, "may_have_sent", False))
            if not getattr(exc, "may_have_sent", False):
                await self.db.run_in_session(self._settle, key, CallbackAttemptResult.FAILED)
                raise CallbackRefused(Refusal.PBX_DOWN, str(exc)) from exc
            return key  # may have reached Twilio: left dialling, settled by its status callback or a person
        await self.db.run_in_session(self._note_sid, key, sid)
        log.info("voice_callback.placed", task_id=task_id, attempt=key, answer=answer_id, via="twilio")
        return key

    def _begin(self, session: Session, task_id: int, spoken_id: int) -> tuple[str, str]:
        attempt, brief = tasks.begin_attempt(session, task_id, None, self.clock(), self.policy, dialler=DIALLER)
        if brief.answer_event_id != spoken_id:
            raise CallbackRefused(Refusal.NOT_DUE, "the case was answered again; place the call again")
        return attempt.idempotency_key, attempt.task.phone

    def _note_sid(self, session: Session, key: str, sid: str) -> None:
        attempt = tasks.attempt_by_key(session, key)
        if attempt is not None:
            attempt.remote_id = sid

    def _settle(self, session: Session, key: str, result: CallbackAttemptResult) -> None:
        tasks.settle_attempt(session, key, result, self.clock(), self.policy, settled_by="twilio")

    async def heard(self, key: str, caller: str) -> bool:
        """Twilio fetched the ``<Redirect>`` after the answer: the answer was said to its end."""
        def work(session: Session) -> bool:
            from bridge.pbx.agi import VIA_VOICE_CALLBACK, record_heard

            attempt = tasks.attempt_by_key(session, key)
            if attempt is None or attempt.answer_event_id is None:
                return False
            if attempt.answered_at is None:
                attempt.answered_at = self.clock()
            return record_heard(session, attempt.answer_event_id, VIA_VOICE_CALLBACK, attempt_key=key,
                                caller_number=caller, now=self.clock()) is not None

        return await self.db.run_in_session(work)

    async def on_status(self, status) -> bool:
        """A signed call status (:class:`callbacks.twilio_status.TwilioStatus`) of one of our calls
        settles its attempt; False when the SID is not a voice callback's (another handler's)."""
        result = TWILIO_RESULTS.get(status.status)
        if status.kind != "call" or result is None:
            return False

        def work(session: Session) -> int | None:
            attempt = session.scalar(select(CallbackAttempt).where(CallbackAttempt.remote_id == status.sid,
                                                                   CallbackAttempt.dialler == DIALLER))
            if attempt is None:
                return None
            heard = heard_on(session, attempt)
            tasks.settle_attempt(session, attempt.idempotency_key, result, self.clock(), self.policy,
                                 settled_by="twilio", answered_at=attempt.answered_at)
            if result is CallbackAttemptResult.ANSWERED and not heard:
                not_heard_goes_to_an_operator(attempt.task, self.clock())
            log.info("voice_callback.ended", task_id=attempt.task_id, attempt=attempt.idempotency_key,
                     result=result.value, heard=heard, via="twilio")
            return attempt.task_id

        task_id = await self.db.run_in_session(work)
        if task_id is None:
            return False
        announce_ended(self.live, task_id, result)
        return True


def heard_router(voice: TwilioVoiceCallbacks, *, auth_token: str):
    """``POST /callbacks/twilio/voice/heard?attempt=KEY``: Twilio's ``<Redirect>`` after the answer,
    signed like its status callbacks (403 and nothing stored otherwise); answers TwiML that says
    goodbye."""
    validator = RequestValidator(auth_token)
    router = APIRouter()

    @router.post(HEARD_PATH, include_in_schema=False)
    async def answer_heard(request: Request) -> Response:
        url = voice.public_url + HEARD_PATH + (f"?{request.url.query}" if request.url.query else "")
        form = await request.form()
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not signature or not validator.validate(url, form, signature):
            log.warning("twilio.heard_refused", reason="missing or wrong X-Twilio-Signature", url=url)
            return Response(status_code=403)
        await voice.heard(request.query_params.get("attempt", ""), str(form.get("To", "")))
        return Response(goodbye_twiml(), media_type="application/xml")

    return router
