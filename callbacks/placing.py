"""Placing a callback: the checks, the attempt row, then the dialler.  One :class:`Placer` per
daemon; the desk and the API both call :meth:`Placer.place`.

The order is the guarantee "never twice": (1) ask the dialler whether a call can be placed now
(the PBX link is up, the operator's device registered and not in use: it asks Asterisk);
(2) :func:`callbacks.tasks.begin_attempt` writes the attempt row and **commits** (a second
press finds the live attempt and is refused); (3) only then the dialler sends the call with the
attempt's idempotency key.  Whatever dies after (2), the row is there and is settled from
Asterisk's events, its CDR at the next start, or marked ``unknown`` for a person.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import structlog

from bridge.db.engine import Database
from bridge.db.models import CallbackAttempt, User, utcnow
from bridge.live import LiveEvent, LiveEvents
from callbacks import tasks
from callbacks.tasks import Briefing, CallbackPolicy, CallbackRefused, Refusal

log = structlog.get_logger(__name__)

LIVE_TOPIC = "callbacks"  # the desk's live feed topic for task changes


@dataclass(frozen=True)
class CallOrder:
    """What the dialler needs to place one attempt (the number never leaves the daemon otherwise)."""

    key: str  # the attempt's idempotency key: Originate ActionID and channel variable
    task_id: int
    attempt_id: int
    phone: str
    extension: str | None  # the operator's desk phone (None: an automated call)
    operator: str | None
    case_number: str | None


class DiallerError(Exception):
    """The call could not be handed to the PBX (or Twilio).  ``sent`` says whether it may have left:
    False, the attempt is settled at once as no attempt on the caller (``operator_no_answer``); True (e.g. the link broke after the write),
    the attempt stays ``dialling`` and is settled from the PBX's record or marked ``unknown``."""

    def __init__(self, message: str, *, sent: bool):
        super().__init__(message)
        self.sent = sent


class Dialler(Protocol):
    name: str  # stored in callback_attempts.dialler: "asterisk", "twilio"

    async def ready_for(self, extension: str | None) -> Refusal | None:
        """Why no call can be placed for ``extension`` now (pbx_down, device_unregistered,
        device_busy, no_extension), or None."""

    async def originate(self, order: CallOrder) -> None:
        """Send the call; raise :class:`DiallerError` when it could not be sent.  The result
        arrives later as :func:`callbacks.tasks.settle_attempt` from the dialler's own events."""


@dataclass(frozen=True)
class Placed:
    attempt_id: int
    key: str
    briefing: Briefing


class Placer:
    def __init__(self, db: Database, policy: CallbackPolicy, dialler: Dialler, *,
                 live: LiveEvents | None = None, clock: Callable[[], datetime] = utcnow,
                 before_call: Callable[[int], Awaitable[None]] | None = None) -> None:
        """``before_call(user_id)``: awaited once the attempt row is written, before the call is sent
        (queue presence pauses the operator: no queue call rings the phone meanwhile)."""
        self.db, self.policy, self.dialler, self.live, self.clock = db, policy, dialler, live, clock
        self.before_call = before_call

    async def place(self, task_id: int, user_id: int, *, supervisor: bool = False,
                    extension: str | None = None) -> Placed:
        """Place an attempt of ``task_id`` as the operator ``user_id``, ringing ``extension`` (the
        desk phone they signed in at; default: their account's); raise :class:`CallbackRefused`."""
        account_extension = await self.db.run_in_session(_extension_of, user_id, readonly=True)
        extension = extension or account_extension
        refusal = await self.dialler.ready_for(extension)
        if refusal is not None:
            raise CallbackRefused(refusal)
        order, brief = await self.db.run_in_session(self._begin, task_id, user_id, extension, supervisor)
        self._publish(task_id, "attempt_started")
        if self.before_call is not None:
            try:
                await self.before_call(user_id)
            except Exception:  # noqa: BLE001 - the callback is placed whatever the queue does
                log.exception("callbacks.before_call_failed", task_id=task_id, user_id=user_id)
        try:
            await self.dialler.originate(order)
        except DiallerError as exc:
            log.warning("callbacks.originate_failed", task_id=task_id, attempt=order.key, error=str(exc), sent=exc.sent)
            if not exc.sent:
                await self.db.run_in_session(self._not_sent, order.key)
                self._publish(task_id, "attempt_ended")
                raise CallbackRefused(Refusal.PBX_DOWN, str(exc)) from exc
        return Placed(order.attempt_id, order.key, brief)

    def _begin(self, session, task_id: int, user_id: int, extension: str | None,
               supervisor: bool) -> tuple[CallOrder, Briefing]:
        user = session.get(User, user_id)
        attempt, brief = tasks.begin_attempt(session, task_id, user, self.clock(), self.policy,
                                             dialler=self.dialler.name, extension=extension, supervisor=supervisor)
        return _order(attempt, user), brief

    def _not_sent(self, session, key: str) -> None:
        # Nothing rang, not even the operator's phone: like operator_no_answer, it is no attempt on
        # the caller (no step on the ladder, due again at once).
        tasks.settle_attempt(session, key, tasks.CallbackAttemptResult.OPERATOR_NO_ANSWER, self.clock(),
                             self.policy, settled_by="daemon")

    def _publish(self, task_id: int, kind: str) -> None:
        if self.live is not None:
            self.live.publish(LiveEvent(LIVE_TOPIC, kind, {"task_id": task_id}))


def _extension_of(session, user_id: int) -> str | None:
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise CallbackRefused(Refusal.NOT_FOUND, "no such operator")
    return user.extension


def _order(attempt: CallbackAttempt, user: User | None) -> CallOrder:
    task = attempt.task
    return CallOrder(key=attempt.idempotency_key, task_id=task.id, attempt_id=attempt.id, phone=task.phone,
                     extension=attempt.extension, operator=user.username if user else None,
                     case_number=task.case.number if task.case is not None else None)
