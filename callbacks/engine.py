"""The callbacks engine (a daemon ``Link``): wakes when a task falls due or an owner's turn runs out.

The rows of ``callback_tasks`` are the record of truth; the engine keeps no state of its own
that matters.  APScheduler (the daemon's ``runtime.scheduler``) holds one date job,
``callbacks-wake``, at the *plan*: the earliest of

* the next ``scheduled`` task's ``due_at`` (:func:`callbacks.tasks.next_wake`),
* the next end of an owner's turn on a ``due`` task nobody holds
  (:func:`callbacks.ownership.holder`: ``max(assigned_at, due_at) + owner_timeout``),
* now, when an SMS is recorded and not yet tried (a task was just given up),
* :data:`MAX_SLEEP` from now, a safety net for changes made where no one told the engine
  (another process, a lost notice).

The plan is made again from the rows at start, after every wake, and whenever tasks change:
a live event on topic ``callbacks`` (the placer, the desk) or :meth:`CallbacksEngine.changed`
(e.g. after the commit that created a task: :meth:`CallbacksEngine.replan_after_commit`).
So a restarted daemon plans exactly what the rows say, and nothing is lost with the scheduler.

Each wake, in order: scheduled tasks whose time has come become ``due``
(:func:`callbacks.tasks.promote_due`) and are published live (``due``); tasks whose owner's
turn ran out since the last wake are published (``moved_to_pool``: they are the pool's now, by
the rule, not by a write); the wake hooks run (e.g. the missed-call sweep,
``hook(session, policy, now)``, each in its own transaction); the wake calls run (async
``call(now)``: the due automated voice callbacks are placed); the recorded SMS are sent
(:class:`callbacks.sms.SmsSender`); then the next wake is planned.  A failing step is logged
and the others go on; when the database is away the engine tries again after
:data:`RETRY_AFTER`.  The clock is injectable: tests run the engine on a controlled one.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, event, func, or_, select
from sqlalchemy.orm import Session

from bridge.db.engine import Database
from bridge.db.models import CallbackMessage, CallbackState, CallbackTask, utcnow
from bridge.live import LiveEvent, LiveEvents
from callbacks import tasks
from callbacks.ownership import Pool
from callbacks.sms import RECORDED, SmsSender
from callbacks.tasks import CallbackPolicy

log = structlog.get_logger(__name__)

LIVE_TOPIC = "callbacks"
WAKE_JOB = "callbacks-wake"
MAX_SLEEP = timedelta(minutes=5)
RETRY_AFTER = timedelta(seconds=30)
# More changes than this in one wake are published as one "many_changed" (views reload from the rows).
LIVE_BURST = 100
# The kinds the engine itself publishes (its own events do not make it plan again).
OWN_KINDS = frozenset({"due", "moved_to_pool", "many_changed", "owners_changed", "sms_sent", "sms_unknown",
                       "sms_failed", "sms_recorded"})

# The sign-ins' live events (bridge.presence): an owner signing in or out moves their tasks.
PRESENCE_TOPIC = "presence"
SIGN_IN_KINDS = frozenset({"signed_in", "signed_out", "ended"})

WakeHook = Callable[[Session, CallbackPolicy, datetime], Any]
WakeCall = Callable[[datetime], Awaitable[Any]]


@dataclass(frozen=True)
class Plan:
    at: datetime
    why: str  # "due", "owner_turn", "sms", "safety", "retry"


@dataclass
class Wake:
    """What one wake did."""

    at: datetime
    due: list[int] = field(default_factory=list)  # task ids that became due (at most LIVE_BURST + 1)
    promoted: int = 0
    moved_to_pool: list[int] = field(default_factory=list)
    sms_sent: int = 0
    failed: list[str] = field(default_factory=list)  # the steps that failed


# ------------------------------------------------------------------ the rows


def _turn_begins():
    """``max(assigned_at, due_at)`` in portable SQL, as the pair of conditions it splits into."""
    return CallbackTask.due_at >= CallbackTask.assigned_at, CallbackTask.assigned_at > CallbackTask.due_at


def _owned_and_free():
    return and_(CallbackTask.state == CallbackState.DUE, CallbackTask.owner_id.is_not(None),
                CallbackTask.held_by_id.is_(None))


def next_turn_end(session: Session, now: datetime, timeout: timedelta) -> datetime | None:
    """When the next owner's turn on a due task nobody holds runs out, after ``now``."""
    due_begins, assigned_begins = _turn_begins()
    cutoff = now - timeout
    by_due = session.scalar(select(func.min(CallbackTask.due_at)).where(
        _owned_and_free(), due_begins, CallbackTask.due_at > cutoff))
    by_assignment = session.scalar(select(func.min(CallbackTask.assigned_at)).where(
        _owned_and_free(), assigned_begins, CallbackTask.assigned_at > cutoff))
    begins = [moment for moment in (by_due, by_assignment) if moment is not None]
    return min(begins) + timeout if begins else None


