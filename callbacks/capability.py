"""Callbacks as a capability, plugged in through the entry point ``hotline_bridge.capabilities``
(``bridge`` never imports this package).

What it has today, and only that:

* its part of the AMI subscription: ``OriginateResponse``, Asterisk's answer to the
  Originate that will place a callback;
* a durable consumer of the domain event ``case_answered`` (``bridge.domain_events``):
  each answer reaches :func:`on_case_answered` exactly once, in the transaction that moves
  the cursor ``events:callbacks``;
* with ``[twilio]`` enabled, Twilio's signed status callbacks at ``POST /callbacks/twilio/status``
  (``callbacks.twilio_status``; until tasks exist, a status is only logged).

Scheduling and placing callbacks is the issue "Callbacks": it will create the callback
task in :func:`on_case_answered` (same session, so exactly once) and add the dialler's link
and its ``OriginateResponse`` listener here.  Until then the consumer only notes the answer
in the log; the cursor moves on, and since case events are never deleted the issue can
read the answers again from any position it chooses.
"""
from __future__ import annotations

import structlog
from sqlalchemy.orm import Session

from bridge.capability import AmiSubscription, Capability, Runtime
from bridge.domain_events import CASE_ANSWERED, Consumer, DomainEvent

log = structlog.get_logger(__name__)


def on_case_answered(session: Session, event: DomainEvent) -> None:
    """A unit answered a case: today only logged (no callback task exists yet, see the module doc)."""
    log.info("callbacks.case_answered", case_number=event.case_number, kind=event.kind,
             answered_at=event.at.isoformat())


class CallbacksCapability(Capability):
    name = "callbacks"
    order = 80
    ami = AmiSubscription(events=("OriginateResponse",))

    def consumers(self, runtime: Runtime):
        return (Consumer("callbacks", CASE_ANSWERED, on_case_answered),)

    def mount(self, app, runtime: Runtime) -> None:
        if runtime.config.twilio.enabled:  # Twilio's signed status callbacks (SMS, voice callback)
            from callbacks.twilio_status import no_task_yet, status_router

            app.include_router(status_router(runtime.config, on_status=no_task_yet))
