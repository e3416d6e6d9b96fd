"""The callbacks engine on a controlled clock, on SQLite and PostgreSQL: it plans its wake from
the rows (a window opening on a weekend, after a holiday, a retry moved past the night, an
owner's turn running out), promotes due tasks and publishes them, plans the same after a restart,
and APScheduler really wakes it."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import select

from bridge.db.engine import Database
from bridge.db.models import CallbackAttemptResult, CallbackState, CallbackTask, utcnow
from bridge.live import LiveEvent, LiveEvents
from callbacks import tasks
from callbacks.engine import LIVE_BURST, MAX_SLEEP, RETRY_AFTER, WAKE_JOB, CallbacksEngine, Plan
from bridge.config import validate
from callbacks.tasks import CallbackPolicy
from tests.callbacks.test_tasks import a_case, an_answer, operator
from tests.forum.test_builtin_support import SECRETS
from tests.sign_ins import sign_in_at_desk

pytestmark = pytest.mark.postgres

ZONE = ZoneInfo("Asia/Shanghai")
# The engine re-reads the rows at least every MAX_SLEEP; the tests that read the plan set it far away.
NO_SAFETY_NET = timedelta(days=60)


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZONE)


class Clock:
    """The engine's clock, moved by the test."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Feed:
    """What the engine published on the live feed."""

    def __init__(self, live: LiveEvents):
        self.live, self.events = live, []
        live.publish = self._record

    def _record(self, event: LiveEvent) -> None:
        self.events.append(event)
        LiveEvents.publish(self.live, event)

    def kinds(self) -> list[tuple[str, int | None]]:
        return [(e.kind, e.data.get("task_id")) for e in self.events if e.topic == "callbacks"]


def answered_task(db, policy, at: datetime, *, owner: str | None = "alice", best_time: str = "any") -> int:
    """A case filed by ``owner``, answered at ``at``: its task's id."""
    with db.session() as session:
        filer = operator(session, owner) if owner else None
        case = a_case(session, filer, best_time=best_time)
        return tasks.create_for_answer(session, an_answer(session, case, at), policy, at).id


@pytest.fixture
def policy(db_url):
    return CallbackPolicy.of(validate({"database": {"url": db_url}}, environ=SECRETS))


@pytest.fixture
def live():
    return LiveEvents()


@pytest.fixture
async def engine_on(db, policy, live):
    """Start an engine on ``clock`` (stopped after the test)."""
    started = []

    async def start(clock, **kwargs) -> CallbacksEngine:
        kwargs.setdefault("max_sleep", NO_SAFETY_NET)
        engine = CallbacksEngine(kwargs.pop("database", db), policy, live=live, clock=clock, **kwargs)
        await engine.start()
        started.append(engine)
        return engine

    yield start
    for engine in started:
        await engine.stop()


def state_of(db, task_id: int) -> CallbackState:
    with db.session(readonly=True) as session:
        return session.get(CallbackTask, task_id).state


async def test_an_answer_on_friday_night_is_due_when_saturdays_window_opens(db, policy, live, engine_on):
    task_id = answered_task(db, policy, local("2026-12-04 21:00"))  # Friday, after the working day's last window
    sign_in_at_desk(db, "alice", local("2026-12-05 09:00"))  # at her desk on Saturday morning
    clock = Clock(local("2026-12-04 21:00"))
    feed = Feed(live)
    engine = await engine_on(clock)
    assert engine.plan == Plan(local("2026-12-05 10:00"), "due")  # the weekend's first window

    clock.now = local("2026-12-05 09:59")
    woke = await engine.wake()
    assert woke.promoted == 0 and state_of(db, task_id) is CallbackState.SCHEDULED
    assert engine.plan.at == local("2026-12-05 10:00")

    clock.now = local("2026-12-05 10:00")
    woke = await engine.wake()
    assert (woke.promoted, woke.due) == (1, [task_id])
    assert state_of(db, task_id) is CallbackState.DUE
    assert feed.kinds() == [("due", task_id)]
    # Next: the end of alice's turn (owner_timeout_minutes 30 from the moment it fell due).
    assert engine.plan == Plan(local("2026-12-05 10:30"), "owner_turn")

    clock.now = local("2026-12-05 10:30")
    woke = await engine.wake()
    assert woke.moved_to_pool == [task_id]
    moved = feed.events[-1]
    assert (moved.kind, moved.data["task_id"], moved.data["reason"]) == ("moved_to_pool", task_id, "owner_timed_out")
    assert engine.plan.why == "safety"  # nothing left to wait for but the safety net
    clock.now = local("2026-12-05 10:40")
    assert (await engine.wake()).moved_to_pool == []  # announced once