@dataclass(frozen=True)
class TurnEnded:
    task_id: int
    owner_id: int
    reason: str  # callbacks.ownership.PoolReason


def turns_ended(session: Session, since: datetime, now: datetime, policy: CallbackPolicy) -> list[TurnEnded]:
    """Due tasks nobody holds whose owner's turn ran out in ``(since, now]`` (the pool's now)."""
    due_begins, assigned_begins = _turn_begins()
    low, high = since - policy.owner_timeout, now - policy.owner_timeout
    found = session.scalars(select(CallbackTask).where(_owned_and_free(), or_(
        and_(due_begins, CallbackTask.due_at > low, CallbackTask.due_at <= high),
        and_(assigned_begins, CallbackTask.assigned_at > low, CallbackTask.assigned_at <= high)))
        .order_by(CallbackTask.id).limit(LIVE_BURST + 1))
    ended = []
    signed_in = tasks.signed_in_owners(session, now)
    for task in found:
        whose = tasks.turn(task, now, policy, owner_signed_in=task.owner_id in signed_in)
        if isinstance(whose, Pool):
            ended.append(TurnEnded(task.id, task.owner_id, whose.reason.value))
    return ended


def sms_waiting(session: Session) -> bool:
    """A message recorded and not yet tried (one tried and put back, e.g. rate limited, has its
    error and waits for a later wake)."""
    return session.scalar(select(CallbackMessage.id).where(
        CallbackMessage.status == RECORDED, CallbackMessage.error.is_(None)).limit(1)) is not None


def plan_from_rows(session: Session, now: datetime, policy: CallbackPolicy, max_sleep: timedelta = MAX_SLEEP, *,
                   sending_sms: bool = False) -> Plan:
    """The next wake the rows call for (``now`` when a task is due already, or, with
    ``sending_sms``, a message waits to be sent)."""
    if sending_sms and sms_waiting(session):
        return Plan(now, "sms")
    candidates = [Plan(now + max_sleep, "safety")]
    due = tasks.next_wake(session)
    if due is not None:
        candidates.append(Plan(max(due, now), "due"))
    turn_end = next_turn_end(session, now, policy.owner_timeout)
    if turn_end is not None:
        candidates.append(Plan(turn_end, "owner_turn"))
    return min(candidates, key=lambda plan: plan.at)


def _promote(session: Session, now: datetime) -> tuple[list[int], int]:
    ids = list(session.scalars(select(CallbackTask.id).where(
        CallbackTask.state == CallbackState.SCHEDULED, CallbackTask.due_at <= now)
        .order_by(CallbackTask.due_at, CallbackTask.id).limit(LIVE_BURST + 1)))
    return ids, tasks.promote_due(session, now)


# ------------------------------------------------------------------ the link


