"""Callbacks as a capability, plugged in through the entry point ``hotline_bridge.capabilities``
(``bridge`` never imports this package).

* its part of the AMI subscription: ``OriginateResponse``, Asterisk's answer to the
  Originate that places a callback;
* a durable consumer of the domain event ``case_answered`` (``bridge.domain_events``): each
  answer reaches :func:`callbacks.tasks.create_for_answer` exactly once (a batch of them
  :func:`~callbacks.tasks.create_for_answers`), in the transaction that
  moves the cursor ``events:callback-tasks`` (a new name: the cursor ``events:callbacks`` of the
  release before only logged the answers it passed; answers older than
  :data:`callbacks.tasks.MAX_ANSWER_AGE` make no task);
* with ``[twilio]`` enabled, Twilio's signed status callbacks at ``POST /callbacks/twilio/status``.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy.orm import Session

from bridge.capability import AmiSubscription, Capability, Runtime
from bridge.db.models import utcnow
from bridge.domain_events import CASE_ANSWERED, Consumer, DomainEvent
from callbacks.tasks import CallbackPolicy, create_for_answer, create_for_answers

log = structlog.get_logger(__name__)


def answer_consumer(policy: CallbackPolicy, clock: Callable[[], datetime] = utcnow) -> Consumer:
    """The consumer that makes the task of each answer (exactly once: same transaction as the cursor)."""
    def on_case_answered(session: Session, event: DomainEvent) -> None:
        create_for_answer(session, event, policy, clock())

    def on_cases_answered(session: Session, events: list[DomainEvent]) -> None:
        create_for_answers(session, events, policy, clock())

    return Consumer("callback-tasks", CASE_ANSWERED, on_case_answered, handle_batch=on_cases_answered)


class CallbacksCapability(Capability):
    name = "callbacks"
    order = 80
    ami = AmiSubscription(events=("OriginateResponse",))

    def consumers(self, runtime: Runtime):
        return (answer_consumer(CallbackPolicy.of(runtime.config)),)

    def mount(self, app, runtime: Runtime) -> None:
        if runtime.config.twilio.enabled:  # Twilio's signed status callbacks (SMS, voice callback)
            from callbacks.twilio_status import no_task_yet, status_router

            app.include_router(status_router(runtime.config, on_status=no_task_yet))