async def test_no_call_on_the_national_day_holidays(db, policy, engine_on):
    task_id = answered_task(db, policy, local("2026-09-30 20:30"))
    clock = Clock(local("2026-09-30 20:30"))
    engine = await engine_on(clock)
    assert engine.plan == Plan(local("2026-10-08 09:00"), "due")  # 1-7 October: holiday, no window

    for day in ("2026-10-01 10:00", "2026-10-04 15:00", "2026-10-07 19:00"):
        clock.now = local(day)
        assert (await engine.wake()).promoted == 0
    clock.now = local("2026-10-08 09:00")
    assert (await engine.wake()).due == [task_id]


async def test_a_busy_retry_that_falls_at_night_waits_for_the_morning(db, policy, live, engine_on):
    task_id = answered_task(db, policy, local("2026-12-03 19:40"))
    clock = Clock(local("2026-12-03 19:50"))
    engine = await engine_on(clock)
    assert state_of(db, task_id) is CallbackState.DUE
    with db.session() as session:
        attempt, _ = tasks.begin_attempt(session, task_id, None, clock.now, policy, dialler="asterisk")
        tasks.settle_attempt(session, attempt.idempotency_key, CallbackAttemptResult.BUSY, clock.now, policy,
                             settled_by="events")
    # Busy: 15 min would be 20:05, after the last window: the next morning's opening.
    live.publish(LiveEvent("callbacks", "attempt_ended", {"task_id": task_id}))  # as the placer does
    await until(lambda: engine.plan.at == local("2026-12-04 09:00"))
    assert state_of(db, task_id) is CallbackState.SCHEDULED

    clock.now = local("2026-12-03 23:00")  # the night: nothing becomes due
    assert (await engine.wake()).promoted == 0
    clock.now = local("2026-12-04 09:00")
    assert (await engine.wake()).due == [task_id]


async def test_a_new_engine_on_the_same_rows_plans_the_same_wake_and_loses_nothing(db_url, db, policy, engine_on):
    early = answered_task(db, policy, local("2026-12-04 21:00"), owner="alice")
    later = answered_task(db, policy, local("2026-12-05 12:30"), owner="bob")  # Saturday's lunch gap
    clock = Clock(local("2026-12-05 12:30"))
    first = await engine_on(clock)
    planned = first.plan
    await first.stop()  # the daemon stops (or dies: the engine keeps nothing the rows do not)

    again = Database(db_url)  # a new process on the same database
    try:
        second = await engine_on(clock, database=again)
        assert second.plan == planned
        # It caught up at start: the task due at 10:00 while no engine ran is due now.
        assert state_of(db, early) is CallbackState.DUE
        assert planned == Plan(local("2026-12-05 14:00"), "due")
        clock.now = local("2026-12-05 14:00")
        assert (await second.wake()).due == [later]
        with db.session(readonly=True) as session:
            states = session.scalars(select(CallbackTask.state).order_by(CallbackTask.id)).all()
        assert states == [CallbackState.DUE, CallbackState.DUE]
    finally:
        await second.stop()
        again.dispose()