class CallbacksEngine:
    """Promotes due tasks, announces owners' turns running out, runs the wake hooks, sends SMS."""

    def __init__(self, db: Database, policy: CallbackPolicy, *, scheduler: Any = None,
                 live: LiveEvents | None = None, sms: SmsSender | None = None, hooks: Iterable[WakeHook] = (),
                 calls: Iterable[WakeCall] = (), clock: Callable[[], datetime] = utcnow,
                 max_sleep: timedelta = MAX_SLEEP) -> None:
        self.db, self.policy, self.scheduler, self.live, self.sms = db, policy, scheduler, live, sms
        self.hooks: list[WakeHook] = list(hooks)  # others may append: each runs at every wake
        # Async steps after the hooks, e.g. placing the due automated voice callbacks: ``call(now)``.
        self.calls: list[WakeCall] = list(calls)
        self.clock, self.max_sleep = clock, max_sleep
        self.plan: Plan | None = None
        self.last_wake: datetime | None = None
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watch: asyncio.Task | None = None
        self._replanning: asyncio.Task | None = None
        self._running = False

    # -------------------------------------------------------------- lifetime

    async def start(self) -> None:
        self._loop, self._running = asyncio.get_running_loop(), True
        if self.sms is not None:
            try:
                stuck = await self.sms.recover()
            except Exception as exc:  # the database away: the next start tries again
                log.error("callbacks.sms_recover_failed", error=repr(exc))
            else:
                if stuck:
                    log.warning("callbacks.sms_left_for_a_person", count=stuck)
        if self.live is not None:
            self._watch = asyncio.create_task(self._watch_live(), name="callbacks-watch")
        await self.wake()  # catch up: what fell due while no daemon ran, and the first plan
        log.info("callbacks.engine_started", next_wake=self.plan.at.isoformat() if self.plan else None)

    async def stop(self) -> None:
        self._running = False
        for running in (self._watch, self._replanning):
            if running is not None:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
        self._watch = self._replanning = None
        self._unschedule()
        async with self._lock:  # a wake under way finishes first
            pass
        if self.sms is not None:
            await self.sms.close()

    # -------------------------------------------------------------- waking

    async def wake(self) -> Wake:
        """One pass (what the scheduler runs at the plan); then the next plan."""
        async with self._lock:
            now = self.clock()
            report = Wake(now)
            since = self.last_wake or now
            try:
                report.due, report.promoted = await self.db.run_in_session(_promote, now)
                ended = await self.db.run_in_session(turns_ended, since, now, self.policy)
            except Exception as exc:
                log.error("callbacks.wake_failed", step="promote", error=repr(exc))
                report.failed.append("promote")
                self._schedule(Plan(now + RETRY_AFTER, "retry"))
                return report
            report.moved_to_pool = [turn_ended.task_id for turn_ended in ended]
            self._publish_changes(report, ended)
            await self._run_hooks(now, report)
            await self._run_calls(now, report)
            await self._send_sms(report)
            self.last_wake = now
            await self._replan_locked(sending_sms="sms" not in report.failed)
            if report.promoted or report.moved_to_pool or report.sms_sent:
                log.info("callbacks.woke", promoted=report.promoted, moved_to_pool=len(report.moved_to_pool),
                         sms_sent=report.sms_sent, next_wake=self.plan.at.isoformat() if self.plan else None)
            return report

    async def replan(self) -> Plan | None:
        """Plan the next wake from the rows (tasks changed)."""
        async with self._lock:
            return await self._replan_locked()

    def changed(self) -> None:
        """Tasks changed: plan again soon (callable from any thread)."""
        loop = self._loop
        if loop is None or not self._running:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._replan_soon()
        else:
            loop.call_soon_threadsafe(self._replan_soon)

    def replan_after_commit(self, session: Session) -> None:
        """Plan again once ``session``'s transaction has committed (e.g. the one that made a task)."""
        event.listen(session, "after_commit", lambda _session: self.changed(), once=True)

    # -------------------------------------------------------------- steps

    def _publish_changes(self, report: Wake, ended: list[TurnEnded]) -> None:
        if self.live is None:
            return
        if report.promoted > LIVE_BURST or len(ended) > LIVE_BURST:
            self.live.publish(LiveEvent(LIVE_TOPIC, "many_changed",
                                        {"due": report.promoted, "moved_to_pool": len(ended)}))
            return
        for task_id in report.due:
            self.live.publish(LiveEvent(LIVE_TOPIC, "due", {"task_id": task_id}))
        for turn_ended in ended:
            self.live.publish(LiveEvent(LIVE_TOPIC, "moved_to_pool", {
                "task_id": turn_ended.task_id, "owner_id": turn_ended.owner_id, "reason": turn_ended.reason}))

    async def _run_hooks(self, now: datetime, report: Wake) -> None:
        for hook in list(self.hooks):
            try:
                await self.db.run_in_session(hook, self.policy, now)
            except Exception as exc:  # one hook failing keeps neither the others nor the SMS back
                name = getattr(hook, "__name__", repr(hook))
                log.error("callbacks.wake_hook_failed", hook=name, error=repr(exc))
                report.failed.append(name)

    async def _run_calls(self, now: datetime, report: Wake) -> None:
        for call in list(self.calls):
            try:
                await call(now)
            except Exception as exc:  # as for the hooks: the others and the SMS go on
                name = getattr(call, "__name__", repr(call))
                log.error("callbacks.wake_call_failed", call=name, error=repr(exc))
                report.failed.append(name)

    async def _send_sms(self, report: Wake) -> None:
        if self.sms is None:
            return
        try:
            report.sms_sent = await self.sms.send_pending()
        except Exception as exc:
            log.error("callbacks.wake_failed", step="sms", error=repr(exc))
            report.failed.append("sms")

    async def _replan_locked(self, *, sending_sms: bool = True) -> Plan | None:
        now = self.clock()
        try:
            plan = await self.db.run_in_session(plan_from_rows, now, self.policy, self.max_sleep, readonly=True,
                                                sending_sms=sending_sms and self.sms is not None)
        except Exception as exc:
            log.error("callbacks.plan_failed", error=repr(exc))
            plan = Plan(now + RETRY_AFTER, "retry")
        self._schedule(plan)
        return plan

    def _replan_soon(self) -> None:
        if self._running and (self._replanning is None or self._replanning.done()):
            self._replanning = asyncio.create_task(self.replan(), name="callbacks-replan")

    async def _watch_live(self) -> None:
        async with self.live.subscribe() as queue:
            while True:
                live_event = await queue.get()
                if live_event.topic == LIVE_TOPIC and live_event.kind not in OWN_KINDS:
                    self._replan_soon()
                elif live_event.topic == PRESENCE_TOPIC and live_event.kind in SIGN_IN_KINDS:
                    # An owner signed in or out: whose tasks are the pool's changed now, not at a planned time.
                    self.live.publish(LiveEvent(LIVE_TOPIC, "owners_changed",
                                                {"user_id": live_event.data.get("user_id")}))

    # -------------------------------------------------------------- the scheduler

    def _schedule(self, plan: Plan) -> None:
        self.plan = plan
        if self.scheduler is None or not self._running:
            return
        # misfire_grace_time None: a wake is never skipped for being late (e.g. planned in the past).
        self.scheduler.add_job(self._fire, "date", run_date=plan.at, id=WAKE_JOB, replace_existing=True,
                               misfire_grace_time=None, coalesce=True, max_instances=1)

    def _unschedule(self) -> None:
        if self.scheduler is not None:
            with contextlib.suppress(Exception):  # JobLookupError, or the scheduler already shut down
                self.scheduler.remove_job(WAKE_JOB)

    async def _fire(self) -> None:
        if self._running:
            await self.wake()
