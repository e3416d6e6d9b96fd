"""Callbacks as a capability, plugged in through the entry point ``hotline_bridge.capabilities``
(``bridge`` never imports this package).

* its part of the AMI subscription: ``OriginateResponse``, Asterisk's answer to the
  Originate that places a callback, and the events and variables the Asterisk dialler reads
  (:data:`callbacks.asterisk_dialler.SUBSCRIPTION`);
* with ``[callbacks] dialler = "asterisk"`` and a PBX link: the dialler as an AMI listener, and
  the :class:`callbacks.placing.Placer` at ``app.state.callback_placer`` (None: no call can be
  placed, e.g. a bare web app without the daemon's PBX link);
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
* the link ``missed-calls`` (:class:`callbacks.missed_calls.MissedCallSweeper`): missed calls
  (abandoned, after-hours messages) become tasks of reason ``missed_call``, swept at start,
  every few seconds and soon after a call ends (the engine's wake runs the same sweep);
* a durable consumer of ``answer_heard`` (cursor ``events:callback-answer-heard``): a caller
  who heard the answer from the PBX (the status line, an automated voice callback) is
  informed, without a grade (:func:`callbacks.tasks.heard_answer`);
* the automated voice callback (:class:`callbacks.voice_callback.VoiceCallbacks`, ``self.voice``):
  its AMI listener settles the calls it placed;
* with ``[twilio]`` enabled, Twilio's signed status callbacks at ``POST /callbacks/twilio/status``.
* the operators' callback queue on the desk, ``/desk/callbacks`` (:mod:`callbacks.desk`);
* with ``[twilio]`` enabled, Twilio's signed status callbacks at ``POST /callbacks/twilio/status``
  (a message's status updates its ``callback_messages`` row, a voice callback's its attempt).
* the link ``callback-attempt-recovery`` (with the PBX link): after each AMI login, attempts
  left dialling are settled from Asterisk's CDR or marked unknown
  (:mod:`callbacks.attempt_recovery`).
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from bridge.capability import AmiSubscription, Capability, Runtime
from bridge.db.models import CallbackReason, CallbackTask, utcnow
from bridge.domain_events import ANSWER_HEARD, CASE_ANSWERED, Consumer, DomainEvent
from callbacks.asterisk_dialler import SUBSCRIPTION as ASTERISK_DIALLER
from callbacks.missed_calls import MissedCallSweeper
from callbacks.placing import LIVE_TOPIC, Placer
from callbacks.tasks import (OPEN_STATES, CallbackPolicy, attempt_by_key, create_for_answer, create_for_answers,
                             heard_answer)

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


def tasks_informed_by(session: Session, event: DomainEvent) -> list[int]:
    """The open tasks an ``answer_heard`` event serves: the voice callback's own task, or on the
    status line every open answer task of the case for that answer or an older one."""
    if event.detail.get("attempt"):
        attempt = attempt_by_key(session, str(event.detail["attempt"]))
        return [attempt.task_id] if attempt is not None and attempt.task.case_id == event.case_id else []
    heard = int(event.detail.get("answer") or 0)
    return list(session.scalars(select(CallbackTask.id).where(
        CallbackTask.case_id == event.case_id, CallbackTask.reason == CallbackReason.ANSWER,
        CallbackTask.state.in_(OPEN_STATES), CallbackTask.answer_event_id <= heard).order_by(CallbackTask.id)))


def heard_consumer(clock: Callable[[], datetime] = utcnow) -> Consumer:
    """The consumer that closes the tasks an answer heard from the PBX has served (same transaction
    as the cursor)."""
    def on_answer_heard(session: Session, event: DomainEvent) -> None:
        via = str(event.detail.get("via") or "pbx")
        for task_id in tasks_informed_by(session, event):
            if heard_answer(session, task_id, clock(), via=via) is not None:
                log.info("callbacks.heard_answer", task_id=task_id, case_number=event.case_number, via=via)

    return Consumer("callback-answer-heard", ANSWER_HEARD, on_answer_heard)


class CallbacksCapability(Capability):
    name = "callbacks"
    order = 80
    # The Asterisk dialler's events and variables; HOTLINE_CALLBACK_ATTEMPT also names the
    # channel of an automated voice callback (callbacks.voice_callback).
    ami = ASTERISK_DIALLER | AmiSubscription(variables=("HOTLINE_CALLBACK_ATTEMPT",))
    live_topics = (LIVE_TOPIC,)

    def __init__(self) -> None:
        self._dialler = None   # the Asterisk dialler of the daemon's runtime, once built
        self.voice = None  # the automated voice dialler (callbacks.voice_callback), once the daemon runs
        self.twilio_voice = None  # the same through Twilio, with [twilio] enabled
        self._recovery = None  # callbacks.attempt_recovery.AttemptRecovery, once the PBX link exists
        self._policy: tuple[object, CallbackPolicy] | None = None  # (the config, its policy)

    def policy(self, config) -> CallbackPolicy:
        """The callback policy of ``config``, built once (its working calendar is costly to build)
        and shared by the engine, the dialler, the consumer, the pages and the API."""
        if self._policy is None or self._policy[0] is not config:
            self._policy = (config, CallbackPolicy.of(config))
        return self._policy[1]

    def _attempt_recovery(self, runtime: Runtime):
        """The attempt recovery (:mod:`callbacks.attempt_recovery`) on the daemon's PBX link: one
        object per daemon, both its AMI listener and its link; None without a PBX link."""
        pbx = runtime.links.get("pbx")
        if pbx is None or not hasattr(pbx, "connected_hooks"):
            return None
        recovery = self._recovery
        if recovery is None or recovery.pbx is not pbx:
            from callbacks.attempt_recovery import AttemptRecovery

            recovery = self._recovery = AttemptRecovery(runtime.db, self.policy(runtime.config), pbx,
                                                             live=runtime.live)
        return recovery

    def _attempt_recovery_listeners(self) -> tuple:
        # Listeners are gathered before the links are built: the listener looks the
        # recovery up at each event (there is none until the PBX link exists).
        def attempt_hangups(event: dict[str, str]) -> None:
            if self._recovery is not None:
                self._recovery.on_ami_event(event)

        return (attempt_hangups,)

    def links(self, runtime: Runtime):
        from callbacks.engine import CallbacksEngine

        engine = CallbacksEngine(runtime.db, self.policy(runtime.config), scheduler=runtime.scheduler,
                                 live=runtime.live, sms=_sms_sender(runtime), hooks=_wake_hooks(),
                                 calls=[self._voice_callbacks_due(runtime)])
        sweeper = MissedCallSweeper(runtime.db, runtime.live, self.policy(runtime.config))
        recovery = self._attempt_recovery(runtime)
        return (("callbacks", engine), ("missed-calls", sweeper),
                *((("callback-attempt-recovery", recovery),) if recovery is not None else ()))

    def _voice_callbacks_due(self, runtime: Runtime):
        """The engine's wake call that places the due automated voice callbacks: through Twilio
        with ``[callbacks] dialler = "twilio"``, else through the site's Asterisk (looked up at each
        wake: the dialler exists once the daemon's PBX link or web app is built)."""
        async def place_voice_callbacks(now: datetime) -> None:
            from callbacks.voice_callback import place_due_voice_callbacks

            dialler = self.twilio_voice if runtime.config.callbacks.dialler == "twilio" else self.voice
            if dialler is not None:
                await place_due_voice_callbacks(runtime.db, dialler, now)

        return place_voice_callbacks

    def consumers(self, runtime: Runtime):
        engine = runtime.links.get("callbacks")
        return (answer_consumer(self.policy(runtime.config),
                                on_task=engine.replan_after_commit if engine is not None else None),
                heard_consumer())

    def ami_listeners(self, runtime: Runtime):
        from callbacks.voice_callback import VoiceCallbacks

        dialler = self.asterisk_dialler(runtime)
        self.voice = VoiceCallbacks.of(runtime, self.policy(runtime.config))
        own = tuple(listener for listener in (dialler.on_event if dialler is not None else None,
                                              self.voice.on_ami_event if self.voice is not None else None)
                    if listener is not None)
        return own + self._attempt_recovery_listeners()

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

            self._dialler = AsteriskDialler(client, runtime.db, self.policy(config),
                                            context=config.callbacks.originate_context, live=runtime.live,
                                            operator_ring_s=config.callbacks.operator_ring_s)
        return self._dialler

    def placer(self, runtime: Runtime) -> Placer | None:
        """The Placer of this runtime: None without a daemon's PBX link (nothing can dial)."""
        dialler = self.asterisk_dialler(runtime) if "pbx" in runtime.links else None
        if dialler is None:
            return None
        presence = runtime.links.get("presence")   # queue presence: the operator is paused during the call
        return Placer(runtime.db, dialler.policy, dialler, live=runtime.live,
                      before_call=getattr(presence, "callback_started", None))

    def mount(self, app, runtime: Runtime) -> None:
        from callbacks.api import router as api_router
        from callbacks.desk import mount_queue

        app.state.callback_placer = self.placer(runtime)   # the API's POST .../attempts
        app.state.callback_policy = self.policy(runtime.config)
        app.include_router(api_router)
        mount_queue(app, self.policy(runtime.config))
        if runtime.config.twilio.enabled:  # Twilio's signed status callbacks (SMS, voice callback)
            self._mount_twilio(app, runtime)

    def _mount_twilio(self, app, runtime: Runtime) -> None:
        from callbacks.sms import apply_status
        from callbacks.twilio_gateway import TwilioGateway
        from callbacks.twilio_status import status_router, storing_handler
        from callbacks.voice_callback import TwilioVoiceCallbacks, heard_router

        config = runtime.config
        self.twilio_voice = TwilioVoiceCallbacks(runtime.db, self.policy(config),
                                                 TwilioGateway.from_config(config), public_url=config.web.public_url,
                                                 live=runtime.live)
        store = storing_handler(runtime.db, {"message": apply_status})

        async def on_status(status) -> None:  # a voice callback's call, else an SMS (or only logged)
            if not await self.twilio_voice.on_status(status):
                await store(status)

        app.include_router(status_router(config, on_status=on_status))
        app.include_router(heard_router(self.twilio_voice, auth_token=config.secret(config.twilio.auth_token_env)))


def _sms_sender(runtime: Runtime):
    if not runtime.config.twilio.enabled:
        return None
    from callbacks.sms import SmsSender

    return SmsSender.from_config(runtime.config, runtime.db, live=runtime.live)


def _wake_hooks() -> list:
    """What runs at every wake besides promoting due tasks: the missed-call sweep."""
    from callbacks.missed_calls import sweep_missed_calls

    return [sweep_missed_calls]