async def test_a_task_created_after_start_replans_once_committed(db, policy, engine_on):
    clock = Clock(local("2026-12-04 21:00"))
    engine = await engine_on(clock)
    assert engine.plan.why == "safety"
    with db.session() as session:
        case = a_case(session, None, best_time="afternoon")
        tasks.create_for_answer(session, an_answer(session, case, clock.now), policy, clock.now)
        engine.replan_after_commit(session)
        await asyncio.sleep(0.05)
        assert engine.plan.why == "safety"  # not committed yet: the engine could not see it
    await until(lambda: engine.plan.why == "due")
    assert engine.plan.at == local("2026-12-05 14:00")  # Saturday afternoon's window


@pytest.mark.parametrize("delivery", ["one event", "a batch"])
async def test_the_answer_consumer_makes_the_engine_plan_again(db, policy, engine_on, delivery):
    from bridge.domain_events import deliver_batch, deliver_one

    from callbacks.capability import answer_consumer

    clock = Clock(local("2026-12-04 21:00"))
    engine = await engine_on(clock)
    consumer = answer_consumer(policy, clock, on_task=engine.replan_after_commit)

    def deliver(session):
        case = a_case(session, None, best_time="morning")
        answer = an_answer(session, case, clock.now)
        if delivery == "one event":
            deliver_one(session, consumer, answer)
        else:
            assert deliver_batch(session, consumer, [answer]) == [answer]

    await db.run_in_session(deliver)
    await until(lambda: engine.plan.why == "due")
    assert engine.plan.at == local("2026-12-05 10:00")


async def test_every_wake_runs_the_hooks_and_a_failing_one_stops_nothing(db, policy, engine_on):
    task_id = answered_task(db, policy, local("2026-12-04 21:00"))
    seen = []

    def sweep(session, policy, now):
        seen.append((type(session).__name__, type(policy).__name__, now))

    def broken(session, policy, now):
        raise RuntimeError("a hook's bug")

    clock = Clock(local("2026-12-04 21:00"))
    engine = await engine_on(clock, hooks=[broken, sweep])
    assert seen == [("Session", "CallbackPolicy", clock.now)]
    clock.now = local("2026-12-05 10:00")
    woke = await engine.wake()
    assert woke.due == [task_id] and woke.failed == ["broken"]
    assert seen[-1][2] == clock.now


async def test_a_burst_of_due_tasks_is_one_live_event(db, policy, live, engine_on):
    at = local("2026-12-04 21:00")
    with db.session() as session:
        for _ in range(LIVE_BURST + 1):
            case = a_case(session, None, best_time="any")
            tasks.create_for_answer(session, an_answer(session, case, at), policy, at)
    feed = Feed(live)
    clock = Clock(local("2026-12-05 10:00"))
    await engine_on(clock)
    assert [e.kind for e in feed.events] == ["many_changed"]
    assert feed.events[-1].data["due"] == LIVE_BURST + 1


async def test_without_anything_due_the_engine_reads_the_rows_again_within_max_sleep(db, policy, engine_on):
    clock = Clock(local("2026-12-04 21:00"))
    engine = await engine_on(clock, max_sleep=MAX_SLEEP)
    assert engine.plan == Plan(clock.now + MAX_SLEEP, "safety")
    answered_task(db, policy, local("2026-12-04 21:00"))  # written where the engine was not told
    clock.now += MAX_SLEEP
    await engine.wake()
    assert engine.plan == Plan(local("2026-12-04 21:10"), "safety")
    clock.now = local("2026-12-05 09:58")
    await engine.wake()
    assert engine.plan == Plan(local("2026-12-05 10:00"), "due")


async def test_the_database_away_means_a_retry_soon(tmp_path, policy, engine_on):
    away = Database(f"sqlite:///{tmp_path / 'missing' / 'nowhere.sqlite3'}")
    try:
        clock = Clock(local("2026-12-04 21:00"))
        engine = await engine_on(clock, database=away)
        assert engine.plan == Plan(clock.now + RETRY_AFTER, "retry")
    finally:
        away.dispose()


class FlakyDatabase:
    """The test's database, away while ``away`` is set (as PostgreSQL restarting)."""

    def __init__(self, db: Database):
        self.db, self.away = db, True

    async def run_in_session(self, fn, *args, **kwargs):
        if self.away:
            from sqlalchemy.exc import OperationalError

            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("the database restarts"))
        return await self.db.run_in_session(fn, *args, **kwargs)


