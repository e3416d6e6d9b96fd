"""The Asterisk dialler: a callback placed with AMI ``Originate`` on the daemon's own AMI link,
its result read from Asterisk's events.

Placing (:meth:`AsteriskDialler.originate`): ``Originate`` into the shipped context
``hotline-callback`` (``[callbacks] originate_context``), ``Async``, the attempt's key as the
``ActionID`` and as the channel variable ``HOTLINE_CALLBACK_ATTEMPT``.  Asterisk rings the
operator's desk phone (``PJSIP/<extension>``, showing the case number), and when the operator
answers the dialplan dials the caller through the trunk.  The AMI client never re-sends an
action after a reconnect (``bridge.pbx.ami``), so an Originate leaves the daemon at most once.

Before (:meth:`AsteriskDialler.ready_for`): the link is up and Asterisk says the desk phone is
free: ``Getvar DEVICE_STATE(PJSIP/<extension>)`` (func_devstate; the AMI class ``call``).  A
phone with no reachable contact reads UNAVAILABLE (not registered), one on a call INUSE, etc.

Results, from the events of the call (one call = one Linkedid, learnt from the VarSet of
``HOTLINE_CALLBACK_ATTEMPT`` on the operator's channel; manager.conf's ``channelvars`` puts that
key on every event of the operator's channel too, so a call placed before a reconnect or a
restart is followed from its next event on, without guessing what was missed):

* ``OriginateResponse`` Failure (the ActionID is the key): the operator did not answer, was busy
  or unreachable -> ``operator_no_answer`` (not counted against the caller);
* ``DialEnd`` of the caller's leg with ANSWER -> ``answered`` at that moment;
* ``HOTLINE_CALLBACK_STATUS`` (the dialplan's ``DIALSTATUS`` after the Dial) with
  ``HOTLINE_CALLBACK_CAUSE`` (its ``HANGUPCAUSE``) just before it: BUSY -> ``busy``, NOANSWER
  -> ``no_answer``, CONGESTION / CHANUNAVAIL -> ``failed`` with the Q.850 cause, so a number
  that does not exist (cause 1) stops at once (``[callbacks] check_number_causes``);
* the operator hanging up first: ``DialEnd`` CANCEL while the caller's phone rang ->
  ``no_answer``; the operator's channel gone before the caller was dialled -> ``operator_no_answer``.

``HOTLINE_RECORDING`` (the context's MixMonitor file) and the Linkedid are put on the attempt
as soon as they are seen.  What the events never tell (the link or the daemon died mid-call)
stays ``dialling`` and is settled from the CDR field ``hotline_callback_attempt`` at the next
start, or marked ``unknown`` for a person (the recovery's part).
"""
from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import select

from bridge.capability import AmiSubscription
from bridge.cases.validation import display_phone
from bridge.db.engine import Database
from bridge.db.models import CallbackAttempt, CallbackAttemptResult, utcnow
from bridge.live import LiveEvent, LiveEvents
from bridge.pbx.ami import AmiActionError, AmiClient, AmiError, AmiNotConnected
from callbacks import tasks
from callbacks.placing import LIVE_TOPIC, CallOrder, DiallerError
from callbacks.tasks import CallbackPolicy, Refusal

log = structlog.get_logger(__name__)

NAME = "asterisk"
ATTEMPT_VARIABLE = "HOTLINE_CALLBACK_ATTEMPT"
STATUS_VARIABLE = "HOTLINE_CALLBACK_STATUS"
CAUSE_VARIABLE = "HOTLINE_CALLBACK_CAUSE"
RECORDING_VARIABLE = "HOTLINE_RECORDING"

# What this dialler needs of the AMI subscription (CallbacksCapability.ami).
SUBSCRIPTION = AmiSubscription(events=("OriginateResponse", "DialEnd", "Hangup", "VarSet"),
                               variables=(ATTEMPT_VARIABLE, STATUS_VARIABLE, CAUSE_VARIABLE, RECORDING_VARIABLE))

# How long the operator's desk phone rings before the attempt is operator_no_answer.
OPERATOR_RING_S = 30.0
# A call whose events stopped (the link dropped mid-call) is forgotten after this long: its
# attempt stays dialling for the recovery or a person; no call lasts this long.
FORGET_AFTER_S = 6 * 3600.0
# A desk phone's PJSIP endpoint name, as users.extension holds it (no AMI header or function syntax).
_EXTENSION = re.compile(r"^[0-9A-Za-z_-]{1,16}$")

