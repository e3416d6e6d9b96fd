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
* the link ``callbacks`` (:class:`callbacks.engine.CallbacksEngine`): wakes at the next due
  task or owner's turn end (planned from the rows on APScheduler), publishes live topic
  ``callbacks``, runs the wake hooks (the missed-call sweep when installed) and, with
  ``[twilio]`` enabled, sends the recorded SMS (:class:`callbacks.sms.SmsSender`); a new
  answer's task makes it plan again once committed;
* with ``[twilio]`` enabled, Twilio's signed status callbacks at ``POST /callbacks/twilio/status``
  (a message's status updates its ``callback_messages`` row).
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


def answer_consumer(policy: CallbackPolicy, clock: Callable[[], datetime] = utcnow, *,
                    on_task: Callable[[Session], None] | None = None) -> Consumer:
    """The consumer that makes the task of each answer (exactly once: same transaction as the
    cursor); ``on_task(session)`` when it made one (the engine plans again after the commit)."""
    def on_case_answered(session: Session, event: DomainEvent) -> None:
        task = create_for_answer(session, event, policy, clock())
        if task is not None and on_task is not None:
            on_task(session)

    def on_cases_answered(session: Session, events: list[DomainEvent]) -> None:
        made = create_for_answers(session, events, policy, clock())
        if any(task is not None for task in made) and on_task is not None:
            on_task(session)

    return Consumer("callback-tasks", CASE_ANSWERED, on_case_answered, handle_batch=on_cases_answered)


class CallbacksCapability(Capability):
    name = "callbacks"
    order = 80
    ami = AmiSubscription(events=("OriginateResponse",))

    live_topics = ("callbacks",)

    def links(self, runtime: Runtime):
        from callbacks.engine import CallbacksEngine

        engine = CallbacksEngine(runtime.db, CallbackPolicy.of(runtime.config), scheduler=runtime.scheduler,
                                 live=runtime.live, sms=_sms_sender(runtime), hooks=_wake_hooks())
        return (("callbacks", engine),)

    def consumers(self, runtime: Runtime):
        engine = runtime.links.get("callbacks")
        return (answer_consumer(CallbackPolicy.of(runtime.config),
                                on_task=engine.replan_after_commit if engine is not None else None),)

    def mount(self, app, runtime: Runtime) -> None:
        from callbacks.api import router as api_router

        app.include_router(api_router)
        if runtime.config.twilio.enabled:  # Twilio's signed status callbacks (SMS, voice callback)
            from callbacks.sms import apply_status
            from callbacks.twilio_status import status_router, storing_handler

            handler = storing_handler(runtime.db, {"message": apply_status})
            app.include_router(status_router(runtime.config, on_status=handler))


def _sms_sender(runtime: Runtime):
    if not runtime.config.twilio.enabled:
        return None
    from callbacks.sms import SmsSender

    return SmsSender.from_config(runtime.config, runtime.db, live=runtime.live)


def _wake_hooks() -> list:
    """The missed-call sweep, when that module is installed (callbacks.missed_calls)."""
    try:
        from callbacks.missed_calls import sweep_missed_calls
    except ImportError:
        return []
    return [sweep_missed_calls]