async def test_a_task_due_while_the_database_was_away_is_promoted_once_it_is_back(db, policy, engine_on):
    task_id = answered_task(db, policy, local("2026-12-04 21:00"))
    flaky = FlakyDatabase(db)
    clock = Clock(local("2026-12-05 10:00"))
    engine = await engine_on(clock, database=flaky)
    assert engine.plan == Plan(clock.now + RETRY_AFTER, "retry")
    assert state_of(db, task_id) is CallbackState.SCHEDULED
    flaky.away = False
    clock.now = engine.plan.at
    assert (await engine.wake()).due == [task_id]
    assert engine.plan.why == "owner_turn"


# --------------------------------------------------------------------- APScheduler


async def test_the_scheduler_job_is_the_plan(db, policy, engine_on):
    answered_task(db, policy, local("2026-12-04 21:00"))
    scheduler = AsyncIOScheduler(timezone=ZONE)
    scheduler.start(paused=True)  # the test's clock is not the scheduler's: nothing may fire
    try:
        engine = await engine_on(Clock(local("2026-12-04 21:00")), scheduler=scheduler)
        (job,) = scheduler.get_jobs()
        assert job.id == WAKE_JOB and job.next_run_time == local("2026-12-05 10:00")
        await engine.stop()
        assert scheduler.get_jobs() == []
    finally:
        scheduler.shutdown(wait=False)


async def test_apscheduler_wakes_the_engine_when_the_task_falls_due(db, policy, live, engine_on):
    """On the real clock: a retry due in a moment is promoted by the scheduler's job alone."""
    now = utcnow()
    with db.session() as session:
        case = a_case(session, None, best_time="any")
        task = tasks.create_for_answer(session, an_answer(session, case, now), policy, now)
        task.state, task.due_at = CallbackState.SCHEDULED, now + timedelta(seconds=2)
        task_id = task.id
    scheduler = AsyncIOScheduler(timezone=ZONE)
    scheduler.start()
    feed = Feed(live)
    try:
        engine = await engine_on(utcnow, scheduler=scheduler)
        assert engine.plan.why == "due"
        await until(lambda: ("due", task_id) in feed.kinds(), timeout=8)
        assert state_of(db, task_id) is CallbackState.DUE
    finally:
        scheduler.shutdown(wait=False)


async def until(condition, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the condition did not come true in time")
        await asyncio.sleep(0.02)


# --------------------------------------------------------------------- in the daemon


def test_the_daemon_runs_the_engine_on_its_scheduler_with_the_sms_sender_when_twilio_is_on(tmp_path):

    from bridge.daemon import Daemon
    from callbacks.sms import SmsSender

    def built(**site):
        daemon = Daemon(validate({"database": {"url": f"sqlite:///{tmp_path}/d.sqlite3"}, **site},
                                 environ={**SECRETS, "HOTLINE_BRIDGE_TWILIO_AUTH_TOKEN": "t"}))
        daemon._build_links()
        return daemon, daemon.links["callbacks"]

    daemon, engine = built()
    assert isinstance(engine, CallbacksEngine) and engine.scheduler is daemon.scheduler
    assert engine.live is daemon.live and engine.sms is None
    assert [hook.__name__ for hook in engine.hooks] == ["sweep_missed_calls"]
    consumers = next(c for c in daemon.capabilities if c.name == "callbacks").consumers(daemon.runtime)
    assert [consumer.name for consumer in consumers] == ["callback-tasks", "callback-answer-heard"]

    _, engine = built(twilio={"enabled": True, "account_sid": "AC" + "0" * 32},
                      web={"public_url": "https://hotline.example.org"})
    assert isinstance(engine.sms, SmsSender)
    assert engine.sms.status_callback == "https://hotline.example.org/callbacks/twilio/status"
    assert engine.sms.hotline == "96811"