# DEVICE_STATE() of the desk phone -> why no call is placed (NOT_INUSE: ready).
_DEVICE_REFUSALS = {
    "UNAVAILABLE": Refusal.DEVICE_UNREGISTERED,  # no reachable contact: not registered
    "INVALID": Refusal.DEVICE_UNREGISTERED,      # no such endpoint on the PBX
    "UNKNOWN": Refusal.DEVICE_UNREGISTERED,      # Asterisk cannot tell: do not assume
    "INUSE": Refusal.DEVICE_BUSY,
    "BUSY": Refusal.DEVICE_BUSY,
    "RINGING": Refusal.DEVICE_BUSY,
    "RINGINUSE": Refusal.DEVICE_BUSY,
    "ONHOLD": Refusal.DEVICE_BUSY,
}

# The dialplan's DIALSTATUS of the caller's leg -> the attempt's result.
_DIAL_RESULTS = {
    "ANSWER": CallbackAttemptResult.ANSWERED,
    "BUSY": CallbackAttemptResult.BUSY,
    "NOANSWER": CallbackAttemptResult.NO_ANSWER,
    "CANCEL": CallbackAttemptResult.NO_ANSWER,   # the operator hung up while the caller's phone rang
    "CONGESTION": CallbackAttemptResult.FAILED,
    "CHANUNAVAIL": CallbackAttemptResult.FAILED,
}


def trunk_number(phone: str) -> str:
    """The caller's number as the trunk dials it: national digits (13912345678, 05701234567)."""
    return "".join(ch for ch in display_phone(phone) if ch.isdigit())


@dataclass
class _Call:
    """What the events told so far about one attempt's call."""

    key: str
    task_id: int
    placed_at: float   # time.monotonic()
    linkedid: str | None = None
    cause: int | None = None
    in_dialplan: bool = False   # the operator answered: the context runs (the caller is dialled next)
    settled: bool = False
    answered: bool = False      # the caller picked up (the hang-up then sets the attempt's ended_at)
    adopted: bool = False       # first seen mid-call (placed before a reconnect or a restart)
    session: int = 0            # the AMI session it was placed on (AmiClient.connect_attempts)
    new_linkedid: bool = False  # learnt from this event: to be stored on the attempt


def _session_of(client) -> int:
    """Which AMI session the client is on (it counts its connections)."""
    return getattr(client, "connect_attempts", 0)


