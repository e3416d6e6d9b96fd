"""Callbacks as a capability, plugged in through the entry point ``hotline_bridge.capabilities``
(``bridge`` never imports this package).

* its part of the AMI subscription: ``OriginateResponse``, Asterisk's answer to the
  Originate that places a callback, and the events and variables the Asterisk dialler reads
  (:data:`callbacks.asterisk_dialler.SUBSCRIPTION`);
* with ``[callbacks] dialler = "asterisk"`` and a PBX link: the dialler as an AMI listener, and
  the :class:`callbacks.placing.Placer` at ``app.state.callback_placer`` (None: no call can be
  placed, e.g. a bare web app without the daemon's PBX link);
* a durable consumer of the domain event ``case_answered`` (``bridge.domain_events``): each
  answer reaches :func:`callbacks.tasks.create_for_answer` exactly once, in the transaction that
  moves the cursor ``events:callback-tasks`` (a new name: the cursor ``events:callbacks`` of the
  release before only logged the answers it passed; answers older than
  :data:`callbacks.tasks.MAX_ANSWER_AGE` make no task);
* the link ``callbacks`` (:class:`callbacks.engine.CallbacksEngine`): wakes at the next due
  task or owner's turn end (planned from the rows on APScheduler), publishes live topic
  ``callbacks``, runs the wake hooks (the missed-call sweep when installed) and, with
  ``[twilio]`` enabled, sends the recorded SMS (:class:`callbacks.sms.SmsSender`); a new
  answer's task makes it plan again once committed;
* the link ``missed-calls`` (:class:`callbacks.missed_calls.MissedCallSweeper`): missed calls
  (abandoned, after-hours messages) become tasks of reason ``missed_call``, swept at start,
  every few seconds and soon after a call ends (the engine's wake runs the same sweep);
* with ``[twilio]`` enabled, Twilio's signed status callbacks at ``POST /callbacks/twilio/status``
  (a message's status updates its ``callback_messages`` row).
* the link ``callback-attempt-recovery`` (with the PBX link): after each AMI login, attempts
  left dialling are settled from Asterisk's CDR or marked unknown
  (:mod:`callbacks.attempt_recovery`).
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy.orm import Session

from bridge.capability import Capability, Runtime
from bridge.db.models import utcnow
from bridge.domain_events import CASE_ANSWERED, Consumer, DomainEvent
from callbacks.asterisk_dialler import SUBSCRIPTION as ASTERISK_DIALLER
from callbacks.missed_calls import MissedCallSweeper
from callbacks.placing import LIVE_TOPIC, Placer
from callbacks.tasks import CallbackPolicy, create_for_answer

log = structlog.get_logger(__name__)


def answer_consumer(policy: CallbackPolicy, clock: Callable[[], datetime] = utcnow, *,
                    on_task: Callable[[Session], None] | None = None) -> Consumer:
    """The consumer that makes the task of each answer (exactly once: same transaction as the
    cursor); ``on_task(session)`` when it made one (the engine plans again after the commit)."""
    def on_case_answered(session: Session, event: DomainEvent) -> None:
        task = create_for_answer(session, event, policy, clock())
        if task is not None and on_task is not None:
            on_task(session)

    return Consumer("callback-tasks", CASE_ANSWERED, on_case_answered)


class CallbacksCapability(Capability):
    name = "callbacks"
    order = 80
    ami = ASTERISK_DIALLER
    live_topics = (LIVE_TOPIC,)

    def __init__(self) -> None:
        self._dialler = None   # the Asterisk dialler of the daemon's runtime, once built

    # --- attempt recovery (callbacks/attempt_recovery.py): one object per daemon, both its
    # AMI listener and its link.
    def _attempt_recovery(self, runtime: Runtime):
        pbx = runtime.links.get("pbx")
        if pbx is None or not hasattr(pbx, "connected_hooks"):
            return None
        recovery = getattr(self, "_recovery", None)
        if recovery is None or recovery.pbx is not pbx:
            from callbacks.attempt_recovery import AttemptRecovery

            recovery = self._recovery = AttemptRecovery(runtime.db, CallbackPolicy.of(runtime.config), pbx)
        return recovery

    def _attempt_recovery_listeners(self) -> tuple:
        # Listeners are gathered before the links are built: the listener looks the
        # recovery up at each event (there is none until the PBX link exists).
        def attempt_hangups(event: dict[str, str]) -> None:
            recovery = getattr(self, "_recovery", None)
            if recovery is not None:
                recovery.on_ami_event(event)

        return (attempt_hangups,)

    # --- end of attempt recovery

    def links(self, runtime: Runtime):
        from callbacks.engine import CallbacksEngine

        engine = CallbacksEngine(runtime.db, CallbackPolicy.of(runtime.config), scheduler=runtime.scheduler,
                                 live=runtime.live, sms=_sms_sender(runtime), hooks=_wake_hooks())
        sweeper = MissedCallSweeper(runtime.db, runtime.live, CallbackPolicy.of(runtime.config))
        recovery = self._attempt_recovery(runtime)   # attempt recovery: rides on the PBX link
        return (("callbacks", engine), ("missed-calls", sweeper),
                *((("callback-attempt-recovery", recovery),) if recovery is not None else ()))

    def consumers(self, runtime: Runtime):
        engine = runtime.links.get("callbacks")
        return (answer_consumer(CallbackPolicy.of(runtime.config),
                                on_task=engine.replan_after_commit if engine is not None else None),)

    def ami_listeners(self, runtime: Runtime):
        dialler = self.asterisk_dialler(runtime)
        return ((dialler.on_event,) if dialler is not None else ()) + self._attempt_recovery_listeners()  # recovery

    def asterisk_dialler(self, runtime: Runtime):
        """The dialler on the daemon's AMI link (built once; gathered as a listener before the
        PBX link exists, so it finds the link's client when it dials), or None."""
        config = runtime.config
        if config.callbacks.dialler != "asterisk" or config.pbx.backend == "none":
            return None
        if self._dialler is None:
            from callbacks.asterisk_dialler import AsteriskDialler

            def client():
                return getattr(runtime.links.get("pbx"), "ami", None)

            self._dialler = AsteriskDialler(client, runtime.db, CallbackPolicy.of(config),
                                            context=config.callbacks.originate_context, live=runtime.live)
        return self._dialler

    def placer(self, runtime: Runtime) -> Placer | None:
        """The Placer of this runtime: None without a daemon's PBX link (nothing can dial)."""
        dialler = self.asterisk_dialler(runtime) if "pbx" in runtime.links else None
        if dialler is None:
            return None
        return Placer(runtime.db, dialler.policy, dialler, live=runtime.live)

    def mount(self, app, runtime: Runtime) -> None:
        from callbacks.api import router as api_router

        app.state.callback_placer = self.placer(runtime)   # the API's POST .../attempts
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
    """What runs at every wake besides promoting due tasks: the missed-call sweep."""
    from callbacks.missed_calls import sweep_missed_calls

    return [sweep_missed_calls]