class AsteriskDialler:
    """:class:`callbacks.placing.Dialler` on the daemon's AMI link; :meth:`on_event` is its
    AMI listener (the callbacks capability hands it every event after the call tracker)."""

    name = NAME

    def __init__(self, ami: Callable[[], AmiClient | None], db: Database, policy: CallbackPolicy, *,
                 context: str = "hotline-callback", live: LiveEvents | None = None,
                 operator_ring_s: float = OPERATOR_RING_S, clock: Callable[[], datetime] = utcnow) -> None:
        """``ami``: the daemon's AMI client when there is one (the PBX link starts after this)."""
        self._ami, self.db, self.policy, self.context = ami, db, policy, context
        self.live, self.operator_ring_s, self.clock = live, operator_ring_s, clock
        self._calls: dict[str, _Call] = {}          # key -> call, for the attempts followed now
        self._by_linkedid: dict[str, _Call] = {}
        self._done: deque[str] = deque(maxlen=1000)   # keys settled and forgotten: never adopted again

    # -------------------------------------------------------------- placing

    def _client(self) -> AmiClient | None:
        client = self._ami()
        return client if client is not None and client.is_up else None

    async def ready_for(self, extension: str | None) -> Refusal | None:
        client = self._client()
        if client is None:
            return Refusal.PBX_DOWN
        if not extension:
            return Refusal.NO_EXTENSION
        if not _EXTENSION.match(extension):
            log.warning("callbacks.extension_unusable", extension=extension)
            return Refusal.NO_EXTENSION
        variable = f"DEVICE_STATE(PJSIP/{extension})"
        try:
            response = await client.send_action({"Action": "Getvar", "Variable": variable})
        except AmiError as exc:
            log.warning("callbacks.device_state_failed", extension=extension, error=str(exc))
            return Refusal.PBX_DOWN
        state = str(response.get("Value") or "").strip().upper()
        if not state:
            # Getvar of an unknown function answers with no value: func_devstate is not loaded.
            log.error("callbacks.device_state_unknown", extension=extension,
                      fix="load func_devstate.so in Asterisk's modules.conf")
            return Refusal.PBX_DOWN
        refusal = _DEVICE_REFUSALS.get(state)
        if refusal is not None:
            log.info("callbacks.device_not_ready", extension=extension, device_state=state)
        return refusal

    def originate_action(self, order: CallOrder) -> dict[str, str]:
        """The Originate that places ``order`` (no secret, no number beyond the trunk's)."""
        label = order.case_number or "callback"
        number = trunk_number(order.phone)
        return {
            "Action": "Originate", "ActionID": order.key, "Async": "true",
            "Channel": f"PJSIP/{order.extension}", "Timeout": str(int(self.operator_ring_s * 1000)),
            "Context": self.context, "Exten": number, "Priority": "1",
            # Shown on the operator's phone: which case this call is about.
            "CallerID": f'"{label}" <{number}>',
            "Variable": f"{ATTEMPT_VARIABLE}={order.key}",
        }

    async def originate(self, order: CallOrder) -> None:
        if not order.extension or not _EXTENSION.match(order.extension):
            raise DiallerError(f"no usable desk phone to ring first ({order.extension!r})", sent=False)
        client = self._ami()
        if client is None:
            raise DiallerError("no AMI link", sent=False)
        self._forget_stale()
        call = _Call(order.key, order.task_id, time.monotonic(), session=_session_of(client))
        self._calls[order.key] = call   # before sending: its events may come before the response
        try:
            await client.send_action(self.originate_action(order))
        except (AmiNotConnected, AmiActionError) as exc:
            # Never written, or refused by Asterisk (it dials nothing): not sent.
            self._forget(call)
            raise DiallerError(str(exc), sent=False) from exc
        except AmiError as exc:
            # Written, then the link broke or Asterisk did not answer in time: it may ring.
            raise DiallerError(str(exc), sent=True) from exc
        log.info("callbacks.originated", task_id=order.task_id, attempt=order.key, extension=order.extension,
                 case_number=order.case_number)

    def _forget_stale(self) -> None:
        oldest = time.monotonic() - FORGET_AFTER_S
        for call in [c for c in self._calls.values() if c.placed_at < oldest]:
            log.warning("callbacks.events_never_came", task_id=call.task_id, attempt=call.key, linkedid=call.linkedid)
            self._forget(call)

    def _forget(self, call: _Call) -> None:
        self._done.append(call.key)
        self._calls.pop(call.key, None)
        if call.linkedid is not None:
            self._by_linkedid.pop(call.linkedid, None)

    # --------------------------------------------------------------- events

    def on_event(self, event: dict[str, str]):
        """The AMI listener: a coroutine for the few events of a callback, else None (cheap)."""
        name = event.get("Event")
        if name == "OriginateResponse":
            call = self._calls.get(event.get("ActionID", ""))
            if call is not None and event.get("Response", "").lower() == "failure":
                return self._settle(call, CallbackAttemptResult.OPERATOR_NO_ANSWER)
            return None
        call = self._call_of(event)
        if call is not None and not call.adopted and call.session != _session_of(self._ami()):
            # The link was lost since the call was placed: its events meanwhile may be lost too, so
            # nothing is guessed from one that did not come (the CDR settles it, or a later status).
            call.adopted = True
        if call is None:
            if name == "VarSet" and _variable(event) == STATUS_VARIABLE and event.get("Linkedid"):
                return self._settle_unknown_call(event["Linkedid"], event.get("Value", ""))   # placed before a restart
            return None
        if name == "VarSet":
            return self._on_varset(call, event)
        if name == "Hangup" and event.get("Uniqueid") == call.linkedid:
            if call.settled or call.adopted:
                self._forget(call)   # over; an adopted call's start was not seen: nothing is guessed
                return self._hung_up(call) if call.answered else None
            # The operator's channel ended with no result from the caller's leg.
            result = CallbackAttemptResult.NO_ANSWER if call.in_dialplan else CallbackAttemptResult.OPERATOR_NO_ANSWER
            return self._settle(call, result)
        if name == "DialEnd" and event.get("Channel") and not call.settled:   # the caller's leg
            status = event.get("DialStatus", "").upper()
            if status == "ANSWER":
                return self._settle(call, CallbackAttemptResult.ANSWERED, answered=True)
            if status == "CANCEL":
                return self._settle(call, CallbackAttemptResult.NO_ANSWER)
        return None   # else the dialplan's HOTLINE_CALLBACK_STATUS follows, with the cause

    def _call_of(self, event: dict[str, str]) -> _Call | None:
        """The attempt an event belongs to: by its Linkedid, else by the attempt key the operator's
        channel carries (manager.conf ``channelvars``), so a call placed before a reconnect or a
        restart is followed from its next event on."""
        linkedid = event.get("Linkedid", "")
        call = self._by_linkedid.get(linkedid)
        if call is not None:
            return call
        key = event.get("Value", "") if _variable(event) == ATTEMPT_VARIABLE else _attempt_key(event)
        if not key or key in self._done:
            return None
        call = self._calls.get(key)
        if call is None:
            call = self._calls[key] = _Call(key, 0, time.monotonic(), adopted=True)
        if linkedid and call.linkedid is None:
            call.linkedid = linkedid
            self._by_linkedid[linkedid] = call
            call.new_linkedid = True
        return call

    def _on_varset(self, call: _Call, event: dict[str, str]):
        variable, value = _variable(event), event.get("Value", "")
        learnt = call.linkedid if call.new_linkedid else None
        call.new_linkedid = False
        if variable == RECORDING_VARIABLE and value:
            call.in_dialplan = True
            return self._link(call, linkedid=learnt, recording=value)
        if variable == CAUSE_VARIABLE:
            call.cause = _cause(value)
        elif variable == STATUS_VARIABLE and not call.settled:
            return self._settle_status(call, value)   # stores the Linkedid too
        return self._link(call, linkedid=learnt) if learnt else None

    def _settle_status(self, call: _Call, status: str):
        result = _DIAL_RESULTS.get(status.upper(), CallbackAttemptResult.FAILED)
        # An adopted call's answer was not seen: when it was is not known.
        return self._settle(call, result, answered=result is CallbackAttemptResult.ANSWERED and not call.adopted)

    # ------------------------------------------------------------ the rows

    async def _link(self, call: _Call, *, linkedid: str | None = None, recording: str | None = None) -> None:
        def link(session) -> None:
            attempt = tasks.attempt_by_key(session, call.key)
            if attempt is None:
                return
            if linkedid and not attempt.linkedid:
                attempt.linkedid = linkedid
            if recording and not attempt.recording:
                attempt.recording = recording

        await self._write(link, call.key)

    async def _settle(self, call: _Call, result: CallbackAttemptResult, *, answered: bool = False) -> None:
        if call.settled:
            return
        call.settled, call.answered = True, answered
        at = self.clock()
        cause = None if result is CallbackAttemptResult.ANSWERED else call.cause

        def settle(session):
            mine = tasks.attempt_by_key(session, call.key)
            if mine is None or mine.dialler != self.name:  # e.g. an automated voice callback's (its own listener)
                return None
            attempt = tasks.settle_attempt(session, call.key, result, at, self.policy, settled_by="events",
                                           hangup_cause=cause, answered_at=at if answered else None,
                                           linkedid=call.linkedid)
            return attempt.task_id if attempt is not None else None

        task_id = await self._write(settle, call.key)
        log.info("callbacks.attempt_result", task_id=task_id, attempt=call.key, result=result.value,
                 hangup_cause=cause, linkedid=call.linkedid)
        if not answered:
            self._forget(call)
        if task_id is not None:
            self._publish(task_id, call.key, result)

    async def _hung_up(self, call: _Call) -> None:
        at = self.clock()
        await self._write(lambda session: tasks.call_ended(session, call.key, at), call.key)

    async def _settle_unknown_call(self, linkedid: str, status: str) -> None:
        """A callback placed by an earlier run of the daemon ends: its row names the Linkedid."""
        result = _DIAL_RESULTS.get(status.upper(), CallbackAttemptResult.FAILED)
        at = self.clock()

        def settle(session):
            key = session.scalar(select(CallbackAttempt.idempotency_key).where(
                CallbackAttempt.linkedid == linkedid, CallbackAttempt.ended_at.is_(None),
                CallbackAttempt.dialler == self.name))
            if key is None:
                return None
            attempt = tasks.settle_attempt(session, key, result, at, self.policy, settled_by="events")
            return (attempt.task_id, key)

        found = await self._write(settle, linkedid)
        if found is not None:
            self._publish(found[0], found[1], result)

    async def _write(self, fn, what: str, tries: int = 3):
        """``fn(session)`` in its own transaction; a database away for a moment is tried again
        (after that the attempt stays ``dialling``: the recovery or a person settles it)."""
        delay = 0.5
        for attempt in range(1, tries + 1):
            try:
                return await self.db.run_in_session(fn)
            except Exception as exc:  # noqa: BLE001 - logged; the AMI stream goes on
                if attempt == tries:
                    log.error("callbacks.attempt_write_failed", attempt=what, error=repr(exc))
                    return None
                await asyncio.sleep(delay)
                delay *= 2
        return None

    def _publish(self, task_id: int, key: str, result: CallbackAttemptResult) -> None:
        if self.live is not None:
            self.live.publish(LiveEvent(LIVE_TOPIC, "attempt_answered" if result is CallbackAttemptResult.ANSWERED
                                        else "attempt_ended", {"task_id": task_id, "result": result.value}))


def _variable(event: dict[str, str]) -> str:
    return event.get("Variable", "").lstrip("_").upper()


def _attempt_key(event: dict[str, str]) -> str | None:
    """The attempt key in the event's ``ChanVariable`` headers (the operator's channel), if any."""
    carried = event.get("ChanVariable")
    if not carried or ATTEMPT_VARIABLE not in carried:
        return None
    for line in carried.split("\n"):
        name, _, value = line.partition("=")
        if name.strip().upper() == ATTEMPT_VARIABLE and value.strip():
            return value.strip()
    return None


def _cause(value: str) -> int | None:
    try:
        cause = int(value)
    except ValueError:
        return None
    return cause if cause > 0 else None
